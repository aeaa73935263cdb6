"""Running SAS commands: argument lists, a timeout, logs kept, failures kept beside the store.

Each command runs without a shell, in its task's own temporary folder, in a new
process group with standard input closed. When the timeout expires the whole
process group is killed (SAS tasks start helpers: epiclccorr runs arfgen). A
:class:`TaskFolder` collects the commands of one task; when the task fails its
folder (inputs, partial outputs, ``commands.log``) is moved to a stable folder
(normally ``.<store>.sas-logs/<obsid>/<task>/``) and the error names that folder.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from schemas.errors import SASError, XlcatError

__all__ = ["CommandRecord", "run_command", "TaskFolder"]

#: Characters of stdout/stderr kept per command (the tail, if longer).
MAX_LOG_CHARS = 200_000


def _tail(text: str) -> str:
    return text if len(text) <= MAX_LOG_CHARS else "[... truncated ...]\n" + text[-MAX_LOG_CHARS:]


@dataclass(frozen=True)
class CommandRecord:
    """One command that ran, with its output.

    Attributes
    ----------
    name : str
        What it was for, e.g. ``"evselect (source)"``.
    argv : tuple of str
        The exact argument list.
    returncode : int or None
        Exit status; None when it was killed after the timeout.
    stdout, stderr : str
        Its output (decoded as UTF-8 with replacement).
    timed_out : bool
    timeout : float
        Seconds it was allowed.
    seconds : float
        Wall time it took.
    """

    name: str
    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    timeout: float
    seconds: float

    @property
    def ok(self) -> bool:
        """Exited with status 0 in time."""
        return self.returncode == 0 and not self.timed_out

    @property
    def command_line(self) -> str:
        """The argument list as one shell-quoted line (for people; it never runs in a shell)."""
        return shlex.join(self.argv)

    @property
    def status_text(self) -> str:
        """``"exit status 0"``, ``"killed by signal 9"`` or ``"timed out after 5 s"``."""
        if self.timed_out:
            return f"timed out after {self.timeout:g} s and was killed"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"

    @property
    def last_stderr_line(self) -> str:
        """Last non-empty line of stderr (else of stdout), or ''."""
        for text in (self.stderr, self.stdout):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            if lines:
                return lines[-1][:300]
        return ""

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (what the store keeps, compressed)."""
        return {
            "name": self.name,
            "argv": list(self.argv),
            "command_line": self.command_line,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "seconds": round(self.seconds, 3),
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_command(
    name: str,
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str] | None,
    env: Mapping[str, str] | None,
    timeout: float,
) -> CommandRecord:
    """Run one command (an argument list, never a shell) and collect its output.

    Parameters
    ----------
    name : str
        What the command is for (named in messages).
    argv : sequence of str
        Program and arguments; the program is looked up on ``env["PATH"]``.
    cwd : path or None
        Working directory.
    env : mapping or None
        Environment (None: this process's).
    timeout : float
        Seconds before the command's whole process group is killed.

    Returns
    -------
    CommandRecord
        Also for non-zero exits and timeouts (see :attr:`CommandRecord.ok`).

    Raises
    ------
    SASError
        If the program cannot be started at all.
    """
    argv = tuple(str(a) for a in argv)
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise SASError(
            f"{name}: cannot start {argv[0]} ({exc.strerror or exc}); check that the SAS "
            "setup has been run (SAS_DIR, PATH)"
        ) from None
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # a grandchild outside the group holds the pipes
            proc.kill()
            out, err = b"", b"(output lost: the pipes stayed open after the kill)"
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
    return CommandRecord(
        name=name,
        argv=argv,
        returncode=None if timed_out else proc.returncode,
        stdout=_tail(out.decode("utf-8", "replace")),
        stderr=_tail(err.decode("utf-8", "replace")),
        timed_out=timed_out,
        timeout=float(timeout),
        seconds=time.monotonic() - start,
    )


