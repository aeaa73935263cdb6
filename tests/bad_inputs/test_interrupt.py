"""Issue 10 case 9: Ctrl-C (SIGINT to the process group) during a build: exit 130, one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bad_inputs.conftest import Workspace, snapshot

ROOT = Path(__file__).resolve().parents[2]

#: Makes every extraction announce itself in a file and then take 4 s.
SLOW = """
import os, time
from pipeline.extract.backends.native import NativeBackend

def _slow(self, job):
    open(os.path.join(os.environ["XLCAT_SLOW_MARKS"], str(os.getpid())), "w").close()
    time.sleep(4)  # a worker thread cannot be stopped: xlcat waits for its task

NativeBackend.prepare = _slow
"""


@pytest.mark.parametrize("local", [[], ["--processes"]])
def test_ctrl_c_during_a_build_exits_130_without_tracebacks(
    ws: Workspace, tmp_path: Path, local: list[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": f"{site}{os.pathsep}{ROOT}",
        "XLCAT_SLOW_MARKS": str(marks),
    }
    argv = ["build", str(ws.build_file), "--workers", "2", "--no-progress", *local]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", *argv],
        cwd=ws.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    try:
        deadline = time.monotonic() + 60
        while not any(marks.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        before = snapshot(ws.store)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1] == "xlcat: interrupted", err
    assert snapshot(ws.store) == before
