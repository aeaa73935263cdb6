"""The simulated EPIC-pn detector: CCD layout, per-CCD GTIs, and the PATTERN and FLAG of events.

Everything here belongs to the instrument, not to the sky: where the 12 CCDs are in sky pixels,
the live fraction and frame time, which intervals each CCD recorded, and how events are split into
pattern groups and flagged. The numbers are simulator choices described in
:mod:`pipeline.simulate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MJDREF",
    "LIVE_FRACTION",
    "FRMTIME_MS",
    "XMMEA_EP_MASK",
    "CCD_WIDTH",
    "CCD_HEIGHT",
    "CCD_GAP",
    "X_ORIGIN",
    "Y_ORIGIN",
    "AIMPOINT",
    "ccd_rectangles",
    "ccd_of",
    "uniform_positions",
    "make_gtis",
    "in_gtis",
    "singles_probability",
    "event_tags",
]

MJDREF = 50814.0
LIVE_FRACTION = 0.994
FRMTIME_MS = 73.36
XMMEA_EP_MASK = 0x00050030  # made up: bits 0x10, 0x20, 0x10000, 0x40000
_FLAG_IN, _FLAG_OUT = (0x10, 0x20, 0x10000, 0x40000), (0x1, 0x4, 0x100000)
CCD_WIDTH, CCD_HEIGHT, CCD_GAP = 5248, 16400, 80
X_ORIGIN, Y_ORIGIN = 10000, 9600
AIMPOINT = (28600, 21000)


# -- CCD layout ---------------------------------------------------------------------------------
def ccd_rectangles() -> dict[int, tuple[int, int, int, int]]:
    """Return the simulated pn CCD layout in sky pixels.

    Returns
    -------
    dict[int, tuple[int, int, int, int]]
        CCD number (1..12) -> (xlo, xhi, ylo, yhi); CCD n holds the integer pixels
        xlo <= X < xhi, ylo <= Y < yhi.
    """
    out = {}
    for n in range(1, 13):
        k, r = (n - 1) % 6, (n - 1) // 6
        x0 = X_ORIGIN + k * (CCD_WIDTH + CCD_GAP)
        y0 = Y_ORIGIN + r * (CCD_HEIGHT + CCD_GAP)
        out[n] = (x0, x0 + CCD_WIDTH, y0, y0 + CCD_HEIGHT)
    return out


def ccd_of(x: NDArray[np.integer[Any]], y: NDArray[np.integer[Any]]) -> NDArray[np.uint8]:
    """Return the CCD number of integer sky pixels, 0 where the pixel is off the detector.

    Parameters
    ----------
    x, y : NDArray
        Integer sky pixel coordinates (0.05 arcsec px).

    Returns
    -------
    NDArray
        CCD numbers 1..12 or 0, uint8, same shape as ``x``.
    """
    dx, dy = x - X_ORIGIN, y - Y_ORIGIN
    k, r = dx // (CCD_WIDTH + CCD_GAP), dy // (CCD_HEIGHT + CCD_GAP)
    ok = (
        (k >= 0)
        & (k < 6)
        & (r >= 0)
        & (r < 2)
        & (dx % (CCD_WIDTH + CCD_GAP) < CCD_WIDTH)
        & (dy % (CCD_HEIGHT + CCD_GAP) < CCD_HEIGHT)
    )
    return np.where(ok, 1 + k + 6 * r, 0).astype(np.uint8)


def uniform_positions(
    rng: np.random.Generator, n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Draw n sky pixels uniformly over the 12 CCDs (a CCD at random, then a pixel on it).

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    n : int
        Number of positions.

    Returns
    -------
    tuple of NDArray
        Integer X and Y sky pixels.
    """
    rect = np.array([ccd_rectangles()[c] for c in range(1, 13)])[rng.integers(0, 12, n)]
    return rect[:, 0] + rng.integers(0, CCD_WIDTH, n), rect[:, 2] + rng.integers(0, CCD_HEIGHT, n)


