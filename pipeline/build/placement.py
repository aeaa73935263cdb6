"""Placing a first source and background circle on an event list's events (``xlcat init``).

Everything here works on the screened events' sky pixels (X, Y) and CCD numbers, with
sizes in sky pixels; :mod:`pipeline.build.scaffold` converts to and from the sky.

- The source: the circle at the target position, moved onto the centroid of the events
  around it when a source stands out there (:func:`recentre`, :func:`source_excess`); where
  no event lies near the target (or there is no target), on the brightest spot of the list
  (:func:`brightest_spot`).
- The source's CCD: the CCD most events inside the source circle are on (:func:`source_ccd`).
- The background (:func:`choose_background`): candidate circles on rings around the source,
  kept when the circle lies wholly inside the area the source CCD's events cover (their
  convex hull), at least :data:`CCD_PURITY` of the events inside it are on that CCD, and its
  edge is at least one source radius from the source circle; of those, the largest radius
  that has any, then the lowest count density. Nothing is refused: without a qualifying
  circle the best candidate is returned, marked as such; only a list with no events at all
  around the source (a list cut to the source region) gets no background.

These are first guesses for a person to check in ds9, not a source detection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

__all__ = [
    "CCD_PURITY",
    "SourceExcess",
    "BackgroundChoice",
    "recentre",
    "brightest_spot",
    "source_excess",
    "source_ccd",
    "choose_background",
]

#: Least fraction of the events in a background circle that must be on the source's CCD.
CCD_PURITY = 0.99

Points = NDArray[np.floating]


def _near(x: Points, y: Points, cx: float, cy: float, r: float) -> NDArray[np.bool_]:
    """True where (x, y) lies within r of (cx, cy), border included."""
    dx, dy = x - cx, y - cy
    inside: NDArray[np.bool_] = dx * dx + dy * dy <= r * r
    return inside


def recentre(
    x: Points,
    y: Points,
    start: tuple[float, float],
    radius: float,
    *,
    max_shift: float,
    iterations: int = 50,
    tolerance: float = 0.05,
) -> tuple[float, float] | None:
    """Move a circle onto the centroid of the events inside it, until it stops moving.

    Each step puts the centre at the mean position of the events within ``radius`` of it (a
    flat-kernel mean shift); a uniform background pulls towards the current centre only, so
    the circle climbs onto the nearest concentration of events.

    Parameters
    ----------
    x, y : ndarray
        Event positions, sky pixels.
    start : (float, float)
        First centre, sky pixels.
    radius : float
        Circle radius, sky pixels.
    max_shift : float
        Give up (return None) when the centre moves farther than this from ``start``.
    iterations : int
        Most steps taken.
    tolerance : float
        Stop when a step is shorter than this, sky pixels.

    Returns
    -------
    (float, float) or None
        The centre, or None when the circle holds no event or wanders beyond ``max_shift``.
    """
    cx, cy = float(start[0]), float(start[1])
    zone = _near(x, y, cx, cy, radius + max_shift)
    xs, ys = x[zone].astype(np.float64), y[zone].astype(np.float64)
    for _ in range(iterations):
        inside = _near(xs, ys, cx, cy, radius)
        if not inside.any():
            return None
        nx, ny = float(xs[inside].mean()), float(ys[inside].mean())
        if math.hypot(nx - start[0], ny - start[1]) > max_shift:
            return None
        step = math.hypot(nx - cx, ny - cy)
        cx, cy = nx, ny
        if step < tolerance:
            break
    return cx, cy


def brightest_spot(x: Points, y: Points, radius: float) -> tuple[float, float] | None:
    """The centre of the densest concentration of events, for a circle of ``radius``.

    The events are counted in cells of ``radius / 2`` and summed over 3 x 3 cells; from the
    richest cell's centre :func:`recentre` moves the circle onto the events' centroid.

    Parameters
    ----------
    x, y : ndarray
        Event positions, sky pixels.
    radius : float
        Circle radius, sky pixels.

    Returns
    -------
    (float, float) or None
        None when there are no events.
    """
    if x.size == 0:
        return None
    cell = radius / 2.0
    lo_x, lo_y = float(x.min()) - cell, float(y.min()) - cell
    nx = int((float(x.max()) - lo_x) // cell) + 2
    ny = int((float(y.max()) - lo_y) // cell) + 2
    counts, _, _ = np.histogram2d(
        x, y, bins=[nx, ny], range=[[lo_x, lo_x + nx * cell], [lo_y, lo_y + ny * cell]]
    )
    summed = ndimage.uniform_filter(counts, size=3, mode="constant")
    i, j = np.unravel_index(int(np.argmax(summed)), summed.shape)
    start = (lo_x + (i + 0.5) * cell, lo_y + (j + 0.5) * cell)
    found = recentre(x, y, start, radius, max_shift=2.0 * radius)
    return found if found is not None else start


@dataclass(frozen=True)
class SourceExcess:
    """Events in a source circle against what its surroundings predict.

    Attributes
    ----------
    counts : int
        Events inside the circle.
    expected : float
        Events the surroundings' density (a ring ``inner``-``outer`` around it) predicts.
    significant : bool
        ``counts - expected >= 5 sqrt(max(expected, 1))`` and ``counts >= 10``.
    """

    counts: int
    expected: float
    significant: bool


def source_excess(
    x: Points, y: Points, centre: tuple[float, float], radius: float, inner: float, outer: float
) -> SourceExcess:
    """How far the events in a circle stand out above a ring around it.

    Parameters
    ----------
    x, y : ndarray
        Event positions, sky pixels.
    centre : (float, float)
        Circle centre, sky pixels.
    radius : float
        Circle radius, sky pixels.
    inner, outer : float
        The ring measuring the surroundings, sky pixels (inner > radius).

    Returns
    -------
    SourceExcess
    """
    cx, cy = centre
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    counts = int(np.count_nonzero(r2 <= radius * radius))
    ring = int(np.count_nonzero((r2 > inner * inner) & (r2 <= outer * outer)))
    expected = ring * radius * radius / (outer * outer - inner * inner)
    significant = counts >= 10 and counts - expected >= 5.0 * math.sqrt(max(expected, 1.0))
    return SourceExcess(counts, expected, significant)


def source_ccd(
    x: Points, y: Points, ccd: NDArray[np.integer], centre: tuple[float, float], radius: float
) -> tuple[int, float] | None:
    """The CCD most events inside the source circle lie on, and the fraction on it.

    Returns
    -------
    (int, float) or None
        None when the circle holds no event.
    """
    inside = _near(x, y, centre[0], centre[1], radius)
    if not inside.any():
        return None
    numbers = np.bincount(ccd[inside].astype(np.int64))
    best = int(np.argmax(numbers))
    return best, float(numbers[best] / inside.sum())


@dataclass(frozen=True)
class BackgroundChoice:
    """The background circle chosen, and what was measured of it.

    Attributes
    ----------
    x, y, r : float
        Centre and radius, sky pixels.
    ring : float
        Distance of the centre from the source, sky pixels.
    angle : float
        Direction of the centre from the source, degrees counter-clockwise from +X.
    events : int
        Screened events inside it.
    on_ccd : int
        Of those, events on the source's CCD.
    inside_ccd : bool
        The circle lies wholly inside the convex hull of that CCD's events.
    away : bool
        Its edge is at least one source radius from the source circle's edge.
    qualified : bool
        All conditions met (inside the CCD, ``on_ccd >= CCD_PURITY * events``, away).
    candidates : int
        Circles considered.
    """

    x: float
    y: float
    r: float
    ring: float
    angle: float
    events: int
    on_ccd: int
    inside_ccd: bool
    away: bool
    qualified: bool
    candidates: int

    @property
    def purity(self) -> float:
        """Fraction of its events on the source's CCD (1 for an empty circle)."""
        return self.on_ccd / self.events if self.events else 1.0

    @property
    def density(self) -> float:
        """Events per square sky pixel."""
        return self.events / (math.pi * self.r * self.r)


