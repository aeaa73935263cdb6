"""The stand-in batch system behind tests.helpers.batch_standins: SLURM and PBS on one machine.

Each command is a small program run by a generated executable
(``sbatch``, ``squeue``, ``scancel``; ``qsub``, ``qstat``, ``qdel``). A submitted
job script runs as a local background process: ``bash SCRIPT`` in a session of its
own (so cancelling a job signals its whole process group), started from the
submitter's working directory. Nothing here schedules, queues or limits anything:
the stand-ins test xlcat's use of dask-jobqueue, never SLURM or PBS.

State lives in ``$XLCAT_BATCH_STATE`` (a directory): ``jobs/<id>.json`` per job
(its id, pid, a copy of its script, the directives it was submitted with, whether
it was cancelled) and ``next-id``. Environment:

``XLCAT_BATCH_STATE``
    the state directory (required).
``XLCAT_BATCH_QUEUES``
    comma-separated queue (partition) names accepted; unset: any. A job asking
    for another queue is refused the way the real command refuses it.

Jobs see the submitter's environment (SLURM's default ``--export=ALL``) under
SLURM; under PBS only with ``-V``, as with a real ``qsub``, else a minimal one. The
``XLCAT_STANDIN*``, ``XLCAT_BATCH*`` and ``XLCAT_TEST*`` variables are passed on
either way: they are the test harness's own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

#: Options taking a value, per batch system (all others are flags).
_VALUED = {
    "slurm": {"-J", "-o", "-e", "-p", "-A", "-t", "-n", "-N", "-c", "--mem", "--cpus-per-task"},
    "pbs": {"-N", "-o", "-e", "-q", "-A", "-l", "-j", "-W", "-m", "-M", "-v"},
}


#: Variables of the test harness, passed to PBS jobs even without -V.
_HARNESS = ("XLCAT_STANDIN", "XLCAT_BATCH", "XLCAT_TEST")


def _state() -> Path:
    return Path(os.environ["XLCAT_BATCH_STATE"])


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    """The state directory, held exclusively (dask-jobqueue submits jobs concurrently)."""
    state = _state()
    (state / "jobs").mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield state


def _parse_options(words: list[str], system: str) -> list[tuple[str, str]]:
    """``-x VALUE``, ``--long=VALUE``, ``--long VALUE`` and flags, in order."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and "=" in word:
            key, value = word.split("=", 1)
            out.append((key, value))
        elif word in _VALUED[system] and i + 1 < len(words):
            out.append((word, words[i + 1]))
            i += 1
        else:
            out.append((word, ""))
        i += 1
    return out


def _directives(script: str, prefix: str, system: str) -> list[tuple[str, str]]:
    """The ``#SBATCH``/``#PBS`` lines before the first command, parsed like options."""
    words: list[str] = []
    for line in script.splitlines()[1:]:
        text = line.strip()
        if not text:
            continue
        if not text.startswith("#"):
            break
        if text.startswith(prefix + " "):
            words += text[len(prefix) :].split()
    return _parse_options(words, system)


def _split_argv(argv: list[str], system: str) -> tuple[list[tuple[str, str]], Path]:
    """Command-line options and the script path (the first word that is not an option)."""
    for i, word in enumerate(argv):
        if not word.startswith("-") and (i == 0 or argv[i - 1] not in _VALUED[system]):
            return _parse_options(argv[:i], system), Path(word)
    raise SystemExit(f"{sys.argv[0]}: no job script given")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _jobs(state: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((state / "jobs").glob("*.json"))]


