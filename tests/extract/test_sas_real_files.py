"""The SAS light-curve reader on real evselect and epiclccorr files.

Files of observation 0001730201 (MOS1), copied into tests/data/real/ (README there):
evselect curves at 100 s and 2.604 s and epiclccorr's corrected curve at 2.604 s, all
made from ``M1_clean.fits``. What they show is docs/semantics.md §17.1, §17.2, §17.5.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.extract.binning import TimeGrid
from pipeline.extract.sas.lightcurve import (
    TIMEPIXR_ABSENT,
    common_grid,
    grid_indices,
    pi_selection,
    raw_counts,
    read_lightcurve,
)
from pipeline.extract.sas.outputs import curves_from_files
from pipeline.read.events import read_event_info
from schemas.energy import Band

DATA = Path(__file__).resolve().parents[1] / "data" / "real" / "xmm_0001730201_mos1"
LC = DATA / "lcurve_100_M1_1"
NAME = "J173442-323451"
TSTART = 100529502.824202
ROWS = {"100": 260, "2.604": 9949}
SRC_EVENTS, BKG_EVENTS = 2456, 57


def _curve(dt: str, role: str) -> Path:
    return LC / (f"{NAME}_lccorr_{dt}.lc" if role == "corr" else f"{NAME}_lc_{dt}_{role}.lc")


def _event_grid(dt: float) -> TimeGrid:
    info = read_event_info(DATA / "M1_clean.fits")
    return TimeGrid.for_exposure(info.tstart, info.tstop, dt)


@pytest.mark.parametrize(
    ("dt", "role"),
    [("100", "src"), ("100", "bgd"), ("2.604", "src"), ("2.604", "bgd"), ("2.604", "corr")],
)
def test_time_is_the_bin_centre_without_timepixr(dt, role):
    lc = read_lightcurve(_curve(dt, role))
    assert "TIMEPIXR" not in lc.keywords
    assert (lc.timepixr, lc.timepixr_source) == (0.5, TIMEPIXR_ABSENT)
    creator = "epiclccorr (epiclccorr-1.23.1)" if role == "corr" else "evselect (evselect-3.71.1)"
    assert lc.primary["CREATOR"].startswith(creator) and lc.primary["OBS_ID"] == "0001730201"
    # TIME = TSTART + (k + 1/2) TIMEDEL, to float64 rounding at 1e8 s
    k = np.arange(lc.n_rows)
    assert lc.n_rows == ROWS[dt] and lc.keywords["TSTART"] == TSTART
    off = lc.centres - (TSTART + (k + 0.5) * lc.timedel)
    assert np.max(np.abs(off)) < 2e-8
    # bin for bin on the native grid of the event list: TSTART of the event list,
    # ceil((TSTOP - TSTART)/dt) bins; row k is bin k, nothing dropped or missing
    idx, notes = grid_indices(lc, _event_grid(float(dt)))
    np.testing.assert_array_equal(idx, k)
    assert notes == {"dropped_trailing_rows": 0, "missing_rows": 0}


def test_tstop_evselect_keeps_the_event_lists_epiclccorr_moves_it():
    info = read_event_info(DATA / "M1_clean.fits")
    raw, corr = read_lightcurve(_curve("2.604", "src")), read_lightcurve(_curve("2.604", "corr"))
    assert raw.keywords["TSTOP"] == info.tstop
    assert raw.n_rows == math.ceil((info.tstop - info.tstart) / 2.604)
    # epiclccorr: TSTOP at the end of the last bin, and a TIMEDEL recomputed from it
    assert corr.keywords["TSTOP"] == pytest.approx(TSTART + 9949 * 2.604, abs=1e-6)
    assert corr.timedel == 2.60399999999948 and corr.timedel != raw.timedel
    grid, rule = common_grid([raw, corr])  # evselect's TIMEDEL first: the grid's bin
    assert grid == _event_grid(2.604) == TimeGrid(TSTART, 2.604, 9949)
    assert rule.startswith("TSTART of the files")


def test_four_byte_columns_and_signalling_nans():
    with fits.open(_curve("2.604", "corr")) as hdul:
        data = hdul["RATE"].data
        formats = {c.name: c.format for c in hdul["RATE"].columns}
        f32 = {c: np.array(data[c]) for c in ("RATE", "ERROR", "FRACEXP", "BACKV", "BACKE")}
    assert formats == {
        "TIME": "D",
        "RATE": "E",
        "ERROR": "E",
        "FRACEXP": "E",
        "BACKV": "E",
        "BACKE": "E",
    }
    # epiclccorr's NaN is the signalling NaN 0x7f800001; it is read without a warning
    assert set(f32["RATE"].view(">u4")[np.isnan(f32["RATE"])].tolist()) == {0x7F800001}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lc = read_lightcurve(_curve("2.604", "corr"))
    for name, values in f32.items():
        got = lc.columns[name]
        assert got.dtype == np.float64
        nan = np.isnan(values)
        np.testing.assert_array_equal(np.isnan(got), nan)
        np.testing.assert_array_equal(got[~nan], values[~nan].astype(np.float64))
    # RATE is NaN exactly where FRACEXP = 0 (docs/semantics.md §17.5)
    np.testing.assert_array_equal(np.isnan(lc.columns["RATE"]), lc.columns["FRACEXP"] == 0)
    assert int(np.isnan(lc.columns["RATE"]).sum()) == 5351
    assert lc.keywords["BKGRATIO"] == pytest.approx(1.0031746031746)


def test_gti_extensions():
    corr = read_lightcurve(_curve("2.604", "corr"))
    assert sorted(corr.gtis) == ["BKG_GTIS", "SRC_GTIS"] and corr.gti_ccds == {}
    assert corr.gtis["SRC_GTIS"].shape == (11, 2)
    assert corr.gtis["SRC_GTIS"][0, 0] == TSTART
    raw = read_lightcurve(_curve("100", "src"))
    # evselect copies the event list's per-CCD filter GTIs, each with its CCDID
    assert raw.gti_ccds == {f"GTI00{c - 1}04": c for c in range(1, 8)}
    assert all(g.shape == (11, 2) for g in raw.gtis.values())


@pytest.mark.parametrize("dt", ["100", "2.604"])
def test_raw_counts_are_whole_numbers(dt):
    totals = []
    for role in ("src", "bgd"):
        lc = read_lightcurve(_curve(dt, role))
        counts, how = raw_counts(lc)
        assert how == "RATE x TIMEDEL (rounded to integers)"
        exact = lc.columns["RATE"] * lc.timedel
        assert np.max(np.abs(exact - counts)) < 1e-9
        # ERROR = sqrt(counts) / TIMEDEL, no exposure correction (docs/semantics.md §17.2)
        np.testing.assert_allclose(lc.columns["ERROR"], np.sqrt(counts) / lc.timedel, rtol=1e-12)
        totals.append(int(counts.sum()))
    assert totals == [SRC_EVENTS, BKG_EVENTS]


def test_pi_selection_of_the_real_curves():
    raw, corr = read_lightcurve(_curve("100", "src")), read_lightcurve(_curve("2.604", "corr"))
    assert pi_selection(raw) == (Band(500, 10001), "data subspace: PI in 500:10000")
    band, how = pi_selection(corr)
    assert band == Band(500, 10001)
    assert how == "SLCTEXPR: PI in [500:10000]; data subspace: PI in 500:10000"


def test_strict_reading_as_the_sas_backend_does():
    grid = _event_grid(2.604)
    corr = read_lightcurve(_curve("2.604", "corr"))
    curves, facts = curves_from_files(
        corr,
        read_lightcurve(_curve("2.604", "src")),
        read_lightcurve(_curve("2.604", "bgd")),
        grid,
        Band(500, 10001),
    )
    np.testing.assert_array_equal(curves.fracexp[0], corr.columns["FRACEXP"])
    np.testing.assert_array_equal(curves.rate[0], corr.columns["RATE"])
    assert np.nansum(curves.src_counts) == SRC_EVENTS
    assert np.nansum(curves.bkg_counts) == BKG_EVENTS
    assert facts["corrected"]["missing_rows"] == 0
    assert facts["source"]["timepixr_source"] == TIMEPIXR_ABSENT
