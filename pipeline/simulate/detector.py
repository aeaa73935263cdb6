"""The simulated EPIC-pn detector: CCD layout, per-CCD GTIs, and the PATTERN and FLAG of events.

Everything here belongs to the instrument, not to the sky: where the 12 CCDs are in sky pixels,
the live fraction and frame time, which intervals each CCD recorded, and how events are split into
pattern groups and flagged. The numbers are simulator choices described in
:mod:`pipeline.simulate`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    "PN_PIXEL",
    "PileUp",
    "pile_up",
]

MJDREF = 50814.0
LIVE_FRACTION = 0.994
FRMTIME_MS = 73.36
XMMEA_EP_MASK = 0x00050030  # made up: bits 0x10, 0x20, 0x10000, 0x40000
_FLAG_IN, _FLAG_OUT = (0x10, 0x20, 0x10000, 0x40000), (0x1, 0x4, 0x100000)
CCD_WIDTH, CCD_HEIGHT, CCD_GAP = 5248, 16400, 80
X_ORIGIN, Y_ORIGIN = 10000, 9600
#: Sky pixels per pn CCD pixel (150 um = 4.1 arcsec at 0.05 arcsec per sky pixel).
PN_PIXEL = 82
#: Highest PI (eV) a piled-up event may reach; a sum above it is lost (above the upper threshold).
PILEUP_PI_MAX = 15000
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


# -- Pile-up --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PileUp:
    """What :func:`pile_up` did: events in, merged groups, events lost.

    Attributes
    ----------
    frame_time : float
        Seconds per frame.
    n_in : int
        Events before pile-up.
    n_groups : int
        Groups of two or more events read out as one event.
    n_merged : int
        Events that went into those groups.
    n_lost : int
        Events of groups that were lost (a summed PI above ``PILEUP_PI_MAX`` or a footprint of
        more than 4 pixels, an invalid pattern).
    """

    frame_time: float
    n_in: int
    n_groups: int
    n_merged: int
    n_lost: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return asdict(self)


def _footprint(pattern: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
    """Pixels an event's charge covers: 1 (single), 2 (double), 3 (triple), 4 (quadruple), 5+."""
    p = np.asarray(pattern, dtype=np.int64)
    return np.select([p == 0, p <= 4, p <= 8, p <= 12], [1, 2, 3, 4], 5)


def pile_up(
    rng: np.random.Generator,
    t: NDArray[np.float64],
    x: NDArray[np.int64],
    y: NDArray[np.int64],
    pi: NDArray[np.int16],
    pattern: NDArray[np.uint8],
    flag: NDArray[np.int32],
    t0: float,
    frame_time: float,
) -> tuple[NDArray[np.bool_], PileUp]:
    """Read events out frame by frame: events of one frame in touching pixels become one event.

    The pn reads each CCD once per frame (``frame_time``, 73.36 ms in full-frame mode); the
    charge of two photons absorbed during one frame in the same pixel or in neighbouring pixels
    (a 3 x 3 pn-pixel neighbourhood, 82 sky pixels per pn pixel) is read as one event. The
    chance of that for a photon is 1 - exp(-mu), mu the expected counts per frame in its
    neighbourhood (count rate x PSF fraction there x frame time), so it grows with the count
    rate and is far larger in the PSF core than in the wings. A group (events of one frame
    connected through neighbouring pixels) becomes one event:

    - energy pile-up: PI = the sum of the members' PI; the group is lost when the sum exceeds
      ``PILEUP_PI_MAX`` (above the upper threshold);
    - pattern pile-up: its footprint is the number of distinct pixels the members hit plus the
      extra pixels of members that were already doubles, triples or quadruples; 1 pixel gives a
      single (PATTERN 0), 2 a double (1-4), 3 a triple (5-8), 4 a quadruple (9-12), more an
      invalid pattern and the group is lost;
    - it keeps the time and position of its most energetic member and the OR of the FLAGs.

    So singles migrate to doubles and beyond and counts move up in energy, as in real piled-up
    data. Positions are the simulator's integer sky pixels; the pn pixel of an event is
    ``floor(X / PN_PIXEL), floor(Y / PN_PIXEL)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream (which double, triple or quadruple pattern a merged group gets).
    t, x, y, pi, pattern, flag : NDArray
        The events (any order). ``pi``, ``pattern`` and ``flag`` are changed in place for the
        events that absorb a group.
    t0 : float
        Start of the first frame, s MET.
    frame_time : float
        Seconds per frame (> 0).

    Returns
    -------
    keep : NDArray of bool
        False for events merged into another one or lost.
    stats : PileUp
    """
    n = t.size
    keep = np.ones(n, dtype=bool)
    frame = np.floor((t - t0) / frame_time).astype(np.int64)
    order = np.argsort(frame, kind="stable")
    f_sorted = frame[order]
    starts = np.flatnonzero(np.r_[True, f_sorted[1:] != f_sorted[:-1]])
    stops = np.r_[starts[1:], n]
    multi = np.flatnonzero(stops - starts >= 2)
    px, py = np.floor_divide(x, PN_PIXEL), np.floor_divide(y, PN_PIXEL)
    size = _footprint(pattern)
    n_groups = n_merged = n_lost = 0
    for k in multi:
        idx = order[starts[k] : stops[k]]
        gx, gy = px[idx].tolist(), py[idx].tolist()
        parent = list(range(idx.size))

        def root(i: int, parent: list[int] = parent) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(idx.size):
            for j in range(i + 1, idx.size):
                if abs(gx[i] - gx[j]) <= 1 and abs(gy[i] - gy[j]) <= 1:
                    parent[root(j)] = root(i)
        groups: dict[int, list[int]] = {}
        for i in range(idx.size):
            groups.setdefault(root(i), []).append(i)
        for members in groups.values():
            if len(members) < 2:
                continue
            ev = idx[members]
            n_groups += 1
            n_merged += ev.size
            total = int(pi[ev].astype(np.int64).sum())
            pixels = len({(gx[i], gy[i]) for i in members})
            footprint = pixels + int((size[ev] - 1).sum())
            keep[ev] = False
            if total > PILEUP_PI_MAX or footprint > 4:
                n_lost += ev.size
                continue
            head = int(ev[np.argmax(pi[ev])])
            keep[head] = True
            pi[head] = total
            lo = {1: 0, 2: 1, 3: 5, 4: 9}[footprint]
            pattern[head] = lo if footprint == 1 else int(rng.integers(lo, lo + 4))
            flag[head] = int(np.bitwise_or.reduce(flag[ev]))
    stats = PileUp(float(frame_time), int(n), n_groups, n_merged, n_lost)
    return keep, stats
