"""Inputs of the spectral products: segments, band edges and the subject/reference bands.

The products of :mod:`catalog.timing.spectra` and :mod:`catalog.timing.lags` take their
light curves as :data:`Segments` -- a list of :class:`~catalog.timing.segments.Segment`, or the
segments Dataset of :meth:`catalog.Catalog.segments`, which :func:`accepts_dataset`
unpacks (band edges and provenance attributes included) -- and pair each subject band,
or ``overlap`` window of bands, with a :data:`Reference` set of bands by
:func:`band_selection`.  :func:`band_edges` and :func:`describe_reference` give the
products' ``e_lo``/``e_hi`` coordinates and ``reference`` attribute.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from catalog.netcdf import python_attrs, same_form
from catalog.timing.catalogue import as_segments, provenance_attrs
from catalog.timing.segments import Segment
from schemas.errors import ConfigError

__all__ = [
    "Reference",
    "Segments",
    "accepts_dataset",
    "band_edges",
    "band_selection",
    "describe_reference",
]

Reference = str | int | tuple[float, float] | Sequence[int]
"""``"others"`` | band index | (e_min, e_max) keV | list of band indices."""

Segments = Sequence[Segment] | xr.Dataset
"""A list of :class:`Segment`, or a segments Dataset (:meth:`catalog.Catalog.segments`)."""


_P = ParamSpec("_P")


def accepts_dataset(
    func: Callable[Concatenate[Sequence[Segment], _P], xr.Dataset],
) -> Callable[Concatenate[Segments, _P], xr.Dataset]:
    """Let ``func(segments, ...)`` take a segments Dataset as well as a Segment list.

    Given a Dataset (:meth:`catalog.Catalog.segments`), the wrapper calls `func` with
    ``as_segments(dataset)``, fills ``e_lo``/``e_hi`` (keV) from the Dataset unless they
    are given, and copies the Dataset's provenance attributes (scheme, obsids, input
    hashes, segment options) into the result.  The result's attributes take the form of
    the Dataset's (:func:`catalog.netcdf.same_form`): netCDF-valid for the catalogue's
    default, rich Python values for ``catalog.open(path, attrs="python")``.  A Segment
    list is passed on unchanged.

    Parameters
    ----------
    func : callable
        A spectral product ``func(segments, ..., e_lo=None, e_hi=None) -> xarray.Dataset``.

    Returns
    -------
    callable
        `func` accepting :data:`Segments`.
    """

    @functools.wraps(func)
    def wrapper(segments: Segments, *args: _P.args, **kwargs: _P.kwargs) -> xr.Dataset:
        if not isinstance(segments, xr.Dataset):
            return func(segments, *args, **kwargs)
        rich = python_attrs(segments)  # netCDF-valid attributes (catalog.netcdf) decoded
        for key in ("e_lo", "e_hi"):
            if kwargs.get(key) is None:
                kwargs[key] = rich[key].values
        out = func(as_segments(rich), *args, **kwargs)
        out.attrs.update(provenance_attrs(rich))
        return same_form(out, segments)  # netCDF-valid unless the segments were rich

    return wrapper


def band_edges(
    n_band: int, e_lo: ArrayLike | None, e_hi: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Band edges as float arrays, NaN where they are not given.

    Parameters
    ----------
    n_band : int
        Number of bands.
    e_lo, e_hi : array_like or None
        (n_band,) lower and upper band edges, keV; None: all NaN.

    Returns
    -------
    lo, hi : NDArray[float64]
        (n_band,) band edges, keV.

    Raises
    ------
    ValueError
        If `e_lo` or `e_hi` does not have shape (n_band,).
    """
    lo = np.full(n_band, np.nan) if e_lo is None else np.asarray(e_lo, np.float64)
    hi = np.full(n_band, np.nan) if e_hi is None else np.asarray(e_hi, np.float64)
    if lo.shape != (n_band,) or hi.shape != (n_band,):
        raise ValueError(f"e_lo/e_hi must have shape ({n_band},)")
    return lo, hi


