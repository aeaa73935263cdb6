"""Reading SAS light-curve files (evselect rate sets, epiclccorr output) onto a time grid.

What is read (docs/semantics.md §11.2): the ``RATE`` table (else the first
table) with ``TIME`` and ``RATE`` (or ``COUNTS``), ``ERROR``, and for epiclccorr
output ``BACKV``, ``BACKE``, ``FRACEXP`` (4-byte reals in real files, converted
exactly); the keywords ``TIMEDEL``, ``TIMEPIXR``, ``TIMEZERO``, ``TSTART``,
``SLCTEXPR``, ``BKGRATIO`` and the data-subspace PI range; every GTI table
(``SRC_GTIS`` / ``BKG_GTIS`` of epiclccorr, ``GTI00004``... per CCD of evselect).

TIME is the bin centre when TIMEPIXR is absent: evselect and epiclccorr write
TIME at bin (frame) centres and no TIMEPIXR keyword (docs/semantics.md §17.1,
settled by the files of observation 0001730201, ``lcurve_100_M1_1/``). A TIMEPIXR
in the header is obeyed. Times are normalised to bin centres,
``centre = TIME + TIMEZERO + (0.5 - TIMEPIXR) TIMEDEL``, and rows are placed on
the grid *by index*, ``k = (centre - t0)/dt - 1/2`` rounded, after checking that
TIMEDEL equals the grid's bin and that every row lies on a bin centre (never by
float equality of times). TSTOP is never used: epiclccorr moves it to the end of
the last bin, evselect keeps the event list's.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from pipeline.extract.binning import TimeGrid
from pipeline.read.fitsio import open_fits
from pipeline.select.expression import compile_expression
from schemas.energy import PI_MAX, Band
from schemas.errors import InputFileError, XlcatError

__all__ = [
    "LightCurveFile",
    "read_lightcurve",
    "grid_indices",
    "common_grid",
    "place",
    "raw_counts",
    "pi_selection",
    "TIMEPIXR_ABSENT",
]

#: A row is on a bin centre when its offset from one is below this fraction of a bin.
ALIGN_TOLERANCE = 1e-6
#: ``timepixr_source`` of a file without TIMEPIXR: its TIME is the bin centre.
TIMEPIXR_ABSENT = (
    "absent: bin centre, as evselect and epiclccorr write TIME (docs/semantics.md §17.1)"
)
#: Primary-header keywords kept for provenance (who wrote the file, for which exposure).
_PRIMARY_KEYWORDS = ("CREATOR", "DATE", "OBS_ID", "EXP_ID", "OBJECT", "INSTRUME", "DATAMODE")
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
    "SLCTEXPR",
    "CREATOR",
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
        ``"header"`` or :data:`TIMEPIXR_ABSENT` (then ``timepixr`` is 0.5).
    centres : ndarray
        Bin centre of every row, seconds (MET).
    gtis : dict of str to ndarray
        GTI tables by extension name (SRC_GTIS, BKG_GTIS, ...), shape (n, 2).
    keywords : dict
        Selected header keywords of the rate table (JSON-able).
    dss_pi : list of str
        Data-subspace PI selections found in the header (DSTYPn = 'PI'), for provenance.
    primary : dict
        Selected keywords of the primary header (CREATOR, OBS_ID, ...), JSON-able.
    gti_ccds : dict of str to int
        CCDID keyword of the GTI tables that have one (evselect's per-CCD filter GTIs).
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
    primary: dict[str, Any] = field(default_factory=dict)
    gti_ccds: dict[str, int] = field(default_factory=dict)

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
            "gti_ccds": self.gti_ccds,
            "dss_pi": self.dss_pi,
            "primary": self.primary,
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
                # epiclccorr writes NaN as the signalling NaN 0x7f800001 (real32): it
                # becomes a quiet NaN, without numpy's "invalid value" warning
                with np.errstate(invalid="ignore"):
                    columns[name.upper()] = arr.astype(np.float64)
        keywords = {k: _json_value(h[k]) for k in _KEYWORDS if k in h}
        primary = {
            k: _json_value(hdul[0].header[k]) for k in _PRIMARY_KEYWORDS if k in hdul[0].header
        }
        dss = []
        for key in h:
            if key.startswith("DSTYP") and str(h[key]).strip().upper() == "PI":
                dss.append(str(h.get("DSVAL" + key[5:], "")))
        gtis = {}
        gti_ccds = {}
        for ext in hdul[1:]:
            if ext is hdu or not isinstance(ext, fits.BinTableHDU):
                continue
            names = {c.upper() for c in ext.columns.names}
            if {"START", "STOP"} <= names:
                if "CCDID" in ext.header:
                    gti_ccds[ext.name.upper()] = int(ext.header["CCDID"])
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
    else:  # SAS writes centres without the keyword (docs/semantics.md §17.1)
        timepixr, source = 0.5, TIMEPIXR_ABSENT
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
    return LightCurveFile(
        path, columns, timedel, timepixr, source, centres, gtis, keywords, dss, primary, gti_ccds
    )


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


def common_grid(files: list[LightCurveFile], dt: float | None = None) -> tuple[TimeGrid, str]:
    """The grid that holds every row of several files made on one grid.

    The bin is ``dt``, else the first file's TIMEDEL (evselect writes the
    ``timebinsize`` asked for, epiclccorr a recomputed value such as
    2.60399999999948; every file's TIMEDEL must agree with the bin to 1e-9). When
    every file has the same TSTART and every row sits on ``TSTART + (k + 1/2) TIMEDEL``
    with k >= 0 -- evselect's grid, which starts at the event list's TSTART
    (docs/semantics.md §17.2) -- the grid starts at TSTART and ends with the last row,
    so it is the native grid of the same event list bin for bin. Otherwise (no TSTART,
    or files that started elsewhere) the grid runs from the earliest row's bin start
    to the latest row's bin end.

    Parameters
    ----------
    files : list of LightCurveFile
        At least one file with rows.
    dt : float, optional
        The bin, seconds (default: the first file's TIMEDEL).

    Returns
    -------
    (TimeGrid, str)
        The grid, and the rule that made it (for provenance).

    Raises
    ------
    InputFileError
        If the files' TIMEDEL differ or their rows are not on one set of bin centres.
    """
    used = [f for f in files if f.n_rows]
    if not used:
        raise InputFileError(
            f"light-curve file {files[0].path}: no rows; nothing to place on a time grid"
        )
    dt = used[0].timedel if dt is None else float(dt)
    starts = {float(f.keywords["TSTART"]) for f in used if "TSTART" in f.keywords}
    if len(starts) == 1 and all("TSTART" in f.keywords for f in used):
        t0 = starts.pop()
        last = max(float(f.centres.max()) for f in used)
        n = max(1, int(round((last - t0) / dt + 0.5)))
        grid = TimeGrid(t0=t0, dt=dt, n_bins=n)
        try:
            for f in used:
                grid_indices(f, grid)
        except InputFileError:
            pass
        else:
            return grid, "TSTART of the files + (k + 1/2) TIMEDEL, to the last row"
    t0 = min(float(f.centres.min()) for f in used) - 0.5 * dt
    t1 = max(float(f.centres.max()) for f in used) + 0.5 * dt
    grid = TimeGrid(t0=t0, dt=dt, n_bins=max(1, int(round((t1 - t0) / dt))))
    for f in used:
        grid_indices(f, grid)
    return grid, "earliest row's bin start to the latest row's bin end (rows not on TSTART)"


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


def _pi_set(text: str, path: str) -> NDArray[np.bool_] | None:
    """Which PI values 0..PI_MAX-1 a selection text keeps (None if it cannot be evaluated)."""
    try:
        expr = compile_expression(text, source=f"light-curve file {path}", error=InputFileError)
        mask: NDArray[np.bool_] = expr.evaluate({"PI": np.arange(PI_MAX, dtype=np.int64)})
    except XlcatError:
        return None
    return mask


def _top_level_or(text: str) -> list[str]:
    """Split a selection at its ``||`` outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and text.startswith("||", i):
            parts.append(text[start:i])
            start = i + 2
    parts.append(text[start:])
    return parts


_PI_TERM = re.compile(
    r"\bPI\s*(?:(?:in|\.in\.)\s*(?:[\[(][^\])]*[\])]|[0-9.:]+)"
    r"(?:\s*,\s*(?:[\[(][^\])]*[\])]|[0-9.:]+))*"
    r"|(?:<=|>=|==|<|>)\s*[0-9.]+)",
    re.IGNORECASE,
)


def pi_selection(lc: LightCurveFile) -> tuple[Band | None, str]:
    """The PI band a SAS light curve was selected with, if it is one run of PI values.

    Two sources, intersected: the ``PI`` terms of ``SLCTEXPR`` (epiclccorr writes
    ``PI in [500:10000]`` in every CCD's branch; the terms of one branch are AND-ed and
    every branch must keep the same PI values) and the data-subspace PI range
    (``DSTYPn = 'PI'``, ``DSVALn = '500:10000'``, closed at both ends), which evselect
    copies from the event list it read. SAS ranges are closed, so ``[500:10000]``
    is the band ``[500, 10001)`` (``pi_lo <= PI < pi_hi``).

    Parameters
    ----------
    lc : LightCurveFile

    Returns
    -------
    (Band or None, str)
        The band (None when the files say nothing about PI, or keep PI values that are
        not one run), and how it was found.
    """
    masks: list[NDArray[np.bool_]] = []
    how: list[str] = []
    expr = str(lc.keywords.get("SLCTEXPR", ""))
    branches = [
        " && ".join(sorted({m.group(0).strip() for m in _PI_TERM.finditer(branch)}))
        for branch in _top_level_or(expr)
    ]
    if any(branches):
        sets = [_pi_set(b, lc.path) if b else None for b in dict.fromkeys(branches)]
        first = sets[0]
        if first is None or any(m is None or not np.array_equal(first, m) for m in sets[1:]):
            return None, f"SLCTEXPR PI terms {sorted(set(branches))} differ or cannot be read"
        masks.append(first)
        how.append(f"SLCTEXPR: {branches[0]}")
    for value in lc.dss_pi:
        m = _pi_set(f"PI in {value}", lc.path) if value.strip() else None
        if m is None:
            return None, f"data-subspace PI range {value!r} cannot be read"
        masks.append(m)
        how.append(f"data subspace: PI in {value}")
    if not masks:
        return None, "no PI term in SLCTEXPR and no data-subspace PI range"
    keep = np.logical_and.reduce(masks)
    idx = np.flatnonzero(keep)
    text = "; ".join(how)
    if len(idx) == 0 or idx[-1] - idx[0] + 1 != len(idx):
        return None, f"{text}: not one run of PI values"
    return Band(int(idx[0]), int(idx[-1]) + 1), text
