"""Stand-in SAS executables put first on PATH (see tests/sas_standin_impl.py).

Test modules define the fixture with :func:`install`::

    @pytest.fixture
    def standins(tmp_path, monkeypatch):
        return install(tmp_path, monkeypatch)


The stand-ins test xlcat's handling of processes, never SAS's numbers.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.extract.sas import environment

#: The repository root, put on the stand-ins' sys.path so they import ``tests.helpers``.
ROOT = Path(__file__).resolve().parents[2]
TASKS = ("evselect", "epiclccorr", "tabgtigen", "sasversion", "backscale", "rmfgen", "arfgen")


@dataclass
class StandIns:
    bin: Path
    sas_dir: Path
    log: Path
    monkeypatch: pytest.MonkeyPatch

    def rules(self, *rules: dict) -> None:
        """Make the stand-ins fail/hang/omit outputs (see sas_standin_impl's docstring)."""
        self.monkeypatch.setenv("XLCAT_STANDIN_RULES", json.dumps(list(rules)))

    def timepixr(self, value: str) -> None:
        self.monkeypatch.setenv("XLCAT_STANDIN_TIMEPIXR", value)

    def calls(self, task: str | None = None) -> list[dict]:
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in rows if task is None or r["task"] == task]

    def reset_calls(self) -> None:
        self.log.unlink(missing_ok=True)


def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIns:
    """Stand-in evselect, epiclccorr, tabgtigen and sasversion first on PATH, SAS_DIR set."""
    bin_dir = tmp_path / "standin-bin"
    bin_dir.mkdir()
    for name in TASKS:
        exe = bin_dir / name
        exe.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from tests.helpers.sas_standin_impl import main\n"
            f"sys.exit(main({name!r}, sys.argv[1:]))\n"
        )
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    sas_dir = tmp_path / "sas-install"
    sas_dir.mkdir()
    log = tmp_path / "standin-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("SAS_DIR", str(sas_dir))
    monkeypatch.delenv("SAS_CCF", raising=False)
    monkeypatch.setenv("XLCAT_STANDIN_LOG", str(log))
    monkeypatch.delenv("XLCAT_STANDIN_RULES", raising=False)
    monkeypatch.delenv("XLCAT_STANDIN_TIMEPIXR", raising=False)
    environment._VERSIONS.clear()
    return StandIns(bin_dir, sas_dir, log, monkeypatch)
