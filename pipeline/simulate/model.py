"""The emission model: counts spectra, the King PSF, red-noise variability and the injected lag.

Source, particle background and flare spectra are tabulated on the 1 eV PI grid
(``PI_MIN``..``PI_MAX``) and drawn by the inverse CDF; the source light curve is red noise
(Timmer & Koenig 1995, A&A 300, 707) and source photons are delayed by :func:`injected_lag`. The
numbers are simulator choices described in :mod:`pipeline.simulate`.
"""

from __future__ import annotations

import math
from functools import cache
from typing import TypedDict, cast, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.simulate.detector import singles_probability

__all__ = [
    "PI_MIN",
    "PI_MAX",
    "SRC_RADIUS",
    "BKG_CIRCLES",
    "KING_R0",
    "KING_BETA",
    "KING_RMAX",
    "GAMMA",
    "NH_22",
    "SIGMA1_22",
    "FE_KEV",
    "FE_SIGMA_KEV",
    "FE_EW_KEV",
    "F_BREAK",
    "PSD_INDEX_LO",
    "PSD_INDEX_HI",
    "FRAC_RMS",
    "LC_FLOOR",
    "LAG_MAX_S",
    "LAG_E0_KEV",
    "LAG_E1_KEV",
    "LAG_MARGIN",
    "BKG_RATE_10_12",
    "BKG_INDEX",
    "CU_KEV",
    "CU_SIGMA_KEV",
    "CU_EW_KEV",
    "FLARE_INDEX",
    "FLARE_PEAK",
    "FLARE_DURATION",
    "FLARE_MIN_SEGMENT",
    "injected_lag",
    "expected_lag_energy",
    "psd_model",
    "Spectra",
    "spectra",
    "draw_pi",
    "red_noise",
    "king_fraction",
]

SRC_RADIUS = 800
BKG_CIRCLES = ((900, -5500, 1000), (-1200, -8500, 700))  # (dx, dy, r) from the source, px
PI_MIN, PI_MAX = 200, 15000
KING_R0, KING_BETA, KING_RMAX = 110.0, 1.5, 20000.0
GAMMA, NH_22, SIGMA1_22 = 1.8, 3.0, 2.4
FE_KEV, FE_SIGMA_KEV, FE_EW_KEV = 6.4, 0.060, 0.100
F_BREAK, PSD_INDEX_LO, PSD_INDEX_HI, FRAC_RMS, LC_FLOOR = 3e-4, 1.0, 2.5, 0.25, 0.02
LAG_MAX_S, LAG_E0_KEV, LAG_E1_KEV = 150.0, 2.0, 10.0
LAG_MARGIN = 190  # s, > injected_lag(15 keV) = 188 s
BKG_RATE_10_12, BKG_INDEX, CU_KEV, CU_SIGMA_KEV, CU_EW_KEV = 0.15, 0.1, 8.04, 0.070, 0.6
FLARE_INDEX, FLARE_PEAK, FLARE_DURATION = 0.3, (1.5, 5.0), (300.0, 2500.0)
FLARE_MIN_SEGMENT = 1500.0


# -- Lag ----------------------------------------------------------------------------------------
def injected_lag(energy_kev: ArrayLike) -> NDArray[np.float64]:
    """Return the time delay the simulator gives to source photons of a given energy.

    tau(E) = 150 s ln(E / 2 keV) / ln(10 keV / 2 keV) for E >= 2 keV and 0 below (0 at 2 keV,
    150 s at 10 keV). A pure delay: its phase lag 2 pi f tau is what a lag-energy analysis sees
    below f = 1/(2 tau).

    Parameters
    ----------
    energy_kev : array_like
        Photon energies in keV (NaN propagates).

    Returns
    -------
    NDArray
        Delays in seconds, float64, same shape as the input.
    """
    e = np.asarray(energy_kev, dtype=np.float64)
    scale = LAG_MAX_S / np.log(LAG_E1_KEV / LAG_E0_KEV)
    return np.where(e < LAG_E0_KEV, 0.0, scale * np.log(np.maximum(e, LAG_E0_KEV) / LAG_E0_KEV))


def psd_model(freq: ArrayLike) -> NDArray[np.float64]:
    """Return the driver's power spectrum shape ``f^-a_lo / (1 + (f/f_break)^(a_hi - a_lo))``.

    Parameters
    ----------
    freq : array_like
        Frequencies, Hz (> 0).

    Returns
    -------
    NDArray
        Power, arbitrary units (the normalisation cancels in a lag).
    """
    f = np.asarray(freq, dtype=np.float64)
    bend = 1 + (f / F_BREAK) ** (PSD_INDEX_HI - PSD_INDEX_LO)
    psd: NDArray[np.float64] = f**-PSD_INDEX_LO / bend
    return psd


