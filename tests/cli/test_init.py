"""``xlcat init``: a folder of real event lists to a build file ``xlcat build`` builds as is."""

from __future__ import annotations

import pytest

from pipeline.cli.main import main
from tests.helpers.realfiles import MOS1_CLEAN, NUSTAR_EVENTS, REAL

#: The pn list cut to RX J0146.9+6121 (tests/data/real/README.md).
PN_EVENTS = REAL / "xmm_0201160101_pn" / "rxj_pnevtlist_0310kev_baryc.ds.gz"
PPS_LIST = REAL / "xmm_0001730201_mos1" / "P0001730201M1S002MIEVLI.FTZ"
GTI_FILE = REAL / "xmm_0001730201_mos1" / "M1_gti.fits"


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "lists"
    d.mkdir()
    for src in (MOS1_CLEAN, PPS_LIST, GTI_FILE, PN_EVENTS, NUSTAR_EVENTS):
        (d / src.name).symlink_to(src)
    return d


def test_init_then_build_then_ls(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "lists", "-o", "cat.toml", "--time-bin", "256"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "lists: 4 event lists (3 listed, 1 commented out), 1 FITS files skipped, "
        "0 other files not opened"
    )
    assert out[1] == "  0001730201 M1S001  lists/M1_clean.fits"
    assert out[2].startswith(
        '      regions/0001730201_M1S001.reg: source 15" at RA_OBJ/DEC_OBJ, moved 6.7" onto the '
        'events, on CCD 1; background 60" '
    )
    assert "  0001730201 M1S001  lists/P0001730201M1S002MIEVLI.FTZ  [commented out]" in out
    assert "  0201160101 PNS003  lists/rxj_pnevtlist_0310kev_baryc.ds.gz" in out
    assert "  90410111001 FPMA06  lists/nu90410111001A06_cl_sunpos.evt" in out
    assert "  skipped lists/M1_gti.fits: no EVENTS table (extensions: STDGTI): a GTI table" in out
    assert out[-1] == (
        "wrote cat.toml and 4 regions files; check the regions (their '# check:' lines, e.g. in "
        "ds9), then: xlcat build cat.toml"
    )
    text = (tmp_path / "cat.toml").read_text()
    assert 'store = "cat.zarr"' in text and "time_bin = 256.0" in text

    argv = ["build", "cat.toml", "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "built 3 groups, 0 up to date, 0 failed" in out
    # what the groups recorded about their inputs is said once per exposure
    warned = [ln for ln in err.splitlines() if ln.startswith("  warning ")]
    assert any(
        ln.startswith("  warning 0001730201/M1S001: events file ")
        and "already cut to PI [500:10000]" in ln
        for ln in warned
    )
    assert sum("0201160101/PNS003: 444 source and 0 background events" in ln for ln in warned) == 1
    assert main(["ls", "cat.zarr"]) == 0
    listing = capsys.readouterr().out
    first, *rows = listing.splitlines()
    assert first.startswith("cat.zarr: 3 observations, ") and first.endswith(", 6 bands")
    for obsid in ("0001730201", "0201160101"):
        (row,) = [r for r in rows if r.strip().startswith(obsid)]
        assert " soft_hard " in row and " 256.0 " in row
    (row,) = [r for r in rows if r.startswith("90410111001")]
    assert " FPMA06 " in row and " nustar " in row


def test_init_refuses_to_overwrite_without_force(tmp_path, capsys):
    folder = tmp_path / "pn"
    folder.mkdir()
    (folder / PN_EVENTS.name).symlink_to(PN_EVENTS)
    out = tmp_path / "b.toml"
    assert main(["init", str(folder), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["init", str(folder), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"xlcat: error: build file {out} exists; give --force to overwrite it and its regions "
        "files, or another -o\n"
    )
    (tmp_path / "regions" / "0201160101_PNS003.reg").write_text("# mine\n")
    assert main(["init", str(folder), "-o", str(out), "--force"]) == 0
    assert "# mine" not in (tmp_path / "regions" / "0201160101_PNS003.reg").read_text()


def test_init_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["init", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"xlcat: error: folder {tmp_path / 'empty'}: empty; put event lists")
    (tmp_path / "only_gti").mkdir()
    (tmp_path / "only_gti" / GTI_FILE.name).symlink_to(GTI_FILE)
    assert main(["init", str(tmp_path / "only_gti")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no event lists found: 1 FITS files" in err
    assert main(["init", str(tmp_path / "missing")]) == 2
    assert "folder" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "build.toml").exists()
