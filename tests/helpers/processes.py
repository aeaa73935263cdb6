"""Running Python code in a fresh process that imports this checkout (tests of imports, signals)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_env() -> dict[str, str]:
    """This process's environment with the checkout first on PYTHONPATH."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def run_python(code: str, *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with this interpreter in a new process, from the checkout; output captured."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
