"""End to end: xlcat simulate (piled up) -> xlcat build -> xlcat pileup --write -> xlcat build.

The second build uses the annulus: its counts drop by exactly the screened events of the
excised core in the stored GTIs."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

import catalog
from pipeline.cli.main import main
from pipeline.select.regions import read_regions
from pipeline.select.shapes import Annulus, Circle

OBSID = "0201830201"


def _counts(store):
    ds = catalog.open(store, attrs="python").lightcurves(obsid=OBSID, scheme="1a")
    return int(ds.src_counts.sum()), ds.attrs["gti"]


def test_simulate_pileup_write_build(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SAS_DIR", raising=False)
    out = tmp_path / "sim"
    args = ["simulate", str(out), "--obsid", OBSID, "--scale", "0.15", "--seed", "3"]
    assert main([*args, "--pileup-rate", "45", "--nh", "0.1"]) == 0
    build = out / "ngc5506.toml"
    build_args = ["build", str(build), "--threads", "--workers", "1", "--no-progress"]
    assert main(build_args) == 0
    before, _ = _counts(out / "ngc5506.zarr")
    regions = out / OBSID / "ds9.reg"
    (circle,) = read_regions(regions).source
    assert isinstance(circle, Circle) and circle.r == 800
    capsys.readouterr()

    assert main(["pileup", str(build), "--write"]) == 0
    text = capsys.readouterr().out
    assert "SAS not available" in text and "rule sas (3 sigma)" in text
    assert f'{OBSID}/PN: wrote the annulus r_in = 7.5" into {regions}' in text
    (annulus,) = read_regions(regions).source
    assert annulus == Annulus(circle.x, circle.y, 150, 800)
    assert (out / OBSID / "ds9.reg.orig").is_file()
    # a second run finds the same annulus and leaves the file alone
    assert main(["pileup", str(build), "--write"]) == 0
    assert 'already has the annulus r_in = 7.5"; nothing written' in capsys.readouterr().out
    assert not (out / OBSID / "ds9.reg.orig.1").exists()

    assert main(build_args) == 0
    assert "1 groups to build, 0 up to date" in capsys.readouterr().out
    after, gti = _counts(out / "ngc5506.zarr")
    # the core's screened 2-10 keV events inside the stored GTIs are what the build lost
    ev = fits.getdata(out / OBSID / "pn_events.fits", "EVENTS")
    g = np.asarray(gti)
    in_gti = np.any((ev["TIME"][:, None] >= g[:, 0]) & (ev["TIME"][:, None] < g[:, 1]), axis=1)
    d2 = (ev["X"] - circle.x) ** 2.0 + (ev["Y"] - circle.y) ** 2.0
    screened = (ev["PATTERN"] <= 4) & ((ev["FLAG"] & 0x00050030) == 0) & in_gti
    screened &= (ev["PI"] >= 2000) & (ev["PI"] < 10000)
    core = int(np.count_nonzero(screened & (d2 < 150**2)))
    assert before - after == core
    assert (before, after) == (16161, 10387)  # 5,774 of the 2-10 keV counts were inside 7.5"


def test_json_and_rule_option(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SAS_DIR", raising=False)
    out = tmp_path / "sim"
    args = ["simulate", str(out), "--obsid", OBSID, "--scale", "0.15", "--seed", "3"]
    assert main([*args, "--pileup-rate", "45", "--nh", "0.1"]) == 0
    build = str(out / "ngc5506.toml")
    code = main(["pileup", build, "--method", "native", "--rule", "reference-workflow"])
    text = capsys.readouterr().out
    assert code == 0 and "-> clean: clean without excision" in text
    assert "rule reference-workflow (3 sigma)" in text
    # the table shows both rules: the SAS rule calls the same step piled up
    row = next(line for line in text.splitlines() if line.strip().startswith('0"'))
    assert row.split()[-3:] == ["piled", "up", "clean"]
    assert main(["pileup", build, "--method", "native", "--reference-radius", "4.5"]) == 1
    assert (
        '-> piled-up: still piled up at r_in = 4" (stopped: the next inner radius 4.5" reaches'
        in (capsys.readouterr().out)
    )
    assert main(["pileup", build, "--obsid", "0000000009"]) == 2
    assert "xlcat: error: --obsid 0000000009: not in build file" in capsys.readouterr().err


def test_write_refuses_a_regions_file_shared_by_exposures(tmp_path):
    from types import SimpleNamespace

    from pipeline.cli.pileup import _write
    from pipeline.pileup.fractions import Ratio
    from schemas.errors import ConfigError

    reg = tmp_path / "r.reg"
    reg.write_text("physical\ncircle(1000,1000,800)\n")
    ratio = Ratio(1.0, 0.01, 0.0, 0.0)
    step = SimpleNamespace(r_in=100.0, r_in_arcsec=5.0, s=ratio, d=ratio)
    check = SimpleNamespace(
        chosen=step,
        regions=reg,
        label="0000000001/PN",
        circle=SimpleNamespace(r_in=0.0, system="physical"),
        options=SimpleNamespace(method="native", rule="sas"),
    )
    config = SimpleNamespace(
        path=tmp_path / "b.toml",
        observations=[SimpleNamespace(regions=reg), SimpleNamespace(regions=reg)],
    )
    with pytest.raises(ConfigError, match=r"r.reg: used by 2 exposures of .*b.toml; give each"):
        _write([check], config)
    assert reg.read_text() == "physical\ncircle(1000,1000,800)\n"
    config.observations.pop()
    assert _write([check], config) == 0
    assert "annulus(1000,1000,100,800)" in reg.read_text()
