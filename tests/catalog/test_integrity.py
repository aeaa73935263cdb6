"""Store format 2 integrity: corruption is an error, never data; damaged groups are
rebuilt; writers are serialised; what a killed writer leaves is cleaned; format 1 is refused.

Each fault is made on a real store written by ``xlcat build`` (one observation, two
schemes), then read back through the catalogue, ``xlcat verify`` and ``xlcat build``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import catalog
from catalog.store import Store
from pipeline.cli.main import main
from schemas.errors import StoreError
from tests.helpers.eventfiles import REGION_TEXT, T0, FileSpec, random_events, write_event_file
from tests.helpers.processes import python_env

OBSID = "0123456789"
BUILD = """
store = "s.zarr"
time_bin = 100.0

[[observations]]
obsid = "0123456789"
events = "obs/ev.fits"
regions = "obs/ds9.reg"

[schemes]
2a = {{ unit = "keV", edges = [2, 5, 10] }}
{extra}
"""
ARGS = ["--threads", "--workers", "1", "--no-progress"]


def _workdir(root: Path, extra: str = 'lin = { unit = "chan", lin = [400, 2000, 4] }') -> Path:
    (root / "obs").mkdir(parents=True, exist_ok=True)
    ev = random_events(4000, seed=11)
    gtis = {4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]}
    write_event_file(root / "obs" / "ev.fits", ev, FileSpec(ccd_gtis=gtis))
    (root / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (root / "build.toml").write_text(BUILD.format(extra=extra))
    return root / "build.toml"


@pytest.fixture
def built(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    build = _workdir(tmp_path)
    assert main(["build", str(build), *ARGS]) == 0
    capsys.readouterr()
    return tmp_path


def _group(root: Path) -> Path:
    return root / "s.zarr" / OBSID / "PN"


def _rate(root: Path) -> np.ndarray:
    return catalog.open(root / "s.zarr").lightcurves(OBSID, "2a").rate.values


def test_group_files_and_manifest(built: Path) -> None:
    group = _group(built)
    files = sorted(p.relative_to(group).as_posix() for p in group.rglob("*") if p.is_file())
    manifest = json.loads((group / "zarr.json").read_text())["attributes"]["manifest"]
    assert sorted(manifest) == [f for f in files if f != "zarr.json"]
    # 7 variables + 5 coordinates, and (format 3) 2 spectra + 5 channel coordinates, one
    # metadata file and one chunk each, plus the group's
    assert len(files) == 19 * 2 + 1
    inodes = sum(1 for _ in (built / "s.zarr" / OBSID).rglob("*")) + 1
    assert (
        inodes == 39 + 19 + 1 + 2
    )  # files, array folders, the group folder; the obsid folder, its zarr.json
    codecs = json.loads((group / "rate" / "zarr.json").read_text())["codecs"]
    assert [c["name"] for c in codecs][-1] == "crc32c"


def test_flipped_bytes_are_an_error_naming_group_and_variable(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _rate(built)
    chunk = _group(built) / "rate" / "0.0"
    data = bytearray(chunk.read_bytes())
    for k in range(8):  # 8 flipped bytes inside the compressed payload
        data[len(data) // 2 + k] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=rf"group {OBSID}/PN: variable rate is corrupt"):
        _rate(built)
    assert main(["verify", str(built / "s.zarr")]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED {OBSID}/PN: file rate/0.0 fails its CRC-32 check" in out
    assert "1 groups, 0 complete, 1 damaged" in out
    # a forced build replaces it; the numbers come back
    assert main(["build", str(built / "build.toml"), "--force", *ARGS]) == 0
    np.testing.assert_array_equal(_rate(built), good)


@pytest.mark.parametrize("victim", ["rate/0.0", "fracexp/zarr.json"])
def test_missing_file_makes_the_group_damaged_and_build_rebuilds_it(
    built: Path, victim: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _rate(built)
    (_group(built) / victim).unlink()
    with pytest.raises(StoreError, match=rf"{OBSID}/PN is damaged: file {victim} is missing"):
        _rate(built)
    assert main(["verify", str(built / "s.zarr")]) == 1
    assert f"DAMAGED {OBSID}/PN: file {victim} is missing" in capsys.readouterr().out
    assert main(["build", str(built / "build.toml"), "--dry-run"]) == 0
    assert f"would build {OBSID}/PN (damaged: file {victim} is missing" in capsys.readouterr().out
    assert main(["build", str(built / "build.toml"), *ARGS]) == 0
    assert "1 groups to build, 0 up to date" in capsys.readouterr().out
    np.testing.assert_array_equal(_rate(built), good)
    assert main(["verify", str(built / "s.zarr")]) == 0


def test_garbage_group_metadata_is_one_line_and_replaced(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _rate(built)
    (_group(built) / "zarr.json").write_bytes(os.urandom(300))
    # ls goes on (the group is left out and named); query says what to do in one line
    assert main(["ls", str(built / "s.zarr")]) == 0
    assert main(["query", str(built / "s.zarr"), "--obsid", OBSID, "--scheme", "2a"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "xlcat: error:" in err
    assert main(["verify", str(built / "s.zarr")]) == 1
    assert "unreadable zarr.json" in capsys.readouterr().out
    assert main(["build", str(built / "build.toml"), *ARGS]) == 0
    np.testing.assert_array_equal(_rate(built), good)


def test_format_1_store_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.zarr"
    old.mkdir()
    meta = {"zarr_format": 3, "node_type": "group"}
    meta["attributes"] = {"format": "xlcat-lightcurves", "format_version": 1}
    (old / "zarr.json").write_text(json.dumps(meta))
    assert main(["ls", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "format_version 1" in err and "rebuild it from its build file" in err


_KILLED_WRITER = """
import os, signal, sys
from catalog.store import Store
store = Store.create(sys.argv[1])
with store.lock():
    tmp = store._staging_folder("0123456789-PN")
    (tmp / "rate").mkdir()
    (tmp / "rate" / "0.0").write_bytes(b"half a chunk")
    print("killing", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_leftovers_are_cleaned_by_the_next_build(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store(built / "s.zarr")
    env = python_env()
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(store.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9 and "killing" in proc.stdout
    assert store.staging.is_dir() and any(store.staging.iterdir())
    assert main(["verify", str(store.path)]) == 0
    assert "1 leftovers of an interrupted write" in capsys.readouterr().out
    # the lock died with the process; the next build takes it and removes the leftovers
    assert main(["build", str(built / "build.toml"), "--force", *ARGS]) == 0
    assert not store.staging.exists()


def test_lock_is_exclusive_between_processes(built: Path) -> None:
    holder = textwrap.dedent(
        """
        import sys, time
        from catalog.store import store_lock
        with store_lock(sys.argv[1]):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    env = python_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(built / "s.zarr")],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=rf"another writer holds its lock \(pid {proc.pid} "):
            with Store(built / "s.zarr").lock(wait=False):
                pass
    finally:
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    with Store(built / "s.zarr").lock(wait=False):  # free again
        pass


def test_concurrent_conflicting_builds_leave_one_definition(tmp_path: Path) -> None:
    """Two builds started together, each defining scheme 'lin' its own way, into one store."""
    a = _workdir(tmp_path, 'lin = { unit = "chan", lin = [400, 2000, 4] }')
    b = tmp_path / "b.toml"
    b.write_text(a.read_text().replace("lin = [400, 2000, 4]", "lin = [400, 2000, 8]"))
    env = python_env()
    cmd = [sys.executable, "-m", "pipeline.cli.main", "build"]
    for _ in range(2):
        shutil.rmtree(tmp_path / "s.zarr", ignore_errors=True)
        procs = [
            subprocess.Popen(
                [*cmd, str(f), *ARGS], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for f in (a, b)
        ]
        results = [(p.wait(timeout=120), p.stderr.read().decode()) for p in procs if p.stderr]
        codes = sorted(code for code, _ in results)
        assert codes == [0, 2], results
        loser = next(err for code, err in results if code == 2)
        assert "scheme 'lin'" in loser and "differs" in loser and loser.count("\n") == 1
        idx = catalog.open(tmp_path / "s.zarr").index
        assert idx[idx.scheme == "lin"].scheme_hash.nunique() == 1


def test_plain_zarr_readers_see_every_scheme(built: Path) -> None:
    """xarray alone (no xlcat) reads the store: open_datatree, and one scheme by coordinate."""
    import xarray as xr

    tree = xr.open_datatree(built / "s.zarr", engine="zarr", consolidated=False, zarr_format=3)
    group = tree[f"{OBSID}/PN"].to_dataset()
    assert group.sizes["band"] == 2 + 4 and sorted(set(group.scheme.values.tolist())) == [
        "2a",
        "lin",
    ]
    one = group.isel(band=(group.scheme == "2a").values)
    view = catalog.open(built / "s.zarr").lightcurves(OBSID, "2a")
    np.testing.assert_array_equal(one.rate.values, view.rate.values)
    np.testing.assert_array_equal(one.pi_lo.values, view.pi_lo.values)
    np.testing.assert_array_equal(one.scheme_band.values, view.band.values)
