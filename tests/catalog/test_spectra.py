"""Store format 3: the source and background PI spectra of each exposure.

A store is built (native backend, threads) from a hand-made pn event file with a
source and a two-circle background region on two CCDs whose GTIs differ; every number
is checked against the light curves of the same build and a literal loop over events.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import catalog
from pipeline.cli.main import main
from schemas.errors import StoreError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    FileSpec,
    brute_force_counts,
    random_events,
    write_event_file,
)

OBSID = "0123456789"
GTIS = {
    4: [(T0, T0 + 400.0), (T0 + 430.0, T0 + 1000.0)],
    5: [(T0, T0 + 600.0), (T0 + 650.0, T0 + 1000.0)],
}
SRC = [(1000.0, 1000.0, 100.0)]
BKG = [(3000.0, 1000.0, 200.0), (1000.0, 3000.0, 150.0)]
BUILD = f"""
store = "spec.zarr"
time_bin = 100.0

[[observations]]
obsid = "{OBSID}"
events = "obs/ev.fits"
regions = "obs/ds9.reg"

[schemes]
3b = {{ unit = "keV", edges = [0.2, 2, 5, 12] }}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("spectra")
    (d / "obs").mkdir()
    ev = random_events(20000, seed=11)
    write_event_file(d / "obs" / "ev.fits", ev, FileSpec(ccd_gtis=GTIS))
    (d / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (d / "build.toml").write_text(BUILD)
    argv = ["build", str(d / "build.toml"), "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    return d / "spec.zarr", ev


def test_spectra_hold_exactly_the_light_curves_events(built):
    store, ev = built
    cat = catalog.open(store, attrs="python")  # rich attributes (the channels record)
    spec = cat.spectrum(OBSID)
    lc = cat.lightcurves(OBSID, "3b")
    assert spec.sizes["channel"] == 4096 and spec.attrs["channels"]["pi_per_channel"] == 5
    assert int(spec["chan_pi_hi"][-1]) == 20480 and float(spec["chan_e_lo"][400]) == 2.0
    for b in range(3):
        lo, hi = int(lc.pi_lo[b]) // 5, int(lc.pi_hi[b]) // 5
        for role in ("src", "bkg"):
            in_band = int(spec[role].values[lo:hi].sum())
            assert in_band == int(lc[f"{role}_counts"].isel(band=b).sum()), (b, role)
    # the whole spectrum against a literal loop over events (screening PI 200..12000)
    for role, shapes in (("src", SRC), ("bkg", BKG)):
        ref = brute_force_counts(ev, shapes, (0, 20480), GTIS, T0, 100.0, 10).sum()
        assert int(spec[role].sum()) == int(ref) == spec.attrs[f"{role}_total"]
    assert int(spec["src"].values[:40].sum()) == 0  # PI < 200 screened out
    # EXPOSURE = sum over bins of fracexp * dt (fracexp shared by the bands)
    exposure = float(lc["fracexp"].isel(band=0).sum()) * 100.0
    assert spec.attrs["exposure"] == pytest.approx(exposure, rel=1e-12)
    assert exposure == pytest.approx(1000.0 - 30.0)  # CCD 4 holds the source: gap 400-430
    # BACKSCAL: geometric areas in sky pixels^2, as the regions record
    assert spec.attrs["src_backscal"] == pytest.approx(np.pi * 100.0**2)
    assert spec.attrs["bkg_backscal"] == pytest.approx(np.pi * (200.0**2 + 150.0**2))
    assert spec.attrs["backscal_ratio"] == pytest.approx(100.0**2 / (200.0**2 + 150.0**2))
    assert spec.attrs["areascal"] == 1.0
    net = (spec["src"] - spec.attrs["backscal_ratio"] * spec["bkg"]) / (exposure * 0.005)
    np.testing.assert_allclose(spec["net_rate"].values, net.values, rtol=1e-12)
    # the light-curve view carries no channel dimension
    assert "channel" not in lc.dims and "spec_src" not in lc


def test_query_spectrum_json_and_csv(built, tmp_path, capsys):
    store, _ = built
    spec = catalog.open(store).spectrum(OBSID)
    out = tmp_path / "s.json"
    assert main(["query", str(store), "--obsid", OBSID, "--spectrum", "--format", "json",
                 "-o", str(out)]) == 0  # fmt: skip
    (doc,) = json.loads(out.read_text())
    assert doc["expid"] == "PN" and len(doc["src"]) == 4096
    assert doc["src"] == spec["src"].values.astype(int).tolist()
    assert doc["bkg"] == spec["bkg"].values.astype(int).tolist()
    assert doc["exposure"] == pytest.approx(970.0)
    assert doc["src_backscal"] == pytest.approx(np.pi * 1e4)
    assert doc["e_lo"][400] == 2.0 and doc["pi_hi"][-1] == 20480
    assert main(["query", str(store), "--obsid", OBSID, "--spectrum"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "obsid,expid,channel,pi_lo,pi_hi,e_lo,e_hi,src,bkg,net_rate"
    assert len(lines) == 4097
    row = lines[1 + 1000].split(",")
    assert row[:5] == [OBSID, "PN", "1000", "5000", "5005"]
    assert int(row[7]) == int(spec["src"][1000]) and int(row[8]) == int(spec["bkg"][1000])
    assert main(["query", str(store)]) == 2  # neither --scheme nor --spectrum
    assert "--scheme" in capsys.readouterr().err


def test_export_pha_read_back_by_gammapy(built, tmp_path, capsys):
    from astropy.io import fits
    from gammapy.maps import RegionNDMap

    store, _ = built
    spec = catalog.open(store).spectrum(OBSID)
    out = tmp_path / "pha"
    assert main(["export", "pha", str(store), "--obsid", OBSID, "-o", str(out)]) == 0
    src, bkg = out / f"{OBSID}_PN_src.pha", out / f"{OBSID}_PN_bkg.pha"
    assert sorted(p.name for p in out.iterdir()) == [bkg.name, src.name]
    for path, role in ((src, "src"), (bkg, "bkg")):
        with fits.open(path) as h:
            counts = RegionNDMap.from_hdulist(h, format="ogip")
            backscal = RegionNDMap.from_hdulist(h, format="ogip", ogip_column="BACKSCAL")
            quality = RegionNDMap.from_hdulist(h, format="ogip", ogip_column="QUALITY")
        np.testing.assert_array_equal(counts.data.ravel(), spec[role].values)
        area = spec.attrs[f"{role}_backscal"]
        np.testing.assert_allclose(backscal.data.ravel(), area, rtol=1e-6)
        assert quality.data.all()  # QUALITY 0: every channel good
        edges = counts.geom.axes["energy"].edges.to_value("keV")
        np.testing.assert_allclose(edges[[0, 400, -1]], [0.0, 2.0, 20.48], rtol=1e-6)
        m = counts.meta
        assert m["EXPOSURE"] == pytest.approx(970.0) and m["BACKSCAL"] == pytest.approx(area)
        assert (m["AREASCAL"], m["POISSERR"], m["DETCHANS"], m["CHANTYPE"]) == (
            1.0,
            True,
            4096,
            "PI",
        )
        assert (m["TELESCOP"], m["INSTRUME"], m["RESPFILE"], m["ANCRFILE"]) == (
            "XMM", "EPN", "NONE", "NONE"
        )  # fmt: skip
        assert m["BACKFILE"] == (bkg.name if role == "src" else "NONE")
    assert main(["export", "pha", str(store), "--obsid", OBSID, "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_format_2_store_is_refused_in_one_line(built, tmp_path):
    store, _ = built
    old = tmp_path / "old.zarr"
    old.mkdir()
    meta = json.loads((store / "zarr.json").read_text())
    meta["attributes"]["format_version"] = 2
    (old / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError) as err:
        catalog.open(old)
    text = str(err.value)
    assert "\n" not in text and "format_version 2" in text and "rebuild" in text
    assert "reads format 3" in text


def test_no_spectra_for_an_unknown_exposure(built):
    store, _ = built
    with pytest.raises(StoreError, match="exposures with spectra: PN"):
        catalog.open(store).spectrum(OBSID, "M1S001")
