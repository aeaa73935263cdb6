"""Energy facts of EPIC-pn light curves: PI units, bands and equal-count band edges.

pn PI is in eV. By the project's conventions a band selects ``pi_lo <= PI < pi_hi``;
keV edges become PI by ``round(keV * 1000)``; channel edges become PI = 5 * channel
(5 eV pn spectral channels, the standard 0:20479:5 binning of SAS pn spectra).
:func:`equal_count_edges` splits a net spectrum into bands of nearly equal counts.

Named energy-binning schemes built on these facts are in :mod:`schemas.schemes`,
their declaration syntax in :mod:`schemas.scheme_spec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.errors import ConfigError

__all__ = [
    "PI_PER_CHAN",
    "PI_MAX",
    "Band",
    "chan_to_pi",
    "equal_count_edges",
    "kev_to_pi",
]

PI_PER_CHAN = 5
"""Width of one pn spectral channel in PI units (eV)."""
PI_MAX = 20480
"""Upper end of the pn PI range (channels 0..4095 cover PI 0..20479)."""


def kev_to_pi(e: float) -> int:
    """Convert an energy in keV to pn PI (eV), rounded to the nearest eV.

    Parameters
    ----------
    e : float
        Energy in keV.

    Returns
    -------
    int
        ``round(e * 1000)``, so 1.1 keV gives 1100 (not 1100.0000000000002).

    Raises
    ------
    ValueError
        If `e` is not finite.
    """
    x = float(e) * 1000.0
    if not math.isfinite(x):
        raise ValueError(f"energy {e!r} keV is not finite")
    return int(round(x))


def chan_to_pi(c: int) -> int:
    """Convert a pn spectral channel boundary to PI (eV): PI = 5 * channel.

    Parameters
    ----------
    c : int
        Channel number (5 eV channels; channel c covers PI [5c, 5c + 5)).

    Returns
    -------
    int
        PI of the lower boundary of channel `c`.
    """
    return PI_PER_CHAN * int(c)


# --------------------------------------------------------------------------- value types
@dataclass(frozen=True, order=True)
class Band:
    """One energy band, ``pi_lo <= PI < pi_hi`` with PI in eV.

    Parameters
    ----------
    pi_lo, pi_hi : int
        Band edges in PI (eV); ``0 <= pi_lo < pi_hi``.
    """

    pi_lo: int
    pi_hi: int

    def __post_init__(self) -> None:
        if not 0 <= int(self.pi_lo) < int(self.pi_hi):
            raise ValueError(f"Band needs 0 <= pi_lo < pi_hi, got [{self.pi_lo}, {self.pi_hi})")
        object.__setattr__(self, "pi_lo", int(self.pi_lo))
        object.__setattr__(self, "pi_hi", int(self.pi_hi))

    @property
    def e_lo(self) -> float:
        """Lower edge in keV (pi_lo / 1000)."""
        return self.pi_lo / 1000.0

    @property
    def e_hi(self) -> float:
        """Upper edge in keV (pi_hi / 1000)."""
        return self.pi_hi / 1000.0

    @property
    def label(self) -> str:
        """Human-readable label, e.g. ``"2.000-2.400 keV"``."""
        return f"{self.e_lo:.3f}-{self.e_hi:.3f} keV"

    def contains(self, pi: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Boolean mask of the PI values inside the band (``pi_lo <= pi < pi_hi``).

        Parameters
        ----------
        pi : NDArray
            PI values (eV).

        Returns
        -------
        NDArray of bool
        """
        pi = np.asarray(pi)
        return (pi >= self.pi_lo) & (pi < self.pi_hi)


# --------------------------------------------------------------------------- equal counts
def equal_count_edges(
    counts: NDArray[np.floating], chan_lo: int, chan_hi: int, n: int, min_width: int = 1
) -> list[int]:
    """Channel boundaries splitting a net spectrum into `n` bands of nearly equal counts.

    Edges are channel *boundaries* (band k is channels [edge_k, edge_k+1)):
    edge_0 = chan_lo, edge_n = chan_hi and edge_k = chan_lo + argmin_j |C_j - k T / n|, where
    C_j is the net count below boundary j (C_0 = 0, C_m = T, m = chan_hi - chan_lo; the first
    j wins a tie). Negative net counts in a channel (background over-subtraction) are clipped
    to 0 here, so C is non-decreasing. Duplicate edges are dropped; then, walking up from the
    low end, an edge is kept only if it is at least `min_width` channels above the last kept
    edge, and if the last band ends up narrower than `min_width` the last interior edge is
    dropped. Fewer than `n` bands may result.

    Differences from the reference workflow's ``spec_2_ebins`` (aztools misc.py @ed675ec):
    it returns ``argmin|cumsum(counts) - k T/n|``, the index of the channel whose *inclusive*
    cumulative sum is nearest the target, so its interior edges sit one channel lower than
    the boundary used here for the same cumulative count, and its top edge is the last
    channel's index (1999 for 2-10 keV instead of the boundary 2000; used with
    ``PI in [5 lo : 5 hi)`` that leaves channel 1999 out). It neither clips negative counts
    nor enforces a minimum width.

    Parameters
    ----------
    counts : NDArray
        Net counts per channel; counts[i] is channel chan_lo + i, length chan_hi - chan_lo.
    chan_lo, chan_hi : int
        Channel range [chan_lo, chan_hi).
    n : int
        Requested number of bands (>= 1).
    min_width : int, optional
        Minimum band width in channels (default 1).

    Returns
    -------
    list of int
        Strictly increasing channel boundaries from chan_lo to chan_hi.

    Raises
    ------
    ValueError
        If the arguments are inconsistent (length, n < 1, min_width < 1).
    ConfigError
        If the spectrum has no positive net counts in [chan_lo, chan_hi).
    """
    c = np.asarray(counts, dtype=float)
    m = int(chan_hi) - int(chan_lo)
    if c.ndim != 1 or c.size != m or m < 1:
        raise ValueError(f"counts must be 1-d of length chan_hi - chan_lo = {m}, got {c.shape}")
    if n < 1 or min_width < 1:
        raise ValueError(f"n ({n}) and min_width ({min_width}) must be >= 1")
    cum = np.concatenate(([0.0], np.cumsum(np.clip(np.nan_to_num(c), 0.0, None))))
    total = cum[-1]
    if not total > 0:
        raise ConfigError(
            f"no positive net counts in channels [{chan_lo}, {chan_hi}); "
            "choose another reference observation or range"
        )
    inner = [int(chan_lo) + int(np.argmin(np.abs(cum - k * total / n))) for k in range(1, n)]
    edges = sorted(set([int(chan_lo), *inner, int(chan_hi)]))
    kept = [edges[0]]
    for e in edges[1:-1]:
        if e - kept[-1] >= min_width:
            kept.append(e)
    if len(kept) > 1 and chan_hi - kept[-1] < min_width:
        kept.pop()
    return [*kept, int(chan_hi)]
