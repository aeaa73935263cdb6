"""``xlcat build`` on every kind of Dask cluster it can use, run as a separate process.

- the LocalCluster, with worker threads (the default) and with worker processes
  (``--processes``): no process outlives the build, not even when it is interrupted
  (SIGINT, SIGTERM) while a SAS task runs, and no scheduler asks for port 8787 (held
  busy here);
- ``--jobqueue slurm`` / ``--jobqueue pbs`` through stand-in batch commands
  (tests/helpers/batch_standins.py) that run the job scripts dask-jobqueue writes as
  local processes: the jobs ask for what the options say, and are all cancelled at the end;
- ``--scheduler`` against a ``dask scheduler`` and a ``dask worker`` started here.

Every build must store the same numbers as an in-process reference build. Each
subprocess carries ``XLCAT_TEST_TAG`` (inherited by everything it starts), so a
process left behind is found wherever it was re-parented.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np
import psutil
import pytest

import catalog
from pipeline.cli.main import main
from pipeline.simulate import simulate_preset
from tests.helpers.batch_standins import BatchStandIns, install, wait_gone
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    edge_events,
    random_events,
    write_event_file,
)
from tests.helpers.sas_standins import StandIns

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
OBSIDS = ("0123456789", "0123456790")
SCHEMES = ("8ch", "4cch")
BUILD = """
store = "{store}"
time_bin = 100.0

[[observations]]
obsid = "0123456789"
events = "{inputs}/0123456789/ev.fits"
regions = "{inputs}/0123456789/ds9.reg"

[[observations]]
obsid = "0123456790"
events = "{inputs}/0123456790/ev.fits"
regions = "{inputs}/0123456790/ds9.reg"

[schemes]
8ch  = {{ unit = "chan", lin = [400, 2000, 8] }}
4cch = {{ unit = "keV", equal_counts = {{ reference = "0123456789", n = 4, lo = 2, hi = 10 }} }}
"""
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("inputs")
    for i, obsid in enumerate(OBSIDS):
        (d / obsid).mkdir()
        events = EventSet.concat([edge_events(), random_events(6000, seed=40 + i)])
        spec = FileSpec(ccd_gtis={4: [(T0, T0 + 600)], 5: [(T0, T0 + 600)]})
        write_event_file(d / obsid / "ev.fits", events, spec)
        (d / obsid / "ds9.reg").write_text(REGION_TEXT)
    return d


def _build_file(inputs: Path, where: Path) -> Path:
    path = where / "build.toml"
    path.write_text(BUILD.format(store=where / "store.zarr", inputs=inputs))
    return path


@pytest.fixture(scope="module")
def reference(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same build in this process, on threads: the numbers every cluster must give."""
    d = tmp_path_factory.mktemp("reference")
    args = ["build", str(_build_file(inputs, d)), "--threads", "--workers", "1", "--no-progress"]
    assert main(args) == 0
    return d / "store.zarr"


def _assert_same_numbers(store: Path, reference: Path) -> None:
    got, want = catalog.open(store), catalog.open(reference)
    assert len(got.index) == len(want.index) == 2 * (8 + 4)
    for obsid in OBSIDS:
        for scheme in SCHEMES:
            a = got.lightcurves(obsid=obsid, scheme=scheme)
            b = want.lightcurves(obsid=obsid, scheme=scheme)
            assert a.sizes == b.sizes and a.sizes["time"] >= 6
            for name in ("time", "pi_lo", "pi_hi", "src_counts", "bkg_counts", "rate", "error"):
                np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
            assert a.src_counts.values.sum() > 100


# -- running xlcat as a process and finding what it left ------------------------------------
@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seen: dict[int, Seen] = field(default_factory=dict)

    def seen_running(self) -> list[str]:
        """Descendants seen during the run that still run now."""
        return [s.cmdline for s in self.seen.values() if _running(s.proc)]


@dataclass(frozen=True)
class Seen:
    """A descendant of the xlcat process, and its command line when it was seen."""

    proc: psutil.Process
    cmdline: str


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    with suppress(psutil.Error):
        return f"{proc.pid}: {' '.join(proc.cmdline())[:160]}"
    return str(proc.pid)


