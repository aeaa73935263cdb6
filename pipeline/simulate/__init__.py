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

Pile-up (off by default; ``pileup=True``, ``xlcat simulate --pileup-rate``)
    Events are read out frame by frame (``FRMTIME_MS``); events of one frame in the same or
    neighbouring pn pixels (82 sky px) become one event of their summed PI and a larger
    pattern (:func:`~pipeline.simulate.detector.pile_up`), so pile-up grows with the counts per
    frame and is strongest in the PSF core. ``nh_22`` sets the source's absorption (a soft
    source has the 0.5-2 keV counts a pile-up check measures). Its own random stream: without
    it the files are byte-identical to those of a simulator without pile-up.

All rates are per live second; recorded counts are rate x 0.994 x time. Random numbers come from
:func:`numpy.random.default_rng` with independent streams per component derived from the
observation seed, so one seed gives byte-identical files (no creation date is written).

Modules
    :mod:`~pipeline.simulate.detector` (CCD layout, GTIs, PATTERN and FLAG),
    :mod:`~pipeline.simulate.model` (spectra, PSF, red noise, lag),
    :mod:`~pipeline.simulate.events` (drawing source, background and flare events),
    :mod:`~pipeline.simulate.observation` (:func:`simulate_observation`),
    :mod:`~pipeline.simulate.files` (event, region, build and truth files),
    :mod:`~pipeline.simulate.preset` (the reference table and :func:`simulate_preset`).
"""

from pipeline.simulate.detector import (
    AIMPOINT,
    CCD_GAP,
    CCD_HEIGHT,
    CCD_WIDTH,
    LIVE_FRACTION,
    MJDREF,
    XMMEA_EP_MASK,
    ccd_rectangles,
)
from pipeline.simulate.files import SIMULATOR_VERSION
from pipeline.simulate.model import expected_lag_energy, injected_lag
from pipeline.simulate.observation import ObservationTruth, simulate_observation
from pipeline.simulate.preset import PRESETS, PresetObservation, simulate_preset

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
    "expected_lag_energy",
    "injected_lag",
    "simulate_observation",
    "simulate_preset",
]
