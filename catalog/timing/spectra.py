"""Power spectra, cross spectra, lag-frequency and lag-energy products as xarray Datasets.

These are the entry points the catalogue wires to ``segments(...)``, the store
and the CLI.  All take a list of :class:`~catalog.timing.segments.Segment`
(several observations of one energy scheme are pooled by concatenating their
lists), or the segments Dataset of :meth:`catalog.Catalog.segments` (then the
band edges come from it and its provenance attributes -- scheme, obsids, input
hashes, segment options -- are copied into the result; see
:mod:`catalog.timing.selection`, which also pairs each band with its reference),
and return an :class:`xarray.Dataset`:

- :func:`power_spectrum`: dims (band, freq).
- :func:`cross_spectrum`: dims (band, freq), each band (or ``overlap`` window of
  bands) against its reference; powers, cross spectrum, lag, coherence, rms and
  covariance per frequency bin.
- :func:`lag_frequency`: dims (freq,), one subject against one reference.
- :func:`lag_energy`: dims (band,), everything averaged over one frequency
  range [f_lo, f_hi).

Coordinates: ``band`` (index of the first band of the window), ``e_lo``, ``e_hi``
(keV, band), ``freq`` (mean member frequency, Hz), ``f_lo``, ``f_hi`` (bin edges,
Hz), ``count`` (K x M pairs per bin), ``n_eff`` (effective number of independent
pairs: ``count`` without a taper, fewer with the Hanning taper, which correlates
adjacent frequencies; it is the K x M of every error and bias formula, see
:mod:`catalog.timing.fourier`).  Normalisation, taper and lag sign are those
of :mod:`catalog.timing.fourier`; formulas of :mod:`catalog.timing.products`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from catalog.timing import products as pr
from catalog.timing.fourier import (
    CrossAverages,
    FrequencyBins,
    average_cross_spectra,
    freq_bins,
    segment_frequencies,
)
from catalog.timing.segments import Segment
from catalog.timing.selection import (
    Reference,
    accepts_dataset,
    band_edges,
    band_selection,
    describe_reference,
)
from schemas.errors import ConfigError

__all__ = [
    "cross_spectrum",
    "lag_energy",
    "lag_frequency",
    "power_spectrum",
]

_LAG_SIGN = "positive: the band lags (arrives after) the reference"
_NORM = (
    "rms (Miyamoto et al. 1991): segment- and bin-averaged absolute power divided by "
    "the pooled mean rate squared"
)


def _bins(
    segments: Sequence[Segment],
    bins: FrequencyBins | ArrayLike | None,
    min_per_bin: int,
    factor: float,
) -> FrequencyBins:
    if isinstance(bins, FrequencyBins):
        return bins
    return freq_bins(
        segment_frequencies(segments), min_per_bin=min_per_bin, factor=factor, edges=bins
    )


def _attrs(
    avg: CrossAverages,
    segments: Sequence[Segment],
    binning: tuple[FrequencyBins | ArrayLike | None, int, float],
    **extra: object,
) -> dict[str, object]:
    bins, min_per_bin, factor = binning
    if bins is None:
        extra.update(min_per_bin=int(min_per_bin), factor=float(factor))
    attrs: dict[str, object] = {
        "norm": _NORM,
        "taper": "hanning" if avg.taper else "none",
        "n_segments": int(avg.n_segments),
        "dt": float(avg.dt),
        "exposure": float(sum(s.length for s in segments)),
        "frequencies": "positive Fourier frequencies, 0 and Nyquist excluded",
    }
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs


def _cross_vars(avg: CrossAverages, keep: NDArray[np.bool_]) -> dict[str, NDArray[Any]]:
    """Derived cross-spectral quantities; rows with an empty reference are NaN."""
    fb = avg.bins
    m, width = avg.n_eff[None, :], fb.width[None, :]
    ps, ns, prf, nr, c = avg.power, avg.noise, avg.ref_power, avg.ref_noise, avg.cross
    mu_ref = avg.ref_mean_rate
    # the callers average with a reference, which sets every reference product
    assert prf is not None and nr is not None and c is not None and mu_ref is not None
    phase, phase_err = pr.phase_lag(c, ps, prf, ns, nr, m)
    lag, lag_err = pr.time_lag(phase, phase_err, fb.centre[None, :])
    coh, coh_err = pr.intrinsic_coherence(c, ps, prf, ns, nr, m)
    rms, rms_err = pr.rms_amplitude(ps, ns, width, m)
    cov, cov_err = pr.covariance(c, ps, prf, ns, nr, width, m)
    mu_s, mu_r = avg.mean_rate[:, None], mu_ref[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "power": ps / mu_s**2,
            "power_err": pr.power_error(ps, m) / mu_s**2,
            "noise": ns / mu_s**2,
            "ref_power": prf / mu_r**2,
            "ref_noise": nr / mu_r**2,
            "cross_re": c.real / (mu_s * mu_r),
            "cross_im": c.imag / (mu_s * mu_r),
            "phase": phase,
            "phase_err": phase_err,
            "lag": lag,
            "lag_err": lag_err,
            "coherence": coh,
            "coherence_err": coh_err,
            "rms": rms,
            "rms_err": rms_err,
            "covariance": cov,
            "covariance_err": cov_err,
        }
    for key, val in out.items():
        out[key] = np.where(keep[:, None], val, np.nan)
    return out


_UNITS = {
    **dict.fromkeys(
        ("power", "power_err", "noise", "ref_power", "ref_noise", "cross_re", "cross_im"),
        "(rms/mean)^2/Hz",
    ),
    **dict.fromkeys(("phase", "phase_err"), "rad"),
    **dict.fromkeys(("lag", "lag_err"), "s"),
    **dict.fromkeys(("coherence", "coherence_err"), "1"),
    **dict.fromkeys(
        ("rms", "rms_err", "covariance", "covariance_err", "mean_rate", "ref_mean_rate"), "counts/s"
    ),
}


def _dataset(
    data: dict[str, NDArray[Any]],
    dims: tuple[str, ...],
    coords: dict[str, Any],
    attrs: dict[str, object],
) -> xr.Dataset:
    ds = xr.Dataset(
        {k: (dims if np.ndim(v) == len(dims) else dims[:1], v) for k, v in data.items()},
        coords=coords,
        attrs=attrs,
    )
    for k in ds.data_vars:
        if k in _UNITS:
            ds[k].attrs["units"] = _UNITS[str(k)]
    return ds


def _freq_coords(avg: CrossAverages) -> dict[str, Any]:
    fb = avg.bins
    return {
        "freq": ("freq", fb.centre),
        "f_lo": ("freq", fb.f_lo),
        "f_hi": ("freq", fb.f_hi),
        "count": ("freq", fb.count),
        "n_eff": ("freq", avg.n_eff),
    }


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
    fb = _bins(segments, bins, min_per_bin, factor)
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
        **_freq_coords(avg),
    }
    attrs = _attrs(avg, segments, (bins, min_per_bin, factor), product="power spectrum")
    return _dataset(data, ("band", "freq"), coords, attrs)


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
        each bin's width); (band,): ``mean_rate``, ``ref_mean_rate``.  A band whose
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
    fb = _bins(segments, bins, min_per_bin, factor)
    avg = average_cross_spectra(segments, sub, ref, fb, taper=taper)
    keep = cast(NDArray[np.bool_], ref.any(axis=1))  # ref is 2-d: one flag per row
    data = _cross_vars(avg, keep)
    data["mean_rate"] = avg.mean_rate
    assert avg.ref_mean_rate is not None  # averaged with a reference
    data["ref_mean_rate"] = np.where(keep, avg.ref_mean_rate, np.nan)
    lo, hi = band_edges(n_band, e_lo, e_hi)
    first = np.arange(sub.shape[0])
    coords = {
        "band": ("band", first),
        "e_lo": ("band", lo[first]),
        "e_hi": ("band", hi[first + overlap - 1]),
        **_freq_coords(avg),
    }
    attrs = _attrs(
        avg,
        segments,
        (bins, min_per_bin, factor),
        product="cross spectrum",
        reference=describe_reference(reference),
        overlap=int(overlap),
        lag_sign=_LAG_SIGN,
    )
    return _dataset(data, ("band", "freq"), coords, attrs)


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
        As in :func:`power_spectrum`.

    Returns
    -------
    xarray.Dataset
        dims (freq,): the variables of :func:`cross_spectrum`; scalar coords
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
    fb = _bins(segments, bins, min_per_bin, factor)
    avg = average_cross_spectra(segments, sub, ref, fb, taper=taper)
    data = {k: v[0] for k, v in _cross_vars(avg, np.ones(1, bool)).items()}
    data["mean_rate"] = avg.mean_rate[0]
    assert avg.ref_mean_rate is not None  # averaged with a reference
    data["ref_mean_rate"] = avg.ref_mean_rate[0]
    lo, hi = band_edges(n_band, e_lo, e_hi)
    coords = {
        "e_lo": lo[s_idx].min(),
        "e_hi": hi[s_idx].max(),
        "ref_e_lo": lo[r_idx].min(),
        "ref_e_hi": hi[r_idx].max(),
        **_freq_coords(avg),
    }
    attrs = _attrs(
        avg,
        segments,
        (bins, min_per_bin, factor),
        product="lag-frequency",
        lag_sign=_LAG_SIGN,
        subject_bands=",".join(map(str, s_idx)),
        reference="sum of bands " + ",".join(map(str, r_idx)),
    )
    ds = xr.Dataset(
        {k: (("freq",) if np.ndim(v) else (), v) for k, v in data.items()},
        coords=coords,
        attrs=attrs,
    )
    for k in ds.data_vars:
        ds[k].attrs["units"] = _UNITS[str(k)]
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
        As in :func:`cross_spectrum`.

    Returns
    -------
    xarray.Dataset
        dims (band,): the variables of :func:`cross_spectrum`; scalar coords
        ``freq``, ``f_lo``, ``f_hi``, ``count``.

    Raises
    ------
    ConfigError
        If ``f_hi <= f_lo``, the range holds no Fourier frequency, or as
        :func:`cross_spectrum`.
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
