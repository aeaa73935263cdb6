"""Parsing SAS light-curve files onto the explicit grid.

The fixture files are written as the real evselect and epiclccorr files are laid out
(tests/helpers/sas_fixtures.py; the real files themselves are read in
test_sas_real_files.py), with variations the reader must also handle: TIMEPIXR 0 or
0.5 written by other tools, NaN rows, rows missing or added at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

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
from schemas.energy import Band
from schemas.errors import InputFileError
from tests.helpers.sas_fixtures import corrected_from_counts, write_corrected, write_raw

T0, DT, N = 300000000.0, 128.0, 6
GRID = TimeGrid(T0, DT, N)
RNG = np.random.default_rng(5)
SRC = RNG.integers(0, 60, N).astype(float)
BKG = RNG.integers(0, 40, N).astype(float)
FRAC = np.array([1.0, 0.75, 0.0, 1.0, 0.5, 1.0])  # bin 2 outside the GTIs: NaN rate


def _corrected(path, timepixr, **kw):
    rate, error, backv, backe = corrected_from_counts(SRC, BKG, DT, FRAC, 0.3)
    return write_corrected(
        path,
        T0,
        DT,
        rate=rate,
        error=error,
        backv=backv,
        backe=backe,
        fracexp=FRAC,
        timepixr=timepixr,
        src_gtis=[[T0, T0 + 256], [T0 + 384, T0 + N * DT]],
        bkg_gtis=[[T0, T0 + N * DT]],
        **kw,
    )


@pytest.mark.parametrize("timepixr", [0.0, 0.5, None])
def test_time_normalised_to_bin_centres(tmp_path, timepixr):
    lc = read_lightcurve(_corrected(tmp_path / "lc.fits", timepixr))
    # TIME was written as t0 + (k + TIMEPIXR) dt; without TIMEPIXR at the centre, as SAS
    # writes it (docs/semantics.md §17.1)
    assert lc.timepixr == (0.5 if timepixr is None else timepixr)
    assert lc.timepixr_source == ("header" if timepixr is not None else TIMEPIXR_ABSENT)
    np.testing.assert_array_equal(lc.centres, T0 + DT * (np.arange(N) + 0.5))
    idx, notes = grid_indices(lc, GRID)
    np.testing.assert_array_equal(idx, np.arange(N))
    assert notes == {"dropped_trailing_rows": 0, "missing_rows": 0}


def test_bin_starts_without_timepixr_are_caught(tmp_path):
    # a non-SAS writer that puts TIME at bin starts and omits TIMEPIXR: read as centres,
    # the rows are half a bin off the grid and the file is refused, never shifted
    path = write_raw(tmp_path / "s.fits", SRC, T0 - DT / 2, DT, extra={"TSTART": T0})
    lc = read_lightcurve(path)
    np.testing.assert_array_equal(lc.centres, T0 + DT * np.arange(N))
    with pytest.raises(InputFileError, match="is 64 s off the grid's bin centres"):
        grid_indices(lc, GRID)


def test_values_nan_rows_and_gtis(tmp_path):
    path = _corrected(tmp_path / "lc.fits", None)
    curves, facts = curves_from_files(
        read_lightcurve(path),
        read_lightcurve(write_raw(tmp_path / "s.fits", SRC, T0, DT)),
        read_lightcurve(write_raw(tmp_path / "b.fits", BKG, T0, DT)),
        GRID,
        Band(2000, 4000),
    )
    rate, error, backv, backe = corrected_from_counts(SRC, BKG, DT, FRAC, 0.3)
    # float32 in the file, kept exactly as float64
    np.testing.assert_array_equal(curves.rate[0], rate.astype(np.float32).astype(np.float64))
    np.testing.assert_array_equal(curves.error[0], error.astype(np.float32).astype(float))
    np.testing.assert_array_equal(curves.backv[0], backv.astype(np.float32).astype(float))
    np.testing.assert_array_equal(curves.backe[0], backe.astype(np.float32).astype(float))
    np.testing.assert_array_equal(curves.fracexp[0], FRAC.astype(np.float32).astype(float))
    assert np.isnan(curves.rate[0, 2]) and np.isfinite(np.delete(curves.rate[0], 2)).all()
    np.testing.assert_array_equal(curves.src_counts[0], SRC)
    np.testing.assert_array_equal(curves.bkg_counts[0], BKG)
    gtis = facts["corrected"]["gtis"]
    assert gtis["SRC_GTIS"] == [[T0, T0 + 256], [T0 + 384, T0 + N * DT]]
    assert gtis["BKG_GTIS"] == [[T0, T0 + N * DT]]
    assert facts["counts"]["source"] == "RATE x TIMEDEL (rounded to integers)"


@pytest.mark.parametrize("dt", [100.0, 128.0, 7.3, 0.5])
def test_counts_recovered_from_float32_rates(tmp_path, dt):
    counts = np.arange(0, 3000, 37, dtype=float)
    lc = read_lightcurve(write_raw(tmp_path / "s.fits", counts, T0, dt, rate_format="E"))
    got, how = raw_counts(lc)
    np.testing.assert_array_equal(got, counts)


def test_counts_column_and_non_integral_rates(tmp_path):
    lc = read_lightcurve(write_raw(tmp_path / "c.fits", [3, 0, 7], T0, DT, counts_column=True))
    np.testing.assert_array_equal(raw_counts(lc)[0], [3, 0, 7])
    # a rate that is not counts/TIMEDEL (e.g. exposure-corrected): counts not recovered
    lc = read_lightcurve(write_raw(tmp_path / "r.fits", [3.4, 0, 7], T0, DT))
    assert raw_counts(lc) == (None, "RATE x TIMEDEL is not integral: counts not recovered")


def test_rows_placed_by_index_missing_and_trailing_rows(tmp_path):
    # the file starts two bins late and has one empty bin after the grid's end
    counts = np.array([5.0, 6.0, 7.0, 8.0, 0.0])
    lc = read_lightcurve(write_raw(tmp_path / "s.fits", counts, T0 + 2 * DT, DT))
    idx, notes = grid_indices(lc, GRID)
    np.testing.assert_array_equal(idx, [2, 3, 4, 5, -1])
    assert notes == {"dropped_trailing_rows": 1, "missing_rows": 2}
    curves, _ = curves_from_files(_read_corr(tmp_path), lc, None, GRID, Band(2000, 4000))
    np.testing.assert_array_equal(curves.src_counts[0], [np.nan, np.nan, 5, 6, 7, 8])
    assert np.isnan(curves.bkg_counts).all()


def _read_corr(tmp_path):
    return read_lightcurve(_corrected(tmp_path / "lc.fits", 0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"t0": T0 + DT / 3}, "off the grid's bin centres"),
        ({"t0": T0 - DT}, "lies before the grid's start"),
        ({"dt": 100.0}, "TIMEDEL = 100.0 s but the grid's bin is 128.0 s"),
        ({"t0": T0 + 2 * DT, "counts": [1, 1, 1, 1, 9]}, "non-empty rows lie past the grid's end"),
    ],
)
def test_files_off_the_grid_are_refused(tmp_path, kwargs, message):
    counts = kwargs.pop("counts", [1.0] * N)
    path = write_raw(tmp_path / "s.fits", counts, kwargs.get("t0", T0), kwargs.get("dt", DT))
    with pytest.raises(InputFileError, match=message) as info:
        grid_indices(read_lightcurve(path), GRID)
    assert str(path) in str(info.value)


def test_timepixr_mislabelled_is_caught(tmp_path):
    # TIME written at bin centres but labelled TIMEPIXR = 0: half a bin off the grid
    time = T0 + DT * (np.arange(N) + 0.5)
    rate = np.ones(N)
    path = write_corrected(
        tmp_path / "lc.fits",
        T0,
        DT,
        rate=rate,
        error=rate,
        backv=rate,
        backe=rate,
        fracexp=rate,
        timepixr=0.0,
        time=time,
    )
    with pytest.raises(InputFileError, match="off the grid"):
        grid_indices(read_lightcurve(path), GRID)


def test_timezero_and_no_time_column(tmp_path):
    from astropy.io import fits

    path = write_raw(tmp_path / "s.fits", [1, 2, 3], T0 - 1000.0, DT, extra={"TIMEZERO": 1000.0})
    np.testing.assert_array_equal(read_lightcurve(path).centres, T0 + DT * (np.arange(3) + 0.5))
    hdu = fits.BinTableHDU.from_columns([fits.Column("COUNTS", "J", array=[4, 5])], name="RATE")
    hdu.header["TIMEDEL"], hdu.header["TSTART"] = DT, T0 + DT
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "c.fits")
    lc = read_lightcurve(tmp_path / "c.fits")
    np.testing.assert_array_equal(lc.centres, T0 + DT * np.array([1.5, 2.5]))


def test_unreadable_files(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        read_lightcurve(tmp_path / "none.fits")
    (tmp_path / "x.fits").write_text("not fits")
    with pytest.raises(InputFileError, match="not a readable FITS file"):
        read_lightcurve(tmp_path / "x.fits")
    from astropy.io import fits

    hdu = fits.BinTableHDU.from_columns([fits.Column("FOO", "E", array=[1.0])], name="RATE")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "y.fits")
    with pytest.raises(InputFileError, match="no table with a RATE or COUNTS column"):
        read_lightcurve(tmp_path / "y.fits")


def test_strict_parsing_requires_background_columns(tmp_path):
    raw = write_raw(tmp_path / "s.fits", SRC, T0, DT)
    lc = read_lightcurve(raw)
    with pytest.raises(InputFileError, match="column BACKV is missing"):
        curves_from_files(lc, lc, lc, GRID, Band(2000, 4000))
    curves, facts = curves_from_files(lc, None, None, GRID, Band(2000, 4000), strict=False)
    assert np.isnan(curves.backv).all() and np.isnan(curves.fracexp).all()
    assert any("no BACKV column" in n for n in facts["notes"])


def test_common_grid_of_files_with_different_spans(tmp_path):
    a = read_lightcurve(write_raw(tmp_path / "a.fits", [1, 2, 3], T0, DT))
    b = read_lightcurve(write_raw(tmp_path / "b.fits", [1, 2, 3], T0 + 2 * DT, DT, timepixr=0.5))
    # different TSTART: from the earliest row's bin start
    grid, rule = common_grid([a, b])
    assert grid == TimeGrid(T0, DT, 5) and rule.startswith("earliest row's bin start")
    c = read_lightcurve(write_raw(tmp_path / "c.fits", [1], T0 + DT / 2, DT))
    with pytest.raises(InputFileError, match="off the grid"):
        common_grid([a, c])


def test_common_grid_starts_at_tstart(tmp_path):
    # evselect's grid starts at TSTART even when the first rows are missing (or the
    # curve is cut): the grid is TSTART + (k + 1/2) dt, to the last row
    time = T0 + DT * (np.arange(2, 5) + 0.5)
    rate = np.ones(3)
    kw = {"rate": rate, "error": rate, "backv": rate, "backe": rate, "fracexp": rate}
    late = read_lightcurve(write_corrected(tmp_path / "c.fits", T0, DT, time=time, **kw))
    raw = read_lightcurve(write_raw(tmp_path / "s.fits", [1, 2], T0, DT, tstop=T0 + 1.5 * DT))
    grid, rule = common_grid([raw, late])
    assert grid == TimeGrid(T0, DT, 5) and rule.startswith("TSTART of the files")
    # TSTART of a file whose rows are not on it: the rows decide
    off = read_lightcurve(
        write_raw(tmp_path / "o.fits", [1], T0 + DT / 4, DT, extra={"TSTART": T0})
    )
    grid, rule = common_grid([off])
    assert grid == TimeGrid(T0 + DT / 4, DT, 1) and rule.startswith("earliest row")


@pytest.mark.parametrize(
    ("expression", "dss", "band", "how"),
    [
        ("(X,Y) in CIRCLE(1,2,3)", "500:10000", (500, 10001), "data subspace: PI in 500:10000"),
        (
            "(CCDNR in [1] && PI in [500:10000] && region(a)) || "
            "(CCDNR in [2] && PI in [500:10000] && region(a))",
            None,
            (500, 10001),
            "SLCTEXPR: PI in [500:10000]",
        ),
        ("PI >= 2000 && PI < 4000 && (X,Y) in circle(1,2,3)", "200:12000", (2000, 4000), None),
        ("(PI in [2000:4000)) || (PI in [5000:6000))", None, None, "differ or cannot be read"),
        ("(PI in [2000:4000) && X == 1) || (Y == 2)", None, None, "differ or cannot be read"),
        ("PI in [2000:3000) , [4000:5000)", None, None, "not one run of PI values"),
        ("(X,Y) in circle(1,2,3)", None, None, "no PI term"),
    ],
)
def test_pi_selection(tmp_path, expression, dss, band, how):
    extra = {"DSTYP1": "PI", "DSVAL1": dss} if dss else {}
    lc = read_lightcurve(
        write_raw(tmp_path / "s.fits", [1], T0, DT, expression=expression, extra=extra)
    )
    got, text = pi_selection(lc)
    assert got == (Band(*band) if band else None)
    if how:
        assert how in text
