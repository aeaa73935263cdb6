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

import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "COHERENCE_DRAWS",
    "HIGH_POWER_SIGMA",
    "LOW_COHERENCE",
    "MIN_N_EFF",
    "MIN_N_EFF_LOW_COHERENCE",
    "coherence_high_power",
    "lag_error_calibrated",
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


#: Draws of the parametric bootstrap behind :func:`intrinsic_coherence`'s error: the std of
#: 2000 draws has a relative sampling error of ~2-3 %.  The draws are the same for every
#: bin (one fixed seed), so an error depends only on the bin's own numbers: reproducible.
COHERENCE_DRAWS = 2000
_COHERENCE_SEED = 19971997
#: Largest fraction of bootstrap draws with a noise-subtracted power <= 0 (coherence
#: undefined) for which a coherence is still quoted.
_MAX_UNDEFINED = 0.01
#: Signal power, in standard deviations of the averaged noise power (``N / sqrt(m)``), above
#: which a band counts as in the 'high power' regime of Vaughan & Nowak (1997), where the
#: intrinsic coherence is quoted.  VN97 ask for ``S / N >> 1 / sqrt(m)``; stingray takes
#: 3.  Simulations (tests/catalog/test_timing_calibration.py) need 10: with 3, bins whose
#: measured power is a few sigma above the noise quote errors from 2 times too small
#: (selected by an upward fluctuation of the power) to 20 times too large.
HIGH_POWER_SIGMA = 10.0


