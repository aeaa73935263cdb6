"""Builds of real XMM-Newton event lists (tests/data/real; docs/semantics.md §1, §2, §6, §17).

- The pn list of RX J0146.9+6121 builds source-only (no background events exist) and its
  power spectrum peaks at the 1,396 s spin.
- The MOS1 list builds with the camera's default screening, and its regions written in fk5
  give the same light curves as the physical ones.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.wcs.utils import pixel_to_skycoord

import catalog
from catalog.timing import power_spectrum
from pipeline.build.graph import run_build
from pipeline.build.plan import plan_build
from pipeline.read.wcs import read_sky_wcs
from schemas.build import load_build
from tests.helpers.realfiles import (
    MOS1_CLEAN,
    PN,
    PN_ELLIPSE,
    PN_SPIN_S,
    mos1_circles,
)

PN_BUILD = """
store = "pn.zarr"
time_bin = 128.0

# the list is already screened (PI 300-10000, PATTERN 0-4, FLAG == 0): say so explicitly
[screening]
pattern_max = 4
flag_zero = true
pi = [300, 10000]

[[observations]]
obsid = "0201160101"
events = "{events}"
regions = "src.reg"

[schemes]
1a = {{ unit = "keV", edges = [0.3, 10] }}
3a = {{ unit = "keV", edges = [0.3, 2, 4, 10] }}
"""


def _build(path: Path, client):
    plan = plan_build(load_build(path))
    report = run_build(plan, client)
    assert report.ok, report
    return plan


@pytest.fixture(scope="module")
def pn_store(tmp_path_factory, dask_client):
    d = tmp_path_factory.mktemp("pn")
    shutil.copy(PN, d / PN.name)
    (d / "src.reg").write_text("physical\nellipse({},{},{},{},{})\n".format(*PN_ELLIPSE))
    (d / "build.toml").write_text(PN_BUILD.format(events=PN.name))
    plan = _build(d / "build.toml", dask_client)
    return plan, catalog.open(d / "pn.zarr", attrs="python")


def test_pn_source_only_build(pn_store):
    plan, cat = pn_store
    assert plan.fingerprints["0201160101/PNS003"]["screening"] == {
        "pattern_max": 4,
        "flag_zero": True,
        "pi": [300, 10000],
        "expression": None,
    }
    ds = cat.lightcurves(obsid="0201160101", scheme="1a")
    for name in ("bkg_counts", "backv", "backe"):
        assert np.isnan(ds[name].values).all(), name
    src, f = ds.src_counts.values[0], ds.fracexp.values[0]
    good = f > 0
    f = np.where(good, f, 1.0)
    np.testing.assert_allclose(ds.rate.values[0][good], (src / (128.0 * f))[good], rtol=1e-12)
    np.testing.assert_allclose(
        ds.error.values[0][good], (np.sqrt(src) / (128.0 * f))[good], rtol=1e-12
    )
    # 33,712 events in the ellipse; the 444 before TSTART (the list is barycentred, its
    # TSTART is not) fall before the grid (docs/semantics.md §17)
    assert src.sum() == 33268
    prov = ds.attrs["provenance"]
    assert (prov["instrument"], prov["exposure"], prov["screening_source"]) == (
        "PN",
        "PNS003",
        "build file",
    )
    assert prov["regions"]["background"] is None and "source-only" in prov["regions"]["note"]
    regions = ds.attrs["regions"]
    assert regions["source_only"] is True and regions["background"] is None
    assert regions["area_ratio"] is None and regions["bkg_expression"] is None
    assert regions["bkg_area"] is None and regions["note"].startswith("no background region")
    assert regions["source"] == ["ellipse(22001.65,37288.64,400,200,33)"]
    three = cat.lightcurves(obsid="0201160101", scheme="3a")
    np.testing.assert_array_equal(three.src_counts.values.sum(axis=0), src)


def test_pn_power_spectrum_peaks_at_the_spin(pn_store):
    _, cat = pn_store
    seg = cat.segments("1a", min_fracexp=0.6, fill_gaps=1000.0, min_length=14000.0, seed=0)
    assert seg.sizes["segment"] == 1 and int(seg.n_bins.values[0]) == 310
    psd = power_spectrum(seg, min_per_bin=1, factor=1.0)  # unbinned Fourier frequencies
    freq, power = psd.freq.values, psd.power.values[0]
    df = 1.0 / (310 * 128.0)
    peak = freq[np.nanargmax(power)]
    assert abs(peak - 1.0 / PN_SPIN_S) <= df
    # it stands out: more than 5 times the median power
    assert np.nanmax(power) > 5 * np.nanmedian(power)


MOS_BUILD = """
store = "{store}"
time_bin = 100.0

[flare]                       # every key from the MOS defaults

[[observations]]
obsid = "0001730201"
events = "{events}"
regions = "{regions}"

