"""Spectral-timing estimators from segment- and bin-averaged Fourier products.

Every function takes averaged quantities as numpy arrays (broadcastable): the
subject-band power ``power`` (P_s), the reference power ``ref_power`` (P_r),
their Poisson noise levels ``noise`` (N_s), ``ref_noise`` (N_r), the cross
spectrum ``cross`` (C = <conj(X_s) X_r>), the number ``count`` = K x M of
(segment, frequency) pairs averaged, and the bin width ``width`` (Delta-nu, Hz).
Powers include the noise (nothing is subtracted beforehand).  Lags and
coherences do not depend on the normalisation; rms and covariance are in the
units of the square root of ``power * width``: counts/s for the absolute
normalisation of :class:`catalog.timing.fourier.CrossAverages`.

Error conventions: the power and lag errors describe the scatter between
independent realisations of the variability (Bendat & Piersol 2010); the rms and
covariance errors describe only the Poisson-noise scatter about the observed
variability (Uttley et al. 2014, sec. 3.3), which is what matters when comparing
energy bands that vary coherently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MIN_N_EFF",
    "covariance",
    "intrinsic_coherence",
    "noise_bias",
    "phase_lag",
    "power_error",
    "raw_coherence",
    "rms_amplitude",
    "time_lag",
]


def _f(x: ArrayLike) -> NDArray[Any]:
    return np.asarray(x)


def power_error(power: ArrayLike, count: ArrayLike) -> NDArray[np.float64]:
    """Error of an averaged periodogram: ``P / sqrt(K M)``.

    Each (segment, frequency) power is exponentially distributed (chi^2 with 2
    d.o.f. / 2; van der Klis 1989), so the mean of K M of them has a
    standard deviation of its expectation over ``sqrt(K M)``.  This assumes one
    expected power in the bin: where the spectrum changes steeply across a bin of
    several frequencies the scatter is larger.

    Parameters
    ----------
    power : array_like
        Averaged periodogram (any normalisation).
    count : array_like
        Number K x M of powers averaged.

    Returns
    -------
    NDArray[float64]
        Same units as ``power``.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        err: NDArray[np.float64] = _f(power) / np.sqrt(_f(count))
    return err


def noise_bias(
    power: ArrayLike, ref_power: ArrayLike, noise: ArrayLike, ref_noise: ArrayLike, count: ArrayLike
) -> NDArray[np.float64]:
    """Noise bias of ``|C|^2``, Vaughan & Nowak (1997) eq. 8.

    ``n^2 = (S_s N_r + S_r N_s + N_s N_r) / (K M)`` with the noise-subtracted
    signal powers ``S = P - N`` (equal to stingray's ``bias_term`` with intrinsic
    coherence 1, Ingram 2019, but without its cut-off at K M > 500).

    Parameters
    ----------
    power, ref_power : array_like
        Averaged subject and reference powers, noise included.
    noise, ref_noise : array_like
        Their noise levels.
    count : array_like
        K x M.

    Returns
    -------
    NDArray[float64]
        ``n^2`` in the units of ``|C|^2``.
    """
    ps, pr, ns, nr = _f(power), _f(ref_power), _f(noise), _f(ref_noise)
    with np.errstate(invalid="ignore", divide="ignore"):
        n2: NDArray[np.float64] = ((ps - ns) * nr + (pr - nr) * ns + ns * nr) / _f(count)
    return n2


def raw_coherence(
    cross: ArrayLike,
    power: ArrayLike,
    ref_power: ArrayLike,
    noise: ArrayLike,
    ref_noise: ArrayLike,
    count: ArrayLike,
) -> NDArray[np.float64]:
    """Raw coherence ``g^2 = (|C|^2 - n^2) / (P_s P_r)`` (powers with noise).

    Vaughan & Nowak (1997) with the bias ``n^2`` of their eq. 8 removed from the
    numerator (stingray's ``raw_coherence``, after Ingram 2019): the coherence
    of the measured, noisy light curves that enters the lag error (Nowak et al.
    1999 eq. 16; Uttley et al. 2014 eq. 17-18).

    Parameters
    ----------
    cross : array_like
        Averaged cross spectrum (complex).
    power, ref_power, noise, ref_noise, count : array_like
        As in :func:`noise_bias`.

    Returns
    -------
    NDArray[float64]
        Raw coherence (may fall below 0 or above 1 through noise).
    """
    n2 = noise_bias(power, ref_power, noise, ref_noise, count)
    with np.errstate(invalid="ignore", divide="ignore"):
        coh: NDArray[np.float64] = (np.abs(_f(cross)) ** 2 - n2) / (_f(power) * _f(ref_power))
    return coh


