"""Stand-in SLURM (sbatch, squeue, scancel) and PBS (qsub, qstat, qdel) commands on PATH.

See :mod:`tests.helpers.batch_standin_impl` for what they do. :func:`install`
writes the executables into a fresh bin directory and returns a
:class:`BatchStandIns` whose :meth:`~BatchStandIns.env` is the environment to run
``xlcat`` with (the bin directory first on PATH, the state directory set). The
stand-ins test xlcat's use of dask-jobqueue, never SLURM or PBS.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from tests.helpers.batch_standin_impl import COMMANDS

#: The repository root, put on the stand-ins' sys.path so they import ``tests.helpers``.
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class BatchStandIns:
    bin: Path
    state: Path

    def env(
        self, base: dict[str, str] | None = None, *, queues: str | None = None
    ) -> dict[str, str]:
        """``base`` (default: this process's environment) with the stand-ins first on PATH."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["XLCAT_BATCH_STATE"] = str(self.state)
        if queues is not None:
            env["XLCAT_BATCH_QUEUES"] = queues
        return env

    def jobs(self) -> list[dict[str, Any]]:
        """Every job submitted so far: id, pid, options (directive, value) pairs, cancelled."""
        d = self.state / "jobs"
        return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.exists() else []

    def running(self, command: str = "squeue") -> list[str]:
        """Job ids the status command (``squeue`` or ``qstat``) still lists."""
        args = ["-h", "-o", "%i"] if command == "squeue" else []
        out = subprocess.run(
            [str(self.bin / command), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if command == "qstat":
            return [line.split()[0].split(".")[0] for line in out[2:]]
        return [line.strip() for line in out if line.strip()]

    def job_processes(self) -> list[psutil.Process]:
        """Live processes of the submitted jobs (each job's whole process group)."""
        groups = {int(j["pid"]) for j in self.jobs()}
        found = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) in groups:
                    found.append(proc)
            except (ProcessLookupError, psutil.Error):
                continue
        return found


def install(tmp_path: Path) -> BatchStandIns:
    """Write the six stand-in executables into ``tmp_path/batch-bin``."""
    bin_dir = tmp_path / "batch-bin"
    bin_dir.mkdir()
    for name in COMMANDS:
        exe = bin_dir / name
        exe.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.helpers.batch_standin_impl import main\n"
            f"sys.exit(main({name!r}, sys.argv[1:]))\n"
        )
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    state = tmp_path / "batch-state"
    state.mkdir()
    return BatchStandIns(bin_dir, state)


def wait_gone(find: Any, timeout: float = 15.0) -> list[psutil.Process]:
    """Poll ``find()`` (a function returning live processes) until it is empty or time runs out."""
    deadline = time.monotonic() + timeout
    left = find()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = find()
    return list(left)
