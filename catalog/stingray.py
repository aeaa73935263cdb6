"""Hand-off to stingray: Lightcurve objects built from counts, with the stored GTIs.

stingray's cross spectra from light curves built from *rates* come out as zeros
(stingray issue 977), so the objects are built from counts
(``input_counts=True``): counts = rate x dt, the net counts a fully exposed bin
would hold (rate is already divided by fracexp, so nothing divides by fracexp
twice). Errors are Gaussian (``err_dist="gauss"``): net rates are background
subtracted and may be negative. Bins only partly inside the GTIs keep finite
values; stingray ignores them because its segments use whole bins inside GTIs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from catalog import gti as gtilib

__all__ = ["to_stingray", "stingray_gti"]


def stingray_gti(ds: xr.Dataset, band: int, min_fracexp: float = 0.0) -> np.ndarray:
    """The stored GTIs, optionally restricted to bins with fracexp >= ``min_fracexp``.

    Parameters
    ----------
    ds : xarray.Dataset
        An (obsid, scheme) group.
    band : int
        Band position in ``ds``.
    min_fracexp : float
        With a positive value, bins below it are removed from the GTIs (as
        stingray's ``fracexp_limit`` or the reference workflow's ``min_exp`` do).

    Returns
    -------
    numpy.ndarray, shape (n, 2)
    """
    stored = np.asarray(ds.attrs["gti"], dtype=np.float64).reshape(-1, 2)
    if min_fracexp <= 0:
        return gtilib.normalize(stored)
    dt = float(ds.attrs["dt"])
    t = ds["time"].values
    f = ds["fracexp"].values[band]
    keep = (f >= min_fracexp) & np.isfinite(ds["rate"].values[band])
    bins = np.column_stack([t[keep] - 0.5 * dt, t[keep] + 0.5 * dt])
    return gtilib.intersect(stored, gtilib.union(bins))


def to_stingray(ds: xr.Dataset, *, band: int | None = None, min_fracexp: float = 0.0) -> list[Any]:
    """stingray ``Lightcurve`` objects (one per band) from an (obsid, scheme) Dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        From :meth:`catalog.Catalog.lightcurves`.
    band : int, optional
        Only this band position (default: every band).
    min_fracexp : float
        Drop bins below this fractional exposure from the GTIs (0 keeps the stored GTIs).

    Returns
    -------
    list of stingray.Lightcurve
        ``counts = rate * dt`` and ``counts_err = error * dt`` (0 where rate is
        NaN, which only happens outside the GTIs), ``gti`` from the store,
        ``mjdref`` from MJDREF, ``err_dist="gauss"``. The band's energies are in
        ``lc.e_interval`` (keV) and ``lc.pi_interval``.
    """
    from stingray import Lightcurve

    dt = float(ds.attrs["dt"])
    positions = range(ds.sizes["band"]) if band is None else [band]
    out = []
    for b in positions:
        rate = ds["rate"].values[b]
        err = ds["error"].values[b]
        ok = np.isfinite(rate)
        lc = Lightcurve(
            ds["time"].values,
            np.where(ok, rate * dt, 0.0),
            err=np.where(ok, err * dt, 0.0),
            gti=stingray_gti(ds, b, min_fracexp),
            dt=dt,
            input_counts=True,
            err_dist="gauss",
            mjdref=float(ds.attrs["MJDREF"]),
            skip_checks=True,
        )
        lc.e_interval = [float(ds["e_lo"].values[b]), float(ds["e_hi"].values[b])]
        lc.pi_interval = [int(ds["pi_lo"].values[b]), int(ds["pi_hi"].values[b])]
        lc.fracexp = ds["fracexp"].values[b].copy()
        out.append(lc)
    return out