[schemes]
2a = {{ unit = "keV", edges = [0.5, 2, 10] }}
"""


@pytest.fixture(scope="module")
def mos_stores(tmp_path_factory, dask_client):
    d = tmp_path_factory.mktemp("mos")
    shutil.copy(MOS1_CLEAN, d / MOS1_CLEAN.name)
    circles = mos1_circles()
    (d / "physical.reg").write_text(
        "physical\ncircle({},{},{})\ncircle({},{},{}) # background\n".format(
            *circles["source"], *circles["background"]
        )
    )
    sky = read_sky_wcs(MOS1_CLEAN)
    s = pixel_to_skycoord(*circles["source"][:2], sky.wcs, origin=1)
    b = pixel_to_skycoord(*circles["background"][:2], sky.wcs, origin=1)
    ra, dec = b.to_string("hmsdms", sep=":", precision=6).split()
    (d / "fk5.reg").write_text(
        f'fk5\ncircle({s.ra.deg:.10f},{s.dec.deg:.10f},10")\n'
        f"circle({ra},{dec},0.1666666666666667') # background\n"
    )
    plans = {}
    for name in ("physical", "fk5"):
        text = MOS_BUILD.format(store=f"{name}.zarr", events=MOS1_CLEAN.name, regions=f"{name}.reg")
        (d / f"{name}.toml").write_text(text)
        plans[name] = _build(d / f"{name}.toml", dask_client)
    return plans, {n: catalog.open(d / f"{n}.zarr", attrs="python") for n in plans}


def test_mos_default_screening_and_flare(mos_stores):
    plans, cats = mos_stores
    fp = plans["physical"].fingerprints["0001730201/M1S001"]
    # the input hash sees the screening applied: the MOS1 default, not the pn one
    assert fp["screening"] == {
        "pattern_max": 12,
        "flag_zero": False,
        "pi": [200, 12000],
        "expression": "#XMMEA_EM",
        "instrument": "M1",
    }
    assert fp["flare"] == {
        "threshold": 0.35,
        "comparison": "<",
        "pi": [10001, 32767],
        "pattern": 0,
        "bin": 100.0,
        "expression": "#XMMEA_EM",
    }
    ds = cats["physical"].lightcurves(obsid="0001730201", scheme="2a")
    prov = ds.attrs["provenance"]
    assert prov["screening"] == "(PATTERN<=12)&&(PI in [200:12000])&&(#XMMEA_EM)"
    assert (prov["instrument"], prov["exposure"]) == ("M1", "M1S001")
    assert prov["screening_source"] == "M1 default (docs/semantics.md §1)"
    # the macro is read from the header (docs/semantics.md §8)
    assert prov["flare"]["selection"] == (
        "(PI in [10001:32767])&&(PATTERN==0)&&(((FLAG & 0x766ba000) == 0))"
    )
    assert prov["flare"]["threshold"] == 0.35
    # M1_clean.fits holds PI 500-10000 only: the flare curve is empty and rejects nothing
    assert prov["flare"]["rejected_s"] == 0.0
    assert np.nansum(ds.src_counts.values) > 0


def test_mos_fk5_regions_give_the_physical_curves(mos_stores):
    plans, cats = mos_stores
    a = cats["physical"].lightcurves(obsid="0001730201", scheme="2a")
    b = cats["fk5"].lightcurves(obsid="0001730201", scheme="2a")
    for name in ("src_counts", "bkg_counts", "fracexp"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert np.nansum(a.src_counts.values) > 1000 and np.nansum(a.bkg_counts.values) > 10
    # the converted radii differ from 200 by 4e-5 pixel: the area ratio by 1e-9
    np.testing.assert_allclose(a.rate.values, b.rate.values, rtol=1e-6, atol=1e-7, equal_nan=True)
    conversion = b.attrs["provenance"]["regions"]["conversion"]
    assert [c["role"] for c in conversion["shapes"]] == ["source", "background"]
    assert conversion["wcs"]["RADESYS"] == "FK5" and conversion["wcs"]["TCTYP6"] == "RA---TAN"
    assert b.attrs["regions"]["text"].startswith('fk5\ncircle(263.6791034857,-32.5804732211,10")')
    assert b.attrs["regions"]["src_area"] == pytest.approx(np.pi * 200.0**2, rel=1e-6)
    # the groups record the shapes selected with; only the fk5 one a conversion
    assert b.attrs["regions"]["source_only"] is False and a.attrs["regions"]["conversion"] is None
    assert b.attrs["regions"]["conversion"]["shapes"] == conversion["shapes"]
    assert a.attrs["regions"]["background"] == ["circle(23290.1,27609.7,200)"]
    (bkg,) = b.attrs["regions"]["background"]
    x, y, r = (float(v) for v in bkg.removeprefix("circle(").removesuffix(")").split(","))
    assert (x, y, r) == pytest.approx((23290.1, 27609.7, 200.0), abs=2e-4)


def test_a_re_plan_binds_unchanged_files_from_their_record(mos_stores, monkeypatch):
    """A re-run binds the camera defaults from what the store recorded of the event file."""
    plans, cats = mos_stores
    label = "0001730201/M1S001"
    record = cats["physical"].lightcurves(obsid="0001730201", scheme="2a").attrs["inputs"]
    (events,) = [f for f in record["files"] if f["role"] == "events"]
    assert {k: events[k] for k in ("instrument", "expid", "datamode", "macros")} == {
        "instrument": "M1",
        "expid": "M1S001",
        "datamode": "IMAGING",
        "macros": {"XMMEA_EM": "(FLAG & 0x766ba000) == 0"},
    }

    def refuse(path):
        raise AssertionError(f"{path} was opened")

    monkeypatch.setattr("pipeline.read.events.read_event_info", refuse)
    again = plan_build(plans["physical"].config)
    assert not again.todo and [s.label for s in again.up_to_date] == [label]
    assert again.fingerprints == plans["physical"].fingerprints
    assert again.jobs[label].notes == plans["physical"].jobs[label].notes
    # fk5 regions read the WCS again (the header only) and convert to the same shapes
    fk5 = plan_build(plans["fk5"].config)
    assert not fk5.todo and fk5.fingerprints == plans["fk5"].fingerprints
    assert fk5.fingerprints[label]["regions"] != again.fingerprints[label]["regions"]
    assert again.fingerprints[label]["regions"] == {
        "source": ["circle(24635.6,24158.8,200)"],
        "background": ["circle(23290.1,27609.7,200)"],
    }
