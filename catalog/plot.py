"""Plots of stored light curves (matplotlib objects; a file only when asked)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter
from numpy.typing import NDArray

from catalog.netcdf import python_attrs
from schemas.errors import ConfigError

__all__ = ["plot_lightcurves", "robust_scaled"]

#: Above this many bands, the light curves are drawn as an image (band x time).
MAX_PANELS = 6


def robust_scaled(rate: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    """Each band's rate as (rate - median) / robust sigma, and a symmetric colour limit.

    The robust sigma is 1.4826 x the median absolute deviation (the standard
    deviation when that is 0, 1 when both are), so a band whose mean is near zero
    (a background-dominated net rate) is scaled by its scatter, never divided by
    its mean. The colour limit is the 98th percentile of ``|scaled|`` (at least 1),
    so a few flares do not wash out the rest.

    Parameters
    ----------
    rate : NDArray[float64]
        (n_band, n_time) rates; NaN where not drawn.

    Returns
    -------
    scaled : NDArray[float64]
        (n_band, n_time), NaN where ``rate`` is.
    limit : float
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bands: scaled stays NaN
        med = np.nan_to_num(np.nanmedian(rate, axis=1))
        mad = np.nan_to_num(np.nanmedian(np.abs(rate - med[:, None]), axis=1))
        std = np.nan_to_num(np.nanstd(rate, axis=1))
        sigma = np.where(mad > 0, 1.4826 * mad, np.where(std > 0, std, 1.0))
        scaled = (rate - med[:, None]) / sigma[:, None]
    vals = np.abs(scaled[np.isfinite(scaled)])
    limit = max(float(np.percentile(vals, 98)), 1.0) if vals.size else 1.0
    return scaled, limit


def plot_lightcurves(
    ds: xr.Dataset,
    path: str | os.PathLike[str] | None = None,
    *,
    bands: Sequence[int] | None = None,
    min_fracexp: float = 0.0,
    ax: Axes | Sequence[Axes] | NDArray[np.object_] | None = None,
) -> Figure:
    """Draw the net light curves of one (obsid, scheme) group.

    Up to ``MAX_PANELS`` bands get one panel each (rate with 1-sigma error bars
    against time since the first bin, in ks); more bands are drawn as an image of
    each band's rate scaled robustly (:func:`robust_scaled`), with the band edges
    on the y axis.

    Parameters
    ----------
    ds : xarray.Dataset
        An (obsid, scheme) group (or a selection of it).
    path : str or os.PathLike, optional
        Also write the figure here; the format follows the suffix (.png, .pdf, .svg).
    bands : sequence of int, optional
        Band positions to draw (default: all).
    min_fracexp : float
        Bins below this fractional exposure are not drawn.
    ax : Axes or sequence of Axes, optional
        Draw here: one Axes per band (panels) or one Axes (image). Default: a new Figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if bands is not None:
        ds = ds.isel(band=list(bands))
    ds = python_attrs(ds)
    t = ds["time"].values
    t_ks = (t - float(ds.attrs["tstart"])) / 1000.0
    rate = ds["rate"].values.astype(np.float64).copy()
    err = ds["error"].values
    rate[ds["fracexp"].values < max(min_fracexp, 1e-12)] = np.nan
    title = (
        f"{ds.attrs['obsid']}  scheme {ds.attrs['scheme']}  dt = {float(ds.attrs['dt']):g} s"
        f"  ({ds.attrs['backend']}{', abs. corrected' if ds.attrs.get('abscorr') else ''})"
    )
    n = ds.sizes["band"]
    labels = [
        f"{lo:.2f}-{hi:.2f} keV" for lo, hi in zip(ds.e_lo.values, ds.e_hi.values, strict=True)
    ]
    given = None if ax is None else np.asarray(ax, dtype=object).reshape(-1)
    xlabel = f"time since {float(ds.attrs['tstart']):.1f} s MET (ks)"
    if n <= MAX_PANELS:
        if given is None:
            fig = Figure(figsize=(8, 1.8 + 1.6 * n))
            axes = np.asarray(fig.subplots(n, 1, sharex=True, squeeze=False))[:, 0]
        elif given.size != n:
            raise ConfigError(f"plot_lightcurves: {given.size} axes given for {n} bands")
        else:
            axes, fig = given, given[0].get_figure()
        for i, a in enumerate(axes):
            a.errorbar(t_ks, rate[i], yerr=err[i], fmt=".", ms=2, lw=0.5, color="C0")
            a.set_ylabel("rate (cts/s)")
            a.text(0.01, 0.92, labels[i], transform=a.transAxes, va="top", fontsize=9)
            a.axhline(0.0, color="0.7", lw=0.5)
        axes[-1].set_xlabel(xlabel)
        axes[0].set_title(title, fontsize=10)
    else:
        if given is None:
            fig = Figure(figsize=(9, 5))
            a = fig.subplots()
        elif given.size != 1:
            raise ConfigError(f"plot_lightcurves: {n} bands are one image; give one Axes")
        else:
            a, fig = given[0], given[0].get_figure()
        scaled, limit = robust_scaled(rate)
        edges_e = np.append(ds.e_lo.values, ds.e_hi.values[-1])
        dt_ks = float(ds.attrs["dt"]) / 1000.0
        edges_t = np.append(t_ks - dt_ks / 2, t_ks[-1] + dt_ks / 2)
        mesh = a.pcolormesh(
            edges_t,
            edges_e,
            scaled,
            cmap="RdBu_r",
            norm=TwoSlopeNorm(0.0, -limit, limit),
            shading="flat",
        )
        a.set_yscale("log")
        ticks = [2, 3, 4, 5, 6, 7, 8, 10, 12] if edges_e[0] >= 1 else None
        if ticks:
            a.set_yticks([v for v in ticks if edges_e[0] <= v <= edges_e[-1]])
        a.yaxis.set_major_formatter(ScalarFormatter())
        a.yaxis.set_minor_formatter(NullFormatter())
        a.set_ylabel("energy (keV)")
        a.set_xlabel(xlabel)
        fig.colorbar(mesh, ax=a, label="(rate - band median) / band robust sigma")
        a.set_title(title, fontsize=10)
    if given is None:
        fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
