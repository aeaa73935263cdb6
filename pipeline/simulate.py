"""Simulated XMM-Newton EPIC-pn imaging-mode event files shaped like the NGC 5506 timing study.

The files are test data, not real observations: every number below is a simulator choice shaped like
the reference study (AGN NGC 5506, pn PrimeFullWindow), not a fit to it.

Detector
    12 CCD rectangles in sky pixels (1 px = 0.05 arcsec), 2 rows of 6, each ``CCD_WIDTH`` x
    ``CCD_HEIGHT`` = 5248 x 16400 px (64 x 200 pixels of 4.1 arcsec), separated by ``CCD_GAP`` = 80
    px. CCD n = 1 + k + 6 r for column k = 0..5 (increasing X) and row r = 0 (lower Y), 1; CCD n
    covers the integer pixels ``X_ORIGIN + k (W + G) <= X < ... + W`` and likewise in Y (see
    :func:`ccd_rectangles`). The aimpoint ``AIMPOINT`` is on CCD 4. Events falling between CCDs are
    dropped; events on CCD n outside STDGTIn are not written (no telemetry). Every CCD's GTIs cover
    [TSTART, TSTOP] except a few short gaps (20-300 s) that differ per CCD and, in some
    observations, one longer gap (1-3 ks) on all CCDs.
Source
    King PSF, surface brightness (1 + (r/r0)^2)^-beta with r0 = 110 px (5.5 arcsec), beta = 1.5,
    truncated at 20000 px; radius drawn by the inverse CDF F(r) = 1 - (1 + (r/r0)^2)^(1-beta),
    uniform angle, rounded to integer pixels. Its position is the aimpoint plus a per-observation
    offset of at most 300 px. Counts spectrum: A(E) [E^-Gamma exp(-N_H sigma(E)) + K G(E)] with
    Gamma = 1.8, N_H = 3e22 cm^-2, sigma(E) = 2.4e-22 cm^2 (E / 1 keV)^-2.5, a made-up smooth pn
    effective area A(E) = (1 - exp(-(E/0.6)^3)) / (1 + (E/7)^3), and a Gaussian Fe K-alpha line G at
    6.4 keV (sigma 60 eV) whose K gives an equivalent width of 100 eV. PI (integer eV, 200..15000)
    is drawn by the inverse CDF on a 1 eV grid. The source rate is dead-time corrected: the expected
    number of source events in the 40 arcsec (800 px) source circle is ``source_rate * LIVETI04``
    (live fraction 0.994 of the source CCD's GTI time), exactly, lags and GTIs included.
Variability
    Red noise (Timmer & Koenig 1995, A&A 300, 707) on a 1 s grid from TSTART - 190 s to TSTOP,
    generated on twice that length; PSD a bending power law P(f) = f^-1 / (1 + (f/3e-4 Hz)^1.5)
    (index -1 below the bend, -2.5 above), scaled to mean 1 and fractional rms 0.25 and clipped at
    0.02. An event of energy E has its time drawn from this driver's inverse CDF and then delayed by
    :func:`injected_lag` (E) (a pure time delay, tau(E) = 150 s ln(E / 2 keV) / ln 5 for E >= 2 keV,
    0 below).
Particle background
    Uniform over all 12 CCDs and constant in time; counts spectrum E^-0.1 plus a Cu K-alpha line at
    8.04 keV (sigma 70 eV, 600 eV equivalent width); 0.15 cts/s in 10-12 keV over the detector (all
    patterns).
Soft-proton flares
    Each flare is a sin^2 burst over [start, stop) of 300-2500 s, uniform over the detector, counts
    spectrum E^-0.3; its peak is the 10-12 keV PATTERN == 0 rate over the detector at maximum, 1.5-5
    cts/s (well above the 0.7 cts/s threshold of the standard flare filter).
PATTERN and FLAG
    Singles probability 0.75 - 0.025 E/keV (source) or 0.65 - 0.025 E/keV (background and flares);
    of the rest 77 % doubles (PATTERN 1-4) and 23 % triples/quadruples (5-12), uniform within each
    group. 95 % of events have FLAG = 0; the others carry bits inside the made-up ``XMMEA_EP_MASK``
    or only bits outside it (half each), so ``FLAG == 0`` and ``#XMMEA_EP`` select different sets.
    The real pn XMMEA_EP mask is not public; ``XMMEA_EP_MASK`` is invented.

All rates are per live second; recorded counts are rate x 0.994 x time. Random numbers come from
:func:`numpy.random.default_rng` with independent streams per component derived from the
observation seed, so one seed gives byte-identical files (no creation date is written).
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
from astropy.io import fits
from numpy.typing import ArrayLike, NDArray

from schemas.errors import ConfigError

__all__ = [
    "SIMULATOR_VERSION",
    "MJDREF",
    "LIVE_FRACTION",
    "XMMEA_EP_MASK",
    "CCD_WIDTH",
    "CCD_HEIGHT",
    "CCD_GAP",
    "AIMPOINT",
    "PresetObservation",
    "PRESETS",
    "ObservationTruth",
    "ccd_rectangles",
    "injected_lag",
    "simulate_observation",
    "simulate_preset",
]

SIMULATOR_VERSION = "1.0"
MJDREF = 50814.0
LIVE_FRACTION = 0.994
FRMTIME_MS = 73.36
XMMEA_EP_MASK = 0x00050030  # made up: bits 0x10, 0x20, 0x10000, 0x40000
_FLAG_IN, _FLAG_OUT = (0x10, 0x20, 0x10000, 0x40000), (0x1, 0x4, 0x100000)
CCD_WIDTH, CCD_HEIGHT, CCD_GAP = 5248, 16400, 80
X_ORIGIN, Y_ORIGIN = 10000, 9600
AIMPOINT = (28600, 21000)
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


@dataclass(frozen=True)
class PresetObservation:
    """One preset row: obsid, MJD, rate (cts/s), exposure (ks), number of flares, long gap."""

    obsid: str
    mjd: float
    rate: float
    exposure_ks: float
    n_flares: int
    long_gap: bool


# obsid, MJD, rate and exposure are the reference study's; n_flares and long_gap are our choices.
PRESETS: dict[str, tuple[PresetObservation, ...]] = {
    "ngc5506": tuple(
        PresetObservation(*row)
        for row in (
            ("0013140101", 51943.034, 7.31, 13.5, 1, True),
            ("0013140201", 52283.816, 12.0, 9.94, 0, False),
            ("0201830201", 53197.533, 8.34, 14.8, 1, False),
            ("0201830301", 53201.043, 8.02, 14.0, 1, True),
            ("0201830401", 53208.674, 7.51, 13.9, 0, False),
            ("0201830501", 53224.964, 11.9, 14.0, 2, False),
            ("0554170101", 54834.329, 13.4, 57.7, 3, True),
            ("0554170201", 54674.832, 12.1, 62.9, 4, False),
            ("0761220101", 57211.684, 7.25, 88.8, 5, True),
        )
    )
}


@dataclass(frozen=True)
class ObservationTruth:
    """What :func:`simulate_observation` put into one event file (s MET, sky px, cts/s)."""

    obsid: str
    tstart: float
    tstop: float
    exposure: float
    source_rate: float
    mjd: float
    seed: int
    gtis_per_ccd: dict[int, list[tuple[float, float]]]
    flares: list[tuple[float, float, float]]  # (start, stop, peak 10-12 keV PATTERN==0 rate)
    source_xy: tuple[int, int]
    src_radius: int
    background_circles: list[tuple[int, int, int]]
    source_ccd: int
    n_events: int
    events_path: str
    regions_path: str

    def to_dict(self) -> dict:
        """Return a JSON-ready dict (CCD keys as strings)."""
        d = asdict(self)
        d["gtis_per_ccd"] = {str(k): [list(g) for g in v] for k, v in self.gtis_per_ccd.items()}
        return d


def ccd_rectangles() -> dict[int, tuple[int, int, int, int]]:
    """Return the simulated pn CCD layout in sky pixels.

    Returns
    -------
    dict[int, tuple[int, int, int, int]]
        CCD number (1..12) -> (xlo, xhi, ylo, yhi); CCD n holds the integer pixels
        xlo <= X < xhi, ylo <= Y < yhi.
    """
    out = {}
    for n in range(1, 13):
        k, r = (n - 1) % 6, (n - 1) // 6
        x0 = X_ORIGIN + k * (CCD_WIDTH + CCD_GAP)
        y0 = Y_ORIGIN + r * (CCD_HEIGHT + CCD_GAP)
        out[n] = (x0, x0 + CCD_WIDTH, y0, y0 + CCD_HEIGHT)
    return out


def _ccd_of(x: NDArray, y: NDArray) -> NDArray:
    """CCD number of integer sky pixels, 0 where the pixel is off the detector."""
    dx, dy = x - X_ORIGIN, y - Y_ORIGIN
    k, r = dx // (CCD_WIDTH + CCD_GAP), dy // (CCD_HEIGHT + CCD_GAP)
    ok = (
        (k >= 0)
        & (k < 6)
        & (r >= 0)
        & (r < 2)
        & (dx % (CCD_WIDTH + CCD_GAP) < CCD_WIDTH)
        & (dy % (CCD_HEIGHT + CCD_GAP) < CCD_HEIGHT)
    )
    return np.where(ok, 1 + k + 6 * r, 0).astype(np.uint8)


def injected_lag(energy_kev: ArrayLike) -> NDArray:
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


def _singles_probability(pi: NDArray, particle: bool) -> NDArray:
    return np.clip((0.65 if particle else 0.75) - 0.025e-3 * pi, 0.05, 0.95)


def _gauss(e: NDArray, mu: float, sigma: float) -> NDArray:
    return np.exp(-0.5 * ((e - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _absorbed(e: NDArray | float) -> NDArray:
    return e**-GAMMA * np.exp(-NH_22 * SIGMA1_22 * e**-2.5)


@cache
def _spectra() -> dict[str, NDArray | float]:
    """Inverse-CDF tables on the 1 eV PI grid and the rate normalisations derived from them."""
    pi = np.arange(PI_MIN, PI_MAX + 1)
    e = (pi + 0.5) * 1e-3
    area = (1 - np.exp(-((e / 0.6) ** 3))) / (1 + (e / 7.0) ** 3)
    line = FE_EW_KEV * _absorbed(FE_KEV) * _gauss(e, FE_KEV, FE_SIGMA_KEV)
    src = area * (_absorbed(e) + line)
    bkg = e**-BKG_INDEX + CU_EW_KEV * CU_KEV**-BKG_INDEX * _gauss(e, CU_KEV, CU_SIGMA_KEV)
    flare = e**-FLARE_INDEX
    hard = (pi >= 10000) & (pi < 12000)
    out: dict[str, NDArray | float] = {"tau": injected_lag(e)}
    for name, pdf in (("src", src), ("bkg", bkg), ("flare", flare)):
        out[name + "_p"] = pdf / pdf.sum()
        out[name + "_cdf"] = np.cumsum(pdf) / np.sum(pdf)
    out["bkg_frac_10_12"] = float(out["bkg_p"][hard].sum())
    singles = out["flare_p"] * _singles_probability(pi, True)
    out["flare_frac_10_12_p0"] = float(singles[hard].sum())
    return out


def _draw_pi(rng: np.random.Generator, cdf: NDArray, n: int) -> NDArray:
    return (PI_MIN + np.searchsorted(cdf, rng.random(n), side="right")).astype(np.int16)


def _tags(rng: np.random.Generator, pi: NDArray, particle: bool) -> tuple[NDArray, NDArray]:
    """PATTERN and FLAG columns for events of the given PI."""
    n = pi.size
    u, grp_u, pat_u = rng.random(n), rng.random(n), rng.random(n)
    multi = np.where(grp_u < 0.77, 1 + (pat_u * 4).astype(int), 5 + (pat_u * 8).astype(int))
    pattern = np.where(u < _singles_probability(pi, particle), 0, multi).astype(np.uint8)
    f_u, which, extra = rng.random(n), rng.integers(0, 12, n), rng.random(n)
    bits_in, bits_out = np.array(_FLAG_IN), np.array(_FLAG_OUT)
    inside = bits_in[which % 4] | np.where(extra < 0.3, bits_out[which % 3], 0)
    outside = bits_out[which % 3] | np.where(extra < 0.3, bits_out[(which + 1) % 3], 0)
    flag = np.where(f_u < 0.025, inside, np.where(f_u < 0.05, outside, 0))
    return pattern, flag.astype(np.int32)


def _red_noise(rng: np.random.Generator, n: int) -> NDArray:
    """Timmer & Koenig (1995) curve of n 1-s samples: mean 1, rms FRAC_RMS, clipped at LC_FLOOR."""
    m = 2 * n
    f = np.fft.rfftfreq(m, 1.0)[1:]
    psd = f**-PSD_INDEX_LO / (1 + (f / F_BREAK) ** (PSD_INDEX_HI - PSD_INDEX_LO))
    re, im = rng.standard_normal((2, f.size)) * np.sqrt(psd / 2)
    im[-1] = 0.0  # the Nyquist term is real for even m
    x = np.fft.irfft(np.concatenate([[0.0], re + 1j * im]), m)[:n]
    return np.maximum(1 + FRAC_RMS * (x - x.mean()) / x.std(), LC_FLOOR)


def _complement(gaps: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    out, cur = [], t0
    for a, b in sorted(gaps):
        a, b = max(a, t0), min(b, t1)
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < t1:
        out.append((cur, t1))
    return out


def _make_gtis(
    rng: np.random.Generator, t0: float, t1: float, ccd_gaps: bool, long_gap: bool
) -> dict[int, list[tuple[float, float]]]:
    span = t1 - t0
    length = min(rng.uniform(1000, 3000), 0.15 * span)
    centre = t0 + rng.uniform(0.3, 0.7) * span
    common = [(centre - length / 2, centre + length / 2)] if ccd_gaps and long_gap else []
    gtis = {}
    for ccd in range(1, 13):
        n = int(rng.integers(1, 2 + int(span // 7000)))
        lengths = np.minimum(rng.uniform(20, 300, n), 0.03 * span)
        starts = t0 + rng.random(n) * (span - lengths)
        gaps = common + [(float(a), float(a + b)) for a, b in zip(starts, lengths, strict=True)]
        gtis[ccd] = _complement(gaps if ccd_gaps else [], t0, t1)
    return gtis


def _in_gtis(t: NDArray, ccd: NDArray, gtis: dict[int, list[tuple[float, float]]]) -> NDArray:
    keep = np.zeros(t.size, dtype=bool)
    for n, g in gtis.items():
        sel = np.flatnonzero(ccd == n)
        if not g or sel.size == 0:
            continue
        g = np.asarray(g)
        i = np.searchsorted(g[:, 0], t[sel], side="right") - 1
        keep[sel] = (i >= 0) & (t[sel] < g[np.maximum(i, 0), 1])
    return keep


def _uniform_positions(rng: np.random.Generator, n: int) -> tuple[NDArray, NDArray]:
    rect = np.array([ccd_rectangles()[c] for c in range(1, 13)])[rng.integers(0, 12, n)]
    return rect[:, 0] + rng.integers(0, CCD_WIDTH, n), rect[:, 2] + rng.integers(0, CCD_HEIGHT, n)


def _king_fraction(r: float) -> float:
    return 1.0 - (1.0 + (r / KING_R0) ** 2) ** (1.0 - KING_BETA)


def _source_events(
    rng: np.random.Generator,
    lc: NDArray,
    t_grid0: float,
    rate: float,
    xy: tuple[int, int],
    gti: list[tuple[float, float]],
) -> tuple[NDArray, ...]:
    sp = _spectra()
    cnodes = np.concatenate([[0.0], np.cumsum(lc)])
    grid = np.arange(cnodes.size, dtype=np.float64)
    g = np.asarray(gti, dtype=np.float64).reshape(-1, 2) - t_grid0
    # In-GTI counts per unit rate: sum_E p(E) sum_GTI int c(t - tau(E)) dt, c piecewise constant.
    tau = sp["tau"]
    per_gti = np.interp(g[:, 1:2] - tau, grid, cnodes) - np.interp(g[:, 0:1] - tau, grid, cnodes)
    unit = float(np.sum(per_gti.sum(axis=0) * sp["src_p"]))
    region_rate = rate * float(np.sum(g[:, 1] - g[:, 0])) / unit if unit > 0 else 0.0
    total_rate = region_rate * _king_fraction(KING_RMAX) / _king_fraction(SRC_RADIUS)
    n = int(rng.poisson(total_rate * LIVE_FRACTION * cnodes[-1]))
    u = rng.random(n) * cnodes[-1]
    i = np.minimum(np.searchsorted(cnodes, u, side="right") - 1, lc.size - 1)
    pi = _draw_pi(rng, sp["src_cdf"], n)
    t = t_grid0 + i + (u - cnodes[i]) / lc[i] + injected_lag((pi + 0.5) * 1e-3)
    v = rng.random(n) * _king_fraction(KING_RMAX)
    r = KING_R0 * np.sqrt((1.0 - v) ** (1.0 / (1.0 - KING_BETA)) - 1.0)
    phi = rng.uniform(0, 2 * np.pi, n)
    x = np.rint(xy[0] + r * np.cos(phi)).astype(np.int64)
    y = np.rint(xy[1] + r * np.sin(phi)).astype(np.int64)
    return (t, x, y, pi, *_tags(rng, pi, particle=False))


def _background_events(rng: np.random.Generator, t0: float, t1: float) -> tuple[NDArray, ...]:
    sp = _spectra()
    n = int(rng.poisson(BKG_RATE_10_12 / sp["bkg_frac_10_12"] * LIVE_FRACTION * (t1 - t0)))
    t = t0 + rng.random(n) * (t1 - t0)
    pi = _draw_pi(rng, sp["bkg_cdf"], n)
    return (t, *_uniform_positions(rng, n), pi, *_tags(rng, pi, particle=True))


def _flare_events(
    rng: np.random.Generator, t0: float, t1: float, n_flares: int
) -> tuple[list[tuple[float, float, float]], tuple[NDArray, ...]]:
    sp = _spectra()
    n_flares = min(n_flares, int((t1 - t0) // FLARE_MIN_SEGMENT))
    seg = (t1 - t0) / max(n_flares, 1)
    x_grid = np.linspace(0.0, 1.0, 2001)
    cdf = x_grid - np.sin(2 * np.pi * x_grid) / (2 * np.pi)  # 2 * integral of sin^2(pi x)
    flares, times = [], []
    for k in range(n_flares):
        dur = rng.uniform(FLARE_DURATION[0], min(FLARE_DURATION[1], 0.6 * seg))
        start = t0 + k * seg + rng.uniform(0, seg - dur)
        peak = float(np.exp(rng.uniform(*np.log(FLARE_PEAK))))
        n = int(rng.poisson(peak / sp["flare_frac_10_12_p0"] * LIVE_FRACTION * dur / 2))
        times.append(start + dur * np.interp(rng.random(n), cdf, x_grid))
        flares.append((float(start), float(start + dur), peak))
    t = np.concatenate(times) if times else np.zeros(0)
    pi = _draw_pi(rng, sp["flare_cdf"], t.size)
    return flares, (t, *_uniform_positions(rng, t.size), pi, *_tags(rng, pi, particle=True))


def _date(met: float) -> str:
    """ISO date (TT) of a mission time; MJD 50814.0 is 1998-01-01T00:00:00 TT."""
    return (datetime(1998, 1, 1) + timedelta(seconds=met)).isoformat(timespec="milliseconds")


def _write_events(
    path: Path,
    obsid: str,
    t0: float,
    t1: float,
    cols: tuple[NDArray, ...],
    gtis: dict[int, list[tuple[float, float]]],
) -> None:
    names = (
        ("TIME", "D", "s"),
        ("X", "J", "0.05 arcsec"),
        ("Y", "J", "0.05 arcsec"),
        ("PI", "I", "eV"),
        ("PATTERN", "B", None),
        ("FLAG", "J", None),
        ("CCDNR", "B", None),
    )
    ev = fits.BinTableHDU.from_columns(
        [fits.Column(n, f, unit=u, array=a) for (n, f, u), a in zip(names, cols, strict=True)],
        name="EVENTS",
    )
    h = ev.header
    for key, val in (
        ("TLMIN4", 0),
        ("TLMAX4", 20479),
        ("TELESCOP", "XMM"),
        ("INSTRUME", "EPN"),
        ("OBS_ID", obsid),
        ("OBJECT", "NGC 5506 (simulated)"),
        ("DATAMODE", "IMAGING"),
        ("SUBMODE", "PrimeFullWindow"),
        ("FRMTIME", FRMTIME_MS),
        ("TSTART", t0),
        ("TSTOP", t1),
        ("DATE-OBS", _date(t0)),
        ("DATE-END", _date(t1)),
        ("MJDREF", MJDREF),
        ("TIMESYS", "TT"),
        ("TIMEREF", "LOCAL"),
        ("TIMEUNIT", "s"),
        ("TIMEZERO", 0.0),
        ("CREATOR", "xlcat simulate"),
        ("XMMEA_EP", f"(FLAG & 0x{XMMEA_EP_MASK:08x}) == 0"),
    ):
        h[key] = val
    for n in range(1, 13):
        ontime = float(sum(b - a for a, b in gtis[n]))
        h[f"LIVETI{n:02d}"] = (ontime * LIVE_FRACTION, f"[s] live time of CCD {n}")
        h[f"ONTIME{n:02d}"] = (ontime, f"[s] sum of STDGTI{n:02d}")
    h.add_comment("Simulated data, not a real observation (xlcat simulate).")
    h.add_comment("XMMEA_EP is a made-up mask: the real EPIC-pn mask is not public.")
    hdus = [fits.PrimaryHDU(), ev]
    for n in range(1, 13):
        g = np.asarray(gtis[n], dtype=np.float64).reshape(-1, 2)
        hdu = fits.BinTableHDU.from_columns(
            [
                fits.Column("START", "D", unit="s", array=g[:, 0]),
                fits.Column("STOP", "D", unit="s", array=g[:, 1]),
            ],
            name=f"STDGTI{n:02d}",
        )
        hdu.header["CCDID"], hdu.header["TSTART"], hdu.header["TSTOP"] = n, t0, t1
        hdus.append(hdu)
    for hdu in hdus:
        for key, val in (("TELESCOP", "XMM"), ("INSTRUME", "EPN"), ("OBS_ID", obsid)):
            hdu.header[key] = val
    fits.HDUList(hdus).writeto(path, overwrite=True)


def _write_regions(path: Path, src: tuple[int, int], bkg: list[tuple[int, int, int]]) -> None:
    lines = [
        "# Region file format: DS9 version 4.1",
        'global color=green dashlist=8 3 width=1 font="helvetica 10 normal roman" select=1 '
        "highlite=1 dash=0 fixed=0 edit=1 move=1 delete=1 include=1 source=1",
        "physical",
        f"circle({src[0]},{src[1]},{SRC_RADIUS})",
    ]
    lines += [f"circle({x},{y},{r}) # background" for x, y, r in bkg]
    path.write_text("\n".join(lines) + "\n")


def _check_seed(seed: object, where: str) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"{where}: seed={seed!r} is invalid; give a non-negative integer")


def simulate_observation(
    directory: str | Path,
    obsid: str,
    *,
    exposure: float,
    source_rate: float,
    mjd: float,
    seed: int,
    flares: bool = True,
    ccd_gaps: bool = True,
    n_flares: int | None = None,
    long_gap: bool | None = None,
) -> ObservationTruth:
    """Simulate one EPIC-pn imaging-mode observation and write its event and region files.

    Writes ``directory/<obsid>/pn_events.fits`` (primary HDU, ``EVENTS``,
    ``STDGTI01``..``STDGTI12``) and ``directory/<obsid>/ds9.reg``. The model is described in the
    module docstring.

    Parameters
    ----------
    directory : str or Path
        Parent directory; created if missing.
    obsid : str
        Observation id, used for the sub-directory and OBS_ID.
    exposure : float
        TSTOP - TSTART in seconds (> 0).
    source_rate : float
        Mean dead-time-corrected source count rate in the 800 px source circle, PI 200-15000 eV,
        cts/s (>= 0): expected source counts there are source_rate * LIVETI04.
    mjd : float
        Start time in MJD (TT); TSTART = (mjd - 50814) * 86400 s, rounded to 1 ms.
    seed : int
        Non-negative seed of this observation's random streams.
    flares : bool
        Add soft-proton flares.
    ccd_gaps : bool
        Add GTI gaps (per-CCD short gaps and, if ``long_gap``, one long gap on all CCDs).
    n_flares : int, optional
        Number of flares (capped at exposure / 1500 s); default max(1, round(exposure / 15 ks)).
    long_gap : bool, optional
        Add a 1-3 ks gap (at most 15 % of the exposure) on all CCDs; default: exposure >= 40 ks.

    Returns
    -------
    ObservationTruth
        The injected parameters, GTIs, flares and regions.

    Raises
    ------
    ConfigError
        If exposure, source_rate, seed or obsid is invalid.
    """
    where = f"simulate {obsid!r}"
    if not (exposure > 0 and math.isfinite(exposure)):
        raise ConfigError(f"{where}: exposure={exposure!r} s is invalid; give a positive number")
    if not (source_rate >= 0 and math.isfinite(source_rate)):
        raise ConfigError(f"{where}: source_rate={source_rate!r} is invalid; give a rate >= 0")
    _check_seed(seed, where)
    if not obsid or any(c in obsid for c in "/\\") or obsid in (".", ".."):
        raise ConfigError(f"{where}: obsid is invalid; give a plain name such as 0013140101")
    t0 = round((mjd - MJDREF) * 86400.0, 3)
    t1 = t0 + float(exposure)
    streams = np.random.SeedSequence(int(seed)).spawn(6)
    r_gti, r_lc, r_src, r_bkg, r_flare, r_pos = (np.random.default_rng(s) for s in streams)
    off = r_pos.integers(-300, 301, 2)
    src = (AIMPOINT[0] + int(off[0]), AIMPOINT[1] + int(off[1]))
    src_ccd = int(_ccd_of(np.array([src[0]]), np.array([src[1]]))[0])
    bkg = [(src[0] + dx, src[1] + dy, r) for dx, dy, r in BKG_CIRCLES]
    gtis = _make_gtis(r_gti, t0, t1, ccd_gaps, exposure >= 40000 if long_gap is None else long_gap)
    t_grid0 = t0 - LAG_MARGIN
    lc = _red_noise(r_lc, int(math.ceil(t1 - t_grid0)))
    parts = [
        _source_events(r_src, lc, t_grid0, source_rate, src, gtis[src_ccd]),
        _background_events(r_bkg, t0, t1),
    ]
    flare_list: list[tuple[float, float, float]] = []
    if flares:
        nf = max(1, round(exposure / 15000)) if n_flares is None else int(n_flares)
        flare_list, flare_cols = _flare_events(r_flare, t0, t1, nf)
        parts.append(flare_cols)
    t, x, y, pi, pattern, flag = (np.concatenate(c) for c in zip(*parts, strict=True))
    ccd = _ccd_of(x, y)
    keep = np.flatnonzero((ccd > 0) & (t >= t0) & (t < t1))
    keep = keep[_in_gtis(t[keep], ccd[keep], gtis)]
    keep = keep[np.argsort(t[keep], kind="stable")]
    cols = (
        t[keep],
        x[keep].astype(np.int32),
        y[keep].astype(np.int32),
        pi[keep],
        pattern[keep],
        flag[keep],
        ccd[keep],
    )
    out = Path(directory) / obsid
    out.mkdir(parents=True, exist_ok=True)
    _write_events(out / "pn_events.fits", obsid, t0, t1, cols, gtis)
    _write_regions(out / "ds9.reg", src, bkg)
    return ObservationTruth(
        obsid=obsid,
        tstart=t0,
        tstop=t1,
        exposure=float(exposure),
        source_rate=float(source_rate),
        mjd=float(mjd),
        seed=int(seed),
        gtis_per_ccd=gtis,
        flares=flare_list,
        source_xy=src,
        src_radius=SRC_RADIUS,
        background_circles=bkg,
        source_ccd=src_ccd,
        n_events=int(keep.size),
        events_path=f"{obsid}/pn_events.fits",
        regions_path=f"{obsid}/ds9.reg",
    )


def _observation_seed(seed: int, obsid: str) -> int:
    ss = np.random.SeedSequence([seed, zlib.crc32(obsid.encode())])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _model_summary(preset: str, seed: int, scale: float) -> dict:
    return {
        "simulator_version": SIMULATOR_VERSION,
        "preset": preset,
        "seed": seed,
        "scale": scale,
        "lag_model": {
            "formula": "tau(E) = tau_max * ln(E/e0) / ln(e1/e0) for E >= e0, else 0",
            "tau_max_s": LAG_MAX_S,
            "e0_kev": LAG_E0_KEV,
            "e1_kev": LAG_E1_KEV,
        },
        "psd": {
            "formula": "P(f) = f^-a_lo / (1 + (f/f_break)^(a_hi - a_lo))",
            "f_break_hz": F_BREAK,
            "a_lo": PSD_INDEX_LO,
            "a_hi": PSD_INDEX_HI,
            "frac_rms": FRAC_RMS,
            "floor": LC_FLOOR,
            "dt_s": 1.0,
        },
        "spectrum": {
            "gamma": GAMMA,
            "nh_1e22": NH_22,
            "fe_kev": FE_KEV,
            "fe_sigma_kev": FE_SIGMA_KEV,
            "fe_ew_kev": FE_EW_KEV,
        },
        "psf": {"king_r0_px": KING_R0, "king_beta": KING_BETA, "rmax_px": KING_RMAX},
        "live_fraction": LIVE_FRACTION,
        "xmmea_ep_mask": XMMEA_EP_MASK,
        "background_rate_10_12": BKG_RATE_10_12,
    }


def simulate_preset(
    outdir: str | Path,
    preset: str = "ngc5506",
    *,
    scale: float = 1.0,
    seed: int = 5506,
    obsids: Sequence[str] | None = None,
    time_bin: float = 128.0,
) -> Path:
    """Simulate a preset's observations and write a build file and a truth file next to them.

    Writes ``outdir/<obsid>/pn_events.fits`` and ``ds9.reg`` per observation,
    ``outdir/<preset>.toml`` (paths relative to it) and ``outdir/truth.json``. Observation seeds
    derive from (seed, obsid), so a subset gives the same files as the full preset.

    Parameters
    ----------
    outdir : str or Path
        Output directory; created if missing.
    preset : str
        Preset name; only ``"ngc5506"`` (the nine observations of the reference study).
    scale : float
        Factor on every exposure (> 0); 0.02 gives 0.2-1.8 ks files.
    seed : int
        Non-negative master seed.
    obsids : sequence of str, optional
        Subset of the preset's obsids (written in preset order); default all.
    time_bin : float
        ``time_bin`` written into the build file, seconds (> 0).

    Returns
    -------
    Path
        The build file.

    Raises
    ------
    ConfigError
        Unknown preset or obsid, a non-positive scale or time_bin, or a negative seed.
    """
    if preset not in PRESETS:
        raise ConfigError(f"simulate: preset={preset!r} is unknown; use one of {sorted(PRESETS)}")
    if not (scale > 0 and math.isfinite(scale)):
        raise ConfigError(f"simulate: scale={scale!r} is invalid; give a positive factor")
    if not (time_bin > 0 and math.isfinite(time_bin)):
        raise ConfigError(f"simulate: time_bin={time_bin!r} is invalid; give seconds > 0")
    _check_seed(seed, "simulate")
    rows = PRESETS[preset]
    if obsids is not None:
        unknown = sorted(set(obsids) - {r.obsid for r in rows})
        if unknown:
            raise ConfigError(
                f"simulate: obsid {unknown[0]!r} is not in preset {preset!r}; "
                f"use one of {[r.obsid for r in rows]}"
            )
        rows = tuple(r for r in rows if r.obsid in set(obsids))
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    truths = [
        simulate_observation(
            outdir,
            r.obsid,
            exposure=r.exposure_ks * 1000.0 * scale,
            source_rate=r.rate,
            mjd=r.mjd,
            seed=_observation_seed(int(seed), r.obsid),
            flares=r.n_flares > 0,
            n_flares=r.n_flares,
            long_gap=r.long_gap,
        )
        for r in rows
    ]
    toml = [
        f"# Written by xlcat simulate (preset {preset}, scale {scale:g}, seed {int(seed)}). "
        "Simulated data, not real observations.",
        f'store = "{preset}.zarr"',
        f"time_bin = {float(time_bin)!r}",
        f'presets = ["{preset}"]',
        "",
        "[flare]",
        "threshold = 0.7",
    ]
    for tr in truths:
        toml += [
            "",
            "[[observations]]",
            f'obsid = "{tr.obsid}"',
            f'events = "{tr.events_path}"',
            f'regions = "{tr.regions_path}"',
        ]
    build = outdir / f"{preset}.toml"
    build.write_text("\n".join(toml) + "\n")
    truth = _model_summary(preset, int(seed), float(scale))
    truth["observations"] = [tr.to_dict() for tr in truths]
    (outdir / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return build
