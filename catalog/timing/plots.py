"""Figures of timing products (matplotlib objects; a file only when asked).

Every function returns its :class:`matplotlib.figure.Figure` and draws into the
axes given (``ax=`` / ``axes=``) or into a new Figure (not registered with
pyplot, so nothing global changes); with ``path`` it also writes the file.

- :func:`plot_lag_energy`: lag against energy (log axis, plain keV tick labels),
  1-sigma errors, band widths as x error bars, a zero line; one panel per
  frequency range of a :func:`~catalog.timing.lag_energy_ranges` result, with
  coherence and covariance rows on request, and an expected lag (e.g. the
  simulator's injected one) drawn beside the measurement.
- :func:`plot_lag_frequency`: lag and intrinsic coherence against frequency.
- :func:`plot_power_spectrum`: frequency x power against frequency on log-log
  axes with each band's Poisson noise level; all bands on one axes, a chosen
  subset, or one panel per band.

Titles name the scheme, the frequency range, the observations and the number of
segments, read from the product's attributes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter
from numpy.typing import ArrayLike

from catalog.netcdf import python_attrs
from catalog.timing.results import describe_obsids
from schemas.errors import ConfigError

__all__ = [
    "describe_obsids",
    "plot_lag_energy",
    "plot_lag_frequency",
    "plot_power_spectrum",
    "sci",
]

_ENERGY_TICKS = (0.5, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15)
#: y range of coherence panels: the intrinsic coherence is 0..1 in principle, and its
#: estimate scatters far outside where the noise dominates (errors of 1e5 would flatten the
#: panel); points outside stay in the data, drawn at the edge by their error bars.
COHERENCE_YLIM = (-0.2, 1.5)

_PANELS = {
    "lag": ("lag", "lag_err", "Time lag (s)"),
    "coherence": ("coherence", "coherence_err", "Intrinsic coherence"),
    "covariance": ("covariance", "covariance_err", "Covariance (counts/s)"),
    "rms": ("rms", "rms_err", "rms (counts/s)"),
}


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


def _axes_grid(
    axes: Any, nrows: int, ncols: int, figsize: tuple[float, float], **kw: Any
) -> tuple[Figure, np.ndarray]:
    """The given axes as an (nrows, ncols) array, or a new Figure's."""
    if axes is None:
        fig = Figure(figsize=figsize)
        grid = np.asarray(fig.subplots(nrows, ncols, squeeze=False, **kw))
        return fig, grid
    grid = np.asarray(axes, dtype=object).reshape(-1)
    if grid.size != nrows * ncols:
        raise ConfigError(
            f"plot axes: {grid.size} given, the figure needs {nrows} x {ncols}; pass that many"
        )
    fig = grid[0].get_figure()
    return fig, grid.reshape(nrows, ncols)