# -- GTIs ---------------------------------------------------------------------------------------
def _complement(gaps: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    """The intervals of [t0, t1) not covered by any gap."""
    out, cur = [], t0
    for a, b in sorted(gaps):
        a, b = max(a, t0), min(b, t1)
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < t1:
        out.append((cur, t1))
    return out


def make_gtis(
    rng: np.random.Generator, t0: float, t1: float, ccd_gaps: bool, long_gap: bool
) -> dict[int, list[tuple[float, float]]]:
    """Draw the GTIs of the 12 CCDs: [t0, t1) minus short per-CCD gaps and one optional long gap.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream (drawn from even when ``ccd_gaps`` is false, so the stream stays aligned).
    t0, t1 : float
        TSTART and TSTOP, s MET.
    ccd_gaps : bool
        Cut the gaps; if false every CCD has the single GTI [t0, t1).
    long_gap : bool
        Add a 1-3 ks gap (at most 15 % of the span) on all CCDs.

    Returns
    -------
    dict[int, list[tuple[float, float]]]
        CCD number (1..12) -> sorted [start, stop) intervals, s MET.
    """
    span = t1 - t0
    length = min(rng.uniform(1000, 3000), 0.15 * span)
    centre = t0 + rng.uniform(0.3, 0.7) * span
    common = [(centre - length / 2, centre + length / 2)] if ccd_gaps and long_gap else []
    gtis = {}
    for ccd in range(1, 13):
        n = int(rng.integers(1, 2 + int(span // 7000)))
        lengths = np.minimum(rng.uniform(20, 300, n), 0.03 * span)
        starts = t0 + rng.random(n) * (span - lengths)
        gaps = common + [(float(a), float(a + b)) for a, b in zip(starts, lengths, strict=True)]
        gtis[ccd] = _complement(gaps if ccd_gaps else [], t0, t1)
    return gtis


def in_gtis(
    t: NDArray[np.float64],
    ccd: NDArray[np.uint8],
    gtis: dict[int, list[tuple[float, float]]],
) -> NDArray[np.bool_]:
    """Return whether each event lies in a GTI of its own CCD (START <= t < STOP).

    Parameters
    ----------
    t : NDArray
        Event times, s MET.
    ccd : NDArray
        Event CCD numbers (0 = off the detector, never kept).
    gtis : dict[int, list[tuple[float, float]]]
        Sorted GTIs per CCD, as from :func:`make_gtis`.

    Returns
    -------
    NDArray
        Boolean mask, same length as ``t``.
    """
    keep = np.zeros(t.size, dtype=bool)
    for n, intervals in gtis.items():
        sel = np.flatnonzero(ccd == n)
        if not intervals or sel.size == 0:
            continue
        g = np.asarray(intervals)
        i = np.searchsorted(g[:, 0], t[sel], side="right") - 1
        keep[sel] = (i >= 0) & (t[sel] < g[np.maximum(i, 0), 1])
    return keep


# -- PATTERN and FLAG ---------------------------------------------------------------------------
def singles_probability(pi: NDArray[np.integer[Any]], particle: bool) -> NDArray[np.float64]:
    """Return the probability that an event is a single (PATTERN == 0).

    0.65 - 0.025 E/keV for particle background and flares, 0.75 - 0.025 E/keV for the source,
    clipped to [0.05, 0.95].

    Parameters
    ----------
    pi : NDArray
        PI in eV.
    particle : bool
        Particle background or flare event (else source).

    Returns
    -------
    NDArray
        Probabilities, same shape as ``pi``.
    """
    return np.clip((0.65 if particle else 0.75) - 0.025e-3 * pi, 0.05, 0.95)


def event_tags(
    rng: np.random.Generator, pi: NDArray[np.int16], particle: bool
) -> tuple[NDArray[np.uint8], NDArray[np.int32]]:
    """Draw the PATTERN and FLAG columns for events of the given PI.

    Non-singles are 77 % doubles (PATTERN 1-4) and 23 % triples/quadruples (5-12). 2.5 % of events
    carry a bit inside ``XMMEA_EP_MASK`` and 2.5 % only bits outside it; the rest have FLAG = 0.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    pi : NDArray
        PI in eV.
    particle : bool
        Particle background or flare events (see :func:`singles_probability`).

    Returns
    -------
    tuple of NDArray
        PATTERN (uint8) and FLAG (int32).
    """
    n = pi.size
    u, grp_u, pat_u = rng.random(n), rng.random(n), rng.random(n)
    multi = np.where(grp_u < 0.77, 1 + (pat_u * 4).astype(int), 5 + (pat_u * 8).astype(int))
    pattern = np.where(u < singles_probability(pi, particle), 0, multi).astype(np.uint8)
    f_u, which, extra = rng.random(n), rng.integers(0, 12, n), rng.random(n)
    bits_in, bits_out = np.array(_FLAG_IN), np.array(_FLAG_OUT)
    inside = bits_in[which % 4] | np.where(extra < 0.3, bits_out[which % 3], 0)
    outside = bits_out[which % 3] | np.where(extra < 0.3, bits_out[(which + 1) % 3], 0)
    flag = np.where(f_u < 0.025, inside, np.where(f_u < 0.05, outside, 0))
    return pattern, flag.astype(np.int32)