def intrinsic_coherence(
    cross: ArrayLike,
    power: ArrayLike,
    ref_power: ArrayLike,
    noise: ArrayLike,
    ref_noise: ArrayLike,
    count: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Noise-corrected (intrinsic) coherence and its error, Vaughan & Nowak (1997) eq. 8.

    ``gamma^2 = (|C|^2 - n^2) / ((P_s - N_s)(P_r - N_r))`` and

    ``d(gamma^2) = gamma^2 / sqrt(m) * sqrt(2 n^4 m / (|C|^2 - n^2)^2
    + N_s^2 / (P_s - N_s)^2 + N_r^2 / (P_r - N_r)^2 + m (dg^2 / g^2)^2)``

    with ``m = K M``, ``g^2`` the raw coherence (:func:`raw_coherence`) and
    ``dg^2 = sqrt(2 / m) |g| (1 - g^2)`` its error (Bendat & Piersol 2010).
    NaN where a noise-subtracted power is not positive.

    Parameters
    ----------
    cross, power, ref_power, noise, ref_noise, count : array_like
        As in :func:`raw_coherence`.

    Returns
    -------
    coherence, coherence_err : NDArray[float64]
    """
    c2 = np.abs(_f(cross)) ** 2
    ps, pr, ns, nr, m = _f(power), _f(ref_power), _f(noise), _f(ref_noise), _f(count)
    n2 = noise_bias(ps, pr, ns, nr, m)
    g2 = np.clip(raw_coherence(cross, ps, pr, ns, nr, m), 1e-12, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss, sr = ps - ns, pr - nr
        good = (ss > 0) & (sr > 0)
        coh = np.where(good, (c2 - n2) / (ss * sr), np.nan)
        rel2 = (
            2 * n2**2 * m / (c2 - n2) ** 2
            + (ns / ss) ** 2
            + (nr / sr) ** 2
            + 2 * (1 - g2) ** 2 / g2
        )
        err = np.where(good, np.abs(coh) * np.sqrt(rel2 / m), np.nan)
    return coh, err


def phase_lag(
    cross: ArrayLike,
    power: ArrayLike,
    ref_power: ArrayLike,
    noise: ArrayLike,
    ref_noise: ArrayLike,
    count: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Phase lag ``arg(C)`` and its error, rad.

    ``dphi = sqrt((1 - g^2) / (2 g^2 K M))`` (Bendat & Piersol 2010;
    Nowak et al. 1999 eq. 16; Uttley et al. 2014 eq. 17-18) with ``g^2`` the raw
    coherence of :func:`raw_coherence`, clipped to [1e-12, 1].  The error is capped
    at pi (no phase information).  Positive: the subject band lags the reference.

    Parameters
    ----------
    cross, power, ref_power, noise, ref_noise, count : array_like
        As in :func:`raw_coherence`.

    Returns
    -------
    phase, phase_err : NDArray[float64]
        Radians, phase in (-pi, pi].
    """
    g2 = np.clip(raw_coherence(cross, power, ref_power, noise, ref_noise, count), 1e-12, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.minimum(np.sqrt((1 - g2) / (2 * g2 * _f(count))), np.pi)
    return np.angle(_f(cross)), err


def time_lag(
    phase: ArrayLike, phase_err: ArrayLike, freq: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Time lag ``phi / (2 pi f)`` and its error, s.

    Parameters
    ----------
    phase, phase_err : array_like
        Phase lag and error, rad.
    freq : array_like
        Frequency, Hz (the mean frequency of the bin's members).

    Returns
    -------
    lag, lag_err : NDArray[float64]
        Seconds; positive when the subject band lags the reference.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        two_pi_f = 2 * np.pi * _f(freq)
        return _f(phase) / two_pi_f, _f(phase_err) / two_pi_f


def rms_amplitude(
    power: ArrayLike, noise: ArrayLike, width: ArrayLike, count: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Noise-subtracted rms amplitude in a frequency bin and its noise-only error.

    ``sigma^2 = (P - N) Delta-nu`` (Uttley et al. 2014 eq. 13 with the band as its
    own reference; the excess variance of Vaughan et al. 2003).  Error, for a fixed realisation of
    the variability (only Poisson noise scatters; the form of Uttley et al. 2014
    eq. 14, after the excess-variance error of Vaughan et al. 2003):
    ``d sigma = sqrt((2 sigma^2 sigma_n^2 + sigma_n^4) / (4 K M sigma^2))``,
    ``sigma_n^2 = N Delta-nu``; the 4 K M is from ``var(P) = (2 S N + N^2) / (K M)``
    for K M complex Fourier amplitudes (aztools writes 2 K M, a sqrt(2) larger
    error; ours is checked against simulations).  NaN where ``P <= N``.

    Parameters
    ----------
    power, noise : array_like
        Averaged power and noise level; absolute normalisation gives counts/s.
    width : array_like
        Bin width Delta-nu, Hz.
    count : array_like
        K x M.

    Returns
    -------
    rms, rms_err : NDArray[float64]
    """
    width = _f(width)
    with np.errstate(invalid="ignore", divide="ignore"):
        s2 = (_f(power) - _f(noise)) * width
        n2 = _f(noise) * width
        ok = s2 > 0
        rms = np.where(ok, np.sqrt(np.where(ok, s2, np.nan)), np.nan)
        err = np.where(ok, np.sqrt((2 * s2 * n2 + n2**2) / (4 * _f(count) * s2)), np.nan)
    return rms, err


def covariance(
    cross: ArrayLike,
    power: ArrayLike,
    ref_power: ArrayLike,
    noise: ArrayLike,
    ref_noise: ArrayLike,
    width: ArrayLike,
    count: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Covariance spectrum value and its error, Uttley et al. (2014) eq. 13 and 15.

    ``sigma_cov = sqrt((|C|^2 - n^2) Delta-nu / (P_r - N_r))`` (eq. 13; Wilkinson &
    Uttley 2009), ``n^2`` from :func:`noise_bias`, and

    ``d sigma_cov = sqrt((sigma_cov^2 sigma_rn^2 + sigma_r^2 sigma_n^2
    + sigma_n^2 sigma_rn^2) / (2 K M sigma_r^2))`` (eq. 15)

    with ``sigma_r^2 = (P_r - N_r) Delta-nu``, ``sigma_rn^2 = N_r Delta-nu``,
    ``sigma_n^2 = N_s Delta-nu``.  The error is the Poisson-noise scatter for a
    fixed realisation of the variability.  Its first term is conservative: the
    reference noise enters ``C`` and ``P_r`` alike and largely cancels (simulations:
    right within a few % for a reference much brighter than the band, ~30 % too
    large when both are equally faint).  NaN where ``|C|^2 <= n^2`` or ``P_r <= N_r``.

    Parameters
    ----------
    cross, power, ref_power, noise, ref_noise : array_like
        As in :func:`raw_coherence`; absolute normalisation gives counts/s.
    width : array_like
        Bin width Delta-nu, Hz.
    count : array_like
        K x M.

    Returns
    -------
    cov, cov_err : NDArray[float64]
    """
    width, m = _f(width), _f(count)
    n2 = noise_bias(power, ref_power, noise, ref_noise, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        num = np.abs(_f(cross)) ** 2 - n2
        sr2 = (_f(ref_power) - _f(ref_noise)) * width
        ok = (num > 0) & (sr2 > 0)
        cov2 = np.where(ok, num * width**2 / sr2, np.nan)
        cov = np.sqrt(cov2)
        srn2 = _f(ref_noise) * width
        sn2 = _f(noise) * width
        err = np.sqrt((cov2 * srn2 + sr2 * sn2 + sn2 * srn2) / (2 * m * sr2))
    return cov, np.where(ok, err, np.nan)


#: Smallest effective number of independent (segment, frequency) pairs per frequency bin for
#: which the command line quotes lags and coherences.  Simulations through the estimator
#: (tests/catalog/test_timing_calibration.py) give a phase-lag scatter within 10 % of the
#: quoted Bendat & Piersol error from n_eff = 8 up for a raw coherence >= 0.75, with one
#: expected cross spectrum per bin; below about 6 the raw coherence that enters the error
#: is itself too uncertain for an error to mean much (the rms of the quoted errors
#: exceeds the scatter by 40 % or more at coherence 0.6).
MIN_N_EFF = 8.0
