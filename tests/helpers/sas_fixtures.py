"""Writers of SAS light-curve files for tests, laid out as docs/semantics.md describes them.

No real SAS light-curve file ships with the repository, so these files are written
from the semantics document, not copied from SAS: evselect rate sets (§11.2: HDU 1
``RATE`` with ``TIME``, ``RATE``, ``ERROR``; keywords TSTART, TSTOP, TIMEDEL, and
TIMEPIXR when given) and epiclccorr output (§11.2: ``TIME``, ``RATE``, ``ERROR``,
``BACKV``, ``BACKE``, ``FRACEXP`` in real32, then the ``SRC_GTIS`` and ``BKG_GTIS``
extensions). What SAS really writes is settled only in part (§17, §18); the parser is
tested against these layouts and their variations (TIMEPIXR 0, 0.5 or absent; NaN
rows; COUNTS instead of RATE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits


def _gti_hdu(name: str, gti) -> fits.BinTableHDU:
    g = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
    return fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", array=g[:, 0]), fits.Column("STOP", "D", array=g[:, 1])],
        name=name,
    )


def _rate_hdu(
    columns: dict[str, tuple[str, np.ndarray]],
    t0: float,
    dt: float,
    n: int,
    timepixr: float | None,
    extra: dict | None,
) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name, fmt, array=arr) for name, (fmt, arr) in columns.items()], name="RATE"
    )
    h = hdu.header
    h["TELESCOP"] = "XMM"
    h["INSTRUME"] = "EPN"
    h["TSTART"] = t0
    h["TSTOP"] = t0 + n * dt
    h["TIMEDEL"] = dt
    if timepixr is not None:
        h["TIMEPIXR"] = timepixr
    h["MJDREF"] = 50814.0
    h["TIMESYS"] = "TT"
    h["TIMEUNIT"] = "s"
    for k, v in (extra or {}).items():
        h[k] = v
    return hdu


def write_raw(
    path: Path,
    counts,
    t0: float,
    dt: float,
    *,
    timepixr: float | None = 0.0,
    counts_column: bool = False,
    rate_format: str = "E",
    gti=None,
    extra: dict | None = None,
) -> Path:
    """An evselect rate set: RATE = counts/dt (no exposure correction), ERROR = sqrt(counts)/dt."""
    c = np.asarray(counts, dtype=np.float64)
    n = len(c)
    time = t0 + dt * (np.arange(n) + (timepixr or 0.0))
    cols = {"TIME": ("D", time)}
    if counts_column:
        cols["COUNTS"] = ("J", c.astype(np.int32))
    else:
        cols["RATE"] = (rate_format, c / dt)
        cols["ERROR"] = (rate_format, np.sqrt(c) / dt)
    hdus = [fits.PrimaryHDU(), _rate_hdu(cols, t0, dt, n, timepixr, extra)]
    if gti is not None:
        hdus.append(_gti_hdu("STDGTI", gti))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_corrected(
    path: Path,
    t0: float,
    dt: float,
    *,
    rate,
    error,
    backv,
    backe,
    fracexp,
    timepixr: float | None = 0.0,
    src_gtis=None,
    bkg_gtis=None,
    extra: dict | None = None,
    time=None,
) -> Path:
    """An epiclccorr output: real32 RATE, ERROR, BACKV, BACKE, FRACEXP; SRC_GTIS and BKG_GTIS."""
    n = len(rate)
    if time is None:
        time = t0 + dt * (np.arange(n) + (timepixr or 0.0))
    cols = {
        "TIME": ("D", np.asarray(time, np.float64)),
        "RATE": ("E", np.asarray(rate, np.float32)),
        "ERROR": ("E", np.asarray(error, np.float32)),
        "BACKV": ("E", np.asarray(backv, np.float32)),
        "BACKE": ("E", np.asarray(backe, np.float32)),
        "FRACEXP": ("E", np.asarray(fracexp, np.float32)),
    }
    keys = {"HDUCLAS2": "NET", "HDUCLAS3": "RATE", **(extra or {})}
    hdus = [fits.PrimaryHDU(), _rate_hdu(cols, t0, dt, n, timepixr, keys)]
    hdus.append(_gti_hdu("SRC_GTIS", src_gtis if src_gtis is not None else [[t0, t0 + n * dt]]))
    hdus.append(_gti_hdu("BKG_GTIS", bkg_gtis if bkg_gtis is not None else [[t0, t0 + n * dt]]))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def corrected_from_counts(src, bkg, dt: float, fracexp, ratio: float, c_abs: float = 1.0):
    """RATE, ERROR, BACKV, BACKE of docs/semantics.md §6 and §17.5 (NaN where fracexp = 0)."""
    src, bkg, f = (np.asarray(a, np.float64) for a in (src, bkg, fracexp))
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.where(f > 0, dt * f, np.nan)
        backv = ratio * bkg / e
        backe = ratio * np.sqrt(bkg) / e
        rate = c_abs * (src / e - backv)
        error = c_abs * np.sqrt(src / e**2 + backe**2)
    return rate, error, backv, backe
