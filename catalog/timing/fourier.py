"""Fourier frequencies, frequency binning and segment-averaged cross spectra.

Conventions (binding for every product in :mod:`catalog.timing`):

- **Frequencies.** A segment of ``n`` bins of width ``dt`` contributes the
  positive Fourier frequencies ``k / (n dt)``, ``k = 1 .. (n - 1) // 2``:
  zero is excluded and so is the Nyquist frequency of an even ``n`` (as stingray;
  its periodogram is chi^2 with 1 degree of freedom, not 2).
- **Periodogram** (absolute normalisation, (counts/s)^2/Hz):
  ``P = 2 dt |DFT(w (x - <x>))|^2 / (n <w^2>)`` where ``w`` is the taper
  (1, or the Hanning window ``numpy.hanning(n)`` with ``taper=True``); dividing by
  ``<w^2>`` (= 3/8 for Hanning) keeps a white-noise level unchanged (the 8/3
  correction of Bendat & Piersol 2010 used by aztools).  The rms normalisation of
  Miyamoto et al. (1991) / Vaughan et al. (2003) is ``P / mu^2``.
- **Noise level** (absolute): per segment ``N = 2 dt <sigma^2 w^2> / <w^2>``
  from the bin errors ``sigma`` (Vaughan et al. 2003, eq. A2 generalised:
  ``2 <sigma^2> dt`` untapered, which is ``2 mu`` for Poisson rates).
- **Averaging.** Every (segment, frequency) pair whose frequency falls in a bin
  enters that bin's average with equal weight; ``count`` = K x M such pairs.
- **Independent pairs.** Without a taper the K x M pairs are independent.  A taper
  correlates adjacent frequencies of one segment: for locally white variability the
  tapered DFTs at bins ``k`` and ``k + d`` have correlation
  ``rho_d = sum_j w_j^2 exp(2 pi i d j / n) / sum_j w_j^2`` (Hanning: ``|rho_1| = 2/3``,
  ``|rho_2| = 1/6``), so the mean of M adjacent powers has the variance of
  ``M^2 / sum_{j,l} |rho_{j-l}|^2`` independent ones (about M / 1.94 for Hanning;
  Percival & Walden 1993, sec. 6.7).  ``n_eff`` = count^2 / sum over segments of
  ``sum_{j,l in bin} |rho_{j-l}|^2`` replaces K x M in every error and bias formula.
  Products are averaged in absolute units and divided by the pooled mean rate
  only at the end ("common mean", as stingray's ``use_common_mean=True``).
- **Cross spectrum.** ``C = 2 dt conj(X_s) X_r / (n <w^2>)`` with ``X_s`` the DFT
  of the subject band and ``X_r`` of the reference (numpy's ``exp(-2 pi i k j / n)``
  DFT).  Its argument is positive when the subject band *lags* (arrives after)
  the reference; stingray's ``AveragedCrossspectrum(lc_subject, lc_reference)``
  uses the same product ``conj(F1) F2``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from catalog.timing.segments import Segment
from schemas.errors import ConfigError

__all__ = [
    "CrossAverages",
    "FrequencyBins",
    "average_cross_spectra",
    "fourier_frequencies",
    "freq_bins",
    "segment_frequencies",
    "taper_window",
]


def fourier_frequencies(n: int, dt: float) -> NDArray[np.float64]:
    """Positive Fourier frequencies of an ``n``-bin segment, Hz.

    Parameters
    ----------
    n : int
        Number of time bins.
    dt : float
        Bin width, s.

    Returns
    -------
    NDArray[float64]
        ``k / (n dt)`` for ``k = 1 .. (n - 1) // 2`` (no zero, no Nyquist).
    """
    return np.arange(1, (n - 1) // 2 + 1) / (n * dt)


def segment_frequencies(segments: Sequence[Segment]) -> NDArray[np.float64]:
    """All Fourier frequencies of all segments, pooled (with repeats), sorted, Hz.

    Parameters
    ----------
    segments : sequence of Segment
        The segments that will be averaged.

    Returns
    -------
    NDArray[float64]
        Concatenation of :func:`fourier_frequencies` of every segment, sorted;
        the input of :func:`freq_bins`.
    """
    if not segments:
        return np.empty(0)
    return np.sort(np.concatenate([fourier_frequencies(s.n, s.dt) for s in segments]))


def taper_window(n: int, taper: bool) -> NDArray[np.float64]:
    """Taper of an ``n``-bin segment: ``numpy.hanning(n)`` if ``taper`` else ones."""
    return np.hanning(n) if taper else np.ones(n)


@dataclass(frozen=True, eq=False)
class FrequencyBins:
    """Frequency bins: ``edges[i] <= f < edges[i + 1]``.

    Attributes
    ----------
    edges : NDArray[float64]
        (n_bin + 1,) increasing bin edges, Hz.
    centre : NDArray[float64]
        (n_bin,) mean of the member frequencies (each (segment, frequency) pair
        counted once), Hz; NaN for an empty bin.
    count : NDArray[int64]
        (n_bin,) number of (segment, frequency) pairs in the bin, K x M.
    """

    edges: NDArray[np.float64]
    centre: NDArray[np.float64]
    count: NDArray[np.int64]

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return int(self.centre.size)

    @property
    def f_lo(self) -> NDArray[np.float64]:
        """Lower bin edges, Hz."""
        return self.edges[:-1]

    @property
    def f_hi(self) -> NDArray[np.float64]:
        """Upper bin edges, Hz."""
        return self.edges[1:]

    @property
    def width(self) -> NDArray[np.float64]:
        """Bin widths ``f_hi - f_lo``, Hz (the Delta-nu of rms and covariance)."""
        return np.diff(self.edges)


def _members(
    freqs: NDArray[np.float64], edges: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    idx = np.searchsorted(edges, freqs, side="right") - 1
    ok = (idx >= 0) & (idx < edges.size - 1)
    n_bin = edges.size - 1
    count = np.bincount(idx[ok], minlength=n_bin).astype(np.int64)
    fsum = np.bincount(idx[ok], weights=freqs[ok], minlength=n_bin)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(count > 0, fsum / np.maximum(count, 1), np.nan)
    return centre, count


def freq_bins(
    freqs: ArrayLike,
    *,
    min_per_bin: int = 20,
    factor: float = 1.1,
    edges: ArrayLike | None = None,
) -> FrequencyBins:
    """Group pooled Fourier frequencies into (log-spaced) bins.

    Algorithm (``edges`` not given): sort the distinct frequencies ``u`` and
    their multiplicities (repeats come from several segments).  A bin starts at
    the lowest unused ``u[a]``, takes every ``u < factor * u[a]`` (at least
    ``u[a]`` itself), then keeps adding distinct frequencies until it holds
    ``>= min_per_bin`` (segment, frequency) pairs; equal frequencies are never
    split.  A final bin short of ``min_per_bin`` is merged into the previous one.
    Edges lie half-way between the last member of a bin and the first of the
    next; the outer edges half a spacing beyond the extreme frequencies, so for
    equal-length segments of duration T a bin of M frequencies is exactly M / T
    wide.  ``min_per_bin=1, factor=1`` gives one bin per distinct frequency
    (unbinned).

    Parameters
    ----------
    freqs : array_like
        Pooled frequencies of all segments, Hz (:func:`segment_frequencies`).
    min_per_bin : int, default 20
        Minimum number of (segment, frequency) pairs K x M per bin.
    factor : float, default 1.1
        Minimum ratio of a bin's upper to lower member frequency (>= 1).
    edges : array_like, optional
        Explicit increasing edges, Hz (e.g. a linear grid); then ``min_per_bin``
        and ``factor`` are ignored and empty bins are kept (count 0).

    Returns
    -------
    FrequencyBins

    Raises
    ------
    ConfigError
        If ``min_per_bin < 1``, ``factor < 1``, ``edges`` are not increasing,
        or there are no frequencies to bin.
    """
    freqs = np.sort(np.asarray(freqs, dtype=np.float64).ravel())
    if edges is not None:
        edges = np.asarray(edges, dtype=np.float64).ravel()
        if edges.size < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
            raise ConfigError(
                f"frequency bins: edges {edges.tolist()} must be >= 2 increasing "
                "finite values in Hz"
            )
        centre, count = _members(freqs, edges)
        return FrequencyBins(edges=edges, centre=centre, count=count)
    if min_per_bin < 1:
        raise ConfigError(f"frequency bins: min_per_bin = {min_per_bin!r}; use an integer >= 1")
    if not factor >= 1:
        raise ConfigError(f"frequency bins: factor = {factor!r}; use a value >= 1")
    if freqs.size == 0:
        raise ConfigError(
            "frequency bins: no Fourier frequencies to bin; the segments are "
            "too short or there are none (check min_length / segment_length)"
        )
    u, mult = np.unique(freqs, return_counts=True)
    cum = np.concatenate(([0], np.cumsum(mult)))
    starts: list[int] = []
    a = 0
    while a < u.size:
        b = max(int(np.searchsorted(u, u[a] * factor, side="left")), a + 1)
        if cum[b] - cum[a] < min_per_bin:
            b = int(np.searchsorted(cum, cum[a] + min_per_bin, side="left"))
            b = min(max(b, a + 1), u.size)
        starts.append(a)
        a = b
    if len(starts) > 1 and cum[-1] - cum[starts[-1]] < min_per_bin:
        starts.pop()
    first = np.array(starts)
    last = np.append(first[1:] - 1, u.size - 1)
    inner = 0.5 * (u[last[:-1]] + u[first[1:]])
    if u.size > 1:
        lo = u[0] - 0.5 * (u[1] - u[0])
        hi = u[-1] + 0.5 * (u[-1] - u[-2])
    else:
        lo, hi = 0.5 * u[0], 1.5 * u[0]
    edges_arr = np.concatenate(([lo], inner, [hi]))
    centre, count = _members(freqs, edges_arr)
    return FrequencyBins(edges=edges_arr, centre=centre, count=count)


@dataclass(frozen=True, eq=False)
class CrossAverages:
    """Segment- and bin-averaged Fourier products, absolute normalisation.

    Powers, noise levels and the cross spectrum are in (counts/s)^2/Hz; divide
    by ``mean_rate**2`` (``mean_rate * ref_mean_rate`` for the cross spectrum)
    for the rms normalisation.  Arrays are (n_out, n_bin) unless stated.

    Attributes
    ----------
    bins : FrequencyBins
        Bins with ``centre`` and ``count`` recomputed from the averaged segments.
    power, noise : NDArray[float64]
        Subject-band periodogram and Poisson noise level.
    mean_rate : NDArray[float64]
        (n_out,) pooled mean count rate of each subject band, counts/s.
    ref_power, ref_noise : NDArray[float64] or None
        Reference-band periodogram and noise level (None without a reference).
    cross : NDArray[complex128] or None
        Cross spectrum ``conj(X_s) X_r`` (positive phase: subject lags).
    ref_mean_rate : NDArray[float64] or None
        (n_out,) pooled mean reference rate, counts/s.
    n_segments : int
        Number of segments averaged.
    n_eff : NDArray[float64]
        (n_bin,) effective number of independent (segment, frequency) pairs: equal
        to ``bins.count`` without a taper, smaller with one (module docstring).
    taper : bool
        Whether the Hanning taper was applied.
    dt : float
        Bin width, s.
    """

    bins: FrequencyBins
    power: NDArray[np.float64]
    noise: NDArray[np.float64]
    mean_rate: NDArray[np.float64]
    ref_power: NDArray[np.float64] | None
    ref_noise: NDArray[np.float64] | None
    cross: NDArray[np.complex128] | None
    ref_mean_rate: NDArray[np.float64] | None
    n_segments: int
    n_eff: NDArray[np.float64]
    taper: bool
    dt: float


def _pair_correlation_sum(
    window: NDArray[np.float64], members: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``sum_{j,l} |rho_{j-l}|^2`` over M adjacent frequencies of one tapered segment.

    ``rho_d`` is the normalised DFT of ``window**2`` (module docstring); for a run of
    ``M`` adjacent frequencies the double sum is ``M + 2 sum_{d=1}^{M-1} (M - d) |rho_d|^2``.
    ``members`` holds M per bin (may be 0).
    """
    a = np.abs(np.fft.fft(window**2) / np.sum(window**2)) ** 2
    d = np.arange(a.size)
    c1, c2 = np.cumsum(a), np.cumsum(d * a)
    m = members.astype(np.int64)
    last = np.clip(m - 1, 0, a.size - 1)
    inner = m * (c1[last] - a[0]) - c2[last]
    return np.where(m > 0, m * a[0] + 2.0 * inner, 0.0)


