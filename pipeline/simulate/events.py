"""Drawing the event lists of the three components: source, particle background, flares.

Each function returns the columns (TIME, X, Y, PI, PATTERN, FLAG) of one component, before the
events are assigned to CCDs and screened by GTI in :func:`pipeline.simulate.simulate_observation`.
Times are s MET, positions integer sky pixels, PI eV.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pipeline.simulate.detector import LIVE_FRACTION, event_tags, uniform_positions
from pipeline.simulate.model import (
    BKG_RATE_10_12,
    FLARE_DURATION,
    FLARE_MIN_SEGMENT,
    FLARE_PEAK,
    KING_BETA,
    KING_R0,
    KING_RMAX,
    NH_22,
    SRC_RADIUS,
    draw_pi,
    injected_lag,
    king_fraction,
    spectra,
)

__all__ = ["EventColumns", "source_events", "background_events", "flare_events"]

#: TIME (s MET), X, Y (sky px), PI (eV), PATTERN, FLAG of one component's events.
EventColumns = tuple[
    NDArray[np.float64],
    NDArray[np.int64],
    NDArray[np.int64],
    NDArray[np.int16],
    NDArray[np.uint8],
    NDArray[np.int32],
]


def source_events(
    rng: np.random.Generator,
    lc: NDArray[np.float64],
    t_grid0: float,
    rate: float,
    xy: tuple[int, int],
    gti: list[tuple[float, float]],
    nh_22: float = NH_22,
) -> EventColumns:
    """Draw the source events: red-noise times, lagged by energy, King-PSF positions.

    The normalisation makes the expected number of events inside the ``SRC_RADIUS`` circle and
    inside ``gti`` equal to rate x LIVE_FRACTION x (GTI time), lags included.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    lc : NDArray
        Relative source rate per 1 s sample from ``t_grid0``
        (:func:`~pipeline.simulate.model.red_noise`).
    t_grid0 : float
        Start of the light-curve grid, s MET.
    rate : float
        Dead-time-corrected source rate in the source circle, cts/s.
    xy : tuple[int, int]
        Source position, sky px.
    gti : list[tuple[float, float]]
        GTIs of the source CCD, s MET.
    nh_22 : float
        Absorbing column of the source spectrum, 1e22 cm^-2
        (:func:`~pipeline.simulate.model.spectra`).

    Returns
    -------
    tuple of NDArray
        TIME, X, Y, PI, PATTERN, FLAG (not sorted, not screened).
    """
    sp = spectra(nh_22)
    cnodes = np.concatenate([[0.0], np.cumsum(lc)])
    grid = np.arange(cnodes.size, dtype=np.float64)
    g = np.asarray(gti, dtype=np.float64).reshape(-1, 2) - t_grid0
    # In-GTI counts per unit rate: sum_E p(E) sum_GTI int c(t - tau(E)) dt, c piecewise constant.
    tau = sp["tau"]
    per_gti = np.interp(g[:, 1:2] - tau, grid, cnodes) - np.interp(g[:, 0:1] - tau, grid, cnodes)
    unit = float(np.sum(per_gti.sum(axis=0) * sp["src_p"]))
    region_rate = rate * float(np.sum(g[:, 1] - g[:, 0])) / unit if unit > 0 else 0.0
    total_rate = region_rate * king_fraction(KING_RMAX) / king_fraction(SRC_RADIUS)
    n = int(rng.poisson(total_rate * LIVE_FRACTION * cnodes[-1]))
    u = rng.random(n) * cnodes[-1]
    i = np.minimum(np.searchsorted(cnodes, u, side="right") - 1, lc.size - 1)
    pi = draw_pi(rng, sp["src_cdf"], n)
    t = t_grid0 + i + (u - cnodes[i]) / lc[i] + injected_lag((pi + 0.5) * 1e-3)
    v = rng.random(n) * king_fraction(KING_RMAX)
    r = KING_R0 * np.sqrt((1.0 - v) ** (1.0 / (1.0 - KING_BETA)) - 1.0)
    phi = rng.uniform(0, 2 * np.pi, n)
    x = np.rint(xy[0] + r * np.cos(phi)).astype(np.int64)
    y = np.rint(xy[1] + r * np.sin(phi)).astype(np.int64)
    return (t, x, y, pi, *event_tags(rng, pi, particle=False))


def background_events(rng: np.random.Generator, t0: float, t1: float) -> EventColumns:
    """Draw the particle background: constant in time over [t0, t1), uniform over the CCDs.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    t0, t1 : float
        TSTART and TSTOP, s MET.

    Returns
    -------
    tuple of NDArray
        TIME, X, Y, PI, PATTERN, FLAG (not sorted, not screened).
    """
    sp = spectra()
    n = int(rng.poisson(BKG_RATE_10_12 / sp["bkg_frac_10_12"] * LIVE_FRACTION * (t1 - t0)))
    t = t0 + rng.random(n) * (t1 - t0)
    pi = draw_pi(rng, sp["bkg_cdf"], n)
    return (t, *uniform_positions(rng, n), pi, *event_tags(rng, pi, particle=True))


def flare_events(
    rng: np.random.Generator, t0: float, t1: float, n_flares: int
) -> tuple[list[tuple[float, float, float]], EventColumns]:
    """Draw soft-proton flares: sin^2 bursts, one per equal segment of [t0, t1).

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    t0, t1 : float
        TSTART and TSTOP, s MET.
    n_flares : int
        Number of flares, capped at (t1 - t0) / ``FLARE_MIN_SEGMENT``.

    Returns
    -------
    flares : list of (start, stop, peak)
        Each flare's interval (s MET) and peak 10-12 keV PATTERN == 0 rate over the detector
        (cts/s).
    columns : tuple of NDArray
        TIME, X, Y, PI, PATTERN, FLAG (not sorted, not screened).
    """
    sp = spectra()
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
    pi = draw_pi(rng, sp["flare_cdf"], t.size)
    return flares, (t, *uniform_positions(rng, t.size), pi, *event_tags(rng, pi, particle=True))
