"""Writers of SAS light-curve files for tests, laid out as real SAS files are.

The layout copies the real evselect and epiclccorr files of observation 0001730201
(tests/data/real/xmm_0001730201_mos1/lcurve_100_M1_1/, docs/semantics.md §17.1,
§17.2, §17.5): a primary header with CREATOR, then HDU 1 ``RATE``. evselect rate
sets: ``TIME``, ``RATE``, ``ERROR`` (RATE = counts/TIMEDEL, ERROR =
sqrt(counts)/TIMEDEL), TIME at bin centres and *no* TIMEPIXR keyword, TSTART,
TSTOP, TIMEDEL, SLCTEXPR. epiclccorr output: ``TIME``, then ``RATE``, ``ERROR``,
``FRACEXP``, ``BACKV``, ``BACKE`` in real32, TIME at centres without TIMEPIXR,
TSTOP at the end of the last bin, BKGRATIO, then the ``SRC_GTIS`` and ``BKG_GTIS``
extensions. ``timepixr=0.0`` or ``0.5`` writes that keyword and puts TIME there
instead, for files of other writers; NaN rows and COUNTS instead of RATE are
variations the reader also handles.
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
    tstop: float | None = None,
) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(name, fmt, array=arr) for name, (fmt, arr) in columns.items()], name="RATE"
    )
    h = hdu.header
    h["TELESCOP"] = "XMM"
    h["INSTRUME"] = "EPN"
    h["TSTART"] = t0
    h["TSTOP"] = t0 + n * dt if tstop is None else tstop
    h["TIMEDEL"] = dt
    if timepixr is not None:
        h["TIMEPIXR"] = timepixr
    h["MJDREF"] = 50814.0
    h["TIMESYS"] = "TT"
    h["TIMEUNIT"] = "s"
    for k, v in (extra or {}).items():
        h[k] = v
    return hdu


def _primary(creator: str) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    hdu.header["CREATOR"] = creator
    return hdu


def _times(t0: float, dt: float, n: int, timepixr: float | None) -> np.ndarray:
    """TIME at t0 + (k + TIMEPIXR) dt; without TIMEPIXR at the centre, as SAS writes."""
    return t0 + dt * (np.arange(n) + (0.5 if timepixr is None else timepixr))


def write_raw(
    path: Path,
    counts,
    t0: float,
    dt: float,
    *,
    timepixr: float | None = None,
    counts_column: bool = False,
    rate_format: str = "D",
    gti=None,
    extra: dict | None = None,
    tstop: float | None = None,
    expression: str = "(X,Y) in CIRCLE(0,0,1)",
) -> Path:
    """An evselect rate set: RATE = counts/dt (no exposure correction), ERROR = sqrt(counts)/dt.

    As the real files: 8-byte RATE and ERROR (``rate_format``), TIME at centres and no
    TIMEPIXR (``timepixr=None``), TSTOP that of the event list when given.
    """
    c = np.asarray(counts, dtype=np.float64)
    n = len(c)
    cols = {"TIME": ("D", _times(t0, dt, n, timepixr))}
    if counts_column:
        cols["COUNTS"] = ("J", c.astype(np.int32))
    else:
        cols["RATE"] = (rate_format, c / dt)
        cols["ERROR"] = (rate_format, np.sqrt(c) / dt)
    keys = {"SLCTEXPR": expression, "HDUCLAS2": "TOTAL", **(extra or {})}
    hdus = [
        _primary("evselect (xlcat test fixture, not SAS)"),
        _rate_hdu(cols, t0, dt, n, timepixr, keys, tstop),
    ]
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
    timepixr: float | None = None,
    src_gtis=None,
    bkg_gtis=None,
    extra: dict | None = None,
    time=None,
) -> Path:
    """An epiclccorr output: real32 RATE, ERROR, FRACEXP, BACKV, BACKE; SRC_GTIS, BKG_GTIS.

    As the real file: TIME at centres without TIMEPIXR (``timepixr=None``), TSTOP at the
    end of the last bin.
    """
    n = len(rate)
    if time is None:
        time = _times(t0, dt, n, timepixr)
    cols = {
        "TIME": ("D", np.asarray(time, np.float64)),
        "RATE": ("E", np.asarray(rate, np.float32)),
        "ERROR": ("E", np.asarray(error, np.float32)),
        "FRACEXP": ("E", np.asarray(fracexp, np.float32)),
        "BACKV": ("E", np.asarray(backv, np.float32)),
        "BACKE": ("E", np.asarray(backe, np.float32)),
    }
    keys = {"HDUCLAS2": "NET", "HDUCLAS3": "RATE", "BACKAPP": True, **(extra or {})}
    hdus = [
        _primary("epiclccorr (xlcat test fixture, not SAS)"),
        _rate_hdu(cols, t0, dt, n, timepixr, keys, t0 + n * dt),
    ]
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
