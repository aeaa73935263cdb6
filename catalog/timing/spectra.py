"""Power and cross spectra as xarray Datasets.

These are entry points the catalogue wires to ``segments(...)``, the store and the
CLI (lag-frequency and lag-energy are in :mod:`catalog.timing.lags`). Both take a list
of :class:`~catalog.timing.segments.Segment` (several observations of one energy
scheme are pooled by concatenating their lists), or the segments Dataset of
:meth:`catalog.Catalog.segments` (then the band edges come from it and its
provenance attributes -- scheme, obsids, input hashes, segment options -- are copied
into the result; see :mod:`catalog.timing.selection`, which also pairs each band with
its reference), and return an :class:`xarray.Dataset`:

- :func:`power_spectrum`: dims (band, freq).
- :func:`cross_spectrum`: dims (band, freq), each band (or ``overlap`` window of
  bands) against its reference; powers, cross spectrum, lag, coherence, rms and
  covariance per frequency bin.

Coordinates: ``band`` (index of the first band of the window), ``e_lo``, ``e_hi``
(keV, band), ``freq`` (mean member frequency, Hz), ``f_lo``, ``f_hi`` (bin edges,
Hz), ``count`` (K x M pairs per bin), ``n_eff`` (effective number of independent
pairs: ``count`` without a taper, fewer with the Hanning taper, which correlates
adjacent frequencies; it is the K x M of every error and bias formula, see
:mod:`catalog.timing.fourier`).  Normalisation, taper and lag sign are those
of :mod:`catalog.timing.fourier`; formulas of :mod:`catalog.timing.products`;
the shared Dataset parts are in :mod:`catalog.timing.results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from catalog.timing import products as pr
from catalog.timing.fourier import FrequencyBins, average_cross_spectra
from catalog.timing.results import (
    LAG_SIGN,
    cross_quantities,
    freq_coords,
    frequency_bins,
    result_attrs,
    result_dataset,
)
from catalog.timing.segments import Segment
from catalog.timing.selection import (
    Reference,
    accepts_dataset,
    band_edges,
    band_selection,
    describe_reference,
)

__all__ = ["cross_spectrum", "power_spectrum"]


@accepts_dataset
def power_spectrum(
    segments: Sequence[Segment],
    *,
    bins: FrequencyBins | ArrayLike | None = None,
    min_per_bin: int = 20,
    factor: float = 1.1,
    taper: bool = False,
    e_lo: ArrayLike | None = None,
    e_hi: ArrayLike | None = None,
) -> xr.Dataset:
    """Averaged periodogram of every band, rms normalisation.

    Parameters
    ----------
    segments : sequence of Segment or xarray.Dataset
        Segments of one scheme (pooled over observations).
    bins : FrequencyBins or array_like or None
        Bins or edges (Hz); None: :func:`~catalog.timing.fourier.freq_bins` with
        ``min_per_bin`` and ``factor``.
    min_per_bin, factor : int, float
        Log-binning parameters (ignored when ``bins`` is given).
    taper : bool, default False
        Hanning taper (the reference workflow uses True).
    e_lo, e_hi : array_like, optional
        (n_band,) band edges, keV.

    Returns
    -------
    xarray.Dataset
        dims (band, freq): ``power``, ``power_err`` (P / sqrt(n_eff)), ``noise``
        ((rms/mean)^2/Hz), ``rms``, ``rms_err`` (counts/s in each bin); (band,):
        ``mean_rate``; coords as in the module docstring.

    Raises
    ------
    ConfigError
        Without segments or frequencies, or for mixed segments.
    """
    fb = frequency_bins(segments, bins, min_per_bin, factor)
    n_band = segments[0].n_band if segments else 0
    avg = average_cross_spectra(segments, np.eye(n_band), None, fb, taper=taper)
    fb = avg.bins
    m = avg.n_eff[None, :]
    rms, rms_err = pr.rms_amplitude(avg.power, avg.noise, fb.width[None, :], m)
    mu2 = avg.mean_rate[:, None] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        data = {
            "power": avg.power / mu2,
            "power_err": pr.power_error(avg.power, m) / mu2,
            "noise": avg.noise / mu2,
            "rms": rms,
            "rms_err": rms_err,
            "mean_rate": avg.mean_rate,
        }
    lo, hi = band_edges(n_band, e_lo, e_hi)
    coords = {
        "band": ("band", np.arange(n_band)),
        "e_lo": ("band", lo),
        "e_hi": ("band", hi),
        **freq_coords(avg),
    }
    attrs = result_attrs(avg, segments, (bins, min_per_bin, factor), product="power spectrum")
    return result_dataset(data, ("band", "freq"), coords, attrs)


@accepts_dataset
def cross_spectrum(
    segments: Sequence[Segment],
    *,
    bins: FrequencyBins | ArrayLike | None = None,
    min_per_bin: int = 20,
    factor: float = 1.1,
    reference: Reference = "others",
    overlap: int = 1,
    taper: bool = False,
    e_lo: ArrayLike | None = None,
    e_hi: ArrayLike | None = None,
) -> xr.Dataset:
    """Cross spectrum of every band (or overlap window) against its reference.

    Parameters
    ----------
    segments : sequence of Segment or xarray.Dataset
        Segments of one scheme (pooled over observations).
    bins, min_per_bin, factor, taper, e_lo, e_hi
        As in :func:`power_spectrum`.
    reference : see :func:`band_selection`, default 'others'
        Reference rule; the subject window is always excluded from it.
    overlap : int, default 1
        Adjacent bands summed into each subject (sliding window).

    Returns
    -------
    xarray.Dataset
        dims (band, freq): ``power``, ``power_err``, ``noise``, ``ref_power``,
        ``ref_noise``, ``cross_re``, ``cross_im`` (rms normalisation),
        ``phase``, ``phase_err`` (rad), ``lag``, ``lag_err`` (s, positive: band
        lags reference), ``coherence``, ``coherence_err`` (intrinsic),
        ``rms``, ``rms_err``, ``covariance``, ``covariance_err`` (counts/s over
        each bin's width), ``coherence_undefined`` (bool: no coherence quoted, outside
        the high-power regime); (band,): ``mean_rate``, ``ref_mean_rate``.  A band whose
        reference is empty is NaN.

    Raises
    ------
    ConfigError
        Bad reference/overlap, no segments or frequencies, mixed segments.
    """
    n_band = segments[0].n_band if segments else 0
    sub, ref = band_selection(
        max(n_band, 1), reference=reference, overlap=overlap, e_lo=e_lo, e_hi=e_hi
    )
    fb = frequency_bins(segments, bins, min_per_bin, factor)
    avg = average_cross_spectra(segments, sub, ref, fb, taper=taper)
    keep = cast(NDArray[np.bool_], ref.any(axis=1))  # ref is 2-d: one flag per row
    data = cross_quantities(avg, keep)
    data["mean_rate"] = avg.mean_rate
    assert avg.ref_mean_rate is not None  # averaged with a reference
    data["ref_mean_rate"] = np.where(keep, avg.ref_mean_rate, np.nan)
    lo, hi = band_edges(n_band, e_lo, e_hi)
    first = np.arange(sub.shape[0])
    coords = {
        "band": ("band", first),
        "e_lo": ("band", lo[first]),
        "e_hi": ("band", hi[first + overlap - 1]),
        **freq_coords(avg),
    }
    attrs = result_attrs(
        avg,
        segments,
        (bins, min_per_bin, factor),
        product="cross spectrum",
        reference=describe_reference(reference),
        overlap=int(overlap),
        lag_sign=LAG_SIGN,
    )
    return result_dataset(data, ("band", "freq"), coords, attrs)
