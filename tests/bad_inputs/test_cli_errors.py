"""Issue 10 cases 7 and 10: one-line errors instead of tracebacks, on a built store."""

from __future__ import annotations

from pathlib import Path

import pytest

import catalog
from pipeline.cli.main import main
from schemas.errors import XlcatError
from tests.bad_inputs.conftest import BUILD, Workspace, snapshot
from tests.helpers.eventfiles import REGION_TEXT, T0, FileSpec, random_events, write_event_file


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("badcli")
    (d / "obs").mkdir()
    spec = FileSpec(ccd_gtis={4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]})
    write_event_file(d / "obs" / "ev.fits", random_events(2000, seed=5), spec)
    (d / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (d / "build.toml").write_text(BUILD.format(extra=""))
    argv = ["build", str(d / "build.toml"), "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    return d


@pytest.fixture
def cli(built: Path, capsys: pytest.CaptureFixture[str]) -> Workspace:
    return Workspace(built, capsys)


def test_a_store_path_under_a_regular_file_is_refused(ws: Workspace) -> None:
    (ws.root / "afile").write_text("x")
    ws.write_build(BUILD.format(extra="").replace('"bad.zarr"', '"afile/bad.zarr"'))
    ws.refused(["build", str(ws.build_file), "--threads", "--no-progress"], "afile/bad.zarr")
    assert (ws.root / "afile").read_text() == "x"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "{store}", "--scheme", "2a", "--energy", "2-1e999"], "--energy '2-1e999'"),
        (["query", "{store}", "--scheme", "2a", "--energy", "nan-3"], "--energy 'nan-3'"),
        (["query", "{store}", "--scheme", "2a", "-o", "{tmp}"], "is a folder"),
        (["query", "{store}", "--scheme", "2a", "-o", "{tmp}/missing/x.csv"], "no folder"),
        (["query", "{store}", "--scheme", "2a", "-o", "{tmp}/x.nc"], "csv or json"),
        (
            ["plot", "{store}", "--obsid", "0123456789", "--scheme", "2a", "-o", "/missing/x.png"],
            "no folder /missing",
        ),
        (
            ["plot", "{store}", "--obsid", "0123456789", "--scheme", "2a", "-o", "{tmp}/x.xyz"],
            "'.xyz' is not an image format",
        ),
    ],
)
def test_bad_options_are_one_line(
    cli: Workspace, tmp_path: Path, argv: list[str], message: str
) -> None:
    cli.root = cli.root  # the store is cli.zarr... of the module's build
    store = cli.root / "bad.zarr"
    argv = [a.format(store=store, tmp=tmp_path) for a in argv]
    cli.refused(argv, message)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_catalog_query_refuses_bad_ranges(built: Path) -> None:
    cat = catalog.open(built / "bad.zarr")
    with pytest.raises(XlcatError, match="energy"):
        cat.query("2a", energy=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(XlcatError, match="time"):
        cat.query("2a", time=(T0 + 5, T0 + 1))
    with pytest.raises(XlcatError, match="energy"):
        cat.query("2a", energy=(4, 2))


def test_a_string_format_version_is_one_clear_line(tmp_path: Path, built: Path) -> None:
    import json
    import shutil

    store = tmp_path / "s.zarr"
    shutil.copytree(built / "bad.zarr", store)
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"]["format_version"] = "1"
    (store / "zarr.json").write_text(json.dumps(meta))
    before = snapshot(store)
    with pytest.raises(XlcatError, match="format_version = '1' is not an integer") as exc:
        catalog.open(store)
    assert "newer" not in str(exc.value) and "\n" not in str(exc.value)
    assert snapshot(store) == before


def test_an_empty_query_says_what_exists(cli: Workspace) -> None:
    store = cli.root / "bad.zarr"
    cli.capsys.readouterr()
    assert main(["query", str(store), "--scheme", "2a", "--energy", "3-4"]) == 0
    err = cli.capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "scheme 2a has 2 bands over 2-10 keV and times 300000000-300001000 (MET s)" in err, err
    assert "add --overlap" in err
    assert main(["query", str(store), "--scheme", "2a", "--energy", "3-4", "--overlap"]) == 0
    assert cli.capsys.readouterr().out.count("\n") > 5
