"""Presets: the reference observation table and :func:`simulate_preset`, which simulates it.

The ``ngc5506`` preset is the nine pn observations of the reference timing study (obsid, MJD,
source rate, exposure); the number of flares and whether an observation has a long GTI gap are
simulator choices.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.simulate.files import write_build_file, write_truth
from pipeline.simulate.model import NH_22
from pipeline.simulate.observation import check_seed, simulate_observation
from schemas.errors import ConfigError

__all__ = ["PresetObservation", "PRESETS", "simulate_preset"]


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


def _observation_seed(seed: int, obsid: str) -> int:
    """A 63-bit seed from (master seed, CRC-32 of obsid), independent of the other obsids."""
    ss = np.random.SeedSequence([seed, zlib.crc32(obsid.encode())])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def simulate_preset(
    outdir: str | Path,
    preset: str = "ngc5506",
    *,
    scale: float = 1.0,
    seed: int = 5506,
    obsids: Sequence[str] | None = None,
    time_bin: float = 128.0,
    pileup_rate: float | None = None,
    nh_22: float = NH_22,
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
    pileup_rate : float, optional
        Make every observation a bright piled-up source: this source rate (cts/s in the source
        circle, before pile-up) instead of the preset's, read out frame by frame with pile-up
        (``simulate_observation(pileup=True)``). Default: the preset's rates, no pile-up.
    nh_22 : float
        Absorbing column of the source spectrum, 1e22 cm^-2 (default the preset's 3).

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
    check_seed(seed, "simulate")
    if pileup_rate is not None and not (pileup_rate > 0 and math.isfinite(pileup_rate)):
        raise ConfigError(
            f"simulate: pileup_rate={pileup_rate!r} is invalid; give a source rate > 0 (cts/s)"
        )
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
            source_rate=r.rate if pileup_rate is None else float(pileup_rate),
            mjd=r.mjd,
            seed=_observation_seed(int(seed), r.obsid),
            flares=r.n_flares > 0,
            n_flares=r.n_flares,
            long_gap=r.long_gap,
            pileup=pileup_rate is not None,
            nh_22=nh_22,
        )
        for r in rows
    ]
    build = outdir / f"{preset}.toml"
    write_build_file(build, preset, scale=scale, seed=seed, time_bin=time_bin, truths=truths)
    write_truth(outdir / "truth.json", preset, seed=seed, scale=scale, truths=truths)
    return build
