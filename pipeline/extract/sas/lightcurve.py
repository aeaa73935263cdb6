"""Reading SAS light-curve files (evselect rate sets, epiclccorr output) onto a time grid.

What is read (docs/semantics.md §11.2): the ``RATE`` table (else the first
table) with ``TIME`` and ``RATE`` (or ``COUNTS``), ``ERROR``, and for epiclccorr
output ``BACKV``, ``BACKE``, ``FRACEXP``; the keywords ``TIMEDEL``, ``TIMEPIXR``
(0 when absent, the OGIP default, so TIME is the bin start; real SAS files write
centres without TIMEPIXR, docs/semantics.md §17.1), ``TIMEZERO``,
``TSTART``; and the ``SRC_GTIS`` / ``BKG_GTIS`` tables. Times are normalised to
bin centres, ``centre = TIME + TIMEZERO + (0.5 - TIMEPIXR) TIMEDEL``, and rows are
placed on the grid *by index*, ``k = (centre - t0)/dt - 1/2`` rounded, after
checking that TIMEDEL equals the grid's bin and that every row lies on a bin
centre (never by float equality of times).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from pipeline.extract.binning import TimeGrid
from pipeline.read.fitsio import open_fits
from schemas.errors import InputFileError

__all__ = [
    "LightCurveFile",
    "read_lightcurve",
    "grid_indices",
    "common_grid",
    "place",
    "raw_counts",
]

#: A row is on a bin centre when its offset from one is below this fraction of a bin.
ALIGN_TOLERANCE = 1e-6
_KEYWORDS = (
    "TSTART",
    "TSTOP",
    "TIMEDEL",
    "TIMEPIXR",
    "TIMEZERO",
    "TIMESYS",
    "TIMEREF",
    "TIMEUNIT",
    "MJDREF",
    "MJDREFI",
    "MJDREFF",
    "HDUCLAS2",
    "HDUCLAS3",
    "BKGRATIO",
    "BACKAPP",
    "DEADAPP",
    "VIGNAPP",
    "CHANTYPE",
    "CHANMIN",
    "CHANMAX",
    "EXPOSURE",
    "OBS_ID",
    "INSTRUME",
)


@dataclass(frozen=True)
class LightCurveFile:
    """A SAS light-curve file, read.

    Attributes
    ----------
    path : str
    columns : dict of str to ndarray
        Upper-case column name to float64 values (float32 files are converted
        exactly), e.g. RATE, ERROR, BACKV, BACKE, FRACEXP, COUNTS, TIME.
    timedel : float
        Bin width, seconds.
    timepixr : float
        Where in the bin TIME points (0 start, 0.5 centre).
    timepixr_source : str
        ``"header"`` or ``"absent: 0 assumed (OGIP default)"``.
    centres : ndarray
        Bin centre of every row, seconds (MET).
    gtis : dict of str to ndarray
        GTI tables by extension name (SRC_GTIS, BKG_GTIS, ...), shape (n, 2).
    keywords : dict
        Selected header keywords of the rate table (JSON-able).
    dss_pi : list of str
        Data-subspace PI selections found in the header (DSTYPn = 'PI'), for provenance.
    """

    path: str
    columns: dict[str, NDArray[np.float64]]
    timedel: float
    timepixr: float
    timepixr_source: str
    centres: NDArray[np.float64]
    gtis: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    keywords: dict[str, Any] = field(default_factory=dict)
    dss_pi: list[str] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.centres)

    @property
    def mjdref(self) -> float | None:
        """MJDREF (or MJDREFI + MJDREFF), if given."""
        k = self.keywords
        if "MJDREF" in k:
            return float(k["MJDREF"])
        if "MJDREFI" in k:
            return float(k["MJDREFI"]) + float(k.get("MJDREFF", 0.0))
        return None

    def facts(self) -> dict[str, Any]:
        """JSON-able summary for provenance (keywords, TIMEPIXR, GTIs, columns)."""
        return {
            "path": self.path,
            "n_rows": self.n_rows,
            "columns": sorted(self.columns),
            "timedel": self.timedel,
            "timepixr": self.timepixr,
            "timepixr_source": self.timepixr_source,
            "keywords": self.keywords,
            "gtis": {k: v.tolist() for k, v in self.gtis.items()},
            "dss_pi": self.dss_pi,
        }


def _json_value(v: Any) -> Any:
    if isinstance(v, bool | int | str):
        return v
    if isinstance(v, float | np.floating):
        return float(v)
    return str(v)


def _rate_hdu(hdul: fits.HDUList, path: str) -> fits.BinTableHDU:
    tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
    named = [h for h in tables if h.name.upper() == "RATE"]
    for h in named + tables:
        names = {c.upper() for c in h.columns.names}
        if "RATE" in names or "COUNTS" in names:
            return h
    raise InputFileError(
        f"light-curve file {path}: no table with a RATE or COUNTS column "
        "(expected a RATE extension written by evselect or epiclccorr)"
    )


def read_lightcurve(path: str | os.PathLike[str]) -> LightCurveFile:
    """Read a SAS light-curve file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    LightCurveFile

    Raises
    ------
    InputFileError
        If the file is missing or not FITS, has no RATE/COUNTS table, has no usable
        TIMEDEL, or has neither a TIME column nor TSTART.
    """
    path = os.fspath(path)
    with open_fits(path, "light-curve file") as hdul:
        hdu = _rate_hdu(hdul, path)
        h = hdu.header
        data = hdu.data
        columns: dict[str, NDArray[np.float64]] = {}
        for name in hdu.columns.names:
            arr = np.asarray(data[name])
            if arr.ndim == 1 and arr.dtype.kind in "fiu":
                columns[name.upper()] = arr.astype(np.float64)
        keywords = {k: _json_value(h[k]) for k in _KEYWORDS if k in h}
        dss = []
        for key in h:
            if key.startswith("DSTYP") and str(h[key]).strip().upper() == "PI":
                dss.append(str(h.get("DSVAL" + key[5:], "")))
        gtis = {}
        for ext in hdul[1:]:
            if ext is hdu or not isinstance(ext, fits.BinTableHDU):
                continue
            names = {c.upper() for c in ext.columns.names}
            if {"START", "STOP"} <= names:
                gtis[ext.name.upper()] = np.column_stack(
                    [
                        np.asarray(ext.data["START"], np.float64),
                        np.asarray(ext.data["STOP"], np.float64),
                    ]
                ).reshape(-1, 2)
    n = len(next(iter(columns.values()))) if columns else 0
    timedel = keywords.get("TIMEDEL")
    if timedel is None and "TIME" in columns and n >= 2:
        timedel = float(np.median(np.diff(columns["TIME"])))
        keywords["TIMEDEL_inferred"] = True
    if timedel is None or not (isinstance(timedel, float | int) and timedel > 0):
        raise InputFileError(
            f"light-curve file {path} {hdu.name}: keyword TIMEDEL is missing or not positive "
            f"({timedel!r}); cannot tell the bin width"
        )
    timedel = float(timedel)
    unit = str(keywords.get("TIMEUNIT", "s")).strip().lower()
    if unit not in ("s", ""):
        raise InputFileError(
            f"light-curve file {path} {hdu.name}: TIMEUNIT={unit!r}; only seconds are supported"
        )
    if "TIMEPIXR" in keywords:
        timepixr, source = float(keywords["TIMEPIXR"]), "header"
    else:
        timepixr, source = 0.0, "absent: 0 assumed (OGIP default)"
    zero = float(keywords.get("TIMEZERO", 0.0))
    if "TIME" in columns:
        centres = columns["TIME"] + zero + (0.5 - timepixr) * timedel
    elif "TSTART" in keywords:
        centres = (
            float(keywords["TSTART"]) + zero + timedel * (np.arange(n, dtype=np.float64) + 0.5)
        )
    else:
        raise InputFileError(
            f"light-curve file {path} {hdu.name}: no TIME column and no TSTART keyword; "
            "cannot place the rows in time"
        )
    return LightCurveFile(path, columns, timedel, timepixr, source, centres, gtis, keywords, dss)


def _is_empty(lc: LightCurveFile, rows: NDArray[np.intp]) -> bool:
    for name in ("RATE", "COUNTS"):
        if name in lc.columns:
            v = lc.columns[name][rows]
            if not np.all((v == 0) | ~np.isfinite(v)):
                return False
    if "FRACEXP" in lc.columns:
        f = lc.columns["FRACEXP"][rows]
        if not np.all((f == 0) | ~np.isfinite(f)):
            return False
    return True


def grid_indices(lc: LightCurveFile, grid: TimeGrid) -> tuple[NDArray[np.intp], dict[str, int]]:
    """Grid bin of every row of a file, by index.

    Trailing rows past the grid's end are dropped when they are empty (no rate, no
    exposure), as when a task adds a bin after ``timemax``.

    Parameters
    ----------
    lc : LightCurveFile
    grid : TimeGrid
        The requested grid.

    Returns
    -------
    (ndarray, dict)
        The grid index of each row (-1 for a dropped row), and counts of
        ``dropped_trailing_rows`` and ``missing_rows`` (grid bins without a row).

    Raises
    ------
    InputFileError
        If TIMEDEL differs from the grid's bin, a row is not on a bin centre of the
        grid, a row lies before the grid, a non-empty row lies after it, or two rows
        fall in one bin.
    """
    where = f"light-curve file {lc.path}"
    if not math.isclose(lc.timedel, grid.dt, rel_tol=1e-9, abs_tol=0.0):
        raise InputFileError(
            f"{where}: TIMEDEL = {lc.timedel!r} s but the grid's bin is {grid.dt!r} s; "
            "the file was not made on this grid"
        )
    pos = (lc.centres - grid.t0) / grid.dt - 0.5
    k = np.rint(pos)
    off = np.abs(pos - k)
    if np.any(off > ALIGN_TOLERANCE):
        i = int(np.argmax(off))
        centre = float(lc.centres[i])
        raise InputFileError(
            f"{where}: row {i} (bin centre {centre!r} s, TIMEPIXR {lc.timepixr:g}) is "
            f"{off[i] * grid.dt:.6g} s off the grid's bin centres (t0 = {grid.t0!r} s, "
            f"dt = {grid.dt!r} s); the file was not made on this grid"
        )
    k = k.astype(np.intp)
    if np.any(k < 0):
        i = int(np.argmax(k < 0))
        raise InputFileError(
            f"{where}: row {i} (bin centre {float(lc.centres[i])!r} s) lies before the grid's "
            f"start t0 = {grid.t0!r} s"
        )
    after = np.flatnonzero(k >= grid.n_bins)
    if len(after) and not _is_empty(lc, after):
        raise InputFileError(
            f"{where}: {len(after)} non-empty rows lie past the grid's end "
            f"{grid.stop!r} s ({grid.n_bins} bins of {grid.dt!r} s); the file was not made "
            "on this grid"
        )
    k = k.copy()
    k[after] = -1
    kept = k[k >= 0]
    if len(np.unique(kept)) != len(kept):
        raise InputFileError(f"{where}: two rows fall in the same grid bin")
    return k, {
        "dropped_trailing_rows": int(len(after)),
        "missing_rows": int(grid.n_bins - len(kept)),
    }


def common_grid(files: list[LightCurveFile]) -> TimeGrid:
    """The grid that holds every row of several files made on one grid.

    t0 is the earliest row's bin start and the grid ends at the latest row's bin end.

    Raises
    ------
    InputFileError
        If the files' TIMEDEL differ or their rows are not on one set of bin centres.
    """
    first = files[0]
    dt = first.timedel
    t0 = min(float(f.centres.min()) for f in files if f.n_rows) - 0.5 * dt
    t1 = max(float(f.centres.max()) for f in files if f.n_rows) + 0.5 * dt
    grid = TimeGrid(t0=t0, dt=dt, n_bins=max(1, int(round((t1 - t0) / dt))))
    for f in files:
        grid_indices(f, grid)
    return grid


def place(
    values: NDArray[np.float64], index: NDArray[np.intp], n_bins: int, fill: float
) -> NDArray[np.float64]:
    """Put row values into grid bins by index (``index < 0``: dropped); other bins get ``fill``."""
    out = np.full(n_bins, fill, dtype=np.float64)
    keep = index >= 0
    out[index[keep]] = values[keep]
    return out


def raw_counts(lc: LightCurveFile) -> tuple[NDArray[np.float64] | None, str]:
    """Counts per row of a raw evselect curve: COUNTS, or RATE x TIMEDEL when integral.

    evselect's RATE is counts / TIMEDEL without exposure correction (docs/semantics.md
    §17.2), so RATE x TIMEDEL gives the counts back to float32 rounding; they are
    rounded to integers only when every row is within 1e-3 (relative 1e-5) of one.

    Returns
    -------
    (ndarray or None, str)
        Counts (NaN rows stay NaN), or None when they cannot be recovered, and how.
    """
    if "COUNTS" in lc.columns:
        return lc.columns["COUNTS"].copy(), "COUNTS column"
    if "RATE" not in lc.columns:
        return None, "no RATE or COUNTS column"
    c = lc.columns["RATE"] * lc.timedel
    finite = np.isfinite(c)
    r = np.rint(c)
    if np.all(np.abs(c[finite] - r[finite]) <= 1e-3 + 1e-5 * np.abs(r[finite])):
        return np.where(finite, r, np.nan), "RATE x TIMEDEL (rounded to integers)"
    return None, "RATE x TIMEDEL is not integral: counts not recovered"
