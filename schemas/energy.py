"""Energy facts of the light curves: PI units per instrument, bands and equal-count band edges.

pn PI is in eV. By the project's conventions a band selects ``pi_lo <= PI < pi_hi``;
keV edges become PI by ``round(keV * 1000)``; channel edges become PI = 5 * channel
(5 eV pn spectral channels, the standard 0:20479:5 binning of SAS pn spectra).
:func:`equal_count_edges` splits a net spectrum into bands of nearly equal counts.

Other instruments have other PI scales (:class:`EnergyScale`): NuSTAR's PI is a 40 eV
channel number with ``E = 1.6 keV + 0.04 keV x PI`` (docs/semantics.md §20). A scheme's
edges are energies (eV); :meth:`EnergyScale.pi_edges` turns them into an instrument's PI
edges, and the catalogue's keV edges of a band come back from the instrument's scale.

Named energy-binning schemes built on these facts are in :mod:`schemas.schemes`,
their declaration syntax in :mod:`schemas.scheme_spec`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from schemas.errors import ConfigError

__all__ = [
    "PI_PER_CHAN",
    "EnergyScale",
    "XMM_SCALE",
    "NUSTAR_SCALE",
    "NUSTAR_INSTRUMENTS",
    "energy_scale",
    "scale_from_record",
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


# --------------------------------------------------------------------------- PI scales
@dataclass(frozen=True)
class EnergyScale:
    """How an instrument's PI maps to energy: PI value p covers
    ``[offset_kev + p kev_per_pi, offset_kev + (p + 1) kev_per_pi)`` keV.

    Parameters
    ----------
    offset_kev : float
        Energy of the lower edge of PI 0, keV.
    kev_per_pi : float
        Width of one PI value, keV.
    pi_max : int
        Highest band edge (in PI) a scheme may use on this instrument: an edge above it
        would select PI values outside the instrument's calibrated range.
    name : str
        For messages (``XMM-Newton EPIC``, ``NuSTAR``).
    """

    offset_kev: float
    kev_per_pi: float
    pi_max: int
    name: str

    @property
    def is_ev(self) -> bool:
        """True for the EPIC scale, where PI is the energy in eV."""
        return self.offset_kev == 0.0 and self.kev_per_pi == 0.001

    def kev(self, pi: float) -> float:
        """Energy (keV) of a PI edge: PI / 1000 on EPIC, else rounded to 1e-9 keV (so NuSTAR
        PI 10 gives 2.0, not 2.0000000000000004)."""
        if self.is_ev:
            return float(pi) / 1000.0
        return round(self.offset_kev + float(pi) * self.kev_per_pi, 9)

    def kev_array(self, pi: Any) -> Any:
        """:meth:`kev` of an array (numpy or xarray) of PI edges."""
        if self.is_ev:
            return pi / 1000.0
        return (pi * self.kev_per_pi + self.offset_kev).round(9)

    def record(self) -> dict[str, float]:
        """The JSON-able record kept in a group's attributes (``energy_scale``)."""
        return {"offset_kev": self.offset_kev, "kev_per_pi": self.kev_per_pi}

    def pi_edges(self, ev_edges: tuple[int, ...], where: str) -> tuple[tuple[int, ...], list[str]]:
        """An instrument's PI edges for band edges given in eV (a scheme's edges).

        EPIC: the same numbers. Other scales: edge E (eV) becomes
        ``round((E - 1000 offset_kev) / (1000 kev_per_pi))`` computed in integer eV, so
        2.0 keV is NuSTAR channel 10 exactly (never 9 through the float floor
        ``(2.0 - 1.6) / 0.04 = 9.999...``). An edge between two channel boundaries goes to
        the nearer one (a tie goes up) and a note names it: the band then holds whole
        channels, and the catalogue's keV edges are those of the channels (recomputed from the
        scale), never the asked ones.

        Parameters
        ----------
        ev_edges : tuple of int
            Strictly increasing band edges, eV.
        where : str
            The scheme and instrument, for messages.

        Returns
        -------
        (tuple of int, list of str)
            PI edges and a note per moved edge.

        Raises
        ------
        ConfigError
            One line naming the scheme and the edge: an edge below the scale's PI 0 (for
            NuSTAR below 1.6 keV) or above ``pi_max`` (NuSTAR: 79 keV), or two edges that
            fall on the same channel boundary (an empty band).
        """
        if self.is_ev:
            return tuple(int(e) for e in ev_edges), []
        off = int(round(self.offset_kev * 1000))
        width = int(round(self.kev_per_pi * 1000))
        out: list[int] = []
        notes: list[str] = []
        for e in ev_edges:
            num = int(e) - off
            if num < 0:
                raise ConfigError(
                    f"{where}: edge {e / 1000:g} keV is below {self.name}'s lowest energy "
                    f"{self.offset_kev:g} keV (PI 0); start the scheme at or above it, or limit "
                    "the scheme to other instruments with instruments = [...]"
                )
            q, r = divmod(num, width)
            pi = q + (1 if 2 * r >= width else 0)
            if pi > self.pi_max:
                raise ConfigError(
                    f"{where}: edge {e / 1000:g} keV is above {self.name}'s upper limit "
                    f"{self.kev(self.pi_max):g} keV (PI {self.pi_max}); end the scheme at or "
                    "below it, or limit the scheme to other instruments with instruments = [...]"
                )
            if r:
                notes.append(
                    f"{where}: edge {e / 1000:g} keV is not a {self.name} channel boundary; "
                    f"used the nearest, {self.kev(pi):g} keV (PI {pi})"
                )
            if out and pi <= out[-1]:
                raise ConfigError(
                    f"{where}: edges {out[-1]} and {pi} (PI) coincide: the band ending at "
                    f"{e / 1000:g} keV is narrower than one {width} eV {self.name} channel; "
                    "use wider bands for this instrument"
                )
            out.append(pi)
        return tuple(out), notes


#: EPIC pn and MOS: PI in eV.
XMM_SCALE = EnergyScale(0.0, 0.001, PI_MAX, "XMM-Newton EPIC")
#: NuSTAR FPMA/FPMB: E = 1.6 keV + 0.04 keV x PI; the calibrated range ends at 79 keV (PI 1935).
NUSTAR_SCALE = EnergyScale(1.6, 0.04, 1935, "NuSTAR")
#: xlcat's short names of the NuSTAR focal plane modules.
NUSTAR_INSTRUMENTS: tuple[str, ...] = ("FPMA", "FPMB")


def energy_scale(instrument: str | None) -> EnergyScale:
    """The PI scale of an instrument (``PN``, ``M1``, ``M2``: eV; ``FPMA``, ``FPMB``: NuSTAR).

    Parameters
    ----------
    instrument : str or None
        xlcat's instrument name; None or an unknown name gives the EPIC scale.

    Returns
    -------
    EnergyScale
    """
    return NUSTAR_SCALE if instrument in NUSTAR_INSTRUMENTS else XMM_SCALE


def scale_from_record(record: object) -> EnergyScale:
    """The scale a group's ``energy_scale`` attribute records (EPIC when absent)."""
    if isinstance(record, dict) and "offset_kev" in record and "kev_per_pi" in record:
        off, kpp = float(record["offset_kev"]), float(record["kev_per_pi"])
        for known in (XMM_SCALE, NUSTAR_SCALE):
            if known.offset_kev == off and known.kev_per_pi == kpp:
                return known
        return EnergyScale(off, kpp, 2**31 - 1, "recorded scale")
    return XMM_SCALE


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