def coherence_high_power(
    power: ArrayLike, ref_power: ArrayLike, noise: ArrayLike, ref_noise: ArrayLike, count: ArrayLike
) -> NDArray[np.bool_]:
    """Whether both bands are in the 'high power' regime of Vaughan & Nowak (1997).

    ``P - N > 10 N / sqrt(m)`` (:data:`HIGH_POWER_SIGMA`) in the subject and in the
    reference band: the noise-subtracted power is 10 standard deviations of the averaged
    noise power above zero (stingray's ``check_powers_for_intrinsic_coherence`` with
    threshold 10).  For m = 8, 19, 100: signal/noise power > 3.5, 2.3, 1.  Closer to the
    noise the intrinsic coherence (a ratio with ``(P_s - N_s)(P_r - N_r)`` in the
    denominator) scatters without bound and no error quoted from the bin's own powers is
    calibrated.

    Parameters
    ----------
    power, ref_power, noise, ref_noise, count : array_like
        As in :func:`noise_bias`.

    Returns
    -------
    NDArray[bool_]
    """
    ps, pr, ns, nr, m = _f(power), _f(ref_power), _f(noise), _f(ref_noise), _f(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        root = np.sqrt(m)
        ok: NDArray[np.bool_] = (ps - ns > HIGH_POWER_SIGMA * ns / root) & (
            pr - nr > HIGH_POWER_SIGMA * nr / root
        )
    return ok


def _coherence_estimate(
    c2: NDArray[Any],
    ps: NDArray[Any],
    pr: NDArray[Any],
    ns: NDArray[Any],
    nr: NDArray[Any],
    m: NDArray[Any],
) -> NDArray[np.float64]:
    """The intrinsic coherence of ``|C|^2``, powers and noise; NaN where a signal power <= 0."""
    n2 = noise_bias(ps, pr, ns, nr, m)
    with np.errstate(invalid="ignore", divide="ignore"):
        ss, sr = ps - ns, pr - nr
        coh: NDArray[np.float64] = np.where((ss > 0) & (sr > 0), (c2 - n2) / (ss * sr), np.nan)
    return coh


def _wishart_draws(
    g: NDArray[Any],
    pw: tuple[NDArray[Any], ...],
    b: tuple[NDArray[Any], ...],
) -> NDArray[np.float64]:
    """The intrinsic coherence of simulated bins (rows: bins, columns: draws).

    ``g``: the true intrinsic coherence; ``pw``: the expected powers ``P_s``, ``P_r``
    (noise included), noise levels ``N_s``, ``N_r`` and ``m``; ``b``: ``A A^H`` of the
    Bartlett decomposition (``|A_11|^2``, ``A_11 conj(A_21)``, ``|A_21|^2 + |A_22|^2``).
    The expected cross-spectral matrix ``[[P_s, c], [c, P_r]]``, ``c^2 = g S_s S_r``, is
    ``L L^T`` (Cholesky), the sample matrix of ``m`` looks ``L A A^H L^T / m``.
    """
    p11, p22, ns, nr, m = pw
    b11, b12, b22 = b
    ss, sr = np.maximum(p11 - ns, 0.0), np.maximum(p22 - nr, 0.0)
    l11 = np.sqrt(p11)
    l21 = np.sqrt(g * ss * sr) / l11
    l22 = np.sqrt(np.maximum(p22 - l21**2, 0.0))
    w11 = l11**2 * b11 / m
    w12 = l11 * (l21 * b11 + l22 * b12) / m
    w22 = (l21**2 * b11 + 2 * l21 * l22 * b12.real + l22**2 * b22) / m
    return _coherence_estimate(np.abs(w12) ** 2, w11, w22, ns, nr, m)


def _coherence_bootstrap(
    coh: NDArray[Any],
    ps: NDArray[Any],
    pr: NDArray[Any],
    ns: NDArray[Any],
    nr: NDArray[Any],
    m: NDArray[Any],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bootstrap std of the intrinsic coherence and fraction of undefined draws (1-d inputs).

    See :func:`intrinsic_coherence`.  Each draw is the sample cross-spectral matrix of
    ``m`` independent complex-Gaussian looks, a complex Wishart matrix drawn by its
    Bartlett decomposition (``A A^H`` with ``|A_11|^2 ~ Gamma(m)``, ``|A_22|^2 ~
    Gamma(m - 1)``, ``A_21 ~ CN(0, 1)``), which allows a non-integer ``m``.
    """
    from scipy.special import gammaincinv

    rng = np.random.default_rng(_COHERENCE_SEED)
    u = rng.random((2, COHERENCE_DRAWS))
    z = (
        rng.standard_normal(COHERENCE_DRAWS) + 1j * rng.standard_normal(COHERENCE_DRAWS)
    ) / np.sqrt(2.0)
    err = np.full(coh.shape, np.nan)
    bad = np.ones(coh.shape)
    todo = np.flatnonzero(np.isfinite(coh) & (m > 2))
    levels, which = np.unique(m[todo], return_inverse=True)
    g11 = gammaincinv(levels[:, None], u[0])  # (n_levels, draws)
    g22 = gammaincinv(levels[:, None] - 1.0, u[1])
    step = 256
    for lo in range(0, todo.size, step):
        i = todo[lo : lo + step]
        lev = which[lo : lo + step]
        mm = m[i, None]
        # the powers of m looks are Gamma(m)-distributed about their expectation: scaling the
        # measured ones by m / sqrt((m-1)(m-2)) makes 1/P^2, which the noise terms of the
        # coherence variance go as, unbiased (E[1/P^2] = m^2 / ((m-1)(m-2) P^2))
        k = mm / np.sqrt((mm - 1.0) * (mm - 2.0))
        p11, p22 = k * ps[i, None], k * pr[i, None]
        b11, b12 = g11[lev], np.sqrt(g11[lev]) * np.conj(z)
        b = (b11, b12, np.abs(z) ** 2 + g22[lev])
        pw = (p11, p22, ns[i, None], nr[i, None], mm)

        # the estimator's median lies above the true coherence (the bias of the sample
        # coherence, Carter et al. 1973): one step to the coherence whose simulated median
        # is the measured value, and the error from the draws there
        g0 = np.clip(coh[i, None], 0.0, 1.0)
        with warnings.catch_warnings():  # all draws undefined: NaN, flagged below
            warnings.simplefilter("ignore", RuntimeWarning)
            shift = np.nanmedian(_wishart_draws(g0, pw, b), axis=-1, keepdims=True) - g0
        sim = _wishart_draws(np.clip(coh[i, None] - shift, 0.0, 1.0), pw, b)
        undefined = np.isnan(sim)
        bad[i] = undefined.mean(axis=-1)
        n_ok = np.maximum((~undefined).sum(axis=-1), 2)
        mean = np.nansum(sim, axis=-1) / n_ok
        err[i] = np.sqrt(np.nansum((sim - mean[:, None]) ** 2, axis=-1) / (n_ok - 1))
    return err, bad


def intrinsic_coherence(
    cross: ArrayLike,
    power: ArrayLike,
    ref_power: ArrayLike,
    noise: ArrayLike,
    ref_noise: ArrayLike,
    count: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Noise-corrected (intrinsic) coherence and its error from a parametric bootstrap.

    ``gamma^2 = (|C|^2 - n^2) / ((P_s - N_s)(P_r - N_r))`` (Vaughan & Nowak 1997 eq. 8,
    ``n^2`` from :func:`noise_bias`).  The error is the standard deviation of the same
    estimator over :data:`COHERENCE_DRAWS` simulated bins: sample cross-spectral matrices
    of ``m`` (= ``count``, the effective number of independent pairs) complex-Gaussian
    looks of signal + noise whose expectation has the measured noise levels, the measured
    powers scaled by ``m / sqrt((m-1)(m-2))`` and the coherence, in [0, 1], whose
    simulated median is the measured coherence (both plug-in corrections explained in the
    code).  The draws come from one fixed seed: reproducible, the same for every bin.
    Vaughan & Nowak's error formula (their eq. 8, for high powers and high coherence) quotes
    1.5-1.8 times the scatter of a fully coherent signal at ``m`` = 8-19; the bootstrap's
    median error is within 10 % of the scatter from ``m`` = 8 and coherence 0.5 to 1
    (tests/catalog/test_timing_calibration.py; README "What the numbers are").

    NaN (coherence and error) outside VN97's 'high power' regime
    (:func:`coherence_high_power`), where more than 1 % of the simulated bins have a
    noise-subtracted power <= 0, or where ``m <= 2``.

    Parameters
    ----------
    cross, power, ref_power, noise, ref_noise, count : array_like
        As in :func:`raw_coherence`.

    Returns
    -------
    coherence, coherence_err : NDArray[float64]
    """
    c = _f(cross)
    shape = np.broadcast_shapes(
        c.shape, *(np.shape(x) for x in (power, ref_power, noise, ref_noise, count))
    )
    ps, pr, ns, nr, m = (
        np.broadcast_to(_f(x).astype(np.float64), shape).ravel()
        for x in (power, ref_power, noise, ref_noise, count)
    )
    c2 = np.broadcast_to(np.abs(c) ** 2, shape).ravel()
    coh = _coherence_estimate(c2, ps, pr, ns, nr, m)
    coh = np.where(coherence_high_power(ps, pr, ns, nr, m), coh, np.nan)
    err, bad = _coherence_bootstrap(coh, ps, pr, ns, nr, m)
    ok = np.isfinite(err) & (bad <= _MAX_UNDEFINED)
    return (
        np.where(ok, coh, np.nan).reshape(shape),
        np.where(ok, err, np.nan).reshape(shape),
    )


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

#: Raw coherence below which a lag error needs :data:`MIN_N_EFF_LOW_COHERENCE` pairs.
LOW_COHERENCE = 0.6
#: Pairs a low-coherence bin needs for a calibrated lag error: with a raw coherence of
#: 0.35-0.55 the scatter of the phase is 0.80-0.88 of the rms quoted error (1.12-1.5 of the
#: median) at n_eff 8-12, and within 10 % (0.96-1.02) at n_eff 16-19
#: (tests/catalog/test_timing_calibration.py).
MIN_N_EFF_LOW_COHERENCE = 16.0


def lag_error_calibrated(raw_g2: ArrayLike, count: ArrayLike) -> NDArray[np.bool_]:
    """Whether a bin's phase-lag error is in the calibrated range (within 10 % of the scatter).

    True where ``n_eff >= MIN_N_EFF`` and the raw coherence is at least
    :data:`LOW_COHERENCE` or ``n_eff >= MIN_N_EFF_LOW_COHERENCE``.

    Parameters
    ----------
    raw_g2 : array_like
        Raw coherence (:func:`raw_coherence`).
    count : array_like
        Effective number of independent pairs ``n_eff``.

    Returns
    -------
    NDArray[bool]
    """
    g2, m = np.asarray(raw_g2, dtype=np.float64), _f(count)
    with np.errstate(invalid="ignore"):
        ok = (m >= MIN_N_EFF) & ((g2 >= LOW_COHERENCE) | (m >= MIN_N_EFF_LOW_COHERENCE))
    return np.asarray(ok, dtype=bool)
