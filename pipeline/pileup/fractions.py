"""Pattern fractions against energy and the 0.5-2 keV observed-to-expected ratios (native).

Pile-up shows in the pattern distribution: two photons read out in one frame in touching pixels
become one event of a larger pattern (a double instead of two singles) and of their summed
energy, so in a piled-up region the fraction of singles (PATTERN 0) falls below what an
unpiled source gives and the fraction of doubles (PATTERN 1-4) rises above it (SAS
``epatplot``; docs/semantics.md §15).

The native expected fractions come from the same source's outer annulus, where the count rate
per pixel and frame is far lower (the reference annulus, ``r_ref <= r <= r_out``). Pattern
fractions depend on energy, so they are compared per energy bin: in bin j the test region's
N_j valid events (PATTERN 0-12) would hold N_j f_j singles with the reference's singles fraction
f_j = S^ref_j / N^ref_j. Over the bins of 0.5-2 keV::

    s = sum_j S_j / sum_j N_j f_j        (observed singles / expected singles)
    d = sum_j D_j / sum_j N_j g_j        (doubles, g_j the reference's doubles fraction)

a count-weighted mean of the per-bin ratios. The test region is the extraction annulus
``r_in <= r <= r_out``; it contains the reference annulus, whose events agree with themselves,
so only its inner part ``r_in <= r < r_ref`` (I) can move the ratio, and the reference part
dilutes it as it would dilute the extraction. The error is the first-order (delta-method)
propagation of binomial counting errors: the inner part's singles are binomial with its
observed fraction, the reference's with its own; with ``s = (O_I + S_R) / (E_I + S_R)``::

    var(s) = [sum_j N^I_j p^I_j (1 - p^I_j)
              + sum_j N^R_j p^R_j (1 - p^R_j) ((1 - s) - s N^I_j / N^R_j)^2] / E^2

(the same for d). A bin whose reference is empty cannot give an expected fraction and is
left out (named in the result's note).

Limits: the reference must hold enough counts (the caller refuses fewer than a minimum) and be
unpiled itself (an outer annulus of a very bright source is piled too: the ratios then
understate the pile-up); the background is not subtracted (its pattern fractions differ from
the source's: a background-dominated outer annulus biases the reference); and once r_in
reaches r_ref nothing is left to compare (ratio 1 by construction), so the procedure stops
before.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pipeline.read.events import iter_event_chunks
from pipeline.select.expression import Expression
from schemas.build import Screening

__all__ = [
    "ENERGY_EDGES_EV",
    "RATIO_BAND_EV",
    "VALID_PATTERN_MAX",
    "SourceEvents",
    "read_source_events",
    "PatternCounts",
    "pattern_counts",
    "Ratio",
    "Ratios",
    "otm_ratios",
]

#: Energy bins (PI, eV) of the pattern-fraction tables; 0.5-2 keV in 250 eV bins.
ENERGY_EDGES_EV: tuple[int, ...] = (
    200,
    500,
    750,
    1000,
    1250,
    1500,
    1750,
    2000,
    3000,
    4000,
    6000,
    8000,
    12000,
)
#: The band of the observed-to-expected ratios (epatplot's ``pileupnumberenergyrange``).
RATIO_BAND_EV: tuple[int, int] = (500, 2000)
#: Valid patterns (singles, doubles, triples, quadruples), the fractions' denominator.
VALID_PATTERN_MAX = 12


@dataclass(frozen=True)
class SourceEvents:
    """The screened events of a source circle: distance from the centre, PI and PATTERN.

    Attributes
    ----------
    path : str
        The event file.
    centre : tuple of float
        (x, y), sky pixels.
    r_out : float
        Radius read, sky pixels (borders inclusive).
    r : ndarray
        Distance of each event from the centre, sky pixels.
    pi, pattern : ndarray
        PI (eV) and PATTERN of each event (PATTERN 0-12 only).
    """

    path: str
    centre: tuple[float, float]
    r_out: float
    r: NDArray[np.float64] = field(repr=False)
    pi: NDArray[np.int64] = field(repr=False)
    pattern: NDArray[np.int64] = field(repr=False)

    def in_band(self, lo: int, hi: int) -> NDArray[np.bool_]:
        """Events with ``lo <= PI < hi``."""
        return (self.pi >= lo) & (self.pi < hi)

    def count(self, r_lo: float, r_hi: float, band: tuple[int, int] = RATIO_BAND_EV) -> int:
        """Events with ``r_lo <= r <= r_hi`` in ``band``."""
        m = (self.r >= r_lo) & (self.r <= r_hi) & self.in_band(*band)
        return int(np.count_nonzero(m))


def read_source_events(
    path: str | os.PathLike[str],
    centre: tuple[float, float],
    r_out: float,
    screening: Screening,
    extra: Expression | None,
    chunk_rows: int = 500_000,
) -> SourceEvents:
    """Read the events of a circle with the build's screening, except PATTERN (0-12 kept).

    Parameters
    ----------
    path : str or os.PathLike
        Event file.
    centre : (float, float)
        Circle centre, sky pixels.
    r_out : float
        Circle radius, sky pixels (the border counts as inside).
    screening : Screening
        The exposure's bound screening: its FLAG condition, PI range and extra expression
        apply; its PATTERN limit does not (the fractions need every valid pattern).
    extra : Expression or None
        The screening's extra expression compiled with the file's header macros.
    chunk_rows : int
        Rows read at a time.

    Returns
    -------
    SourceEvents
    """
    columns = {"X", "Y", "PI", "PATTERN", "FLAG"} | set(extra.columns if extra else ())
    x0, y0 = centre
    parts: list[tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]] = []
    for chunk in iter_event_chunks(path, sorted(columns), chunk_rows):
        dx = chunk["X"].astype(np.float64) - x0
        dy = chunk["Y"].astype(np.float64) - y0
        d2 = dx * dx + dy * dy
        pi = chunk["PI"]
        ok = (d2 <= r_out * r_out) & (chunk["PATTERN"] <= VALID_PATTERN_MAX)
        ok &= (pi >= screening.pi[0]) & (pi <= screening.pi[1])
        if screening.flag_zero:
            ok &= chunk["FLAG"] == 0
        if extra is not None:
            ok &= extra.evaluate(chunk)
        i = np.flatnonzero(ok)
        parts.append(
            (
                np.sqrt(d2[i]),
                pi[i].astype(np.int64),
                chunk["PATTERN"][i].astype(np.int64),
            )
        )
    r = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    pis = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    pattern = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int64)
    return SourceEvents(os.fspath(path), (float(x0), float(y0)), float(r_out), r, pis, pattern)


@dataclass(frozen=True)
class PatternCounts:
    """Valid events, singles and doubles per energy bin of one region.

    Attributes
    ----------
    edges : tuple of int
        Bin edges, PI (eV); bin j is ``edges[j] <= PI < edges[j+1]``.
    total, singles, doubles : ndarray of int
        Events with PATTERN 0-12, PATTERN 0, PATTERN 1-4 per bin.
    """

    edges: tuple[int, ...]
    total: NDArray[np.int64]
    singles: NDArray[np.int64]
    doubles: NDArray[np.int64]

    def fractions(self) -> dict[str, NDArray[np.float64]]:
        """Singles and doubles fractions per bin with binomial errors (NaN for an empty bin).

        Returns
        -------
        dict
            ``singles``, ``singles_error``, ``doubles``, ``doubles_error``.
        """
        n = self.total.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            fs = np.where(n > 0, self.singles / n, np.nan)
            fd = np.where(n > 0, self.doubles / n, np.nan)
            es = np.sqrt(fs * (1 - fs) / n)
            ed = np.sqrt(fd * (1 - fd) / n)
        return {"singles": fs, "singles_error": es, "doubles": fd, "doubles_error": ed}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: edges, counts and fractions per bin."""
        fr = self.fractions()
        return {
            "edges_ev": list(self.edges),
            "total": self.total.tolist(),
            "singles": self.singles.tolist(),
            "doubles": self.doubles.tolist(),
            **{k: [None if math.isnan(v) else float(v) for v in a] for k, a in fr.items()},
        }


