"""Figures of timing products for a paper draft (matplotlib, file output only).

- :func:`plot_lag_energy`: lag against energy (log axis, plain keV tick labels),
  1-sigma lag errors, band widths as x error bars, a zero line.
- :func:`plot_power_spectrum`: frequency x power against frequency on log-log
  axes, with each band's Poisson noise level.

Titles name the scheme, the frequency range, the observations and the number of
segments, read from the product's attributes.
"""

from __future__ import annotations

import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter  # noqa: E402

from catalog.timing.results import describe_obsids  # noqa: E402

__all__ = ["describe_obsids", "plot_lag_energy", "plot_power_spectrum", "sci"]

_ENERGY_TICKS = (0.5, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15)


def sci(x: float) -> str:
    """``x`` as matplotlib mathtext, e.g. ``1e-4`` -> ``$1\\times10^{-4}$``."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exp = math.floor(math.log10(abs(x)))
    mant = x / 10**exp
    if abs(mant - round(mant)) < 1e-9:
        mant_s = f"{round(mant):d}"
    else:
        mant_s = f"{mant:.3g}"
    return rf"${mant_s}\times10^{{{exp}}}$" if mant_s != "1" else rf"$10^{{{exp}}}$"


def _obsids(ds: xr.Dataset) -> list[str]:
    return list(ds.attrs.get("obsids_used") or ds.attrs.get("obsids") or [])


def _energy_axis(ax: Axes, lo: float, hi: float) -> None:
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.04, hi * 1.04)
    ticks = [t for t in _ENERGY_TICKS if lo / 1.04 <= t <= hi * 1.04]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    fmt = ScalarFormatter()
    fmt.set_scientific(False)
    ax.xaxis.set_major_formatter(fmt)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Energy (keV)")


def plot_lag_energy(
    ds: xr.Dataset, path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Draw a lag-energy spectrum to a file.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.lag_energy` (dims band; ``lag``, ``lag_err``,
        coords ``e_lo``, ``e_hi``, ``f_lo``, ``f_hi``).
    path : str or os.PathLike
        Output file; format from the suffix (.png, .pdf, .svg).
    title : str, optional
        Replaces the automatic title (scheme, frequency range, obsids, segments).
    """
    lo, hi = ds["e_lo"].values, ds["e_hi"].values
    x = np.sqrt(lo * hi)
    lag, err = ds["lag"].values, ds["lag_err"].values
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=1)
    ax.errorbar(
        x,
        lag,
        yerr=err,
        xerr=[x - lo, hi - x],
        fmt="o",
        ms=4,
        color="C0",
        ecolor="C0",
        elinewidth=1.0,
        capsize=0,
        zorder=3,
    )
    _energy_axis(ax, float(np.min(lo)), float(np.max(hi)))
    ax.set_ylabel("Time lag (s)")
    if title is None:
        f_lo, f_hi = float(ds["f_lo"]), float(ds["f_hi"])
        title = (
            f"{ds.attrs.get('scheme', '')} lag-energy, {sci(f_lo)}\u2013{sci(f_hi)} Hz\n"
            f"{describe_obsids(_obsids(ds))}; {ds.attrs.get('n_segments', '?')} segments"
        )
    ax.set_title(title, fontsize=10)
    ref = ds.attrs.get("reference", "")
    note = f"reference: {ref}; positive = band lags" if ref else "positive = band lags"
    ax.text(0.02, 0.97, note, transform=ax.transAxes, fontsize=8, va="top", color="0.3")
    ax.tick_params(which="both", direction="in", top=True, right=True)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def plot_power_spectrum(
    ds: xr.Dataset, path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Draw power spectra (frequency x power, rms normalisation) to a file.

    Each band: points with 1-sigma errors (x error bars: the frequency bin) and
    its Poisson noise level (frequency x noise) as a dashed line of the same colour.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.power_spectrum` (dims band x freq).
    path : str or os.PathLike
        Output file.
    title : str, optional
        Replaces the automatic title.
    """
    f = ds["freq"].values
    f_lo, f_hi = ds["f_lo"].values, ds["f_hi"].values
    n_band = ds.sizes["band"]
    e_lo = ds["e_lo"].values
    span = float(np.nanmax(e_lo) - np.nanmin(e_lo)) or 1.0
    # the top 15 % of viridis (pale yellow) is hard to see on white: stop below it
    norm = Normalize(float(np.nanmin(e_lo)), float(np.nanmin(e_lo)) + span / 0.85)
    colours = plt.get_cmap("viridis")(norm(e_lo))
    fig, ax = plt.subplots(figsize=(7.4, 4.6))
    for b in range(n_band):
        p, e, n = (ds[k].values[b] for k in ("power", "power_err", "noise"))
        label = f"{float(ds['e_lo'][b]):g}-{float(ds['e_hi'][b]):g} keV"
        ax.errorbar(
            f,
            f * p,
            yerr=f * e,
            xerr=[f - f_lo, f_hi - f],
            fmt="o",
            ms=3,
            color=colours[b],
            elinewidth=0.8,
            capsize=0,
            label=label if n_band <= 8 else None,
        )
        fine = np.geomspace(f_lo[0], f_hi[-1], 50)
        ax.plot(fine, fine * np.interp(fine, f, n), ls="--", lw=0.9, color=colours[b])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Frequency (Hz)")
    ax.set_ylabel(r"Frequency $\times$ power ((rms/mean)$^2$)")
    if n_band <= 8:
        ax.legend(
            fontsize=8,
            frameon=False,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            title="dashed: noise level",
            title_fontsize=8,
        )
    else:
        sm = plt.cm.ScalarMappable(cmap="viridis", norm=norm)
        cbar = fig.colorbar(sm, ax=ax, label="band lower edge (keV); dashed: noise level")
        cbar.ax.set_ylim(float(np.nanmin(e_lo)), float(np.nanmax(e_lo)))
    if title is None:
        taper = "Hanning taper" if ds.attrs.get("taper") == "hanning" else "no taper"
        title = (
            f"{ds.attrs.get('scheme', '')} power spectra ({taper})\n"
            f"{describe_obsids(_obsids(ds))}; {ds.attrs.get('n_segments', '?')} segments"
        )
    ax.set_title(title, fontsize=10)
    ax.tick_params(which="both", direction="in", top=True, right=True)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
