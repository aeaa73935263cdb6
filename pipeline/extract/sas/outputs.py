"""The files of one SAS band task: the GTI it applies, and its outputs read onto the grid."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from pipeline.extract.binning import TimeGrid
from pipeline.extract.jobs import BandCurves
from pipeline.extract.sas import commands as cmd
from pipeline.extract.sas.lightcurve import (
    LightCurveFile,
    grid_indices,
    place,
    raw_counts,
    read_lightcurve,
)
from schemas.energy import Band
from schemas.errors import InputFileError

__all__ = ["write_gti_file", "curves_from_files", "curves_from_outputs", "read_sas_spectrum"]


def _gti_hdu(gti: NDArray[np.float64], name: str) -> fits.BinTableHDU:
    g = np.asarray(gti, dtype=np.float64).reshape(-1, 2)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", array=g[:, 0]), fits.Column("STOP", "D", array=g[:, 1])],
        name=name,
    )
    for k, v in (
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "GTI"),
        ("HDUCLAS2", "STANDARD"),
        ("TIMEUNIT", "s"),
    ):
        hdu.header[k] = v
    return hdu


def write_gti_file(
    path: str | os.PathLike[str],
    gti: NDArray[np.float64],
    ccd_gtis: Mapping[int, NDArray[np.float64]] | None = None,
) -> None:
    """Write the GTI file of a task: extension STDGTI, then one extension per CCD.

    Parameters
    ----------
    path : str or os.PathLike
    gti : numpy.ndarray, shape (n, 2)
        The observation's stored GTI (extension STDGTI), for ``gti(file,TIME)``.
    ccd_gtis : mapping of CCD to GTI, optional
        Each CCD's own GTI, extension ``GTICCDnn`` (with keyword CCDID), for
        ``gti(file:GTICCDnn,TIME)``.
    """
    hdus = [fits.PrimaryHDU(), _gti_hdu(gti, "STDGTI")]
    for ccd, g in sorted((ccd_gtis or {}).items()):
        hdu = _gti_hdu(g, cmd.ccd_gti_extension(ccd))
        hdu.header["CCDID"] = ccd
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def curves_from_files(
    corrected: LightCurveFile | None,
    source: LightCurveFile | None,
    background: LightCurveFile | None,
    grid: TimeGrid,
    band: Band,
    *,
    strict: bool = True,
    with_background: bool = True,
) -> tuple[BandCurves, dict[str, Any]]:
    """Curves of one band from an epiclccorr output and the raw evselect curves, on a grid.

    Parameters
    ----------
    corrected : LightCurveFile or None
        epiclccorr output: RATE, ERROR, BACKV, BACKE, FRACEXP. None (import only, not
        strict): raw curves alone, whose counts are kept while rate, error, backv,
        backe and fracexp are NaN (evselect's raw RATE is not exposure corrected).
    source, background : LightCurveFile or None
        Raw evselect curves, for the counts (NaN when absent).
    grid : TimeGrid
        Rows are placed by index (:func:`pipeline.extract.sas.lightcurve.grid_indices`);
        grid bins without a row get NaN, and fracexp 0.
    band : Band
    strict : bool
        True (the SAS backend): every column must be present and the raw curves on
        the grid. False (import): a missing BACKV, BACKE or FRACEXP becomes NaN and
        raw curves off the grid give NaN counts, each with a note.
    with_background : bool
        False for source-only curves (no background region, epiclccorr ``withbkgset=no``):
        BACKV and BACKE are not required, and backv, backe and bkg_counts are NaN
        whatever the files hold (docs/semantics.md §6).

    Returns
    -------
    (BandCurves, dict)
        The band's curves, and facts for provenance (keywords, TIMEPIXR, GTIs, notes).

    Raises
    ------
    InputFileError
        If the corrected file lacks RATE or ERROR (or, strict, any column, or is None),
        or a file is not on the grid.
    """
    n = grid.n_bins
    notes: list[str] = []
    values = {}
    facts: dict[str, Any] = {}
    names = (
        ("rate", "RATE"),
        ("error", "ERROR"),
        ("backv", "BACKV"),
        ("backe", "BACKE"),
        ("fracexp", "FRACEXP"),
    )
    if corrected is None:
        if strict:
            raise InputFileError("light-curve files: the corrected (epiclccorr) curve is missing")
        for name, _ in names:
            values[name] = np.full(n, np.nan)
        notes.append("no corrected curve: rate, error, backv, backe and fracexp are NaN")
        facts["corrected"] = None
    else:
        if not strict:
            required: tuple[str, ...] = ("RATE", "ERROR")
        elif with_background:
            required = ("RATE", "ERROR", "BACKV", "BACKE", "FRACEXP")
        else:
            required = ("RATE", "ERROR", "FRACEXP")
        missing = [c for c in required if c not in corrected.columns]
        if missing:
            raise InputFileError(
                f"light-curve file {corrected.path}: column {missing[0]} is missing "
                f"(columns: {', '.join(sorted(corrected.columns))})"
            )
        idx, rows = grid_indices(corrected, grid)
        for name, col in names:
            if not with_background and col in ("BACKV", "BACKE"):
                values[name] = np.full(n, np.nan)
            elif col in corrected.columns:
                values[name] = place(
                    corrected.columns[col], idx, n, 0.0 if col == "FRACEXP" else np.nan
                )
            else:
                values[name] = np.full(n, np.nan)
                notes.append(f"{corrected.path}: no {col} column; {name} is NaN")
        facts["corrected"] = {**corrected.facts(), **rows}
    how = {}
    for role, raw, key in (
        ("source", source, "src_counts"),
        ("background", background, "bkg_counts"),
    ):
        values[key] = np.full(n, np.nan)
        if role == "background" and not with_background:
            how[role] = "no background region: no background curve"
            continue
        if raw is None:
            how[role] = "no raw curve: counts not recovered"
            continue
        try:
            ridx, rnotes = grid_indices(raw, grid)
        except InputFileError as exc:
            if strict:
                raise
            how[role] = f"raw curve not on the grid ({exc}): counts not recovered"
            continue
        counts, how[role] = raw_counts(raw)
        if counts is not None:
            values[key] = place(counts, ridx, n, np.nan)
        f = raw.facts()
        f["gtis"] = {k: len(v) for k, v in raw.gtis.items()}  # row counts only
        facts[role] = {**f, **rnotes}
    facts["counts"] = how
    facts["notes"] = notes
    row = {k: v.reshape(1, n) for k, v in values.items()}
    curves = BandCurves(
        bands=(band,),
        rate=row["rate"],
        error=row["error"],
        backv=row["backv"],
        backe=row["backe"],
        fracexp=row["fracexp"],
        src_counts=row["src_counts"],
        bkg_counts=row["bkg_counts"],
    )
    return curves, facts


def curves_from_outputs(
    folder: Path, grid: TimeGrid, band: Band, *, with_background: bool = True
) -> tuple[BandCurves, dict[str, Any]]:
    """Read one band task's outputs onto the grid (strict :func:`curves_from_files`).

    Parameters
    ----------
    folder : Path
        Holds ``lc.fits`` (epiclccorr), ``lc__s.fits`` and, with a background region,
        ``lc__b.fits`` (evselect).
    grid : TimeGrid
    band : Band
    with_background : bool
        False for source-only curves (no ``lc__b.fits``).

    Returns
    -------
    (BandCurves, dict)

    Raises
    ------
    InputFileError
        If a file is unreadable, lacks a column, or is not on the grid.
    """
    return curves_from_files(
        read_lightcurve(folder / cmd.CORRECTED_CURVE),
        read_lightcurve(folder / cmd.SOURCE_CURVE),
        read_lightcurve(folder / cmd.BACKGROUND_CURVE) if with_background else None,
        grid,
        band,
        with_background=with_background,
    )


def read_sas_spectrum(path: Path, n_channels: int) -> tuple[NDArray[np.int64], dict[str, Any]]:
    """Counts per channel and the header facts of an evselect spectrum (after backscale).

    Parameters
    ----------
    path : pathlib.Path
        The spectrum (extension SPECTRUM, columns CHANNEL and COUNTS).
    n_channels : int
        Channels 0 .. n_channels - 1 expected.

    Returns
    -------
    counts : numpy.ndarray of int64, shape (n_channels,)
    facts : dict
        ``EXPOSURE`` (s), ``BACKSCAL``, ``AREASCAL`` as written, and the rows outside
        the channel range (``rows_outside``).

    Raises
    ------
    InputFileError
        If the file lacks the SPECTRUM table, its columns or the EXPOSURE and BACKSCAL
        keywords (backscale did not run), or holds a negative or non-integer count.
    """
    where = f"SAS spectrum {path}"
    try:
        with fits.open(path) as hdul:
            table = next((h for h in hdul[1:] if h.name == "SPECTRUM"), None)
            if table is None:
                raise InputFileError(f"{where}: no SPECTRUM extension; check the evselect log")
            names = [n.upper() for n in table.columns.names]
            for col in ("CHANNEL", "COUNTS"):
                if col not in names:
                    raise InputFileError(f"{where}: column {col} missing; check the evselect log")
            chan = np.asarray(table.data["CHANNEL"], dtype=np.int64)
            raw = np.asarray(table.data["COUNTS"], dtype=np.float64)
            header = table.header
            facts: dict[str, Any] = {}
            for key in ("EXPOSURE", "BACKSCAL"):
                if key not in header:
                    raise InputFileError(
                        f"{where}: keyword {key} missing; check the evselect and backscale logs"
                    )
                facts[key] = float(header[key])
            facts["AREASCAL"] = float(header.get("AREASCAL", 1.0))
    except OSError as exc:
        raise InputFileError(f"{where}: unreadable ({exc})") from None
    if np.any(raw < 0) or np.any(raw != np.round(raw)):
        raise InputFileError(f"{where}: COUNTS holds negative or fractional values")
    ok = (chan >= 0) & (chan < n_channels)
    counts = np.zeros(n_channels, np.int64)
    np.add.at(counts, chan[ok], raw[ok].astype(np.int64))
    facts["rows_outside"] = int(np.count_nonzero(~ok))
    return counts, facts
