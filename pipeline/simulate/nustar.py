"""Simulated NuSTAR observations: FPMA and FPMB cleaned event lists with dead time, hk files.

Test data, not real observations; every number is a simulator choice (docs/semantics.md §20).

Detector
    One module is a 1000 x 1000 sky-pixel image (X, Y = 1..1000, 2.46 arcsec per pixel, an
    X/Y column WCS RA---TAN/DEC--TAN centred on pixel 500.5); no chip gaps, no PSF wings beyond
    a circular Gaussian of sigma ``PSF_SIGMA`` = 8 px around the source at (500, 500).
Source
    Incident rate ``source_rate`` (counts/s per module, before dead time) modulated as
    ``1 + MOD_AMPLITUDE sin(2 pi t / MOD_PERIOD)``; both modules see the same intrinsic light
    curve, each draws its own Poisson events. Counts spectrum a power law of photon index
    ``GAMMA`` = 1.8 from 3 to 79 keV; PI = floor((E - 1.6 keV) / 0.04 keV).
Background
    Incident ``bkg_rate`` counts/s uniform over the image, flat in PI over 3-79 keV.
Dead time
    Non-paralysable, ``tau`` = 2.5 ms after every recorded event of the module (source and
    background alike): an incident event is recorded only when at least ``tau`` has passed
    since the last recorded one. The modules lose events independently. The housekeeping
    file (``nu<obsid><A|B>_fpm.hk``, extension ``HK1FPM``) has one row per second of
    [TSTART, TSTOP): TIME (row start) and LIVETIME = 1 s minus the dead time inside that
    second, exactly.
GTIs
    [TSTART, TSTOP) with one gap ``GAP`` (integer seconds, so hk rows never straddle a GTI
    edge); events in the gap are not written. The true live time of a module is the live
    time inside the GTIs, recorded in truth.json (``live_time_s``).

Files under ``outdir``: ``<obsid>/event_cl/nu<obsid>A01_cl.evt``, ``...B01_cl.evt``,
``<obsid>/hk/nu<obsid>A_fpm.hk``, ``...B_fpm.hk``, ``<obsid>/src_bkg.reg`` (physical), the
build file ``nustar.toml`` covering both modules and ``nustar_truth.json``. One seed gives
byte-identical files (no creation date is written).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from pipeline.simulate.observation import check_seed
from schemas.errors import ConfigError

__all__ = [
    "NUSTAR_MJDREFI",
    "NUSTAR_MJDREFF",
    "DEAD_TIME",
    "ModuleTruth",
    "NustarTruth",
    "dead_time_filter",
    "live_per_row",
    "simulate_nustar",
]

#: NuSTAR's MJD reference (TT): MJDREFI + MJDREFF = 55197.00076601852.
NUSTAR_MJDREFI = 55197
NUSTAR_MJDREFF = 7.6601852e-4
#: Dead time per recorded event, seconds (NuSTAR's ~2.5 ms).
DEAD_TIME = 2.5e-3
PSF_SIGMA = 8.0
SRC_XY = (500, 500)
SRC_RADIUS = 40
BKG_CIRCLE = (750, 750, 80)
GAMMA = 1.8
MOD_AMPLITUDE = 0.2
MOD_PERIOD = 64.0
#: Gap in the GTIs, seconds after TSTART (start, stop).
GAP = (600.0, 700.0)
PIXEL_DEG = 2.46 / 3600.0
TSTART = 300_000_000.0
RA, DEC = 201.365, -43.019


@dataclass(frozen=True)
class ModuleTruth:
    """What was injected for one module.

    Attributes
    ----------
    module : str
        ``FPMA`` or ``FPMB``.
    events_path, hk_path : str
        Relative to the output folder.
    n_incident, n_recorded : int
        Events before and after dead time (over [TSTART, TSTOP), before the GTI cut).
    live_time_s : float
        Live seconds inside the GTIs (exact, from the dead intervals).
    gti_time_s : float
        Seconds inside the GTIs.
    """

    module: str
    events_path: str
    hk_path: str
    n_incident: int
    n_recorded: int
    live_time_s: float
    gti_time_s: float


@dataclass(frozen=True)
class NustarTruth:
    """A simulated NuSTAR observation: both modules, the build file, the model's numbers."""

    obsid: str
    tstart: float
    tstop: float
    gti: list[tuple[float, float]]
    dead_time_s: float
    source_rate: float
    bkg_rate: float
    seed: int
    build_file: str
    regions_path: str
    modules: tuple[ModuleTruth, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (truth.json)."""
        out = asdict(self)
        out["modules"] = [asdict(m) for m in self.modules]
        return out


def dead_time_filter(times: NDArray[np.float64], tau: float) -> NDArray[np.bool_]:
    """Which of the sorted incident times a non-paralysable detector of dead time tau records.

    Parameters
    ----------
    times : numpy.ndarray
        Incident event times, sorted.
    tau : float
        Dead time after each recorded event, seconds.

    Returns
    -------
    numpy.ndarray of bool
        True for recorded events.
    """
    keep = np.zeros(len(times), bool)
    last = -np.inf
    t = times.tolist()
    for i, ti in enumerate(t):
        if ti - last >= tau:
            keep[i] = True
            last = ti
    return keep


def live_per_row(
    recorded: NDArray[np.float64], tau: float, row_start: NDArray[np.float64], row_len: float
) -> NDArray[np.float64]:
    """Live seconds in each row ``[row_start_i, row_start_i + row_len)``: its length minus the
    overlap of the dead intervals ``[t_k, t_k + tau)`` of the recorded events with it."""
    edges = np.append(row_start, row_start[-1] + row_len)
    dead = np.zeros(len(row_start))
    a, b = recorded, recorded + tau
    # a dead interval is shorter than a row: it overlaps at most two rows
    i = np.searchsorted(edges, a, side="right") - 1
    j = np.searchsorted(edges, b, side="right") - 1
    n = len(row_start)
    same = (i == j) & (i >= 0) & (i < n)
    np.add.at(dead, i[same], tau)
    split = (i != j) & (i >= 0) & (i < n)
    np.add.at(dead, i[split], edges[i[split] + 1] - a[split])
    k = j[split]
    ok = k < n
    np.add.at(dead, k[ok], b[split][ok] - edges[k[ok]])
    return row_len - dead


def _powerlaw_pi(rng: np.random.Generator, n: int) -> NDArray[np.int16]:
    """PI of n photons of a Gamma power law over 3-79 keV: PI = floor((E - 1.6) / 0.04)."""
    lo, hi, g = 3.0, 79.0, 1.0 - GAMMA
    u = rng.random(n)
    e: NDArray[np.float64] = (lo**g + u * (hi**g - lo**g)) ** (1.0 / g)
    pi: NDArray[np.int16] = np.floor((e - 1.6) / 0.04 + 1e-9).astype(np.int16)
    return pi


def _module_events(
    rng: np.random.Generator, t0: float, t1: float, source_rate: float, bkg_rate: float
) -> dict[str, NDArray[Any]]:
    """Incident events of one module over [t0, t1), time sorted."""
    span = t1 - t0
    peak = source_rate * (1.0 + MOD_AMPLITUDE)
    n = rng.poisson(peak * span)
    t = t0 + rng.random(n) * span
    accept = rng.random(n) < (1.0 + MOD_AMPLITUDE * np.sin(2 * np.pi * (t - t0) / MOD_PERIOD)) / (
        1.0 + MOD_AMPLITUDE
    )
    ts = t[accept]
    xs = np.rint(SRC_XY[0] + rng.normal(0.0, PSF_SIGMA, len(ts)))
    ys = np.rint(SRC_XY[1] + rng.normal(0.0, PSF_SIGMA, len(ts)))
    pis = _powerlaw_pi(rng, len(ts))
    nb = rng.poisson(bkg_rate * span)
    tb = t0 + rng.random(nb) * span
    xb = rng.integers(1, 1001, nb).astype(np.float64)
    yb = rng.integers(1, 1001, nb).astype(np.float64)
    pib = rng.integers(35, 1935, nb).astype(np.int16)
    time = np.concatenate([ts, tb])
    order = np.argsort(time, kind="stable")
    x = np.clip(np.concatenate([xs, xb]), 1, 1000).astype(np.int16)
    y = np.clip(np.concatenate([ys, yb]), 1, 1000).astype(np.int16)
    return {
        "TIME": time[order],
        "PI": np.concatenate([pis, pib])[order],
        "X": x[order],
        "Y": y[order],
    }


def _header(module: str, obsid: str, t0: float, t1: float) -> fits.Header:
    h = fits.Header()
    h["TELESCOP"] = "NuSTAR"
    h["INSTRUME"] = module
    h["OBS_ID"] = obsid
    h["OBJECT"] = "SIMULATED"
    h["RA_OBJ"] = RA
    h["DEC_OBJ"] = DEC
    h["TSTART"] = t0
    h["TSTOP"] = t1
    h["MJDREFI"] = NUSTAR_MJDREFI
    h["MJDREFF"] = NUSTAR_MJDREFF
    h["TIMESYS"] = "TT"
    h["TIMEREF"] = "LOCAL"
    h["TIMEUNIT"] = "s"
    h["CREATOR"] = "xlcat simulate --mission nustar"
    return h


def _write_events(
    path: Path,
    module: str,
    obsid: str,
    t0: float,
    t1: float,
    ev: dict[str, NDArray[Any]],
    gti: list[tuple[float, float]],
    ontime: float,
    livetime: float,
) -> None:
    cols = [
        fits.Column(name="TIME", format="D", unit="s", array=ev["TIME"]),
        fits.Column(name="PI", format="J", array=ev["PI"].astype(np.int32)),
        fits.Column(name="GRADE", format="I", array=np.zeros(len(ev["TIME"]), np.int16)),
        fits.Column(name="X", format="I", unit="pixel", array=ev["X"]),
        fits.Column(name="Y", format="I", unit="pixel", array=ev["Y"]),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    hdu.header.update(_header(module, obsid, t0, t1))
    hdu.header["ONTIME"] = ontime
    hdu.header["LIVETIME"] = livetime
    hdu.header["EXPOSURE"] = livetime
    hdu.header["DEADAPP"] = False
    for n, axis, crval, cdelt in ((4, "RA---TAN", RA, -PIXEL_DEG), (5, "DEC--TAN", DEC, PIXEL_DEG)):
        hdu.header[f"TCTYP{n}"] = axis
        hdu.header[f"TCRPX{n}"] = 500.5
        hdu.header[f"TCRVL{n}"] = crval
        hdu.header[f"TCDLT{n}"] = cdelt
        hdu.header[f"TCUNI{n}"] = "deg"
        hdu.header[f"TLMIN{n}"] = 1
        hdu.header[f"TLMAX{n}"] = 1000
    hdu.header["RADECSYS"] = "FK5"
    hdu.header["EQUINOX"] = 2000.0
    g = np.asarray(gti, dtype=np.float64)
    ghdu = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="START", format="D", unit="s", array=g[:, 0]),
            fits.Column(name="STOP", format="D", unit="s", array=g[:, 1]),
        ],
        name="GTI",
    )
    ghdu.header.update(_header(module, obsid, t0, t1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu, ghdu]).writeto(path, overwrite=True)


def _write_hk(
    path: Path,
    module: str,
    obsid: str,
    t0: float,
    t1: float,
    rows: NDArray[np.float64],
    live: NDArray[np.float64],
) -> None:
    hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="TIME", format="D", unit="s", array=rows),
            fits.Column(name="LIVETIME", format="D", unit="s", array=live),
        ],
        name="HK1FPM",
    )
    hdu.header.update(_header(module, obsid, t0, t1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path, overwrite=True)


def simulate_nustar(
    outdir: str | Path,
    *,
    obsid: str = "60001047002",
    duration: float = 2000.0,
    source_rate: float = 100.0,
    bkg_rate: float = 2.0,
    tau: float = DEAD_TIME,
    time_bin: float = 1.0 / 32.0,
    seed: int = 5506,
) -> NustarTruth:
    """Simulate one NuSTAR observation (FPMA and FPMB with dead time) and its build file.

    Parameters
    ----------
    outdir : str or Path
        Output folder (created).
    obsid : str
        11-digit NuSTAR observation id.
    duration : float
        TSTOP - TSTART, whole seconds (>= 800, so the GTI gap fits).
    source_rate, bkg_rate : float
        Incident counts/s per module (before dead time) of the source and of the background
        over the image.
    tau : float
        Dead time per recorded event, seconds.
    time_bin : float
        ``time_bin`` of the build file.
    seed : int
        Seed; the modules draw from independent streams.

    Returns
    -------
    NustarTruth
        Also written to ``outdir/nustar_truth.json``.

    Raises
    ------
    ConfigError
        Invalid parameters (one line naming the parameter).
    """
    check_seed(seed, "simulate --mission nustar")
    if not (len(obsid) == 11 and obsid.isascii() and obsid.isdigit()):
        raise ConfigError(f"simulate --mission nustar: obsid {obsid!r} is not 11 digits")
    if duration != int(duration) or duration < 800:
        raise ConfigError(
            f"simulate --mission nustar: duration {duration!r} must be whole seconds, >= 800"
        )
    for name, v in (("source_rate", source_rate), ("bkg_rate", bkg_rate), ("tau", tau)):
        if not (np.isfinite(v) and v >= 0):
            raise ConfigError(f"simulate --mission nustar: {name} = {v!r} must be >= 0")
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    t0, t1 = TSTART, TSTART + float(duration)
    gti = [(t0, t0 + GAP[0]), (t0 + GAP[1], t1)]
    g = np.asarray(gti)
    gti_time = float(np.sum(g[:, 1] - g[:, 0]))
    rows = t0 + np.arange(int(duration), dtype=np.float64)
    streams = np.random.SeedSequence([int(seed), int(obsid[-6:])]).spawn(2)
    modules = []
    for module, letter, ss in (("FPMA", "A", streams[0]), ("FPMB", "B", streams[1])):
        rng = np.random.default_rng(ss)
        ev = _module_events(rng, t0, t1, source_rate, bkg_rate)
        keep = dead_time_filter(ev["TIME"], tau)
        rec = {k: v[keep] for k, v in ev.items()}
        live = live_per_row(rec["TIME"], tau, rows, 1.0)
        in_gti = ((rows >= g[0, 0]) & (rows + 1 <= g[0, 1])) | (
            (rows >= g[1, 0]) & (rows + 1 <= g[1, 1])
        )
        live_time = float(np.sum(live[in_gti]))
        t = rec["TIME"]
        good = ((t >= g[0, 0]) & (t < g[0, 1])) | ((t >= g[1, 0]) & (t < g[1, 1]))
        written = {k: v[good] for k, v in rec.items()}
        ev_rel = f"{obsid}/event_cl/nu{obsid}{letter}01_cl.evt"
        hk_rel = f"{obsid}/hk/nu{obsid}{letter}_fpm.hk"
        _write_events(out / ev_rel, module, obsid, t0, t1, written, gti, gti_time, live_time)
        _write_hk(out / hk_rel, module, obsid, t0, t1, rows, live)
        modules.append(
            ModuleTruth(
                module, ev_rel, hk_rel, int(len(ev["TIME"])), int(keep.sum()), live_time, gti_time
            )
        )
    reg_rel = f"{obsid}/src_bkg.reg"
    (out / reg_rel).write_text(
        "# Region file format: DS9 version 4.1\nphysical\n"
        f"circle({SRC_XY[0]},{SRC_XY[1]},{SRC_RADIUS})\n"
        f"circle({BKG_CIRCLE[0]},{BKG_CIRCLE[1]},{BKG_CIRCLE[2]}) # background\n"
    )
    toml = [
        f"# Written by xlcat simulate --mission nustar (seed {int(seed)}). Simulated data, "
        "not real observations.",
        'store = "nustar.zarr"',
        f"time_bin = {float(time_bin)!r}",
        "",
        "[schemes]",
        'nu2 = { unit = "keV", edges = [3, 10, 79], instruments = ["FPMA", "FPMB"] }',
    ]
    for m in modules:
        toml += [
            "",
            "[[observations]]",
            f'obsid = "{obsid}"',
            f'events = "{m.events_path}"',
            f'hk = "{m.hk_path}"',
            f'regions = "{reg_rel}"',
        ]
    build = out / "nustar.toml"
    build.write_text("\n".join(toml) + "\n")
    truth = NustarTruth(
        obsid,
        t0,
        t1,
        gti,
        tau,
        source_rate,
        bkg_rate,
        int(seed),
        build.name,
        reg_rel,
        tuple(modules),
    )
    (out / "nustar_truth.json").write_text(json.dumps(truth.to_dict(), indent=1) + "\n")
    return truth
