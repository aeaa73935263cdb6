"""Tests of catalog.timing.segments: good bins, gap filling, segment cutting."""

from __future__ import annotations

import numpy as np
import pytest

from catalog.timing.segments import good_bins, make_segments
from schemas.errors import ConfigError

DT = 100.0
T0 = 5.0e8


def _curve(n: int = 60, n_band: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    time = T0 + DT * (np.arange(n) + 0.5)
    rate = 10.0 + rng.standard_normal((n_band, n))
    error = 0.5 + 0.1 * rng.random((n_band, n))
    fracexp = np.ones((n_band, n))
    return time, rate, error, fracexp


def _punch(rate, error, fracexp, sl, band=None):
    """Make bins ``sl`` bad (NaN in ``band`` or all bands, zero exposure)."""
    bands = slice(None) if band is None else band
    rate[bands, sl] = np.nan
    error[bands, sl] = np.nan
    fracexp[bands, sl] = 0.0


def _seg(**kw):
    kw.setdefault("min_length", 0.0)
    kw.setdefault("rng", 42)
    return kw


def test_clean_curve_is_one_segment_and_copies():
    time, rate, error, frac = _curve()
    segs = make_segments(time, rate, error, frac, DT, **_seg())
    assert len(segs) == 1
    s = segs[0]
    assert (s.n, s.n_band, s.start, s.n_filled) == (60, 2, 0, 0)
    np.testing.assert_array_equal(s.rate, rate)
    assert s.length == 6000.0 and s.tstart == T0 and s.tstop == T0 + 6000.0
    s.rate[0, 0] = -1.0
    assert rate[0, 0] != -1.0


def test_one_bin_gap_filled_with_line_plus_seeded_noise():
    time, rate, error, frac = _curve()
    orig_rate, orig_err = rate.copy(), error.copy()
    _punch(rate, error, frac, slice(20, 21))
    (s,) = make_segments(time, rate, error, frac, DT, **_seg(rng=7))
    # rule: sigma = mean error of the good bins within n_gap (=1) bins each side
    sigma = 0.5 * (orig_err[:, 19] + orig_err[:, 21])
    line = 0.5 * (orig_rate[:, 19] + orig_rate[:, 21])
    noise = np.random.default_rng(7).standard_normal((2, 1))[:, 0]
    np.testing.assert_allclose(s.rate[:, 20], line + noise * sigma, rtol=1e-12)
    np.testing.assert_allclose(s.error[:, 20], sigma, rtol=1e-12)
    assert s.filled[20] and s.n_filled == 1
    np.testing.assert_array_equal(np.delete(s.rate, 20, axis=1), np.delete(orig_rate, 20, axis=1))


def test_multi_bin_gap_sigma_window_and_interpolation():
    time, rate, error, frac = _curve()
    orig_rate, orig_err = rate.copy(), error.copy()
    _punch(rate, error, frac, slice(30, 33))  # 3 bins
    _punch(rate, error, frac, slice(27, 28))  # a bad bin inside the left window
    (s,) = make_segments(time, rate, error, frac, DT, **_seg(rng=3))
    gen = np.random.default_rng(3)
    # gaps are filled in time order: the 1-bin gap at 27 draws first
    gen.standard_normal((2, 1))
    noise = gen.standard_normal((2, 3))
    window = [28, 29, 33, 34, 35]  # within 3 bins each side, good only
    sigma = orig_err[:, window].mean(axis=1)
    frac_pos = (np.arange(30, 33) - 29) / 4.0
    line = orig_rate[:, [29]] + (orig_rate[:, [33]] - orig_rate[:, [29]]) * frac_pos
    np.testing.assert_allclose(s.rate[:, 30:33], line + noise * sigma[:, None], rtol=1e-12)
    np.testing.assert_allclose(s.error[:, 30:33], np.repeat(sigma[:, None], 3, axis=1))
    assert s.filled.sum() == 4


@pytest.mark.parametrize(
    ("n_gap", "filled"),
    [
        (10, True),  # 10 bins * 100 s = 1000 s = fill_gaps exactly: filled
        (11, False),
    ],  # fill_gaps + dt: split
)
def test_fill_gaps_boundary(n_gap, filled):
    time, rate, error, frac = _curve(n=80)
    _punch(rate, error, frac, slice(30, 30 + n_gap))
    segs = make_segments(time, rate, error, frac, DT, **_seg(fill_gaps=1000.0))
    if filled:
        assert len(segs) == 1 and segs[0].n == 80 and segs[0].n_filled == n_gap
    else:
        assert [(s.start, s.n) for s in segs] == [(0, 30), (30 + n_gap, 50 - n_gap)]
        assert all(s.n_filled == 0 for s in segs)


def test_fill_gaps_zero_disables_filling():
    time, rate, error, frac = _curve()
    _punch(rate, error, frac, slice(10, 11))
    segs = make_segments(time, rate, error, frac, DT, **_seg(fill_gaps=0.0))
    assert [(s.start, s.n) for s in segs] == [(0, 10), (11, 49)]


def test_gaps_at_the_ends_are_not_filled():
    time, rate, error, frac = _curve()
    _punch(rate, error, frac, slice(0, 2))
    _punch(rate, error, frac, slice(57, 60))
    (s,) = make_segments(time, rate, error, frac, DT, **_seg())
    assert (s.start, s.n, s.n_filled) == (2, 55, 0)
    np.testing.assert_array_equal(s.time, time[2:57])


@pytest.mark.parametrize(("value", "good"), [(0.6, True), (0.5999, False), (1.05, True)])
def test_fracexp_threshold_inclusive(value, good):
    time, rate, error, frac = _curve()
    frac[1, 5] = value  # one band only: still aligned
    mask = good_bins(rate, error, frac, min_fracexp=0.6)
    assert mask[5] == good and mask.sum() == 59 + good
    segs = make_segments(time, rate, error, frac, DT, **_seg(fill_gaps=0.0))
    assert len(segs) == (1 if good else 2)


def test_shared_fracexp_1d_and_finite_rate_with_low_exposure_is_bad():
    time, rate, error, _ = _curve()
    frac = np.ones(60)
    frac[7] = 0.3  # rate stays finite but exposure too low
    segs = make_segments(time, rate, error, frac, DT, **_seg(fill_gaps=0.0))
    assert [(s.start, s.n) for s in segs] == [(0, 7), (8, 52)]


def test_alignment_across_bands_nan_in_one_band():
    time, rate, error, frac = _curve(n_band=3)
    orig = rate.copy()
    rate[2, 40] = np.nan  # only band 2 is missing
    (s,) = make_segments(time, rate, error, frac, DT, **_seg())
    assert s.filled[40] and s.n_filled == 1
    assert np.all(np.isfinite(s.rate)) and np.all(np.isfinite(s.error))
    # every band of the bad bin is replaced (not only band 2)
    assert np.all(s.rate[:2, 40] != orig[:2, 40])
    segs = make_segments(time, rate, error, frac, DT, **_seg(fill_gaps=0.0))
    assert [(x.start, x.n) for x in segs] == [(0, 40), (41, 19)]


@pytest.mark.parametrize(("length_bins", "kept"), [(14, True), (13, False)])
def test_min_length_boundary(length_bins, kept):
    time, rate, error, frac = _curve(n=40)
    _punch(rate, error, frac, slice(length_bins, 40))  # one stretch of length_bins bins
    segs = make_segments(time, rate, error, frac, DT, min_length=1400.0, rng=0)
    assert len(segs) == int(kept)
    if kept:
        assert segs[0].length == 1400.0


def test_determinism_and_seed_dependence():
    time, rate, error, frac = _curve()
    _punch(rate, error, frac, slice(10, 13))
    (a,) = make_segments(time, rate, error, frac, DT, **_seg(rng=11))
    (b,) = make_segments(time, rate, error, frac, DT, **_seg(rng=np.random.default_rng(11)))
    (c,) = make_segments(time, rate, error, frac, DT, **_seg(rng=12))
    np.testing.assert_array_equal(a.rate, b.rate)
    assert np.all(a.rate[:, 10:13] != c.rate[:, 10:13])
    gap = [10, 11, 12]
    np.testing.assert_array_equal(np.delete(a.rate, gap, 1), np.delete(c.rate, gap, 1))


def test_equal_segment_length_cutting():
    time, rate, error, frac = _curve(n=60)
    _punch(rate, error, frac, slice(25, 40))  # 15-bin gap > fill_gaps: split
    segs = make_segments(time, rate, error, frac, DT, min_length=0.0, segment_length=1000.0, rng=0)
    # stretch 0..24 -> [0,10), [10,20); stretch 40..59 -> [40,50), [50,60)
    assert [(s.start, s.n) for s in segs] == [(0, 10), (10, 10), (40, 10), (50, 10)]
    np.testing.assert_array_equal(segs[2].rate, rate[:, 40:50])
    np.testing.assert_array_equal(segs[1].time, time[10:20])


def test_min_length_applies_before_cutting():
    time, rate, error, frac = _curve(n=60)
    _punch(rate, error, frac, slice(25, 40))
    segs = make_segments(
        time, rate, error, frac, DT, min_length=2100.0, segment_length=1000.0, rng=0
    )
    assert [(s.start, s.n) for s in segs] == [(0, 10), (10, 10)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"segment_length": 1050.0},
        {"segment_length": 0.0},
        {"min_length": -1.0},
        {"fill_gaps": -5.0},
        {"min_fracexp": float("nan")},
    ],
)
def test_bad_parameters_raise_config_error(kwargs):
    time, rate, error, frac = _curve()
    with pytest.raises(ConfigError):
        make_segments(time, rate, error, frac, DT, **kwargs)


def test_uneven_grid_and_bad_shapes_raise():
    time, rate, error, frac = _curve()
    bad_time = time.copy()
    bad_time[10:] += 3.0
    with pytest.raises(ValueError, match="even grid"):
        make_segments(bad_time, rate, error, frac, DT)
    with pytest.raises(ValueError, match="error"):
        make_segments(time, rate, error[:, :-1], frac, DT)
    with pytest.raises(ConfigError):
        make_segments(time, rate, error, frac, 0.0)