def _ccd_hull(x: Points, y: Points) -> NDArray[np.float64] | None:
    """Facet equations (a, b, c) of the events' convex hull, inside where a x + b y + c <= 0."""
    if x.size < 3:
        return None
    try:
        hull = ConvexHull(np.column_stack([x, y]).astype(np.float64))
    except QhullError:  # all points on a line
        return None
    equations: NDArray[np.float64] = hull.equations
    return equations


def choose_background(
    x: Points,
    y: Points,
    ccd: NDArray[np.integer],
    centre: tuple[float, float],
    source_radius: float,
    source_ccd_number: int,
    *,
    rings: Sequence[float],
    radii: Sequence[float],
    angles: int = 36,
) -> BackgroundChoice | None:
    """A background circle near the source, on the source's CCD, where the events are sparsest.

    Candidates: centres on each ring (distance from the source) at ``angles`` directions
    (0 = +X, counter-clockwise), for each radius. A candidate qualifies when it lies wholly
    inside the convex hull of the source CCD's events (so on that CCD, within its part of the
    field of view), at least :data:`CCD_PURITY` of its events are on that CCD, and its edge is
    at least ``source_radius`` from the source circle's edge. The largest radius with a
    qualifying candidate wins, and of its candidates the one with the fewest events (ties: the
    nearer ring, then the smaller angle). Without any qualifying candidate, the best of all is
    returned (``qualified`` False): away from the source first, then the largest share of
    events on the CCD, inside the CCD, the larger radius, the lower density.

    Parameters
    ----------
    x, y : ndarray
        Screened event positions, sky pixels.
    ccd : ndarray of int
        Their CCD numbers (CCDNR).
    centre : (float, float)
        The source circle's centre, sky pixels.
    source_radius : float
        Its radius, sky pixels.
    source_ccd_number : int
        The CCD the background must be on.
    rings, radii : sequence of float
        Distances of the candidates' centres from the source, and their radii, sky pixels.
    angles : int
        Directions per ring.

    Returns
    -------
    BackgroundChoice or None
        None when no event at all lies in the area the candidates cover (apart from the
        source circle itself): the list holds no background to measure.
    """
    cx, cy = centre
    reach = max(rings) + max(radii)
    zone = _near(x, y, cx, cy, reach)
    xs, ys, cs = x[zone].astype(np.float64), y[zone].astype(np.float64), ccd[zone]
    r2 = (xs - cx) ** 2 + (ys - cy) ** 2
    nearest = max(min(rings) - max(radii), source_radius)
    if not np.any(r2 > nearest * nearest):
        return None
    on_source_ccd = cs == source_ccd_number
    hull = _ccd_hull(
        x[ccd == source_ccd_number].astype(np.float64),
        y[ccd == source_ccd_number].astype(np.float64),
    )
    found: list[BackgroundChoice] = []
    total = len(rings) * len(radii) * angles
    for r in sorted(radii, reverse=True):
        for ring in sorted(rings):
            for k in range(angles):
                angle = 360.0 * k / angles
                bx = cx + ring * math.cos(math.radians(angle))
                by = cy + ring * math.sin(math.radians(angle))
                inside = _near(xs, ys, bx, by, r)
                events = int(np.count_nonzero(inside))
                on_ccd = int(np.count_nonzero(inside & on_source_ccd))
                inside_ccd = hull is not None and bool(
                    np.all(hull[:, 0] * bx + hull[:, 1] * by + hull[:, 2] <= -r)
                )
                away = ring - r - source_radius >= source_radius
                qualified = inside_ccd and away and on_ccd >= CCD_PURITY * events
                found.append(
                    BackgroundChoice(
                        bx, by, r, ring, angle, events, on_ccd, inside_ccd, away, qualified, total
                    )
                )
    good = [c for c in found if c.qualified]
    if good:
        best_r = max(c.r for c in good)
        return min((c for c in good if c.r == best_r), key=lambda c: (c.density, c.ring, c.angle))

    def fallback_key(c: BackgroundChoice) -> tuple[bool, float, bool, float, float]:
        share = c.on_ccd / c.events if c.events else 0.0  # an empty circle off the CCD: worst
        return (not c.away, -share, not c.inside_ccd, -c.r, c.density)

    return min(found, key=fallback_key)
