"""Hand-off to stingray: Lightcurve objects built from counts, with GTIs of whole bins.

stingray's cross spectra from light curves built from *rates* come out as zeros
(stingray issue 977), so the objects are built from counts
(``input_counts=True``): counts = rate x dt, the net counts a fully exposed bin
would hold (rate is already divided by fracexp, so nothing divides by fracexp
twice). Errors are Gaussian (``err_dist="gauss"``): net rates are background
subtracted and may be negative.

GTIs: with ``min_fracexp > 0`` they are the whole edges of the bins xlcat's
segments keep (:func:`catalog.timing.segments.good_bins`: fracexp >= min_fracexp
and finite rate and error in every band), not the stored GTIs cut by those bins.
A bin only partly exposed (a GTI starting inside it) but above ``min_fracexp`` is
then whole inside the GTIs, so stingray keeps it exactly as xlcat does, and the
light curves of every band share one GTI table (cross spectra need that).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from catalog import gti as gtilib
from catalog.netcdf import decode_attrs
from catalog.timing.segments import good_bins

__all__ = ["to_stingray", "stingray_gti"]


def stingray_gti(ds: xr.Dataset, min_fracexp: float = 0.0) -> np.ndarray:
    """The GTIs handed to stingray.

    Parameters
    ----------
    ds : xarray.Dataset
        An (obsid, scheme) light-curve Dataset.
    min_fracexp : float
        0 (or less): the stored GTIs. Positive: the union of the whole bins
        ``[t - dt/2, t + dt/2)`` that are good in every band (fracexp >=
        ``min_fracexp``, finite rate and error), the bins xlcat's segments use.

    Returns
    -------
    numpy.ndarray, shape (n, 2)
        Sorted, disjoint [start, stop) intervals, MET seconds.
    """
    if min_fracexp <= 0:
        stored = np.asarray(decode_attrs(ds.attrs)["gti"], dtype=np.float64).reshape(-1, 2)
        return gtilib.normalize(stored)
    dt = float(ds.attrs["dt"])
    t = ds["time"].values.astype(np.float64)
    keep = good_bins(
        ds["rate"].values, ds["error"].values, ds["fracexp"].values, min_fracexp=min_fracexp
    )
    if not keep.any():
        return np.zeros((0, 2))
    # runs of consecutive kept bins -> one interval each, edges from the grid itself
    idx = np.flatnonzero(keep)
    breaks = np.flatnonzero(np.diff(idx) > 1)
    first = idx[np.concatenate([[0], breaks + 1])]
    last = idx[np.concatenate([breaks, [idx.size - 1]])]
    return np.column_stack([t[first] - 0.5 * dt, t[last] + 0.5 * dt])


def _band_key(ds: xr.Dataset, b: int) -> int:
    return int(ds["band"].values[b]) if "band" in ds.coords else b


def to_stingray(
    ds: xr.Dataset, *, band: int | None = None, min_fracexp: float = 0.0
) -> dict[int, Any]:
    """stingray ``Lightcurve`` objects, keyed by band, from an (obsid, scheme) Dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        From :meth:`catalog.Catalog.lightcurves`.
    band : int, optional
        Only this band position (default: every band).
    min_fracexp : float
        0 keeps the stored GTIs; a positive value gives the GTIs of the whole
        bins good in every band (see :func:`stingray_gti`), so stingray's
        segments are xlcat's (``Catalog.segments(min_fracexp=...)``).

    Returns
    -------
    dict of int to stingray.Lightcurve
        Keyed by band index (the ``band`` coordinate; its position when there is
        none). ``counts = rate * dt`` and ``counts_err = error * dt`` (0 where
        rate is NaN, outside the GTIs), ``mjdref`` from MJDREF,
        ``err_dist="gauss"``. The band's energies are in ``lc.e_interval`` (keV)
        and ``lc.pi_interval``, its fractional exposure in ``lc.fracexp``.
    """
    with warnings.catch_warnings():
        # stingray's import-time notice that the optional numba is missing
        warnings.filterwarnings("ignore", message=".*numba.*")
        from stingray import Lightcurve

    dt = float(ds.attrs["dt"])
    gti = stingray_gti(ds, min_fracexp)
    positions = range(ds.sizes["band"]) if band is None else [band]
    out: dict[int, Any] = {}
    for b in positions:
        rate = ds["rate"].values[b]
        err = ds["error"].values[b]
        ok = np.isfinite(rate) & np.isfinite(err)
        with warnings.catch_warnings():
            # the notice that stingray's statistics assume Poisson errors whatever
            # err_dist says: Gaussian is what net (background-subtracted) rates have
            warnings.filterwarnings("ignore", message=".*only uses poisson err_dist.*")
            lc = Lightcurve(
                ds["time"].values,
                np.where(ok, rate * dt, 0.0),
                err=np.where(ok, err * dt, 0.0),
                gti=gti,
                dt=dt,
                input_counts=True,
                err_dist="gauss",
                mjdref=float(ds.attrs["MJDREF"]),
                skip_checks=True,
            )
        lc.e_interval = [float(ds["e_lo"].values[b]), float(ds["e_hi"].values[b])]
        lc.pi_interval = [int(ds["pi_lo"].values[b]), int(ds["pi_hi"].values[b])]
        lc.fracexp = ds["fracexp"].values[b].copy()
        out[_band_key(ds, b)] = lc
    return out
