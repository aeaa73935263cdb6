"""Lag-frequency and lag-energy spectra as xarray Datasets.

Like :mod:`catalog.timing.spectra`, both take a list of
:class:`~catalog.timing.segments.Segment` or the segments Dataset of
:meth:`catalog.Catalog.segments`, and return an :class:`xarray.Dataset`:

- :func:`lag_frequency`: dims (freq,), one subject against one reference.
- :func:`lag_energy`: dims (band,), everything averaged over one frequency
  range [f_lo, f_hi).
- :func:`lag_energy_ranges`: dims (freq_range, band), one lag-energy spectrum per
  range between consecutive frequency edges.

A lag is positive when the band lags (arrives after) the reference. Coordinates,
normalisation and taper as in :mod:`catalog.timing.spectra`; formulas of
:mod:`catalog.timing.products`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from catalog.timing.fourier import FrequencyBins, average_cross_spectra
from catalog.timing.results import (
    COHERENCE_UNDEFINED,
    LAG_ERR_UNCALIBRATED,
    LAG_SIGN,
    UNITS,
    cross_quantities,
    freq_coords,
    frequency_bins,
    result_attrs,
)
from catalog.timing.segments import Segment
from catalog.timing.selection import (
    Reference,
    accepts_dataset,
    band_edges,
)
from catalog.timing.spectra import cross_spectrum
from schemas.errors import ConfigError

__all__ = ["lag_energy", "lag_energy_ranges", "lag_frequency"]


@accepts_dataset
def lag_frequency(
    segments: Sequence[Segment],
    subject: int | Sequence[int],
    reference: int | Sequence[int],
    *,
    bins: FrequencyBins | ArrayLike | None = None,
    min_per_bin: int = 20,
    factor: float = 1.1,
    taper: bool = False,
    e_lo: ArrayLike | None = None,
    e_hi: ArrayLike | None = None,
) -> xr.Dataset:
    """Lag-frequency spectrum of one subject band (sum) against one reference (sum).

    Parameters
    ----------
    segments : sequence of Segment or xarray.Dataset
        Segments of one scheme (pooled over observations).
    subject, reference : int or sequence of int
        Band index, or indices summed; the reference must not share a band with
        the subject.
    bins, min_per_bin, factor, taper, e_lo, e_hi
        As in :func:`~catalog.timing.spectra.power_spectrum`.

    Returns
    -------
    xarray.Dataset
        dims (freq,): the variables of :func:`~catalog.timing.spectra.cross_spectrum`; scalar coords
        ``e_lo``, ``e_hi`` (subject) and ``ref_e_lo``, ``ref_e_hi`` (keV, the
        reference's outer edges).

    Raises
    ------
    ConfigError
        If the subject and reference overlap or a band index is out of range.
    """
    n_band = segments[0].n_band if segments else 0
    s_idx = np.atleast_1d(np.asarray(subject, dtype=np.int64))
    r_idx = np.atleast_1d(np.asarray(reference, dtype=np.int64))
    for idx in (s_idx, r_idx):
        if idx.size == 0 or np.any((idx < 0) | (idx >= n_band)):
            raise ConfigError(f"lag-frequency bands {idx.tolist()} are not all in 0..{n_band - 1}")
    if np.intersect1d(s_idx, r_idx).size:
        raise ConfigError(
            f"lag-frequency subject {s_idx.tolist()} and reference "
            f"{r_idx.tolist()} share bands; choose disjoint bands"
        )
    sub = np.zeros((1, n_band))
    ref = np.zeros((1, n_band))
    sub[0, s_idx] = 1.0
    ref[0, r_idx] = 1.0
    fb = frequency_bins(segments, bins, min_per_bin, factor)
    avg = average_cross_spectra(segments, sub, ref, fb, taper=taper)
    data = {k: v[0] for k, v in cross_quantities(avg, np.ones(1, bool)).items()}
    data["mean_rate"] = avg.mean_rate[0]
    assert avg.ref_mean_rate is not None  # averaged with a reference
    data["ref_mean_rate"] = avg.ref_mean_rate[0]
    lo, hi = band_edges(n_band, e_lo, e_hi)
    coords = {
        "e_lo": lo[s_idx].min(),
        "e_hi": hi[s_idx].max(),
        "ref_e_lo": lo[r_idx].min(),
        "ref_e_hi": hi[r_idx].max(),
        **freq_coords(avg),
    }
    attrs = result_attrs(
        avg,
        segments,
        (bins, min_per_bin, factor),
        product="lag-frequency",
        lag_sign=LAG_SIGN,
        subject_bands=",".join(map(str, s_idx)),
        reference="sum of bands " + ",".join(map(str, r_idx)),
    )
    ds = xr.Dataset(
        {k: (("freq",) if np.ndim(v) else (), v) for k, v in data.items()},
        coords=coords,
        attrs=attrs,
    )
    for k in ds.data_vars:
        if k in UNITS:
            ds[k].attrs["units"] = UNITS[str(k)]
    ds["coherence_undefined"].attrs["description"] = COHERENCE_UNDEFINED
    ds["lag_err_uncalibrated"].attrs["description"] = LAG_ERR_UNCALIBRATED
    return ds


@accepts_dataset
def lag_energy(
    segments: Sequence[Segment],
    f_lo: float,
    f_hi: float,
    *,
    reference: Reference = "others",
    overlap: int = 1,
    taper: bool = False,
    e_lo: ArrayLike | None = None,
    e_hi: ArrayLike | None = None,
) -> xr.Dataset:
    """Lag-, rms-, covariance- and coherence-energy spectra over [f_lo, f_hi).

    The cross spectrum and powers are averaged over every (segment, frequency)
    pair with ``f_lo <= f < f_hi``; then ``lag = phase / (2 pi f_mean)`` with
    ``f_mean`` the mean of those frequencies, and rms and covariance use
    ``Delta-nu = f_hi - f_lo``.

    Parameters
    ----------
    segments : sequence of Segment or xarray.Dataset
        Segments of one scheme; pool several observations by concatenating lists.
    f_lo, f_hi : float
        Frequency range, Hz.
    reference, overlap, taper, e_lo, e_hi
        As in :func:`~catalog.timing.spectra.cross_spectrum`.

    Returns
    -------
    xarray.Dataset
        dims (band,): the variables of :func:`~catalog.timing.spectra.cross_spectrum`; scalar coords
        ``freq``, ``f_lo``, ``f_hi``, ``count``.

    Raises
    ------
    ConfigError
        If ``f_hi <= f_lo``, the range holds no Fourier frequency, or as
        :func:`~catalog.timing.spectra.cross_spectrum`.
    """
    if not (np.isfinite(f_lo) and np.isfinite(f_hi) and 0 <= f_lo < f_hi):
        raise ConfigError(
            f"lag-energy frequency range [{f_lo!r}, {f_hi!r}) Hz; use 0 <= f_lo < f_hi"
        )
    ds = cross_spectrum(
        segments,
        bins=np.array([f_lo, f_hi], dtype=np.float64),
        reference=reference,
        overlap=overlap,
        taper=taper,
        e_lo=e_lo,
        e_hi=e_hi,
    )
    if int(ds["count"][0]) == 0:
        raise ConfigError(
            f"lag-energy range [{f_lo:g}, {f_hi:g}) Hz holds no Fourier frequency "
            "of the segments; widen it or use longer segments"
        )
    ds = ds.isel(freq=0)
    ds.attrs["product"] = "lag-energy"
    return ds


@accepts_dataset
def lag_energy_ranges(
    segments: Sequence[Segment],
    edges: ArrayLike,
    *,
    reference: Reference = "others",
    overlap: int = 1,
    taper: bool = False,
    e_lo: ArrayLike | None = None,
    e_hi: ArrayLike | None = None,
) -> xr.Dataset:
    """Lag-energy spectra over several frequency ranges, from consecutive edges.

    ``edges = [8e-6, 1e-4, 2.6e-4, 5e-4, 8e-4]`` gives the four ranges
    [8e-6, 1e-4), [1e-4, 2.6e-4), [2.6e-4, 5e-4), [5e-4, 8e-4), each computed as
    :func:`lag_energy` does over the same segments and reference.

    Parameters
    ----------
    segments : sequence of Segment or xarray.Dataset
        Segments of one scheme.
    edges : array_like
        (n_range + 1,) increasing frequency edges, Hz (at least two).
    reference, overlap, taper, e_lo, e_hi
        As in :func:`lag_energy`.

    Returns
    -------
    xarray.Dataset
        dims (freq_range, band): the variables of :func:`lag_energy`; coords
        ``f_lo``, ``f_hi``, ``freq`` (mean frequency) and ``count`` along
        ``freq_range``.

    Raises
    ------
    ConfigError
        If the edges are fewer than two or not increasing, or a range holds no
        Fourier frequency.
    """
    e = np.asarray(edges, dtype=np.float64).ravel()
    if e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0) or e[0] < 0:
        raise ConfigError(
            f"lag-energy frequency edges {e.tolist()}: give two or more increasing "
            "frequencies >= 0 Hz"
        )
    parts = [
        lag_energy(
            segments,
            float(lo),
            float(hi),
            reference=reference,
            overlap=overlap,
            taper=taper,
            e_lo=e_lo,
            e_hi=e_hi,
        )
        for lo, hi in zip(e[:-1], e[1:], strict=True)
    ]
    out = xr.concat(
        parts,
        dim="freq_range",
        data_vars="all",
        coords="different",
        compat="equals",
        combine_attrs="override",
    )
    out.attrs["product"] = "lag-energy"
    out.attrs["freq_edges"] = e.tolist()
    return out
