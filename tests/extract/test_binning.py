"""ObservationBinner against numpy's searchsorted and a per-event count, dense and sparse."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.extract import binning
from pipeline.extract.binning import ObservationBinner, TimeGrid


def test_pi_columns_equal_searchsorted() -> None:
    edges = [200, 201, 500, 2000, 2005, 12001]
    binner = ObservationBinner(TimeGrid(0.0, 10.0, 3), [], edges)
    pi = np.arange(-5, 13000, dtype=np.int16)
    want = np.searchsorted(edges, pi, side="right") - 1
    want[(want < 0) | (want >= len(edges) - 1)] = -1
    for values in (pi, pi.astype(np.int64), pi.astype(np.uint16)[pi >= 0], pi.astype(np.float64)):
        got = binner.pi_columns(values)
        np.testing.assert_array_equal(got, want[-len(values) :])
    assert binner.pi_columns(np.array([199, 200, 12000, 12001, 32767])).tolist() == [
        -1,
        0,
        4,
        -1,
        -1,
    ]


def _brute(time, pi, ccd, mask, edges, pi_edges, number):
    """Events of CCD ``number`` per (elementary interval, PI column), one event at a time."""
    out = np.zeros((len(edges) - 1, len(pi_edges) - 1), np.int64)
    for t, p, c, m in zip(time, pi, ccd, mask, strict=True):
        if not m or c != number:
            continue
        e = next((i for i in range(len(edges) - 1) if edges[i] <= t < edges[i + 1]), None)
        j = next((i for i in range(len(pi_edges) - 1) if pi_edges[i] <= p < pi_edges[i + 1]), None)
        if e is not None and j is not None:
            out[e, j] += 1
    return out


@pytest.mark.parametrize("dense_cells", [binning.DENSE_CELLS, 0])
def test_cubes_equal_a_count_event_by_event(monkeypatch, dense_cells: int) -> None:
    monkeypatch.setattr(binning, "DENSE_CELLS", dense_cells)
    rng = np.random.default_rng(3)
    grid = TimeGrid(100.0, 10.0, 6)
    bounds = [100.0, 113.25, 141.0, 141.5, 170.0]
    pi_edges = [300, 1000, 1001, 4000, 9000]
    binner = ObservationBinner(grid, bounds, pi_edges)
    assert binner.dense is (dense_cells > 0)
    n = 3000
    time = np.concatenate([rng.uniform(95.0, 165.0, n), binner.edges, [np.nan]])
    pi = np.concatenate(
        [rng.integers(250, 9100, n), rng.integers(250, 9100, len(binner.edges) + 1)]
    )
    ccd = rng.choice(np.array([4, 5, 7]), len(time))
    src = rng.uniform(size=len(time)) < 0.7
    bkg = ~src & (rng.uniform(size=len(time)) < 0.5)
    # chunks of very different sizes: one event at a time (np.add.at) and whole (bincount)
    for lo, hi in ((0, 1), (1, 50), (50, len(time))):
        s = slice(lo, hi)
        binner.add(time[s], pi[s], ccd[s], src[s], bkg[s])
    for name, mask in (("src", src), ("bkg", bkg)):
        cubes = binner.ccd_cubes(name)
        assert sorted(cubes) == [4, 5, 7]
        for number, cube in cubes.items():
            got = cube if binner.dense else cube.toarray()
            want = _brute(time, pi, ccd, mask, binner.edges, pi_edges, number)
            np.testing.assert_array_equal(got, want)
        counts = binner.ccd_counts(name)
        assert counts.sum() == sum(c.sum() for c in cubes.values()) > 100
        region = binner.region(name)
        total = region.cube if binner.dense else region.cube.toarray()
        assert total.sum() == counts.sum()
        inside = (time >= grid.t0) & (time < grid.stop)  # NaN is outside
        assert binner.outside[name] == int(np.count_nonzero(mask & ~inside))