def _env(tag: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["XLCAT_TEST_TAG"] = str(tag)
    return env


def _xlcat(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    interrupt: tuple[signal.Signals, Callable[[dict[int, Seen]], bool]] | None = None,
) -> Run:
    """Run ``python -m pipeline.cli.main ARGS``, noting its descendants every 0.1 s.

    ``interrupt``: a signal sent once the descendants seen so far satisfy the predicate.
    """
    out, err = cwd / "xlcat.out", cwd / "xlcat.err"
    with open(out, "w") as fout, open(err, "w") as ferr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli.main", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fout,
            stderr=ferr,
        )
    seen: dict[int, Seen] = {}
    deadline = time.monotonic() + TIMEOUT
    try:
        parent = psutil.Process(proc.pid)
        while proc.poll() is None:
            with suppress(psutil.Error):
                for child in parent.children(recursive=True):
                    if child.pid not in seen:
                        with suppress(psutil.Error):
                            seen[child.pid] = Seen(child, " ".join(child.cmdline()))
            if interrupt is not None and interrupt[1](seen):
                proc.send_signal(interrupt[0])
                interrupt = None
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                sent = "" if interrupt is None else "; the signal was never sent"
                raise AssertionError(
                    f"xlcat {args} still runs after {TIMEOUT} s{sent}; seen: "
                    f"{[s.cmdline[:80] for s in seen.values()]}; stderr: {err.read_text()[-3000:]}"
                )
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Run(proc.returncode, out.read_text(), err.read_text(), seen)


