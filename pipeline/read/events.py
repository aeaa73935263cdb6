"""Reading EPIC (pn, MOS) event files: header facts, per-CCD GTIs, and columns in row chunks.

Columns are read through astropy's memory map of the EVENTS table, a row chunk at
a time, with each column's TZERO/TSCAL applied to the chunk only, so memory stays
bounded whatever the size of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from catalog import gti as gtilib
from pipeline.read.fitsio import open_fits
from schemas.errors import InputFileError

__all__ = [
    "REQUIRED_COLUMNS",
    "INSTRUMENTS",
    "EventFileInfo",
    "read_event_info",
    "iter_event_chunks",
    "read_gti_file",
]

#: Columns every event file must have (the EVENTS extension of a pn event list).
REQUIRED_COLUMNS: tuple[str, ...] = ("TIME", "X", "Y", "PI", "PATTERN", "FLAG", "CCDNR")

_STDGTI = re.compile(r"^STDGTI(\d\d)$")
#: XMM-Newton's MJD reference (TT), used when an event file gives none.
XMM_MJDREF = 50814.0
#: INSTRUME keyword -> xlcat's short camera name (as in the archive's file names).
INSTRUMENTS: dict[str, str] = {"EPN": "PN", "EMOS1": "M1", "EMOS2": "M2"}
_EXPIDSTR = re.compile(r"^[SUX]\d{3}$")


@dataclass(frozen=True)
class EventFileInfo:
    """What xlcat needs from an event file's headers and GTI extensions.

    Attributes
    ----------
    path : str
        The event file.
    n_rows : int
        Number of events.
    tstart, tstop : float
        TSTART and TSTOP of the EVENTS header, seconds (MET).
    mjdref : float
        MJD of MET zero (MJDREF, or MJDREFI + MJDREFF).
    timesys, timeref : str
        TIMESYS and TIMEREF keywords.
    telescop, instrume, obs_id : str
        Identification keywords ('' when absent).
    frmtime : float or None
        Frame time in seconds (FRMTIME is in ms in pn files), if given.
    ccd_gtis : dict of int to ndarray
        STDGTInn tables keyed by CCD number nn.
    live_fraction : dict of int to float
        LIVETInn / ONTIMEnn per CCD where both keywords exist.
    string_keywords : dict of str to str
        Every string-valued EVENTS header keyword (for ``#NAME`` selection macros).
    instrument : {"PN", "M1", "M2"}
        EPIC camera, from INSTRUME (``EPN``, ``EMOS1``, ``EMOS2``; absent: ``PN``, noted).
    datamode : str
        DATAMODE (only ``IMAGING`` is read; absent: ``IMAGING``, noted).
    exp_id, expidstr : str or None
        EXP_ID (obsid + exposure number) and EXPIDSTR (``S003``...), when given.
    identity_notes : tuple of str
        What was assumed about the camera, mode or exposure (for provenance).
    """

    path: str
    n_rows: int
    tstart: float
    tstop: float
    mjdref: float
    timesys: str
    timeref: str
    telescop: str
    instrume: str
    obs_id: str
    frmtime: float | None
    ccd_gtis: dict[int, NDArray[np.float64]] = field(repr=False)
    live_fraction: dict[int, float] = field(repr=False)
    string_keywords: dict[str, str] = field(repr=False)
    # -- EPIC camera, mode and exposure (docs/semantics.md §1), from _epic_identity --
    instrument: str = "PN"
    datamode: str = "IMAGING"
    exp_id: str | None = None
    expidstr: str | None = None
    identity_notes: tuple[str, ...] = ()

    @property
    def exposure(self) -> str:
        """The exposure's key: camera + EXPIDSTR as in archive names (``PNS003``), else the camera.

        Without EXPIDSTR the scheduled/unscheduled letter is unknown (EXP_ID holds the exposure
        number only), so the key is the camera alone (``PN``).
        """
        return self.instrument + (self.expidstr or "")

    def macro(self, name: str) -> str | None:
        """The text of selection macro ``#name`` (an EVENTS header keyword), or None."""
        return self.string_keywords.get(name.upper())


def _open(path: str | os.PathLike[str]) -> fits.HDUList:
    return open_fits(path, "events file", memmap=True)


def _events_hdu(hdul: fits.HDUList, path: str | os.PathLike[str]) -> fits.BinTableHDU:
    try:
        hdu = hdul["EVENTS"]
    except KeyError:
        raise InputFileError(
            f"events file {path}: no EVENTS extension; give an EPIC-pn event list"
        ) from None
    if not isinstance(hdu, fits.BinTableHDU):
        raise InputFileError(f"events file {path}: EVENTS is not a binary table")
    return hdu


def _float_key(header: fits.Header, key: str, path: str | os.PathLike[str]) -> float:
    if key not in header:
        raise InputFileError(f"events file {path} EVENTS header: keyword {key} is missing")
    try:
        return float(header[key])
    except (TypeError, ValueError):
        raise InputFileError(
            f"events file {path} EVENTS header: keyword {key}={header[key]!r} is not a number"
        ) from None


def _epic_identity(
    header: fits.Header, path: str | os.PathLike[str]
) -> tuple[str, str, str | None, str | None, tuple[str, ...]]:
    """(instrument, datamode, exp_id, expidstr, notes) of an EPIC imaging list, or a refusal."""
    where = f"events file {path} EVENTS header"
    notes: list[str] = []
    instrume = str(header.get("INSTRUME", "")).strip().upper()
    if not instrume:
        instrument = "PN"
        notes.append("INSTRUME absent: read as EPN (EPIC-pn)")
    elif instrume in INSTRUMENTS:
        instrument = INSTRUMENTS[instrume]
    else:
        raise InputFileError(
            f"{where}: INSTRUME = {header['INSTRUME']!r} is not an XMM-Newton EPIC camera; "
            "give an EPN, EMOS1 or EMOS2 event list"
        )
    datamode = str(header.get("DATAMODE", "")).strip().upper()
    if not datamode:
        datamode = "IMAGING"
        notes.append("DATAMODE absent: read as IMAGING")
    elif datamode != "IMAGING":
        raise InputFileError(
            f"{where}: DATAMODE = {header['DATAMODE']!r} is not supported; "
            "give an imaging-mode event list (DATAMODE = 'IMAGING')"
        )
    exp_id = str(header["EXP_ID"]).strip() if header.get("EXP_ID") not in (None, "") else None
    expidstr = str(header.get("EXPIDSTR", "")).strip().upper() or None
    if expidstr is not None and not _EXPIDSTR.match(expidstr):
        notes.append(f"EXPIDSTR = {expidstr!r} is not S/U/X + 3 digits: not used")
        expidstr = None
    if expidstr is None:
        notes.append(
            f"no EXPIDSTR: exposure key {instrument!r} (EXP_ID holds no scheduled/unscheduled "
            "letter)"
        )
    return instrument, datamode, exp_id, expidstr, tuple(notes)


def read_event_info(path: str | os.PathLike[str]) -> EventFileInfo:
    """Read and check the headers and GTI extensions of an event file.

    Parameters
    ----------
    path : str or os.PathLike
        FITS event list with an EVENTS table and STDGTInn extensions.

    Returns
    -------
    EventFileInfo

    Raises
    ------
    InputFileError
        If the file is missing, has no EVENTS table, is not an EPIC imaging list (INSTRUME,
        DATAMODE), lacks a required column or keyword (TSTART, TSTOP), or has TSTOP <= TSTART.
    """
    with _open(path) as hdul:
        hdu = _events_hdu(hdul, path)
        header = hdu.header
        identity = _epic_identity(header, path)
        names = {n.upper() for n in hdu.columns.names}
        for col in REQUIRED_COLUMNS:
            if col not in names:
                raise InputFileError(f"events file {path} EVENTS: column {col} is missing")
        tstart = _float_key(header, "TSTART", path)
        tstop = _float_key(header, "TSTOP", path)
        if not tstop > tstart:
            raise InputFileError(
                f"events file {path} EVENTS header: TSTOP ({tstop}) must be after TSTART ({tstart})"
            )
        if "MJDREF" in header:
            mjdref = float(header["MJDREF"])
        elif "MJDREFI" in header:
            mjdref = float(header["MJDREFI"]) + float(header.get("MJDREFF", 0.0))
        else:
            mjdref = XMM_MJDREF
        ccd_gtis: dict[int, NDArray[np.float64]] = {}
        for ext in hdul[1:]:
            m = _STDGTI.match(ext.name.upper())
            if m and isinstance(ext, fits.BinTableHDU):
                if not {"START", "STOP"} <= {c.upper() for c in ext.columns.names}:
                    raise InputFileError(
                        f"events file {path} {ext.name}: START and STOP columns are required"
                    )
                ccd_gtis[int(m.group(1))] = gtilib.normalize(
                    np.column_stack(
                        [
                            np.asarray(ext.data["START"], dtype=np.float64),
                            np.asarray(ext.data["STOP"], dtype=np.float64),
                        ]
                    )
                )
        live: dict[int, float] = {}
        for ccd in range(1, 13):
            lt, on = header.get(f"LIVETI{ccd:02d}"), header.get(f"ONTIME{ccd:02d}")
            if lt is not None and on:
                live[ccd] = float(lt) / float(on)
        frm = header.get("FRMTIME")
        strings = {str(k).upper(): str(v) for k, v in header.items() if isinstance(v, str) and k}
        return EventFileInfo(
            path=str(path),
            n_rows=int(hdu.header.get("NAXIS2", 0)),
            tstart=tstart,
            tstop=tstop,
            mjdref=mjdref,
            timesys=str(header.get("TIMESYS", "TT")),
            timeref=str(header.get("TIMEREF", "LOCAL")),
            telescop=str(header.get("TELESCOP", "")),
            instrume=str(header.get("INSTRUME", "")),
            obs_id=str(header.get("OBS_ID", "")),
            frmtime=float(frm) / 1000.0 if frm is not None else None,
            ccd_gtis=ccd_gtis,
            live_fraction=live,
            string_keywords=strings,
            instrument=identity[0],
            datamode=identity[1],
            exp_id=identity[2],
            expidstr=identity[3],
            identity_notes=identity[4],
        )


def iter_event_chunks(
    path: str | os.PathLike[str], columns: Sequence[str], chunk_rows: int = 1_000_000
) -> Iterator[dict[str, NDArray[Any]]]:
    """Yield the chosen EVENTS columns, ``chunk_rows`` rows at a time.

    The table is memory-mapped; each chunk is converted to native byte order
    and scaled (TZERO/TSCAL) on its own, so peak memory is a few chunks of the
    chosen columns regardless of the file size.

    Parameters
    ----------
    path : str or os.PathLike
        Event file.
    columns : sequence of str
        Column names (case-insensitive).
    chunk_rows : int
        Rows per chunk.

    Yields
    ------
    dict of str to numpy.ndarray
        Upper-case column name to a native-endian array of the chunk's rows.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    with _open(path) as hdul:
        hdu = _events_hdu(hdul, path)
        # plain (name, scale, zero) tuples: holding astropy Column objects past the data access
        # would make astropy copy the whole table into memory when the file closes
        coldefs = {c.name.upper(): (c.name, c.bscale, c.bzero) for c in hdu.columns}
        missing = [c for c in columns if c.upper() not in coldefs]
        if missing:
            raise InputFileError(f"events file {path} EVENTS: column {missing[0]} is missing")
        raw = hdu.data.view(np.ndarray)  # memory-mapped records, no scaling, no copy
        n = len(raw)
        for lo in range(0, n, chunk_rows):
            yield _convert(raw[lo : lo + chunk_rows], columns, coldefs)
        # no view of the map may outlive the file: astropy would copy the whole table on close
        del raw


def _convert(
    block: np.ndarray, columns: Sequence[str], coldefs: dict[str, tuple[str, Any, Any]]
) -> dict[str, NDArray[Any]]:
    """Native-endian, scaled copies of some columns of a block of raw records."""
    out: dict[str, NDArray[Any]] = {}
    for name in columns:
        fits_name, bscale, bzero = coldefs[name.upper()]
        values = block[fits_name]
        arr = values.astype(values.dtype.newbyteorder("="), copy=True)
        scale = bscale if bscale not in (None, 1) else None
        zero = bzero if bzero not in (None, 0) else None
        if scale is not None or zero is not None:
            arr = arr.astype(np.float64) * (scale or 1.0) + (zero or 0.0)
            if float(scale or 1.0).is_integer() and float(zero or 0.0).is_integer():
                arr = arr.astype(np.int64)
        out[name.upper()] = arr
    return out


def read_gti_file(
    path: str | os.PathLike[str], *, extensions: Iterable[str] = ("GTI", "STDGTI")
) -> NDArray[np.float64]:
    """Read a user GTI file: a FITS table with START and STOP columns.

    The first extension whose name is in ``extensions`` (or, failing that, the
    first table with START and STOP columns) is used.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file.
    extensions : iterable of str
        Preferred extension names.

    Returns
    -------
    numpy.ndarray, shape (n, 2)
        Normalised GTI table.

    Raises
    ------
    InputFileError
        If the file is missing, not FITS, or has no START/STOP table.
    """
    with open_fits(path, "GTI file") as hdul:
        wanted = [e.upper() for e in extensions]
        tables = [h for h in hdul[1:] if isinstance(h, fits.BinTableHDU)]
        chosen = next((h for h in tables if h.name.upper() in wanted), None)
        if chosen is None:
            chosen = next((h for h in tables if {"START", "STOP"} <= set(h.columns.names)), None)
        if chosen is None or not {"START", "STOP"} <= set(chosen.columns.names):
            raise InputFileError(
                f"GTI file {path}: no table with START and STOP columns "
                f"(looked for extensions {', '.join(wanted)})"
            )
        start = np.asarray(chosen.data["START"], dtype=np.float64)
        stop = np.asarray(chosen.data["STOP"], dtype=np.float64)
    if np.any(stop < start):
        raise InputFileError(f"GTI file {path} extension {chosen.name}: a STOP precedes its START")
    return gtilib.normalize(np.column_stack([start, stop]))
