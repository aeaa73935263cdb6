"""The bad-input suite's workspace: one event list, its regions and a build file.

Each test spoils one input and asserts the promise of issue 10: exit status 2, one
stderr line starting ``xlcat: error:``, and the store unchanged (absent, or the same
file names and modification times).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    random_events,
    write_event_file,
)

BUILD = """
store = "bad.zarr"
time_bin = 200.0

[[observations]]
obsid = "0123456789"
events = "obs/ev.fits"
regions = "obs/ds9.reg"

[schemes]
2a = {{ unit = "keV", edges = [2, 5, 10] }}
{extra}
"""


def snapshot(store: Path) -> dict[str, int] | None:
    """File names (relative) and mtimes of everything under ``store``; None when absent."""
    if not os.path.lexists(store):
        return None
    out = {}
    for root, dirs, files in os.walk(store):
        for name in dirs + files:
            p = Path(root) / name
            out[str(p.relative_to(store))] = p.lstat().st_mtime_ns
    return out


@dataclass
class Workspace:
    """A folder with ``obs/ev.fits``, ``obs/ds9.reg`` and ``build.toml``."""

    root: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def events(self) -> Path:
        return self.root / "obs" / "ev.fits"

    @property
    def store(self) -> Path:
        return self.root / "bad.zarr"

    @property
    def build_file(self) -> Path:
        return self.root / "build.toml"

    def write_events(
        self, ev: EventSet | None = None, header: dict[str, object] | None = None, **spec: object
    ) -> Path:
        ev = ev if ev is not None else random_events(300, seed=3)
        fs = FileSpec(
            ccd_gtis={4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]},
            header={"OBS_ID": "0123456789", **(header or {})},
        )
        for k, v in spec.items():
            setattr(fs, k, v)
        return write_event_file(self.events, ev, fs)

    def write_build(self, text: str | None = None, *, extra: str = "") -> Path:
        self.build_file.write_text(text if text is not None else BUILD.format(extra=extra))
        return self.build_file

    def refused(self, argv: list[str], *contains: str) -> str:
        """Run ``xlcat argv``; assert exit 2, one ``xlcat: error:`` line, the store unchanged."""
        self.capsys.readouterr()
        before = snapshot(self.store)
        status = main(argv)
        err = self.capsys.readouterr().err
        assert status == 2, err
        assert err.startswith("xlcat: error: ") and err.count("\n") == 1, err
        for text in contains:
            assert text in err, err
        assert snapshot(self.store) == before
        return err

    def build_refused(self, *contains: str) -> str:
        return self.refused(
            ["build", str(self.build_file), "--threads", "--workers", "1", "--no-progress"],
            *contains,
        )

    def build_ok(self) -> None:
        argv = ["build", str(self.build_file), "--threads", "--workers", "1", "--no-progress"]
        assert main(argv) == 0, self.capsys.readouterr().err


@pytest.fixture
def ws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Workspace:
    (tmp_path / "obs").mkdir()
    w = Workspace(tmp_path, capsys)
    w.write_events()
    (tmp_path / "obs" / "ds9.reg").write_text(REGION_TEXT)
    w.write_build()
    return w


Refused = Callable[..., str]
