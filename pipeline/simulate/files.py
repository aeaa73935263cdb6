"""Writing the simulator's files: event FITS file, ds9 region file, build file and truth.json.

Per observation, :func:`write_events` and :func:`write_regions` write ``<obsid>/pn_events.fits``
and ``<obsid>/ds9.reg``; per preset, :func:`write_build_file` and :func:`write_truth` write the
build file and ``truth.json`` (what was injected, for tests and benchmarks). Nothing written
depends on the clock, so one seed gives byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from pipeline.simulate.detector import FRMTIME_MS, LIVE_FRACTION, MJDREF, XMMEA_EP_MASK
from pipeline.simulate.model import (
    BKG_RATE_10_12,
    F_BREAK,
    FE_EW_KEV,
    FE_KEV,
    FE_SIGMA_KEV,
    FRAC_RMS,
    GAMMA,
    KING_BETA,
    KING_R0,
    KING_RMAX,
    LAG_E0_KEV,
    LAG_E1_KEV,
    LAG_MAX_S,
    LC_FLOOR,
    NH_22,
    PSD_INDEX_HI,
    PSD_INDEX_LO,
    SRC_RADIUS,
)

if TYPE_CHECKING:
    from pipeline.simulate.observation import ObservationTruth

__all__ = ["SIMULATOR_VERSION", "write_events", "write_regions", "write_build_file", "write_truth"]

SIMULATOR_VERSION = "1.0"


# -- One observation ----------------------------------------------------------------------------
def _date(met: float) -> str:
    """ISO date (TT) of a mission time; MJD 50814.0 is 1998-01-01T00:00:00 TT."""
    return (datetime(1998, 1, 1) + timedelta(seconds=met)).isoformat(timespec="milliseconds")


def write_events(
    path: Path,
    obsid: str,
    t0: float,
    t1: float,
    cols: tuple[
        NDArray[np.float64],
        NDArray[np.int32],
        NDArray[np.int32],
        NDArray[np.int16],
        NDArray[np.uint8],
        NDArray[np.int32],
        NDArray[np.uint8],
    ],
    gtis: dict[int, list[tuple[float, float]]],
) -> None:
    """Write the pn event file: primary HDU, ``EVENTS`` and ``STDGTI01``..``STDGTI12``.

    The EVENTS header carries TSTART/TSTOP, DATE-OBS/DATE-END, MJDREF, the made-up ``XMMEA_EP``
    expression and, per CCD, ``LIVETInn`` = LIVE_FRACTION x ``ONTIMEnn`` (the sum of its GTIs).
    No creation date is written, so equal inputs give byte-identical files.

    Parameters
    ----------
    path : Path
        File to write (overwritten).
    obsid : str
        OBS_ID of every HDU.
    t0, t1 : float
        TSTART and TSTOP, s MET.
    cols : tuple of NDArray
        TIME (s), X, Y (sky px), PI (eV), PATTERN, FLAG, CCDNR, sorted by time.
    gtis : dict[int, list[tuple[float, float]]]
        GTIs per CCD (1..12), s MET.
    """
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


def write_regions(path: Path, src: tuple[int, int], bkg: list[tuple[int, int, int]]) -> None:
    """Write the ds9 region file: the source circle and the background circles, physical px.

    Parameters
    ----------
    path : Path
        File to write (overwritten).
    src : tuple[int, int]
        Source centre, sky px; the radius is ``SRC_RADIUS``.
    bkg : list of (x, y, r)
        Background circles, sky px.
    """
    lines = [
        "# Region file format: DS9 version 4.1",
        'global color=green dashlist=8 3 width=1 font="helvetica 10 normal roman" select=1 '
        "highlite=1 dash=0 fixed=0 edit=1 move=1 delete=1 include=1 source=1",
        "physical",
        f"circle({src[0]},{src[1]},{SRC_RADIUS})",
    ]
    lines += [f"circle({x},{y},{r}) # background" for x, y, r in bkg]
    path.write_text("\n".join(lines) + "\n")


# -- One preset ---------------------------------------------------------------------------------
def _model_summary(preset: str, seed: int, scale: float) -> dict[str, Any]:
    """The head of truth.json: simulator version, run parameters and the model's numbers."""
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


def write_build_file(
    path: Path,
    preset: str,
    *,
    scale: float,
    seed: int,
    time_bin: float,
    truths: Sequence[ObservationTruth],
) -> None:
    """Write the build file of a simulated preset (TOML, event and region paths relative to it).

    Parameters
    ----------
    path : Path
        File to write (overwritten), ``<outdir>/<preset>.toml``.
    preset : str
        Preset name; the store is ``<preset>.zarr``.
    scale : float
        Exposure factor, recorded in the header comment.
    seed : int
        Master seed, recorded in the header comment.
    time_bin : float
        ``time_bin`` of the build, seconds.
    truths : sequence of ObservationTruth
        The simulated observations, in build order.
    """
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
    path.write_text("\n".join(toml) + "\n")


def write_truth(
    path: Path, preset: str, *, seed: int, scale: float, truths: Sequence[ObservationTruth]
) -> None:
    """Write ``truth.json``: the model's numbers and every observation's :class:`ObservationTruth`.

    Parameters
    ----------
    path : Path
        File to write (overwritten).
    preset : str
        Preset name.
    seed : int
        Master seed.
    scale : float
        Exposure factor.
    truths : sequence of ObservationTruth
        The simulated observations.
    """
    truth = _model_summary(preset, int(seed), float(scale))
    truth["observations"] = [tr.to_dict() for tr in truths]
    path.write_text(json.dumps(truth, indent=1) + "\n")