def pattern_counts(
    events: SourceEvents, mask: NDArray[np.bool_], edges: Sequence[int] = ENERGY_EDGES_EV
) -> PatternCounts:
    """Count valid events, singles and doubles per energy bin among ``events[mask]``."""
    e = np.asarray(edges, dtype=np.int64)
    pi, pattern = events.pi[mask], events.pattern[mask]

    def hist(sel: NDArray[np.bool_]) -> NDArray[np.int64]:
        counts, _ = np.histogram(pi[sel], bins=e)
        return counts.astype(np.int64)

    everything = np.ones(pi.size, dtype=bool)
    return PatternCounts(
        tuple(int(v) for v in e),
        hist(everything),
        hist(pattern == 0),
        hist((pattern >= 1) & (pattern <= 4)),
    )


@dataclass(frozen=True)
class Ratio:
    """An observed-to-expected ratio: ``value`` +- ``error`` (observed / expected counts)."""

    value: float
    error: float
    observed: float
    expected: float

    def deviation(self) -> float:
        """(value - 1) / error, in sigma (NaN without an error)."""
        if not self.error > 0:
            return math.nan
        return (self.value - 1.0) / self.error

    def to_dict(self) -> dict[str, float | None]:
        """JSON-able form (NaN, e.g. the counts epatplot does not report, as None)."""
        values = {
            "value": self.value,
            "error": self.error,
            "observed": self.observed,
            "expected": self.expected,
        }
        return {k: None if math.isnan(v) else v for k, v in values.items()}


