"""The native ratios: the count-weighted formula per energy bin and its binomial errors."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.pileup.fractions import PatternCounts, otm_ratios

EDGES = (200, 500, 1000, 2000, 4000)


def _counts(total, singles, doubles):
    return PatternCounts(EDGES, *(np.asarray(a, dtype=np.int64) for a in (total, singles, doubles)))


def test_ratio_is_observed_over_expected_per_bin():
    # inner part: 1000 events in each 0.5-1 and 1-2 keV bin; reference fractions 0.8 and 0.6
    inner = _counts([50, 1000, 1000, 10], [40, 700, 550, 5], [5, 200, 300, 3])
    ref = _counts([30, 500, 400, 7], [24, 400, 240, 3], [3, 50, 100, 2])
    r = otm_ratios(inner, ref, band=(500, 2000))
    expected_singles = 1000 * 0.8 + 1000 * 0.6 + 400 + 240  # inner x ref fraction + ref itself
    assert r.s.expected == pytest.approx(expected_singles)
    assert r.s.observed == 700 + 550 + 400 + 240
    assert r.s.value == pytest.approx((700 + 550 + 640) / expected_singles)
    assert r.d.value == pytest.approx((200 + 300 + 150) / (1000 * 0.1 + 1000 * 0.25 + 150))
    assert r.n_band == 2900 and r.n_reference == 900 and r.note is None
    # bins outside the band play no part
    other = _counts([5000, 1000, 1000, 0], [0, 700, 550, 0], [0, 200, 300, 0])
    assert otm_ratios(other, ref, band=(500, 2000)).s == r.s


def test_a_bin_without_reference_events_is_left_out():
    inner = _counts([0, 100, 100, 0], [0, 70, 60, 0], [0, 20, 30, 0])
    ref = _counts([0, 0, 400, 0], [0, 0, 240, 0], [0, 0, 100, 0])
    r = otm_ratios(inner, ref, band=(500, 2000))
    assert r.note == (
        "bins 500-1000 eV left out: the reference annulus has no event there (100 events)"
    )
    assert r.s.value == pytest.approx((60 + 240) / (100 * 0.6 + 240))


def test_errors_match_the_scatter_of_simulated_counts():
    """The delta-method error against 4000 binomial draws of an unpiled source."""
    rng = np.random.default_rng(3)
    p_s = np.array([0.75, 0.73, 0.70, 0.66])
    n_inner, n_ref = np.array([800, 3000, 2500, 600]), np.array([300, 900, 700, 200])
    values, errors = [], []
    for _ in range(4000):
        si, sr = rng.binomial(n_inner, p_s), rng.binomial(n_ref, p_s)
        r = otm_ratios(
            _counts(n_inner, si, n_inner - si), _counts(n_ref, sr, n_ref - sr), band=(200, 4000)
        )
        values.append(r.s.value)
        errors.append(r.s.error)
    assert np.mean(values) == pytest.approx(1.0, abs=5e-4)
    assert np.std(values) == pytest.approx(np.mean(errors), rel=0.05)
    assert np.std(values) == pytest.approx(0.01202, abs=2e-5)
    # 3 sigma: about 0.3 % of unpiled draws are flagged
    deviations = (np.array(values) - 1) / np.array(errors)
    assert np.mean(np.abs(deviations) > 3) < 0.01


def test_edges_must_match():
    a = _counts([1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0])
    b = PatternCounts((200, 500, 1000, 3000, 4000), a.total, a.singles, a.doubles)
    with pytest.raises(ValueError, match="edges differ"):
        otm_ratios(a, b)
    with pytest.raises(ValueError, match="does not fall on the edges"):
        otm_ratios(a, a, band=(600, 2000))