def _submit(system: str, argv: list[str]) -> int:
    prefix = {"slurm": "#SBATCH", "pbs": "#PBS"}[system]
    cli, script = _split_argv(argv, system)
    text = script.read_text()
    options = _directives(text, prefix, system) + cli  # the command line wins
    opts = dict(options)
    queue = opts.get("-p", opts.get("--partition")) if system == "slurm" else opts.get("-q")
    accepted = os.environ.get("XLCAT_BATCH_QUEUES")
    if queue is not None and accepted is not None and queue not in accepted.split(","):
        if system == "slurm":
            print(
                "sbatch: error: Batch job submission failed: Invalid partition name specified",
                file=sys.stderr,
            )
        else:
            print(f"qsub: Unknown queue {queue}", file=sys.stderr)
        return 1
    with _locked() as state:
        counter = state / "next-id"
        job_id = int(counter.read_text()) if counter.exists() else 1001
        counter.write_text(str(job_id + 1))
        copy = state / f"job-{job_id}.sh"
        shutil.copyfile(script, copy)  # dask-jobqueue deletes its file once we return
        name = opts.get("-J", opts.get("-N", "job"))
        if system == "slurm":
            out = opts.get("-o", "slurm-%j.out").replace("%J", str(job_id))
            out = out.replace("%j", str(job_id)).replace("%x", name)
            err = opts.get("-e", out).replace("%J", str(job_id)).replace("%j", str(job_id))
            env = dict(os.environ, SLURM_JOB_ID=str(job_id), SLURM_JOB_NAME=name)
        else:
            out = opts.get("-o", f"{name}.o{job_id}")
            err = opts.get("-e", f"{name}.e{job_id}")
            if "-V" in opts:
                env = dict(os.environ)
            else:
                env = {k: v for k, v in os.environ.items() if k.startswith(_HARNESS)}
                env.update(HOME=os.environ.get("HOME", "/"), PATH="/usr/bin:/bin")
            env.update(PBS_JOBID=f"{job_id}.standin", PBS_O_WORKDIR=os.getcwd())
        with open(out, "ab") as fout, open(err, "ab") as ferr:
            proc = subprocess.Popen(
                ["bash", str(copy)],
                stdin=subprocess.DEVNULL,
                stdout=fout,
                stderr=ferr if err != out else subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: cancel signals all of it
            )
        record = {
            "id": job_id,
            "pid": proc.pid,
            "system": system,
            "script": str(copy),
            "options": options,
            "queue": queue,
            "cancelled": False,
        }
        (state / "jobs" / f"{job_id}.json").write_text(json.dumps(record))
    print(f"Submitted batch job {job_id}" if system == "slurm" else f"{job_id}.standin")
    return 0


def _cancel(system: str, argv: list[str]) -> int:
    status = 0
    with _locked() as state:
        for word in argv:
            if word.startswith("-"):
                continue
            path = state / "jobs" / f"{word.split('.')[0]}.json"
            if not path.exists():
                name = "scancel" if system == "slurm" else "qdel"
                print(f"{name}: error: invalid job id {word}", file=sys.stderr)
                status = 1
                continue
            record = json.loads(path.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.killpg(record["pid"], signal.SIGTERM)  # as SLURM/PBS: SIGTERM to the job
            record["cancelled"] = True
            path.write_text(json.dumps(record))
    return status


def _status(system: str, argv: list[str]) -> int:
    """``squeue [-h] [-j IDS] [-o FORMAT]`` (``%i``, ``%j``, ``%T``, ``%P``) or ``qstat [IDS]``."""
    opts = dict(_parse_options(argv, "slurm" if system == "slurm" else "pbs"))
    wanted_text = opts.get("-j", opts.get("--jobs", ""))
    wanted = {w.split(".")[0] for w in wanted_text.split(",") if w}
    if system == "pbs":
        wanted |= {w.split(".")[0] for w in argv if not w.startswith("-")}
    rows = [
        r for r in _jobs(_state()) if _alive(r["pid"]) and (not wanted or str(r["id"]) in wanted)
    ]
    if system == "slurm":
        fmt = opts.get("-o", opts.get("--format", "%i %P %j %T"))
        if "-h" not in opts and "--noheader" not in opts:
            print(
                fmt.replace("%i", "JOBID")
                .replace("%P", "PARTITION")
                .replace("%j", "NAME")
                .replace("%T", "STATE")
            )
        for r in rows:
            name = dict(r["options"]).get("-J", "job")
            print(
                fmt.replace("%i", str(r["id"]))
                .replace("%P", str(r["queue"]))
                .replace("%j", name)
                .replace("%T", "RUNNING")
            )
    else:
        print("Job id            Name             User              Time Use S Queue")
        print("----------------  ---------------- ----------------  -------- - -----")
        for r in rows:
            name = dict(r["options"]).get("-N", "job")
            print(f"{r['id']}.standin  {name:16} {'user':16}  00:00:00 R {r['queue']}")
    return 0


COMMANDS = {
    "sbatch": ("slurm", _submit),
    "squeue": ("slurm", _status),
    "scancel": ("slurm", _cancel),
    "qsub": ("pbs", _submit),
    "qstat": ("pbs", _status),
    "qdel": ("pbs", _cancel),
}


def main(command: str, argv: list[str]) -> int:
    """Run one stand-in command; returns its exit status."""
    system, func = COMMANDS[command]
    return func(system, argv)