def _ref_set(
    reference: Reference, n_band: int, lo: NDArray[np.float64], hi: NDArray[np.float64]
) -> NDArray[np.bool_]:
    sel = np.zeros(n_band, dtype=bool)
    if isinstance(reference, str):
        if reference != "others":
            raise ConfigError(
                f"timing reference = {reference!r}; use 'others', a band index, "
                "a list of band indices or an (e_min, e_max) range in keV"
            )
        sel[:] = True
    elif isinstance(reference, (int, np.integer)):
        if not -n_band <= reference < n_band:
            raise ConfigError(
                f"timing reference band {reference} does not exist; the scheme "
                f"has bands 0..{n_band - 1}"
            )
        sel[reference] = True
    elif isinstance(reference, tuple):
        if len(reference) != 2 or np.any(np.isnan(lo)) or np.any(np.isnan(hi)):
            raise ConfigError(
                f"timing reference = {reference!r}: an energy range needs "
                "(e_min, e_max) in keV and the band edges e_lo/e_hi"
            )
        e_min, e_max = (float(x) for x in reference)
        tol = 1e-9 * max(1.0, abs(e_max))
        sel = (lo >= e_min - tol) & (hi <= e_max + tol)
        if not sel.any():
            raise ConfigError(
                f"timing reference {e_min:g}-{e_max:g} keV contains no band of "
                f"the scheme ({lo.min():g}-{hi.max():g} keV); widen the range"
            )
    else:
        idx = np.asarray(reference, dtype=np.int64).ravel()
        if idx.size == 0 or np.any((idx < -n_band) | (idx >= n_band)):
            raise ConfigError(
                f"timing reference bands {idx.tolist()} are not all in 0..{n_band - 1}"
            )
        sel[idx] = True
    return sel


def band_selection(
    n_band: int,
    *,
    reference: Reference = "others",
    overlap: int = 1,
    e_lo: ArrayLike | None = None,
    e_hi: ArrayLike | None = None,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Subject windows and their reference bands.

    Output row ``i`` (``i = 0 .. n_band - overlap``) has the subject
    ``bands i .. i + overlap - 1`` summed (aztools' ``overlap``), and the reference
    ``R \\ window``: the chosen reference set minus the subject window, so a band
    never correlates with itself (the reference error is the quadrature sum).

    Parameters
    ----------
    n_band : int
        Number of bands of the scheme.
    reference : {'others'} or int or (float, float) or list of int, default 'others'
        ``'others'``: all bands (reference workflow ``iref=-1``); an int: that band;
        a tuple: the bands with ``e_min <= e_lo`` and ``e_hi <= e_max`` (keV); a list:
        those band indices.
    overlap : int, default 1
        Number of adjacent bands summed into each subject.
    e_lo, e_hi : array_like, optional
        (n_band,) band edges, keV (needed for an energy-range reference).

    Returns
    -------
    subject, reference : NDArray[bool_]
        (n_band - overlap + 1, n_band) selection matrices.  A row whose reference
        is empty (e.g. the reference band itself) is all False.

    Raises
    ------
    ConfigError
        For an unknown reference or an ``overlap`` outside 1..n_band.
    """
    if not (isinstance(overlap, (int, np.integer)) and 1 <= overlap <= n_band):
        raise ConfigError(f"timing overlap = {overlap!r}; use an integer in 1..{n_band}")
    lo, hi = band_edges(n_band, e_lo, e_hi)
    ref = _ref_set(reference, n_band, lo, hi)
    n_out = n_band - overlap + 1
    subject = np.zeros((n_out, n_band), dtype=bool)
    for i in range(n_out):
        subject[i, i : i + overlap] = True
    return subject, ref[None, :] & ~subject


def describe_reference(reference: Reference) -> str:
    """Describe a reference rule in words, for the products' ``reference`` attribute.

    Parameters
    ----------
    reference : {'others'} or int or (float, float) or list of int
        As in :func:`band_selection`.

    Returns
    -------
    str
        E.g. ``"sum of all other bands"``, ``"band 3"``,
        ``"sum of the other bands in 2-4 keV"``.
    """
    if isinstance(reference, str):
        return "sum of all other bands"
    if isinstance(reference, (int, np.integer)):
        return f"band {int(reference)}"
    if isinstance(reference, tuple):
        return f"sum of the other bands in {reference[0]:g}-{reference[1]:g} keV"
    return "sum of the other bands among " + ",".join(str(int(i)) for i in reference)