def _save(fig: Figure, path: str | os.PathLike[str] | None, dpi: int = 150) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


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
    ds: xr.Dataset,
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Axes | Sequence[Axes] | np.ndarray | None = None,
    panels: Sequence[str] = ("lag",),
    expected: ArrayLike | None = None,
    title: str | None = None,
) -> Figure:
    """Draw lag-energy spectra: one column per frequency range, one row per quantity.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.lag_energy` (dims band) or
        :func:`catalog.timing.lag_energy_ranges` (dims freq_range x band).
    path : str or os.PathLike, optional
        Also write the figure here; format from the suffix (.png, .pdf, .svg).
    ax : Axes or array of Axes, optional
        Draw here: ``len(panels) x n_range`` axes (row-major). Default: a new Figure.
    panels : sequence of {'lag', 'coherence', 'covariance', 'rms'}
        The rows (default: the lag only).
    expected : array_like, optional
        An expected lag per band, s (e.g. a simulation's injected lag), broadcast
        to (n_range, n_band); drawn as a line beside the measured lags.
    title : str, optional
        Replaces the automatic title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = python_attrs(ds)
    bad = [p for p in panels if p not in _PANELS]
    if bad or not panels:
        raise ConfigError(f"lag-energy plot panels {list(panels)}: choose from {list(_PANELS)}")
    multi = "freq_range" in ds.dims
    ranges = [ds.isel(freq_range=i) for i in range(ds.sizes["freq_range"])] if multi else [ds]
    nrows, ncols = len(panels), len(ranges)
    fig, grid = _axes_grid(ax, nrows, ncols, (0.6 + 3.6 * ncols, 0.9 + 2.6 * nrows), sharex=True)
    lo, hi = ds["e_lo"].values, ds["e_hi"].values
    x = np.sqrt(lo * hi)
    exp = None
    if expected is not None:
        exp = np.broadcast_to(np.asarray(expected, np.float64), (ncols, lo.size))
    for j, one in enumerate(ranges):
        f_lo, f_hi = float(one["f_lo"]), float(one["f_hi"])
        for i, name in enumerate(panels):
            var, err, label = _PANELS[name]
            a = grid[i, j]
            if name == "lag":
                a.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=1)
            _binned_points(
                a, x, lo, hi, one[var].values, one[err].values, zorder=3, label="measured"
            )
            if name == "lag" and exp is not None:
                a.step(
                    np.append(lo, hi[-1]),
                    np.append(exp[j], exp[j][-1]),
                    where="post",
                    color="C3",
                    lw=1.2,
                    label="expected",
                    zorder=2,
                )
                a.legend(fontsize=8, frameon=False, loc="lower right")
            _energy_axis(a, float(np.min(lo)), float(np.max(hi)))
            if name == "coherence":
                a.set_ylim(*COHERENCE_YLIM)
            if i < nrows - 1:
                a.set_xlabel("")
            if j == 0:
                a.set_ylabel(label)
            a.tick_params(which="both", direction="in", top=True, right=True)
        grid[0, j].set_title(
            f"{sci(f_lo)}\u2013{sci(f_hi)} Hz ({int(one['count'])} pairs)", fontsize=9
        )
    if title is None:
        title = (
            f"{ds.attrs.get('scheme', '')} lag-energy; {describe_obsids(_obsids(ds))}; "
            f"{ds.attrs.get('n_segments', '?')} segments"
        )
    ref = ds.attrs.get("reference", "")
    note = f"reference: {ref}; positive = band lags" if ref else "positive = band lags"
    if ax is None:
        fig.suptitle(f"{title}\n{note}", fontsize=10)
        fig.tight_layout()
    return _save(fig, path)


def plot_lag_frequency(
    ds: xr.Dataset,
    path: str | os.PathLike[str] | None = None,
    *,
    axes: Sequence[Axes] | np.ndarray | None = None,
    title: str | None = None,
) -> Figure:
    """Draw a lag-frequency spectrum: lag (top) and intrinsic coherence (bottom).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.lag_frequency` (dims freq).
    path : str or os.PathLike, optional
        Also write the figure here.
    axes : two Axes, optional
        Draw the lag and the coherence here. Default: a new Figure.
    title : str, optional
        Replaces the automatic title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = python_attrs(ds)
    fig, grid = _axes_grid(axes, 2, 1, (6.4, 6.0), sharex=True)
    f, f_lo, f_hi = ds["freq"].values, ds["f_lo"].values, ds["f_hi"].values
    for a, name in zip(grid[:, 0], ("lag", "coherence"), strict=True):
        var, err, label = _PANELS[name]
        if name == "lag":
            a.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=1)
        _binned_points(a, f, f_lo, f_hi, ds[var].values, ds[err].values)
        a.set_xscale("log")
        a.set_ylabel(label)
        a.tick_params(which="both", direction="in", top=True, right=True)
    grid[1, 0].set_ylim(*COHERENCE_YLIM)
    grid[1, 0].set_xlabel("Frequency (Hz)")
    if title is None:
        title = (
            f"{ds.attrs.get('scheme', '')} lag-frequency: "
            f"{float(ds['e_lo']):g}-{float(ds['e_hi']):g} keV against "
            f"{float(ds['ref_e_lo']):g}-{float(ds['ref_e_hi']):g} keV; positive = subject lags\n"
            f"{describe_obsids(_obsids(ds))}; {ds.attrs.get('n_segments', '?')} segments"
        )
    if axes is None:
        grid[0, 0].set_title(title, fontsize=10)
        fig.tight_layout()
    return _save(fig, path)


def _band_colours(e_lo: np.ndarray) -> tuple[np.ndarray, Normalize]:
    span = float(np.nanmax(e_lo) - np.nanmin(e_lo)) or 1.0
    # the top 15 % of viridis (pale yellow) is hard to see on white: stop below it
    norm = Normalize(float(np.nanmin(e_lo)), float(np.nanmin(e_lo)) + span / 0.85)
    return matplotlib.colormaps["viridis"](norm(e_lo)), norm


def _binned_points(a: Axes, x: Any, lo: Any, hi: Any, y: Any, err: Any, **style: Any) -> None:
    """Points at ``x`` with 1-sigma errors ``err`` and x bars spanning each bin ``[lo, hi]``."""
    kw: dict[str, Any] = {"fmt": "o", "ms": 4, "color": "C0", "elinewidth": 1.0, "capsize": 0}
    a.errorbar(x, y, yerr=err, xerr=[x - lo, hi - x], **{**kw, **style})


def _draw_psd(a: Axes, ds: xr.Dataset, b: int, colour: Any, label: str | None) -> None:
    f = ds["freq"].values
    f_lo, f_hi = ds["f_lo"].values, ds["f_hi"].values
    p, e, n = (ds[k].values[b] for k in ("power", "power_err", "noise"))
    _binned_points(a, f, f_lo, f_hi, f * p, f * e, ms=3, color=colour, elinewidth=0.8, label=label)
    fine = np.geomspace(f_lo[0], f_hi[-1], 50)
    a.plot(fine, fine * np.interp(fine, f, n), ls="--", lw=0.9, color=colour)
    a.set_xscale("log")
    a.set_yscale("log")
    a.tick_params(which="both", direction="in", top=True, right=True)


def plot_power_spectrum(
    ds: xr.Dataset,
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Axes | Sequence[Axes] | np.ndarray | None = None,
    bands: Sequence[int] | None = None,
    panels: bool | None = None,
    title: str | None = None,
) -> Figure:
    """Draw power spectra (frequency x power, rms normalisation).

    Each band: points with 1-sigma errors (x error bars: the frequency bin) and
    its Poisson noise level (frequency x noise) as a dashed line of its colour.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.power_spectrum` (dims band x freq).
    path : str or os.PathLike, optional
        Also write the figure here.
    ax : Axes or array of Axes, optional
        One Axes (all bands overlaid) or one per drawn band (``panels``).
    bands : sequence of int, optional
        Band positions to draw (default: all).
    panels : bool, optional
        One panel per band (shared axes). Default: panels above 8 bands, where
        overlaid spectra cannot be told apart.
    title : str, optional
        Replaces the automatic title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ds = python_attrs(ds)
    if bands is not None:
        n_all = ds.sizes["band"]
        if any(not -n_all <= int(b) < n_all for b in bands):
            raise ConfigError(f"power-spectrum plot bands {list(bands)}: use 0..{n_all - 1}")
        ds = ds.isel(band=[int(b) for b in bands])
    n_band = ds.sizes["band"]
    e_lo, e_hi = ds["e_lo"].values, ds["e_hi"].values
    colours, norm = _band_colours(e_lo)
    labels = [f"{lo:g}-{hi:g} keV" for lo, hi in zip(e_lo, e_hi, strict=True)]
    as_panels = n_band > 8 if panels is None else panels
    if title is None:
        taper = "Hanning taper" if ds.attrs.get("taper") == "hanning" else "no taper"
        title = (
            f"{ds.attrs.get('scheme', '')} power spectra ({taper}); dashed: noise level\n"
            f"{describe_obsids(_obsids(ds))}; {ds.attrs.get('n_segments', '?')} segments"
        )
    ylabel = r"Frequency $\times$ power ((rms/mean)$^2$)"
    if as_panels:
        ncols = min(4, n_band)
        nrows = -(-n_band // ncols)
        fig, grid = _axes_grid(
            ax, nrows, ncols, (1.0 + 3.0 * ncols, 0.9 + 2.3 * nrows), sharex=True, sharey=True
        )
        for k, a in enumerate(grid.ravel()):
            if k >= n_band:
                a.set_visible(False)
                continue
            _draw_psd(a, ds, k, colours[k], None)
            a.text(0.04, 0.94, labels[k], transform=a.transAxes, fontsize=8, va="top")
            if k % ncols == 0:
                a.set_ylabel(ylabel if nrows == 1 else r"$f \times P$")
            if k >= n_band - ncols:
                a.set_xlabel("Frequency (Hz)")
        if ax is None:
            fig.suptitle(title, fontsize=10)
            fig.tight_layout()
        return _save(fig, path)
    fig, grid = _axes_grid(ax, 1, 1, (7.4, 4.6))
    a = grid[0, 0]
    for b in range(n_band):
        _draw_psd(a, ds, b, colours[b], labels[b] if n_band <= 8 else None)
    a.set_xlabel("Frequency (Hz)")
    a.set_ylabel(ylabel)
    if n_band <= 8:
        a.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        cbar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=a)
        cbar.set_label("band lower edge (keV)")
        cbar.ax.set_ylim(float(np.nanmin(e_lo)), float(np.nanmax(e_lo)))
    if ax is None:
        a.set_title(title, fontsize=10)
        fig.tight_layout()
    return _save(fig, path)