def expected_lag_energy(
    pi_lo: ArrayLike,
    pi_hi: ArrayLike,
    subject: ArrayLike,
    reference: ArrayLike,
    freqs: ArrayLike,
    dt: float,
) -> NDArray[np.float64]:
    """Return the lag a lag-energy estimator expects from the simulator's model, s.

    Band b (PI in ``[pi_lo[b], pi_hi[b])``, eV) carries the source photons of that PI, each
    delayed by :func:`injected_lag`, so its Fourier transform is the driver's times
    ``H_b(f) = sum_PI p(PI) exp(-2 pi i f tau(PI))`` with ``p`` the source counts spectrum
    (``spectra()["src_p"]``, as emitted; background is uncorrelated and changes no phase).
    A row's subject and reference are weighted sums of bands; the estimator averages the
    cross spectrum ``conj(X_s) X_r`` over the (segment, frequency) pairs ``freqs`` and
    divides its phase by 2 pi times their mean frequency, so the expectation is
    ``arg(sum_pairs P(f) conj(H_s(f)) H_r(f)) / (2 pi mean(freqs))`` with ``P`` the
    driver's power spectrum (:func:`psd_model`) times ``sinc^2(f dt)`` of the time bins.
    Positive: the subject lags.

    Parameters
    ----------
    pi_lo, pi_hi : array_like
        (n_band,) band edges, PI (eV).
    subject, reference : array_like
        (n_out, n_band) weights of the subject and reference bands of each row.
    freqs : array_like
        The member frequencies of the range, one per (segment, frequency) pair, Hz.
    dt : float
        Time bin of the light curves, s.

    Returns
    -------
    NDArray
        (n_out,) expected lags, s; NaN for a row whose reference is empty.
    """
    tables = spectra()
    pi = np.arange(PI_MIN, PI_MAX + 1)
    lo = np.asarray(pi_lo, dtype=np.int64)
    hi = np.asarray(pi_hi, dtype=np.int64)
    sub = np.atleast_2d(np.asarray(subject, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    pairs = np.asarray(freqs, dtype=np.float64).ravel()
    f, n_pairs = np.unique(pairs, return_counts=True)  # repeats: several segments
    member = (pi[None, :] >= lo[:, None]) & (pi[None, :] < hi[:, None])  # (n_band, n_pi)
    used = member.any(axis=0)
    phasor = np.exp(-2j * np.pi * f[:, None] * tables["tau"][None, used])  # (n_f, n_pi used)
    weights = phasor * tables["src_p"][None, used]
    band_h = weights @ member[:, used].T.astype(np.float64)  # (n_f, n_band)
    h_s, h_r = band_h @ sub.T, band_h @ ref.T  # (n_f, n_out)
    power = n_pairs * psd_model(f) * np.sinc(f * dt) ** 2
    cross = np.sum(power[:, None] * np.conj(h_s) * h_r, axis=0)
    lag: NDArray[np.float64] = np.angle(cross) / (2 * np.pi * pairs.mean())
    return np.where(ref.any(axis=1), lag, np.nan)


# -- Spectra ------------------------------------------------------------------------------------
def _gauss(e: NDArray[np.float64], mu: float, sigma: float) -> NDArray[np.float64]:
    return np.exp(-0.5 * ((e - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


@overload
def _absorbed(e: float, nh_22: float = NH_22) -> np.float64: ...
@overload
def _absorbed(e: NDArray[np.float64], nh_22: float = NH_22) -> NDArray[np.float64]: ...
def _absorbed(
    e: NDArray[np.float64] | float, nh_22: float = NH_22
) -> NDArray[np.float64] | np.float64:
    return e**-GAMMA * np.exp(-nh_22 * SIGMA1_22 * e**-2.5)


class Spectra(TypedDict):
    """The tables and rate normalisations of :func:`spectra`."""

    tau: NDArray[np.float64]
    src_p: NDArray[np.float64]
    src_cdf: NDArray[np.float64]
    bkg_p: NDArray[np.float64]
    bkg_cdf: NDArray[np.float64]
    flare_p: NDArray[np.float64]
    flare_cdf: NDArray[np.float64]
    bkg_frac_10_12: float
    flare_frac_10_12_p0: float


@cache
def spectra(nh_22: float = NH_22) -> Spectra:
    """Return the inverse-CDF tables on the 1 eV PI grid and the rate normalisations from them.

    Parameters
    ----------
    nh_22 : float
        Absorbing column of the source spectrum, 1e22 cm^-2 (default ``NH_22``, the NGC 5506
        preset's); only the source tables depend on it.

    Returns
    -------
    Spectra
        A dict: ``tau``: :func:`injected_lag` at each PI bin centre, s; ``src_p``, ``bkg_p``,
        ``flare_p``: probability of each PI; ``src_cdf``, ``bkg_cdf``, ``flare_cdf``: their
        cumulative sums; ``bkg_frac_10_12``: fraction of background counts in PI 10000-12000;
        ``flare_frac_10_12_p0``: fraction of flare counts in PI 10000-12000 with PATTERN == 0.
        Cached: the same arrays are returned on every call, do not modify them.
    """
    pi = np.arange(PI_MIN, PI_MAX + 1)
    # float64 at run time; numpy's stubs type an int array plus a float only as `floating`
    e = cast("NDArray[np.float64]", (pi + 0.5) * 1e-3)
    area = (1 - np.exp(-((e / 0.6) ** 3))) / (1 + (e / 7.0) ** 3)
    line = FE_EW_KEV * _absorbed(FE_KEV, nh_22) * _gauss(e, FE_KEV, FE_SIGMA_KEV)
    src = area * (_absorbed(e, nh_22) + line)
    bkg = e**-BKG_INDEX + CU_EW_KEV * CU_KEV**-BKG_INDEX * _gauss(e, CU_KEV, CU_SIGMA_KEV)
    flare = e**-FLARE_INDEX
    hard = (pi >= 10000) & (pi < 12000)
    tables: dict[str, NDArray[np.float64]] = {"tau": injected_lag(e)}
    for name, pdf in (("src", src), ("bkg", bkg), ("flare", flare)):
        tables[name + "_p"] = pdf / pdf.sum()
        tables[name + "_cdf"] = np.cumsum(pdf) / np.sum(pdf)
    singles = tables["flare_p"] * singles_probability(pi, True)
    return Spectra(
        tau=tables["tau"],
        src_p=tables["src_p"],
        src_cdf=tables["src_cdf"],
        bkg_p=tables["bkg_p"],
        bkg_cdf=tables["bkg_cdf"],
        flare_p=tables["flare_p"],
        flare_cdf=tables["flare_cdf"],
        bkg_frac_10_12=float(tables["bkg_p"][hard].sum()),
        flare_frac_10_12_p0=float(singles[hard].sum()),
    )


def draw_pi(rng: np.random.Generator, cdf: NDArray[np.float64], n: int) -> NDArray[np.int16]:
    """Draw n PI values (eV, int16) by the inverse CDF ``cdf`` on the 1 eV grid from ``PI_MIN``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    cdf : NDArray
        Cumulative distribution, one value per PI from ``PI_MIN`` to ``PI_MAX``.
    n : int
        Number of values.

    Returns
    -------
    NDArray
        PI in eV, int16.
    """
    return (PI_MIN + np.searchsorted(cdf, rng.random(n), side="right")).astype(np.int16)


# -- Variability --------------------------------------------------------------------------------
def red_noise(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Return a Timmer & Koenig (1995) curve of n 1-s samples: mean 1, rms FRAC_RMS, >= LC_FLOOR.

    Generated on 2n samples and cut to the first n; PSD
    P(f) = f^-PSD_INDEX_LO / (1 + (f/F_BREAK)^(PSD_INDEX_HI - PSD_INDEX_LO)).

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    n : int
        Number of 1 s samples.

    Returns
    -------
    NDArray
        Relative source rate per 1 s sample, float64.
    """
    m = 2 * n
    f = np.fft.rfftfreq(m, 1.0)[1:]
    psd = psd_model(f)
    re, im = rng.standard_normal((2, f.size)) * np.sqrt(psd / 2)
    im[-1] = 0.0  # the Nyquist term is real for even m
    x = np.fft.irfft(np.concatenate([[0.0], re + 1j * im]), m)[:n]
    lc: NDArray[np.float64] = np.maximum(1 + FRAC_RMS * (x - x.mean()) / x.std(), LC_FLOOR)
    return lc


# -- PSF ----------------------------------------------------------------------------------------
def king_fraction(r: float) -> float:
    """Return the fraction of King-PSF counts within radius r (px) of the source centre.

    F(r) = 1 - (1 + (r/KING_R0)^2)^(1 - KING_BETA), the integral of the King profile
    (1 + (r/r0)^2)^-beta over the disc of radius r, normalised at infinity.

    Parameters
    ----------
    r : float
        Radius in sky pixels.

    Returns
    -------
    float
        Enclosed fraction.
    """
    enclosed: float = 1.0 - (1.0 + (r / KING_R0) ** 2) ** (1.0 - KING_BETA)  # float ** float: Any
    return enclosed
