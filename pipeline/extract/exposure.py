"""Fractional exposure per time bin: per CCD, then for a region (docs/semantics.md §5).

For one CCD with good time intervals G (its own GTI, docs/semantics.md §4) the exposure of
bin ``[a, b)`` is, in order of preference:

1. with the CCD's ``EXPOSUnn`` steps (TIME = step centre, TIMEDEL, FRACEXP), in the time
   system of the events, over the steps whose centre lies in G::

       fracexp = sum_{i: TIME_i in G} FRACEXP_i |step_i ∩ [a, b) ∩ G| / (b - a)

   This is epiclccorr's FRACEXP on a list filtered by evselect: evselect keeps the
   ``EXPOSUnn`` rows whose TIME lies in the filter GTI (``M1_clean.fits`` EXPOSU01 holds
   exactly the 4,596 of the raw list's 6,404 steps whose centre lies in GTI00004), and
   epiclccorr weights each kept step by its overlap with the bin and the GTI. From
   ``M1_clean.fits`` (where the centre condition changes nothing) it gives all 9,949 bins
   of ``*_lccorr_2.604.lc`` to 4e-8 (the file's real32 precision), and from the raw list
   with the flare GTI it gives the same numbers;
2. else ``|[a, b) ∩ G| / (b - a) x LIVETInn / ONTIMEnn`` (the keywords as written);
3. else ``|[a, b) ∩ G| / (b - a)``.

A NuSTAR module (one unit, "CCD" 0; docs/semantics.md §20) takes rule 1 with the
housekeeping file's one-second rows in place of ``EXPOSUnn`` steps, each row weighted by its
overlap with the bin and the GTI whatever its centre (nulccorr's live-time correction:
``fracexp = sum_i (LIVETIME_i / len_i) |row_i ∩ [a, b) ∩ G| / (b - a)``), and rule 2 with the
LIVETIME/ONTIME keywords when no hk file is given.

A region whose events lie on several CCDs gets the mean of the CCDs' fractional
exposures weighted by the source region's events in each CCD's GTI
(:func:`region_fracexp`): the expected count of a bin is the sum over CCDs of
``rate x w_c x dt x fracexp_c`` with ``w_c`` the share of the source on CCD c, estimated
by its share of the counts.

Steps are read in chunks; memory does not grow with the length of ``EXPOSUnn``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from catalog import gti as gtilib
from pipeline.read.events import EventFileInfo, iter_exposure_steps

__all__ = [
    "CcdExposure",
    "step_exposure",
    "ccd_fracexp",
    "region_fracexp",
    "FRACEXP_RULE",
    "STEP_CHUNK",
]

#: Exposure steps read at a time.
STEP_CHUNK = 200_000
#: The multi-CCD rule, as recorded in provenance (``fracexp_rule``).
FRACEXP_RULE = (
    "per CCD: FRACEXP of the EXPOSUnn steps centred in the CCD's GTI, weighted by their "
    "overlap with the bin and the GTI, divided by the bin width (else GTI overlap x "
    "LIVETInn/ONTIMEnn, else GTI overlap); over CCDs: mean weighted by the source region's "
    "events in each CCD's GTI (docs/semantics.md §5)"
)


@dataclass(frozen=True)
class CcdExposure:
    """The fractional exposure of one CCD per time bin, and how it was computed.

    Attributes
    ----------
    ccd : int
    fracexp : numpy.ndarray, shape (n_bins,)
    method : str
        Which rule of the module docstring applied, naming the extension or keywords.
    """

    ccd: int
    fracexp: NDArray[np.float64]
    method: str


def _pieces(
    gti: ArrayLike, edges: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """The GTI cut at the bin edges: (start, stop, bin index) of each piece, in time order."""
    g = gtilib.intersect(gti, [[edges[0], edges[-1]]])
    if len(g) == 0:
        return np.empty(0), np.empty(0), np.empty(0, np.int64)
    cuts = np.union1d(g.ravel(), edges[(edges > g[0, 0]) & (edges < g[-1, 1])])
    lo, hi = cuts[:-1], cuts[1:]
    keep = gtilib.contains(g, 0.5 * (lo + hi)) & (hi > lo)
    lo, hi = lo[keep], hi[keep]
    k = np.searchsorted(edges, lo, side="right") - 1
    return lo, hi, k.astype(np.int64)


def step_exposure(
    steps: Iterable[
        tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
    ],
    gti: ArrayLike,
    edges: ArrayLike,
    *,
    centre_in_gti: bool = True,
) -> NDArray[np.float64]:
    """Seconds of exposure per bin: ``sum_{i: centre_i in GTI} f_i |step_i ∩ bin ∩ GTI|``.

    Parameters
    ----------
    steps : iterable of (centre, start, stop, fraction) arrays
        Exposure steps in chunks (any order; steps of one chunk need not be sorted).
    gti : array_like, shape (n, 2)
        Good time intervals (``START <= t < STOP``).
    edges : array_like, shape (n_bins + 1,)
        Increasing bin edges.
    centre_in_gti : bool
        Keep only the steps centred in the GTI (EPIC ``EXPOSUnn``); False weighs every step
        by its overlap alone (NuSTAR housekeeping rows).

    Returns
    -------
    numpy.ndarray, shape (n_bins,)
    """
    e = np.asarray(edges, dtype=np.float64)
    n_bins = len(e) - 1
    out = np.zeros(n_bins)
    p_lo, p_hi, p_k = _pieces(gti, e)
    if len(p_lo) == 0:
        return out
    g = gtilib.normalize(gti)
    for centre, start, stop, frac in steps:
        c = np.asarray(centre, dtype=np.float64)
        keep = gtilib.contains(g, c) if centre_in_gti else np.ones(len(c), bool)
        a = np.asarray(start, dtype=np.float64)[keep]
        b = np.asarray(stop, dtype=np.float64)[keep]
        f = np.asarray(frac, dtype=np.float64)[keep]
        j0 = np.searchsorted(p_hi, a, side="right")
        j1 = np.searchsorted(p_lo, b, side="left")
        n = np.clip(j1 - j0, 0, None)
        if not n.any():
            continue
        step = np.repeat(np.arange(len(a)), n)
        first = np.repeat(j0, n)
        offset = np.arange(len(step)) - np.repeat(np.cumsum(n) - n, n)
        piece = first + offset
        seconds = np.minimum(b[step], p_hi[piece]) - np.maximum(a[step], p_lo[piece])
        np.clip(seconds, 0.0, None, out=seconds)
        out += np.bincount(p_k[piece], weights=f[step] * seconds, minlength=n_bins)[:n_bins]
    return out


def ccd_fracexp(
    info: EventFileInfo,
    data_path: str | os.PathLike[str],
    ccd: int,
    gti: ArrayLike,
    edges: ArrayLike,
) -> CcdExposure:
    """Fractional exposure per bin of one CCD with its GTI (rules 1-3 of the module docstring).

    Parameters
    ----------
    info : EventFileInfo
        The event file's headers (its ``EXPOSUnn`` tables, LIVETInn, ONTIMEnn).
    data_path : str or os.PathLike
        Where the file's content is read (an uncompressed copy of a compressed file).
    ccd : int
    gti : array_like, shape (n, 2)
        The CCD's GTI.
    edges : array_like
        Bin edges.

    Returns
    -------
    CcdExposure
        Values clipped to [0, 1].
    """
    e = np.asarray(edges, dtype=np.float64)
    dt = np.diff(e)
    table = info.exposures.get(ccd)
    reason = f"no EXPOSU{ccd:02d} extension"
    if table is not None:
        same_time = (table.timesys or info.timesys) == info.timesys and (
            table.timeref or info.timeref
        ) == info.timeref
        if table.n_rows == 0:
            reason = f"{table.extname} has no rows"
        elif not same_time:
            reason = (
                f"{table.extname} is in {table.timesys}/{table.timeref} while the events are in "
                f"{info.timesys}/{info.timeref} (barycentred)"
            )
        elif table.kind == "hk":
            seconds = step_exposure(
                iter_exposure_steps(data_path, table, STEP_CHUNK), gti, e, centre_in_gti=False
            )
            return CcdExposure(
                ccd,
                np.clip(seconds / dt, 0.0, 1.0),
                f"housekeeping file {table.file} {table.extname}: LIVETIME per row over its "
                "length, weighted by the row's overlap with the bin and the GTI (nulccorr's "
                "live-time correction; PSF, vignetting and bad-pixel corrections not applied)",
            )
        else:
            seconds = step_exposure(iter_exposure_steps(data_path, table, STEP_CHUNK), gti, e)
            return CcdExposure(
                ccd,
                np.clip(seconds / dt, 0.0, 1.0),
                f"{table.extname}: FRACEXP of the exposure steps centred in CCD {ccd}'s GTI, "
                "weighted by their overlap with the bin and the GTI",
            )
    overlap = gtilib.overlap_with_bins(gti, e) / dt
    live = info.live_fraction.get(ccd)
    keys = info.live_keywords.get(ccd, f"LIVETI{ccd:02d}/ONTIME{ccd:02d}")
    if info.is_nustar and table is None:
        reason = "no housekeeping (hk) file given"
    if live is not None:
        return CcdExposure(
            ccd,
            np.clip(overlap * live, 0.0, 1.0),
            f"GTI overlap x {keys} = {live:.9g} ({reason})",
        )
    return CcdExposure(
        ccd,
        np.clip(overlap, 0.0, 1.0),
        f"GTI overlap only ({reason}; no {keys} keywords)",
    )


def region_fracexp(
    per_ccd: Mapping[int, NDArray[np.float64]], weights: Mapping[int, float]
) -> tuple[NDArray[np.float64], dict[int, float]]:
    """The weighted mean of per-CCD fractional exposures (module docstring).

    Parameters
    ----------
    per_ccd : mapping of CCD to array
        Each CCD's fractional exposure per bin.
    weights : mapping of CCD to float
        Non-negative weights (source events in each CCD's GTI); CCDs missing count 0.
        If every weight is 0, the CCDs count equally.

    Returns
    -------
    (numpy.ndarray, dict)
        The fracexp per bin and the normalised weights used.
    """
    ccds = sorted(per_ccd)
    if not ccds:
        raise ValueError("no CCD to take the fractional exposure from")
    w = np.array([max(float(weights.get(c, 0.0)), 0.0) for c in ccds])
    if w.sum() <= 0:
        w = np.ones(len(ccds))
    w = w / w.sum()
    used = {c: float(x) for c, x in zip(ccds, w, strict=True) if x > 0}
    total = np.zeros_like(np.asarray(per_ccd[ccds[0]], dtype=np.float64))
    for c, x in zip(ccds, w, strict=True):
        if x > 0:
            total += x * np.asarray(per_ccd[c], dtype=np.float64)
    return total, used
