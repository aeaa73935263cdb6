"""``xlcat fetch``: one-line failures, and the README's path from an obsid to a catalogue
(fetch, init, build, ls) against the local stand-in archive."""

from __future__ import annotations

from pipeline.cli.main import main
from tests.fetch.archive_server import (
    EVLI_NAME,
    FBKTSR_NAME,
    OBSID,
    ArchiveServer,
    closed_port,
    sha256,
)
from tests.fetch.test_fetch import EVLI, FBKTSR, _xsa_routes


def test_unreachable_archive_is_one_line_and_exit_2(tmp_path, capsys):
    base = f"http://127.0.0.1:{closed_port()}/FTP/xmm/data/rev0"
    argv = ["fetch", OBSID, str(tmp_path / "d"), "--archive", "heasarc", "--base-url", base]
    assert main([*argv, "--retries", "0", "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"xlcat: error: obsid {OBSID}: cannot read {base}/{OBSID}/PPS/: connection refused "
        "(1 attempt); check the network and the archive\n"
    )
    assert not [p for p in (tmp_path / "d").rglob("*") if p.is_file()]


def test_unreachable_xsa_names_the_url(tmp_path, capsys, monkeypatch):
    base = f"http://127.0.0.1:{closed_port()}/aio"
    monkeypatch.setenv("XLCAT_XSA_URL", base)
    argv = ["fetch", OBSID, str(tmp_path), "--instrument", "pn", "--no-flare-series"]
    assert main([*argv, "--retries", "0", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"xlcat: error: {base}?obsno={OBSID}&level=PPS&instname=PN&name=PIEVLI&extension=FTZ: "
        "connection refused (1 attempt); check the network and the archive, then re-run to "
        "resume\n"
    )


def test_bad_obsid_exit_2(tmp_path, capsys):
    assert main(["fetch", "12345", str(tmp_path)]) == 2  # progress bars on: none shown
    assert capsys.readouterr().err == (
        "xlcat: error: obsid '12345': give the 10-digit XMM-Newton obsid, e.g. 0001730201\n"
    )


def test_fetch_init_build_ls(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with ArchiveServer(_xsa_routes()) as server:
        monkeypatch.setenv("XLCAT_XSA_URL", server.url + "/nxsa-sl/aio")
        assert main(["fetch", OBSID, "data", "--instrument", "mos1"]) == 0  # with progress bars
    out = capsys.readouterr().out.splitlines()
    mb = (len(EVLI) + len(FBKTSR)) / 1e6
    assert out[0] == f"data: 2 files from xsa (2 downloaded, {mb:.1f} MB; 0 already there)"
    assert out[-1] == "next: xlcat init data"
    pps = tmp_path / "data" / OBSID / "pps"
    assert sha256((pps / EVLI_NAME).read_bytes()) == sha256(EVLI)
    assert sha256((pps / FBKTSR_NAME).read_bytes()) == sha256(FBKTSR)

    assert main(["init", "data", "--time-bin", "100"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "data: 1 event lists (1 listed, 0 commented out), 1 FITS files skipped, "
        "0 other files not opened"
    )
    # the exposure is the header's (EXPIDSTR S001), not the name's S002
    assert out[1] == f"  {OBSID} M1S001  data/{OBSID}/pps/{EVLI_NAME}"
    assert f"  skipped data/{OBSID}/pps/{FBKTSR_NAME}: no EVENTS table" in "\n".join(out)

    argv = ["build", "data/build.toml", "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert "built 1 groups, 0 up to date, 0 failed" in capsys.readouterr().out
    assert main(["ls", "data/build.zarr"]) == 0
    first, *rows = capsys.readouterr().out.splitlines()
    assert first == "data/build.zarr: 1 observation, 1 exposure, 1 scheme, 2 bands"
    (row,) = [r for r in rows if r.startswith(OBSID)]
    assert row.split()[:3] == [OBSID, "M1S001", "soft_hard"] and " 100.0 " in row