def _commands_log(records: Sequence[CommandRecord]) -> str:
    parts = []
    for r in records:
        parts.append(
            f"=== {r.name}: {r.status_text} ({r.seconds:.1f} s)\n$ {r.command_line}\n"
            f"--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}\n"
        )
    return "\n".join(parts)


class TaskFolder:
    """The temporary folder, commands and logs of one SAS task.

    Parameters
    ----------
    where : str
        What the task is, for messages (``"obsid 0201830201 band PI [2000:4000)"``).
    env : mapping
        Environment of its commands.
    timeout : float
        Seconds per command.
    log_dir : Path or None
        Stable folder that receives the task folder when the task fails
        (None: the temporary folder itself is kept and named).
    tmp_root : str or None
        Parent of the temporary folder (None: the system's).
    keep : bool
        Keep the temporary folder after success too.
    """

    def __init__(
        self,
        where: str,
        *,
        env: Mapping[str, str],
        timeout: float,
        log_dir: Path | None,
        tmp_root: str | None = None,
        keep: bool = False,
    ) -> None:
        self.where = where
        self.env = dict(env)
        self.timeout = timeout
        self.log_dir = log_dir
        self.keep = keep
        if tmp_root is not None:
            Path(tmp_root).mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="xlcat-sas-", dir=tmp_root))
        self.records: list[CommandRecord] = []

    def run(self, name: str, argv: Sequence[str], outputs: Sequence[str] = ()) -> CommandRecord:
        """Run a command in the folder; fail the task unless it exits 0 and writes ``outputs``.

        Raises
        ------
        SASError
            Naming the task, the command, what went wrong and where the logs are kept.
        """
        rec = run_command(name, argv, cwd=self.path, env=self.env, timeout=self.timeout)
        self.records.append(rec)
        if not rec.ok:
            detail = f"; last output line: {rec.last_stderr_line!r}" if rec.last_stderr_line else ""
            self.fail(f"{name} {rec.status_text}{detail}; command: {rec.command_line}")
        missing = [o for o in outputs if not (self.path / o).is_file()]
        if missing:
            self.fail(
                f"{name} exited with status 0 but wrote no {', '.join(missing)}; "
                f"command: {rec.command_line}"
            )
        return rec

    def _write_logs(self) -> None:
        (self.path / "commands.log").write_text(_commands_log(self.records))
        (self.path / "commands.json").write_text(
            json.dumps([r.to_json() for r in self.records], indent=1)
        )

    def _keep_failed(self) -> Path:
        """Move the folder to ``log_dir`` (replacing an older attempt); return where it is."""
        self._write_logs()
        if self.log_dir is None:
            return self.path
        target = self.log_dir
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.parent / f".{target.name}.{uuid.uuid4().hex}"
        shutil.copytree(self.path, staging)
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old.{uuid.uuid4().hex}"
            os.rename(target, old)
        os.rename(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)
        return target

    def fail(self, message: str) -> NoReturn:
        """Keep the logs and raise a one-line SASError naming the task and the log folder."""
        kept = self._keep_failed()
        text = f"{self.where}: {message}; logs kept in {kept}".replace("\n", " ")
        raise SASError(text)

    @contextmanager
    def guard(self) -> Iterator[TaskFolder]:
        """Turn any error inside the block into a failure of this task (logs kept)."""
        try:
            yield self
        except SASError:
            raise
        except XlcatError as exc:
            self.fail(str(exc))
        except Exception as exc:  # noqa: BLE001 - any other error still keeps the logs
            self.fail(f"{type(exc).__name__}: {exc}")

    def finish(self) -> str | None:
        """After success: remove (or keep and name) the folder; drop stale failure logs."""
        if self.log_dir is not None and self.log_dir.exists():
            shutil.rmtree(self.log_dir, ignore_errors=True)
        if self.keep:
            self._write_logs()
            return str(self.path)
        shutil.rmtree(self.path, ignore_errors=True)
        return None
