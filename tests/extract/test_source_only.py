"""Source-only light curves: no background region (docs/semantics.md §6).

rate = N_s / (dt f), error = sqrt(N_s) / (dt f); bkg_counts, backv, backe are NaN. The SAS
backend runs no background evselect and epiclccorr with ``withbkgset=no``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pipeline.extract.backends.native import NativeBackend
from pipeline.extract.backends.sas import SASBackend
from pipeline.extract.binning import TimeGrid
from pipeline.extract.jobs import ObservationJob
from pipeline.extract.netrate import net_rate
from pipeline.extract.sas import commands as cmd
from pipeline.extract.sas.lightcurve import read_lightcurve
from pipeline.extract.sas.outputs import curves_from_files
from pipeline.select.regions import parse_regions
from schemas.build import SchemeOptions, Screening
from schemas.energy import Band
from schemas.errors import ConfigError, InputFileError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    brute_force_counts,
    edge_events,
    random_events,
    write_event_file,
)
from tests.helpers.sas_fixtures import write_corrected

CCD_GTIS = {4: [(T0, T0 + 400), (T0 + 430, T0 + 1000)], 5: [(T0, T0 + 1000)]}
SOURCE_ONLY = "physical\ncircle(1000,1000,100)\n"
BANDS = (Band(2000, 4000), Band(4000, 10000))


def test_net_rate_without_background():
    src = np.array([[0.0, 4.0, 9.0, 16.0]])
    f = np.array([0.0, 1.0, 0.5, 0.25])
    nr = net_rate(src, None, None, 10.0, f)
    np.testing.assert_array_equal(nr.rate, [[np.nan, 0.4, 1.8, 6.4]])
    np.testing.assert_array_equal(nr.error, [[np.nan, 0.2, 0.6, 1.6]])
    assert np.isnan(nr.backv).all() and np.isnan(nr.backe).all()
    # the background array is ignored without an area ratio
    same = net_rate(src, np.full((1, 4), 99.0), None, 10.0, f)
    np.testing.assert_array_equal(same.rate, nr.rate)


@pytest.fixture(scope="module")
def event_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("obs") / "pn"
    d.mkdir()
    ev = EventSet.concat([edge_events(), random_events(4000, seed=9)])
    (d / "ccf.cif").write_text("stand-in calibration index")
    return write_event_file(d / "ev.fits", ev, FileSpec(ccd_gtis=CCD_GTIS))


def _job(path: Path, regions: str) -> ObservationJob:
    return ObservationJob(
        obsid="0123456789",
        events=path,
        regions=parse_regions(regions, "src.reg"),
        gti_file=None,
        screening=Screening(),
        flare=None,
        time_bin=100.0,
    )


def test_native_source_only(event_file):
    b = NativeBackend()
    alone = b.prepare(_job(event_file, SOURCE_ONLY))
    both = b.prepare(_job(event_file, REGION_TEXT))
    c = b.extract(alone, BANDS, SchemeOptions())
    ref = b.extract(both, BANDS, SchemeOptions())
    np.testing.assert_array_equal(c.src_counts, ref.src_counts)
    np.testing.assert_array_equal(c.fracexp, ref.fracexp)
    assert np.isnan(c.bkg_counts).all() and np.isnan(c.backv).all() and np.isnan(c.backe).all()
    expo = 100.0 * c.fracexp
    good = c.fracexp > 0
    np.testing.assert_allclose(c.rate[good], (c.src_counts / expo)[good], rtol=1e-15)
    np.testing.assert_allclose(c.error[good], (np.sqrt(c.src_counts) / expo)[good], rtol=1e-15)
    assert np.isnan(c.rate[~good]).all()
    # the counts are the brute-force ones of the source circle
    ev = EventSet.concat([edge_events(), random_events(4000, seed=9)])
    gti = [(T0, T0 + 400), (T0 + 430, T0 + 1000)]
    for i, band in enumerate(BANDS):
        expected = brute_force_counts(
            ev, [(1000.0, 1000.0, 100.0)], (band.pi_lo, band.pi_hi), gti, T0, 100.0, 10
        )
        np.testing.assert_array_equal(c.src_counts[i], expected)
    prov = alone.summary.provenance
    assert prov["regions"]["background"] is None
    assert prov["regions"]["note"].startswith("no background region: source-only curves")
    assert prov["ccds"] == [4] and prov["bkg_counts_per_ccd"] == {"4": 0}
    assert both.summary.provenance["regions"]["background"] == [
        "circle(3000,1000,200)",
        "circle(1000,3000,150)",
    ]
    # the equal-count reference spectrum is the source spectrum (whole channels: PI 200..11999)
    net, chan0 = b.reference_spectrum(alone)
    assert chan0 == 40 and np.nansum(net) == alone.binned.band_counts((Band(200, 12000),))[0].sum()


def test_sas_commands_without_background(event_file):
    job = _job(event_file, SOURCE_ONLY)
    grid = NativeBackend().prepare(job).binned.grid
    commands = cmd.band_commands(job.events, job.regions, job.screening, grid, BANDS[0], True)
    assert list(commands) == ["evselect (source)", "epiclccorr"]
    assert commands["epiclccorr"] == [
        "epiclccorr",
        "srctslist=lc__s.fits",
        f"eventlist={event_file}",
        "outset=lc.fits",
        "withbkgset=no",
        "applyabsolutecorrections=yes",
    ]
    with pytest.raises(ConfigError, match="no background shape to select with"):
        cmd.band_expression(BANDS[0], job.screening, job.regions, "background")


def test_sas_backend_source_only_through_the_standins(standins, event_file, tmp_path):
    job = _job(event_file, SOURCE_ONLY)
    b = SASBackend().for_store(tmp_path / "cat.zarr")
    p = b.prepare(job)
    curves = b.extract(p, BANDS[:1], SchemeOptions(abscorr=False))
    calls = standins.calls()
    assert [c["task"] for c in calls] == ["sasversion", "evselect", "epiclccorr"]
    assert "withbkgset=no" in calls[2]["argv"] and not any(
        "bkgtslist" in a for a in calls[2]["argv"]
    )
    native = NativeBackend().extract(NativeBackend().prepare(job), BANDS[:1], SchemeOptions())
    np.testing.assert_array_equal(curves.src_counts, native.src_counts)
    assert np.isnan(curves.bkg_counts).all() and np.isnan(curves.backv).all()
    rec = curves.band_provenance[0]
    assert rec["outputs"]["counts"]["background"] == "no background region: no background curve"
    # the band cache holds the two outputs only, and a re-run reads them back
    standins.reset_calls()
    again = b.extract(p, BANDS[:1], SchemeOptions(abscorr=False))
    assert again.band_provenance[0]["cache"] == "hit" and standins.calls("evselect") == []
    np.testing.assert_array_equal(again.src_counts, curves.src_counts)
    assert p.summary.provenance["regions"]["background"] is None


def test_corrected_curve_without_backv_reads_source_only(tmp_path):
    grid = TimeGrid(T0, 100.0, 3)
    path = tmp_path / "lc.fits"
    ones = np.ones(3)
    write_corrected(path, T0, 100.0, rate=ones, error=ones, backv=ones, backe=ones, fracexp=ones)
    curves, facts = curves_from_files(
        read_lightcurve(path), None, None, grid, Band(2000, 4000), with_background=False
    )
    assert np.isnan(curves.backv).all() and np.isnan(curves.bkg_counts).all()  # not read
    np.testing.assert_array_equal(curves.rate, [[1.0, 1.0, 1.0]])
    assert facts["counts"]["background"] == "no background region: no background curve"
    # with a background region BACKV is required; without, it need not be there
    lc = read_lightcurve(path)
    no_backv = dataclasses.replace(
        lc, columns={k: v for k, v in lc.columns.items() if k != "BACKV"}
    )
    with pytest.raises(InputFileError, match="column BACKV is missing"):
        curves_from_files(no_backv, None, None, grid, Band(2000, 4000))
    alone, _ = curves_from_files(
        no_backv, None, None, grid, Band(2000, 4000), with_background=False
    )
    np.testing.assert_array_equal(alone.rate, curves.rate)