@dataclass(frozen=True)
class Ratios:
    """The singles (s) and doubles (d) ratios of a region, with what went into them.

    Attributes
    ----------
    s, d : Ratio
    n_band : int
        Valid events of the test region in the band (bins used).
    n_reference : int
        Valid events of the reference annulus in the band.
    note : str or None
        Bins left out (empty reference), if any.
    """

    s: Ratio
    d: Ratio
    n_band: int
    n_reference: int
    note: str | None = None


def _ratio(
    inner: NDArray[np.int64],
    inner_n: NDArray[np.int64],
    ref: NDArray[np.int64],
    ref_n: NDArray[np.int64],
) -> Ratio:
    """One ratio over the bins given (see the module docstring for the formula)."""
    ni, nr = inner_n.astype(np.float64), ref_n.astype(np.float64)
    pr = ref / nr
    with np.errstate(invalid="ignore", divide="ignore"):
        pi_ = np.where(ni > 0, inner / np.where(ni > 0, ni, 1.0), 0.0)
    observed = float(inner.sum() + ref.sum())
    expected = float((ni * pr).sum() + ref.sum())
    if not expected > 0:
        return Ratio(math.nan, math.nan, observed, expected)
    s = observed / expected
    var = float(np.sum(ni * pi_ * (1 - pi_)))
    var += float(np.sum(nr * pr * (1 - pr) * ((1 - s) - s * ni / nr) ** 2))
    return Ratio(s, math.sqrt(var) / expected, observed, expected)


def otm_ratios(
    inner: PatternCounts, reference: PatternCounts, band: tuple[int, int] = RATIO_BAND_EV
) -> Ratios:
    """The observed-to-expected singles and doubles ratios of the extraction annulus.

    Parameters
    ----------
    inner : PatternCounts
        The part of the extraction annulus inside the reference annulus (``r_in <= r < r_ref``).
    reference : PatternCounts
        The reference annulus (``r_ref <= r <= r_out``), with the same edges.
    band : (int, int)
        PI range, eV; must fall on the edges.

    Returns
    -------
    Ratios
        Of the extraction annulus (inner part + reference annulus).

    Raises
    ------
    ValueError
        If the band does not fall on the edges, or the edges differ.
    """
    if inner.edges != reference.edges:
        raise ValueError("otm_ratios: the two regions' energy edges differ")
    edges = list(inner.edges)
    if band[0] not in edges or band[1] not in edges:
        raise ValueError(f"otm_ratios: band {band} does not fall on the edges {edges}")
    j = np.arange(edges.index(band[0]), edges.index(band[1]))
    usable = j[reference.total[j] > 0]
    dropped = j[(reference.total[j] == 0) & (inner.total[j] > 0)]
    note = None
    if dropped.size:
        lost = int(inner.total[dropped].sum())
        bins = ", ".join(f"{edges[k]}-{edges[k + 1]} eV" for k in dropped)
        note = f"bins {bins} left out: the reference annulus has no event there ({lost} events)"
    s = _ratio(
        inner.singles[usable],
        inner.total[usable],
        reference.singles[usable],
        reference.total[usable],
    )
    d = _ratio(
        inner.doubles[usable],
        inner.total[usable],
        reference.doubles[usable],
        reference.total[usable],
    )
    n_ref = int(reference.total[usable].sum())
    return Ratios(s, d, int(inner.total[usable].sum()) + n_ref, n_ref, note)