def _bin_sum(values: NDArray[Any], idx: NDArray[np.int64], n_bin: int) -> NDArray[Any]:
    """Sum ``values[..., j]`` into bins ``idx[j]`` (sorted, -1/n_bin = outside)."""
    ok = (idx >= 0) & (idx < n_bin)
    out = np.zeros(values.shape[:-1] + (n_bin,), dtype=values.dtype)
    if not np.any(ok):
        return out
    vals, ids = values[..., ok], idx[ok]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    out[..., ids[starts]] = np.add.reduceat(vals, starts, axis=-1)
    return out


def average_cross_spectra(
    segments: Sequence[Segment],
    subject: ArrayLike,
    reference: ArrayLike | None,
    bins: FrequencyBins | ArrayLike,
    *,
    taper: bool = False,
) -> CrossAverages:
    """Average periodograms and cross spectra over segments and frequency bins.

    Each output row ``o`` is the light curve ``sum_b subject[o, b] * rate[b]``
    (and the reference ``sum_b reference[o, b] * rate[b]``); its error is the
    quadrature sum of the band errors.  Segments may differ in length; every
    (segment, frequency) pair in a bin has equal weight.  Normalisation, taper
    and sign conventions are in the module docstring.

    Parameters
    ----------
    segments : sequence of Segment
        Segments with the same ``dt`` and number of bands (pool observations by
        concatenating their lists).
    subject : array_like
        (n_out, n_band) weights (0/1) selecting the subject bands of each row.
    reference : array_like or None
        (n_out, n_band) weights of the reference bands; None for periodograms only.
    bins : FrequencyBins or array_like
        Frequency bins, or their edges in Hz.
    taper : bool, default False
        Apply a Hanning taper to each segment.

    Returns
    -------
    CrossAverages

    Raises
    ------
    ConfigError
        If there are no segments, or they differ in ``dt`` or band count.
    ValueError
        If ``subject``/``reference`` are not (n_out, n_band).
    """
    if not segments:
        raise ConfigError(
            "timing products: no segments to average; lower min_length or "
            "segment_length, or choose another observation"
        )
    dt = segments[0].dt
    n_band = segments[0].n_band
    for s in segments:
        if not np.isclose(s.dt, dt, rtol=1e-9, atol=0) or s.n_band != n_band:
            raise ConfigError(
                f"timing products: segments mix dt {dt} s / {n_band} bands with "
                f"dt {s.dt} s / {s.n_band} bands; pool only one energy scheme "
                "and one bin width"
            )
    sub = np.atleast_2d(np.asarray(subject, dtype=np.float64))
    ref = None if reference is None else np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if sub.shape[1] != n_band or (ref is not None and ref.shape != sub.shape):
        raise ValueError(f"subject/reference weights must be (n_out, {n_band})")
    edges = bins.edges if isinstance(bins, FrequencyBins) else np.asarray(bins, np.float64)
    n_out, n_bin = sub.shape[0], edges.size - 1

    acc = {k: np.zeros((n_out, n_bin)) for k in ("p", "n", "pr", "nr")}
    acc_c = np.zeros((n_out, n_bin), dtype=np.complex128)
    count = np.zeros(n_bin, dtype=np.int64)
    corr_sum = np.zeros(n_bin)
    fsum = np.zeros(n_bin)
    rate_sum = np.zeros(n_out)
    ref_sum = np.zeros(n_out)
    n_time = 0

    lengths = np.array([s.n for s in segments])
    for n in np.unique(lengths):
        group = [s for s, m in zip(segments, lengths, strict=True) if m == n]
        k_seg = len(group)
        rate = np.stack([s.rate for s in group])  # (K, n_band, n)
        var = np.stack([s.error for s in group]) ** 2
        w = taper_window(int(n), taper)
        w2 = np.mean(w**2)
        norm = 2.0 * dt / (n * w2)
        freqs = fourier_frequencies(int(n), dt)
        idx = np.searchsorted(edges, freqs, side="right") - 1
        m_bin = _bin_sum(np.ones_like(freqs), idx, n_bin)
        count += (k_seg * m_bin).astype(np.int64)
        corr_sum += k_seg * (_pair_correlation_sum(w, m_bin) if taper else m_bin)
        fsum += k_seg * _bin_sum(freqs, idx, n_bin)
        n_time += k_seg * int(n)
        if freqs.size == 0:
            ft = np.zeros((k_seg, n_band, 0), dtype=np.complex128)
        else:
            detrended = (rate - rate.mean(axis=-1, keepdims=True)) * w
            ft = np.fft.rfft(detrended, axis=-1)[..., 1 : freqs.size + 1]
        band_noise = norm * np.einsum("kbn,n->kb", var, w**2)  # (K, n_band)
        band_sum = rate.sum(axis=-1).sum(axis=0)  # (n_band,)

        xs = np.einsum("ob,kbf->kof", sub, ft)
        acc["p"] += _bin_sum(norm * np.sum(np.abs(xs) ** 2, axis=0), idx, n_bin)
        acc["n"] += (sub**2 @ band_noise.sum(axis=0))[:, None] * m_bin
        rate_sum += sub @ band_sum
        if ref is not None:
            xr = np.einsum("ob,kbf->kof", ref, ft)
            acc["pr"] += _bin_sum(norm * np.sum(np.abs(xr) ** 2, axis=0), idx, n_bin)
            acc_c += _bin_sum(norm * np.sum(np.conj(xs) * xr, axis=0), idx, n_bin)
            acc["nr"] += (ref**2 @ band_noise.sum(axis=0))[:, None] * m_bin
            ref_sum += ref @ band_sum

    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(count > 0, 1.0 / np.maximum(count, 1), np.nan)
        centre = np.where(count > 0, fsum * inv, np.nan)
        n_eff = np.where(count > 0, count.astype(np.float64) ** 2 / corr_sum, 0.0)
    fb = FrequencyBins(edges=np.asarray(edges, np.float64), centre=centre, count=count)
    has_ref = ref is not None
    return CrossAverages(
        bins=fb,
        power=acc["p"] * inv,
        noise=acc["n"] * inv,
        mean_rate=rate_sum / n_time,
        ref_power=acc["pr"] * inv if has_ref else None,
        ref_noise=acc["nr"] * inv if has_ref else None,
        cross=acc_c * inv if has_ref else None,
        ref_mean_rate=ref_sum / n_time if has_ref else None,
        n_segments=len(segments),
        n_eff=n_eff,
        taper=bool(taper),
        dt=float(dt),
    )
