"""Simulating one observation: validating its parameters, drawing and screening its events.

:func:`simulate_observation` splits the observation seed into independent random streams, draws
the source, background and flare events (:mod:`pipeline.simulate.events`), keeps those on a CCD
and in that CCD's GTIs, and writes the files (:mod:`pipeline.simulate.files`). What it injected
is returned as an :class:`ObservationTruth`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.simulate.detector import (
    AIMPOINT,
    FRMTIME_MS,
    MJDREF,
    ccd_of,
    in_gtis,
    make_gtis,
    pile_up,
)
from pipeline.simulate.events import background_events, flare_events, source_events
from pipeline.simulate.files import write_events, write_regions
from pipeline.simulate.model import BKG_CIRCLES, LAG_MARGIN, NH_22, SRC_RADIUS, red_noise
from schemas.errors import ConfigError

__all__ = ["ObservationTruth", "check_seed", "simulate_observation"]


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
    nh_22: float = NH_22
    pileup: dict[str, Any] | None = None  # PileUp.to_dict() when pile-up was simulated

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (CCD keys as strings).

        ``nh_22`` appears only when it differs from the preset's ``NH_22`` and ``pileup`` only
        when pile-up was simulated, so the default's truth files stay as they were.
        """
        d = asdict(self)
        d["gtis_per_ccd"] = {str(k): [list(g) for g in v] for k, v in self.gtis_per_ccd.items()}
        if self.nh_22 == NH_22:
            del d["nh_22"]
        if self.pileup is None:
            del d["pileup"]
        return d


def check_seed(seed: object, where: str) -> None:
    """Check that ``seed`` is a non-negative integer (bool excluded).

    Parameters
    ----------
    seed : object
        The seed to check.
    where : str
        Start of the error message, naming the call.

    Raises
    ------
    ConfigError
        If ``seed`` is not a non-negative integer.
    """
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
    pileup: bool = False,
    nh_22: float = NH_22,
) -> ObservationTruth:
    """Simulate one EPIC-pn imaging-mode observation and write its event and region files.

    Writes ``directory/<obsid>/pn_events.fits`` (primary HDU, ``EVENTS``,
    ``STDGTI01``..``STDGTI12``) and ``directory/<obsid>/ds9.reg``. The model is described in the
    package docstring (:mod:`pipeline.simulate`).

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
    pileup : bool
        Read the events out frame by frame (frame time ``FRMTIME_MS``) and merge the events of
        one frame in touching pn pixels (:func:`~pipeline.simulate.detector.pile_up`): pile-up
        that grows with the counts per frame, strongest in the PSF core. Off by default; its
        own random stream, so the other columns are drawn as without it.
    nh_22 : float
        Absorbing column of the source spectrum, 1e22 cm^-2 (default 3, NGC 5506's); a small
        value gives a soft source with many 0.5-2 keV counts (what a pile-up check measures).

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
    check_seed(seed, where)
    if not (nh_22 >= 0 and math.isfinite(nh_22)):
        raise ConfigError(f"{where}: nh_22={nh_22!r} is invalid; give a column >= 0 (1e22 cm^-2)")
    if not obsid or any(c in obsid for c in "/\\") or obsid in (".", ".."):
        raise ConfigError(f"{where}: obsid is invalid; give a plain name such as 0013140101")
    t0 = round((mjd - MJDREF) * 86400.0, 3)
    t1 = t0 + float(exposure)
    # the 7th stream (pile-up) leaves the first six as spawn(6) gives them: same files without it
    streams = np.random.SeedSequence(int(seed)).spawn(7)
    r_gti, r_lc, r_src, r_bkg, r_flare, r_pos, r_pile = (np.random.default_rng(s) for s in streams)
    off = r_pos.integers(-300, 301, 2)
    src = (AIMPOINT[0] + int(off[0]), AIMPOINT[1] + int(off[1]))
    src_ccd = int(ccd_of(np.array([src[0]]), np.array([src[1]]))[0])
    bkg = [(src[0] + dx, src[1] + dy, r) for dx, dy, r in BKG_CIRCLES]
    gtis = make_gtis(r_gti, t0, t1, ccd_gaps, exposure >= 40000 if long_gap is None else long_gap)
    t_grid0 = t0 - LAG_MARGIN
    lc = red_noise(r_lc, int(math.ceil(t1 - t_grid0)))
    parts = [
        source_events(r_src, lc, t_grid0, source_rate, src, gtis[src_ccd], nh_22),
        background_events(r_bkg, t0, t1),
    ]
    flare_list: list[tuple[float, float, float]] = []
    if flares:
        nf = max(1, round(exposure / 15000)) if n_flares is None else int(n_flares)
        flare_list, flare_cols = flare_events(r_flare, t0, t1, nf)
        parts.append(flare_cols)
    t, x, y, pi, pattern, flag = (np.concatenate(c) for c in zip(*parts, strict=True))
    ccd = ccd_of(x, y)
    recorded = (ccd > 0) & (t >= t0) & (t < t1)
    piled = None
    if pileup:
        merged, stats = pile_up(r_pile, t, x, y, pi, pattern, flag, t0, FRMTIME_MS * 1e-3)
        recorded &= merged
        piled = stats.to_dict()
    keep = np.flatnonzero(recorded)
    keep = keep[in_gtis(t[keep], ccd[keep], gtis)]
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
    write_events(out / "pn_events.fits", obsid, t0, t1, cols, gtis)
    write_regions(out / "ds9.reg", src, bkg)
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
        nh_22=float(nh_22),
        pileup=piled,
    )
