"""Plots of stored light curves (matplotlib, file output only)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.ticker import NullFormatter, ScalarFormatter  # noqa: E402

__all__ = ["plot_lightcurves"]

#: Above this many bands, the light curves are drawn as an image (band x time).
MAX_PANELS = 6


def plot_lightcurves(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    bands: Sequence[int] | None = None,
    min_fracexp: float = 0.0,
) -> None:
    """Draw the net light curves of one (obsid, scheme) group to a file.

    Up to ``MAX_PANELS`` bands get one panel each (rate with 1-sigma error bars
    against time since the first bin, in ks); more bands are drawn as an image
    of each band's rate divided by its mean, with the band edges on the y axis.

    Parameters
    ----------
    ds : xarray.Dataset
        An (obsid, scheme) group (or a selection of it).
    path : str or os.PathLike
        Output file; the format follows the suffix (.png, .pdf, .svg).
    bands : sequence of int, optional
        Band positions to draw (default: all).
    min_fracexp : float
        Bins below this fractional exposure are not drawn.
    """
    if bands is not None:
        ds = ds.isel(band=list(bands))
    t = ds["time"].values
    t_ks = (t - float(ds.attrs["tstart"])) / 1000.0
    rate = ds["rate"].values.copy()
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
    if n <= MAX_PANELS:
        fig, axes = plt.subplots(n, 1, sharex=True, figsize=(8, 1.8 + 1.6 * n), squeeze=False)
        for i, ax in enumerate(axes[:, 0]):
            ax.errorbar(t_ks, rate[i], yerr=err[i], fmt=".", ms=2, lw=0.5, color="C0")
            ax.set_ylabel("rate (cts/s)")
            ax.text(0.01, 0.92, labels[i], transform=ax.transAxes, va="top", fontsize=9)
            ax.axhline(0.0, color="0.7", lw=0.5)
        axes[-1, 0].set_xlabel(f"time since {float(ds.attrs['tstart']):.1f} s MET (ks)")
        axes[0, 0].set_title(title, fontsize=10)
    else:
        fig, ax = plt.subplots(figsize=(9, 5))
        mean = np.nanmean(rate, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            norm = rate / mean
        edges_e = np.append(ds.e_lo.values, ds.e_hi.values[-1])
        dt_ks = float(ds.attrs["dt"]) / 1000.0
        edges_t = np.append(t_ks - dt_ks / 2, t_ks[-1] + dt_ks / 2)
        mesh = ax.pcolormesh(edges_t, edges_e, norm, cmap="viridis", shading="flat")
        ax.set_yscale("log")
        ticks = [2, 3, 4, 5, 6, 7, 8, 10, 12] if edges_e[0] >= 1 else None
        if ticks:
            ax.set_yticks([v for v in ticks if edges_e[0] <= v <= edges_e[-1]])
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("energy (keV)")
        ax.set_xlabel(f"time since {float(ds.attrs['tstart']):.1f} s MET (ks)")
        fig.colorbar(mesh, ax=ax, label="rate / band mean")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
