"""Good time intervals (GTIs): set operations, bin overlaps and tabgtigen emulation.

A GTI table is an ``(n, 2)`` float64 array of ``[start, stop)`` intervals in
seconds (mission elapsed time), sorted and non-overlapping once normalised. An
instant ``t`` is good when ``start <= t < stop`` for some row (see
``docs/semantics.md`` §4).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "normalize",
    "intersect",
    "union",
    "contains",
    "overlap_with_bins",
    "total",
    "from_good_samples",
]


def normalize(gti: ArrayLike) -> NDArray[np.float64]:
    """Sort intervals, merge overlapping or touching ones and drop empty ones.

    Parameters
    ----------
    gti : array_like, shape (n, 2)
        ``[start, stop)`` pairs in seconds.

    Returns
    -------
    numpy.ndarray, shape (m, 2)
        The same set of instants as a sorted, disjoint table.
    """
    arr = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
    arr = arr[arr[:, 1] > arr[:, 0]]
    if len(arr) == 0:
        return np.empty((0, 2))
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    merged = [arr[0].copy()]
    for start, stop in arr[1:]:
        if start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append(np.array([start, stop]))
    return np.vstack(merged)


def intersect(*gtis: ArrayLike) -> NDArray[np.float64]:
    """Instants good in every table.

    Parameters
    ----------
    *gtis : array_like, shape (n_i, 2)
        Any number of GTI tables; with none, the result is empty.

    Returns
    -------
    numpy.ndarray, shape (m, 2)
        The normalised intersection.
    """
    if not gtis:
        return np.empty((0, 2))
    result = normalize(gtis[0])
    for other in gtis[1:]:
        b = normalize(other)
        out = []
        i = j = 0
        while i < len(result) and j < len(b):
            lo = max(result[i, 0], b[j, 0])
            hi = min(result[i, 1], b[j, 1])
            if hi > lo:
                out.append((lo, hi))
            if result[i, 1] < b[j, 1]:
                i += 1
            else:
                j += 1
        result = normalize(out)
    return result


def union(*gtis: ArrayLike) -> NDArray[np.float64]:
    """Instants good in at least one table (normalised)."""
    parts = [np.asarray(g, dtype=np.float64).reshape(-1, 2) for g in gtis]
    return normalize(np.vstack(parts) if parts else np.empty((0, 2)))


def contains(gti: ArrayLike, t: ArrayLike) -> NDArray[np.bool_]:
    """Whether each instant lies in the GTIs (``start <= t < stop``).

    Parameters
    ----------
    gti : array_like, shape (n, 2)
        GTI table (normalised internally).
    t : array_like
        Times in seconds.

    Returns
    -------
    numpy.ndarray of bool
        Same shape as ``t``.
    """
    g = normalize(gti)
    t = np.asarray(t, dtype=np.float64)
    if len(g) == 0:
        return np.zeros(t.shape, dtype=bool)
    k = np.searchsorted(g[:, 0], t, side="right") - 1
    ok = k >= 0
    kk = np.where(ok, k, 0)
    inside: NDArray[np.bool_] = ok & (t < g[kk, 1])
    return inside


def overlap_with_bins(gti: ArrayLike, edges: ArrayLike) -> NDArray[np.float64]:
    """Seconds of each bin ``[edges[k], edges[k+1])`` covered by the GTIs.

    Parameters
    ----------
    gti : array_like, shape (n, 2)
        GTI table.
    edges : array_like, shape (n_bins + 1,)
        Increasing bin edges in seconds.

    Returns
    -------
    numpy.ndarray, shape (n_bins,)
        Overlap in seconds, computed exactly from the interval end points.
    """
    g = normalize(gti)
    edges = np.asarray(edges, dtype=np.float64)
    out = np.zeros(len(edges) - 1)
    lo_bins, hi_bins = edges[:-1], edges[1:]
    for start, stop in g:
        k0 = max(np.searchsorted(hi_bins, start, side="right"), 0)
        k1 = min(np.searchsorted(lo_bins, stop, side="left"), len(out))
        if k1 <= k0:
            continue
        seg = np.minimum(hi_bins[k0:k1], stop) - np.maximum(lo_bins[k0:k1], start)
        out[k0:k1] += np.clip(seg, 0.0, None)
    return out


def total(gti: ArrayLike) -> float:
    """Total good time in seconds."""
    g = normalize(gti)
    return float(np.sum(g[:, 1] - g[:, 0]))


def from_good_samples(
    times: ArrayLike, good: ArrayLike, prefraction: float = 0.5, postfraction: float = 0.5
) -> NDArray[np.float64]:
    """GTIs from a sampled boolean condition, as SAS ``tabgtigen`` makes them.

    Each maximal run ``a..b`` of good samples becomes
    ``[t_a - pre * (t_a - t_{a-1}), t_b + post * (t_{b+1} - t_b)]``; at the first
    or last sample the single available neighbour spacing is used
    (``docs/semantics.md`` §9). Touching runs merge.

    Parameters
    ----------
    times : array_like, shape (n,)
        Increasing sample times in seconds (the TIME column of the rate curve).
    good : array_like of bool, shape (n,)
        The condition evaluated per sample (e.g. ``RATE < 0.7``).
    prefraction, postfraction : float
        Fractions of the neighbouring sample spacing added before and after each
        run (tabgtigen's ``prefraction``, default 0.5 of the sampling).

    Returns
    -------
    numpy.ndarray, shape (m, 2)
        Normalised GTI table.
    """
    t = np.asarray(times, dtype=np.float64)
    ok = np.asarray(good, dtype=bool)
    if len(t) == 0 or not ok.any():
        return np.empty((0, 2))
    if len(t) == 1:
        return np.empty((0, 2))
    spacing = np.diff(t)
    before = np.concatenate([[spacing[0]], spacing])  # t_i - t_{i-1}
    after = np.concatenate([spacing, [spacing[-1]]])  # t_{i+1} - t_i
    padded = np.concatenate([[False], ok, [False]]).astype(np.int8)
    change = np.diff(padded)
    starts = np.flatnonzero(change == 1)
    stops = np.flatnonzero(change == -1) - 1
    rows = np.column_stack(
        [t[starts] - prefraction * before[starts], t[stops] + postfraction * after[stops]]
    )
    return normalize(rows)