def _tagged(tag: Path) -> list[psutil.Process]:
    """Live processes started under ``XLCAT_TEST_TAG=tag`` or naming the tag's folder."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get("XLCAT_TEST_TAG") == str(tag) or any(
                str(tag) in word for word in proc.cmdline()
            ):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _assert_nothing_left(tag: Path, run: Run, timeout: float = 10.0) -> None:
    left = wait_gone(lambda: _tagged(tag), timeout)
    described = [_describe(p) for p in left]
    for proc in left:  # no test leaves them to the next one, even when it fails
        with suppress(psutil.Error):
            proc.kill()
    assert not left, f"left behind: {described}"
    assert not run.seen_running(), f"left behind: {run.seen_running()}"


def _assert_quiet_ports(run: Run) -> None:
    assert "8787" not in run.stderr and "already in use" not in run.stderr, run.stderr


@pytest.fixture
def port_8787_busy() -> Iterator[None]:
    """Port 8787 held (if nobody holds it yet): a scheduler asking for it would warn."""
    sock = socket.socket()
    with suppress(OSError):
        sock.bind(("0.0.0.0", 8787))
        sock.listen()
    try:
        yield
    finally:
        sock.close()


def _worker_processes(seen: dict[int, Seen]) -> list[Seen]:
    return [s for s in seen.values() if "multiprocessing.spawn" in s.cmdline]


# -- LocalCluster ----------------------------------------------------------------------------
@pytest.mark.parametrize(("local", "workers"), [([], 0), (["--processes"], 2)])
def test_local_build_leaves_no_process_and_asks_for_no_port(
    inputs: Path,
    reference: Path,
    tmp_path: Path,
    port_8787_busy: None,
    local: list[str],
    workers: int,
) -> None:
    """The default LocalCluster runs its workers as threads; --processes as processes."""
    build = _build_file(inputs, tmp_path)
    run = _xlcat(
        ["build", str(build), "--workers", "2", "--no-progress", *local],
        cwd=tmp_path,
        env=_env(tmp_path),
    )
    assert run.returncode == 0, run.stderr
    assert "built 2 groups, 0 up to date, 0 failed" in run.stdout
    # with processes, the check below is not vacuous (a busy machine may see a worker
    # process that failed to start in time replaced: more than two, then)
    seen = len(_worker_processes(run.seen))
    assert seen >= workers if workers else seen == 0
    _assert_quiet_ports(run)
    _assert_nothing_left(tmp_path, run)
    _assert_same_numbers(tmp_path / "store.zarr", reference)


@pytest.fixture(scope="module")
def sas_inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = tmp_path_factory.mktemp("sas-sim")
    simulate_preset(sim, scale=0.02, obsids=["0201830201"])
    (sim / "ccf.cif").write_text("stand-in calibration index")  # found as ../ccf.cif
    text = (sim / "ngc5506.toml").read_text()
    (sim / "sas.toml").write_text(
        'store = "sas.zarr"\ntime_bin = 128.0\nbackend = "sas"\n[flare]\nthreshold = 0.7\n'
        '[schemes]\n1ch = { unit = "chan", edges = [400, 2000] }\n'
        + text[text.index("[[observations]]") :]
    )
    return sim / "sas.toml"


@pytest.mark.parametrize(
    ("sig", "status", "said", "local"),
    [
        (signal.SIGINT, 130, "xlcat: interrupted", ["--processes"]),
        (signal.SIGTERM, 143, "xlcat: terminated", ["--processes"]),
        (signal.SIGTERM, 143, "xlcat: terminated", []),
    ],
)
def test_interrupted_build_ends_its_workers_and_their_sas_tasks(
    sas_inputs: Path,
    standins: StandIns,
    tmp_path: Path,
    sig: signal.Signals,
    status: int,
    said: str,
    local: list[str],
) -> None:
    """A worker stopped while its task waits for SAS leaves that task without a parent
    (worker processes); a worker thread waits for it (the default)."""
    standins.rules({"task": "evselect", "action": "hang-child"})

    def sas_task_hangs(seen: dict[int, Seen]) -> bool:
        names = [s.cmdline for s in seen.values()]
        # evselect and the child it started (both hang an hour)
        return any("evselect" in n for n in names) and any("time.sleep(3600)" in n for n in names)

    run = _xlcat(
        ["build", str(sas_inputs), "--workers", "1", "--no-progress", *local],
        cwd=tmp_path,
        env=_env(tmp_path),
        interrupt=(sig, sas_task_hangs),
    )
    assert run.returncode == status, run.stderr
    assert said in run.stderr
    assert len(_worker_processes(run.seen)) == len(local) and sas_task_hangs(run.seen)
    _assert_nothing_left(tmp_path, run)


# -- dask-jobqueue through stand-in SLURM and PBS --------------------------------------------
@pytest.fixture
def batch(tmp_path: Path) -> BatchStandIns:
    return install(tmp_path)


def _directives(job: dict[str, object]) -> dict[str, str]:
    return {k: v for k, v in job["options"]}  # type: ignore[attr-defined]


def test_jobqueue_slurm_build(
    inputs: Path, reference: Path, tmp_path: Path, batch: BatchStandIns, port_8787_busy: None
) -> None:
    args = [
        "build", str(_build_file(inputs, tmp_path)), "--no-progress",
        "--jobqueue", "slurm", "--workers", "2", "--cores", "1", "--memory", "1GB",
        "--queue", "debug", "--account", "astro", "--walltime", "00:10:00",
        "--job-directive=--qos=short",
    ]  # fmt: skip
    run = _xlcat(args, cwd=tmp_path, env=batch.env(_env(tmp_path), queues="debug,long"))
    assert run.returncode == 0, run.stderr
    assert "built 2 groups, 0 up to date, 0 failed" in run.stdout
    _assert_quiet_ports(run)
    jobs = batch.jobs()
    assert len(jobs) == 2 and all(job["cancelled"] for job in jobs)
    for job in jobs:
        d = _directives(job)
        assert (d["-p"], d["-A"], d["-t"], d["--qos"]) == ("debug", "astro", "00:10:00", "short")
        assert d["--cpus-per-task"] == "1" and d["--mem"] == "954M"  # 1 GB in SLURM's MiB
        script = Path(str(job["script"])).read_text()
        assert "--nthreads 1" in script and "--nworkers" not in script  # one worker per core
        assert f"export PYTHONPATH={ROOT}" in script
    assert wait_gone(batch.job_processes) == []
    assert batch.running("squeue") == []
    _assert_nothing_left(tmp_path, run)
    _assert_same_numbers(tmp_path / "store.zarr", reference)


def test_jobqueue_pbs_build_passes_the_import_path(
    inputs: Path, reference: Path, tmp_path: Path, batch: BatchStandIns
) -> None:
    """PBS hands a job no environment (no -V): the job script exports PYTHONPATH itself."""
    args = [
        "build", str(_build_file(inputs, tmp_path)), "--no-progress",
        "--jobqueue", "pbs", "--cores", "2", "--memory", "2GB", "--queue", "workq",
    ]  # fmt: skip
    run = _xlcat(args, cwd=tmp_path, env=batch.env(_env(tmp_path)))
    assert run.returncode == 0, run.stderr
    assert "built 2 groups, 0 up to date, 0 failed" in run.stdout
    (job,) = batch.jobs()
    assert job["cancelled"] and _directives(job)["-q"] == "workq" and "-V" not in _directives(job)
    script = Path(str(job["script"])).read_text()
    assert "-l select=1:ncpus=2" in script and "--nworkers 2 " in script
    assert wait_gone(batch.job_processes) == []
    assert batch.running("qstat") == []
    _assert_nothing_left(tmp_path, run)
    _assert_same_numbers(tmp_path / "store.zarr", reference)


def test_jobqueue_refused_submission_is_one_line(
    inputs: Path,
    tmp_path: Path,
    batch: BatchStandIns,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key, value in batch.env(queues="debug").items():
        monkeypatch.setenv(key, value)
    build = str(_build_file(inputs, tmp_path))
    jq = ["build", build, "--no-progress", "--jobqueue", "slurm"]
    assert main([*jq, "--cores", "1", "--memory", "1GB", "--queue", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "xlcat: error: --jobqueue slurm: sbatch refused" in err
    assert "Invalid partition name specified" in err and batch.jobs() == []
    assert main([*jq, "--cores", "1"]) == 2
    assert "give --memory per job" in capsys.readouterr().err
    assert main(["build", build, "--queue", "debug"]) == 2
    assert "--queue is an option of batch jobs: add --jobqueue" in capsys.readouterr().err
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main([*jq, "--cores", "1", "--memory", "1GB"]) == 2
    assert "sbatch is not on PATH" in capsys.readouterr().err
    assert not (tmp_path / "store.zarr").exists()


# -- a scheduler and a worker started apart --------------------------------------------------
@dataclass
class External:
    address: str
    scheduler_file: Path
    procs: list[subprocess.Popen[bytes]]


@pytest.fixture
def external(tmp_path: Path) -> Iterator[External]:
    """``dask scheduler`` and ``dask worker --nthreads 1``, each a process group, ended after."""
    d = tmp_path / "external"
    d.mkdir()
    sched_file = d / "scheduler.json"
    env = _env(d)
    python = [sys.executable, "-m"]
    cmds = [
        [*python, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
         "--scheduler-file", str(sched_file)],
        [*python, "distributed.cli.dask_worker", "--scheduler-file", str(sched_file),
         "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--death-timeout", "30"],
    ]  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, cmd in enumerate(cmds):
            with open(d / f"{i}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(cmd, env=env, cwd=d, stdout=log, stderr=log,
                                     start_new_session=True)
                )  # fmt: skip
            deadline = time.monotonic() + 30
            while i == 0 and not sched_file.exists():
                assert time.monotonic() < deadline and procs[0].poll() is None
                time.sleep(0.1)
        from distributed import Client

        with Client(scheduler_file=str(sched_file), timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
        yield External(json.loads(sched_file.read_text())["address"], sched_file, procs)
    finally:
        for proc in reversed(procs):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        assert wait_gone(lambda: _tagged(d)) == []


def test_build_on_a_separately_started_scheduler_and_worker(
    inputs: Path, reference: Path, tmp_path: Path, external: External
) -> None:
    assert external.address.startswith("tcp://127.0.0.1:")
    for name, where in (
        ("by-address", external.address),
        ("by-file", str(external.scheduler_file)),
    ):
        d = tmp_path / name
        d.mkdir()
        run = _xlcat(
            ["build", str(_build_file(inputs, d)), "--scheduler", where, "--no-progress"],
            cwd=d,
            env=_env(d),
        )
        assert run.returncode == 0, run.stderr
        assert "built 2 groups, 0 up to date, 0 failed" in run.stdout
        _assert_quiet_ports(run)
        _assert_nothing_left(d, run)
        _assert_same_numbers(d / "store.zarr", reference)
    # xlcat leaves a cluster it did not start running
    assert all(proc.poll() is None for proc in external.procs)


def test_unreachable_scheduler_is_one_line(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nobody listens there
    build = str(_build_file(inputs, tmp_path))
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["build", build, "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"xlcat: error: --scheduler tcp://127.0.0.1:{port}: no Dask scheduler answers" in err
    assert not (tmp_path / "store.zarr").exists()


def test_interrupted_threads_end_what_a_task_starts_while_the_cluster_closes() -> None:
    """Worker threads cannot be killed: a subprocess a task starts after the interrupt is
    ended by the reaper's sweep, not waited for (here a sleep of a minute)."""
    from pipeline.build.cluster import _Reaper

    with _Reaper(processes=False) as reaper:
        reaper.end_task_processes(until_exit=True)
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        proc.wait(timeout=20)  # reaped by the sweep (psutil), so its status reads 0
        assert time.monotonic() - started < 20  # long before its minute
