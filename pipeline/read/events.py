"""Reading EPIC pn and MOS (and NuSTAR) event files: header facts, per-CCD GTIs, data subspace,
exposure steps.

Columns are read through astropy's memory map of the EVENTS table, a row chunk at
a time, with each column's TZERO/TSCAL applied to the chunk only, so memory stays
bounded whatever the size of the file. A gzip-compressed list is first decompressed
as a stream into a temporary file (:func:`pipeline.read.fitsio.decompressed`);
headers and small tables are read from the compressed file directly.

Per CCD an event list holds (docs/semantics.md §4, §5):

- ``STDGTInn``: the CCD's standard GTIs;
- the time filter of its data subspace (:mod:`pipeline.read.subspace`): in a list
  filtered by evselect, a GTI table per CCD (``GTI00004`` for CCD 1, ...) that
  ``STDGTInn`` does not reflect;
- ``ONTIMEnn`` and ``LIVETInn``: the CCD's good time and live time, those of the
  filtered GTIs in a filtered list;
- ``EXPOSUnn``: frame-by-frame exposure steps (TIME = step centre, TIMEDEL, FRACEXP),
  read on demand in chunks by :func:`iter_exposure_steps`.

A NuSTAR cleaned list (TELESCOP = 'NuSTAR', INSTRUME = 'FPMA' or 'FPMB'; docs/semantics.md
§20) is read as one unit, "CCD" 0: its one ``GTI`` extension is that unit's GTI, its live
time per second comes from the housekeeping file's LIVETIME column (an exposure table of
kind ``hk``, read by :func:`iter_exposure_steps` like ``EXPOSUnn``), else from the
LIVETIME/ONTIME keywords. It has no CCDNR, PATTERN or FLAG column: :func:`iter_event_chunks`
gives those as constant 0 (:data:`NUSTAR_CONSTANT_COLUMNS`), so the EPIC screening terms
select every event of the already screened list. PI is a 40 eV channel
(:data:`schemas.energy.NUSTAR_SCALE`).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from catalog import gti as gtilib
from pipeline.read.fitsio import decompressed, is_gzip, open_fits
from pipeline.read.subspace import DataSubspace, parse_subspace, parse_time_ranges
from schemas.errors import InputFileError

if TYPE_CHECKING:  # astropy is imported when a file is read: a no-op build never loads it
    from astropy.io import fits

__all__ = [
    "REQUIRED_COLUMNS",
    "INSTRUMENTS",
    "EpicIdentity",
    "epic_identity",
    "exposure_key",
    "EventFileInfo",
    "ExposureTable",
    "TimeFilter",
    "read_event_info",
    "is_nustar_header",
    "nustar_identity",
    "NUSTAR_REQUIRED_COLUMNS",
    "NUSTAR_CONSTANT_COLUMNS",
    "NUSTAR_MODULES",
    "iter_event_chunks",
    "iter_exposure_steps",
    "read_gti_file",
    "CCD_NUMBERS",
    "ColumnSummary",
    "scan_event_columns",
]

#: Columns every event file must have (the EVENTS extension of a pn event list).
REQUIRED_COLUMNS: tuple[str, ...] = ("TIME", "X", "Y", "PI", "PATTERN", "FLAG", "CCDNR")
#: Columns a NuSTAR cleaned list must have.
NUSTAR_REQUIRED_COLUMNS: tuple[str, ...] = ("TIME", "X", "Y", "PI")
#: EPIC columns a NuSTAR list lacks, given as these constants (the module read as one unit,
#: CCD 0; no pattern or flag screening: the cleaned list is screened already).
NUSTAR_CONSTANT_COLUMNS: dict[str, int] = {"CCDNR": 0, "PATTERN": 0, "FLAG": 0}
#: NuSTAR INSTRUME values (xlcat uses them as the instrument names).
NUSTAR_MODULES: tuple[str, ...] = ("FPMA", "FPMB")
_NUSTAR_NAME = re.compile(r"nu([0-9]{11})([AB])([0-9]{2})", re.IGNORECASE)

_STDGTI = re.compile(r"STDGTI([0-9][0-9])")
_EXPOSU = re.compile(r"EXPOSU([0-9][0-9])")
#: XMM-Newton's MJD reference (TT), used when an event file gives none.
XMM_MJDREF = 50814.0
#: INSTRUME keyword -> xlcat's short camera name (as in the archive's file names).
INSTRUMENTS: dict[str, str] = {"EPN": "PN", "EMOS1": "M1", "EMOS2": "M2"}
_EXPIDSTR = re.compile(r"[SUX][0-9]{3}")
#: CCD numbers (CCDNR) of each camera.
CCD_NUMBERS: dict[str, range] = {
    "PN": range(1, 13),
    "M1": range(1, 8),
    "M2": range(1, 8),
    "FPMA": range(0, 1),
    "FPMB": range(0, 1),
}


@dataclass(frozen=True)
class ExposureTable:
    """An ``EXPOSUnn`` extension: the frame-by-frame exposure steps of one CCD.

    Attributes
    ----------
    ccd : int
        nn of the extension name.
    extname : str
    n_rows : int
    timedel : float or None
        TIMEDEL keyword (the step length when there is no TIMEDEL column).
    timedel_column : bool
        Whether each step has its own TIMEDEL.
    timesys, timeref : str
        The extension's TIMESYS and TIMEREF ('' when absent).
    file : str or None
        The file holding the table when it is not the event file (NuSTAR's hk file).
    kind : {"EXPOSU", "hk"}
        ``EXPOSU``: an EPIC ``EXPOSUnn`` extension; ``hk``: a NuSTAR housekeeping table
        (TIME, LIVETIME per row, row i covering ``[TIME_i, TIME_i+1)``).
    """

    ccd: int
    extname: str
    n_rows: int
    timedel: float | None
    timedel_column: bool
    timesys: str
    timeref: str
    file: str | None = None
    kind: str = "EXPOSU"


@dataclass(frozen=True)
class TimeFilter:
    """The TIME descriptor of one data-subspace component, resolved to a GTI.

    Attributes
    ----------
    ccds : frozenset of int or None
        CCDs of the component (None: every CCD).
    gti : numpy.ndarray or None
        The component's time filter, shape (n, 2); None when the component sets none.
    source : str
        Where it came from, e.g. ``GTI00004`` or ``DSVAL6 ranges``.
    """

    ccds: frozenset[int] | None
    gti: NDArray[np.float64] | None = field(repr=False)
    source: str


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
    ontime, livetime : dict of int to float
        ONTIMEnn and LIVETInn as written, per CCD.
    subspace : DataSubspace
        The EVENTS header's data-subspace descriptors.
    time_filters : tuple of TimeFilter
        The subspace's time filters, one per component with a TIME descriptor.
    exposures : dict of int to ExposureTable
        ``EXPOSUnn`` extensions by nn (their rows are read by :func:`iter_exposure_steps`).
    compressed : bool
        Whether the file is gzip-compressed.
    warnings : tuple of str
        Problems found while reading that do not stop the build (e.g. a data-subspace
        table that is not in the file).
    instrument : {"PN", "M1", "M2"}
        EPIC camera, from INSTRUME (``EPN``, ``EMOS1``, ``EMOS2``; absent: ``PN``, noted).
    datamode : str
        DATAMODE (only ``IMAGING`` is read; absent: ``IMAGING``, noted).
    exp_id, expidstr : str or None
        EXP_ID (obsid + exposure number) and EXPIDSTR (``S003``...), when given.
    identity_notes : tuple of str
        What was assumed about the camera, mode or exposure (for provenance).
    gti_names : dict of int to str
        The extension name of each unit's GTI when it is not ``STDGTInn`` (NuSTAR: ``GTI``).
    live_keywords : dict of int to str
        The keywords :attr:`live_fraction` came from when they are not ``LIVETInn/ONTIMEnn``.
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
    ontime: dict[int, float] = field(default_factory=dict, repr=False)
    livetime: dict[int, float] = field(default_factory=dict, repr=False)
    subspace: DataSubspace = field(default_factory=lambda: DataSubspace(()), repr=False)
    time_filters: tuple[TimeFilter, ...] = field(default=(), repr=False)
    exposures: dict[int, ExposureTable] = field(default_factory=dict, repr=False)
    compressed: bool = False
    warnings: tuple[str, ...] = ()
    # -- EPIC camera, mode and exposure (docs/semantics.md §1), from epic_identity --
    instrument: str = "PN"
    datamode: str = "IMAGING"
    exp_id: str | None = None
    expidstr: str | None = None
    identity_notes: tuple[str, ...] = ()
    gti_names: dict[int, str] = field(default_factory=dict, repr=False)
    live_keywords: dict[int, str] = field(default_factory=dict, repr=False)

    @property
    def is_nustar(self) -> bool:
        """True for a NuSTAR FPMA/FPMB list."""
        return self.instrument in NUSTAR_MODULES

    @property
    def exposure(self) -> str:
        """The exposure's key, the group's ``expid`` in the store (:func:`exposure_key`)."""
        return exposure_key(self.instrument, self.expidstr)

    def macro(self, name: str) -> str | None:
        """The text of selection macro ``#name`` (an EVENTS header keyword), or None."""
        return self.string_keywords.get(name.upper())

    def time_filter(self, ccd: int) -> tuple[NDArray[np.float64] | None, list[str]]:
        """The data subspace's time filter of one CCD, and the tables it came from.

        The union of the time filters of the components covering ``ccd`` (the subspace
        is a union of components); None when no component covering it sets a time filter.
        """
        parts = [f for f in self.time_filters if f.ccds is None or ccd in f.ccds]
        if not parts or any(f.gti is None for f in parts):
            return None, []
        return gtilib.union(*(f.gti for f in parts if f.gti is not None)), [f.source for f in parts]


def _is_table(hdu: object) -> bool:
    """Whether an HDU is a binary table."""
    from astropy.io import fits

    return isinstance(hdu, fits.BinTableHDU)


def _open(path: str | os.PathLike[str]) -> fits.HDUList:
    return open_fits(path, "events file", memmap=True)


def _events_hdu(hdul: fits.HDUList, path: str | os.PathLike[str]) -> fits.BinTableHDU:
    try:
        hdu = hdul["EVENTS"]
    except KeyError:
        _check_gzip_stream(path)
        raise InputFileError(
            f"events file {path}: no EVENTS extension; give an EPIC-pn event list"
        ) from None
    if not _is_table(hdu):
        raise InputFileError(f"events file {path}: EVENTS is not a binary table")
    return hdu


def _check_gzip_stream(path: str | os.PathLike[str]) -> None:
    """Refuse a gzip-compressed file whose stream is cut or corrupt (read to its end)."""
    if not is_gzip(path):
        return
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 20):
                pass
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputFileError(
            f"events file {path}: is not a valid gzip file ({exc}); it is probably truncated: "
            "copy or download it again"
        ) from None


def _float_key(header: fits.Header, key: str, path: str | os.PathLike[str]) -> float:
    if key not in header:
        raise InputFileError(f"events file {path} EVENTS header: keyword {key} is missing")
    try:
        value = float(header[key])
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise InputFileError(
            f"events file {path} EVENTS header: keyword {key}={header[key]!r} is not a finite "
            "number; correct the keyword (e.g. with fparkey) or give the original file"
        )
    return value


def _optional_float(
    header: fits.Header, key: str, path: str | os.PathLike[str], default: float | None = None
) -> float | None:
    """An optional numeric keyword (``default`` when absent), or a one-line error naming it."""
    if key not in header:
        return default
    return _float_key(header, key, path)


def _check_complete(hdul: fits.HDUList, path: str | os.PathLike[str]) -> None:
    """Refuse a file shorter than its headers say (each HDU's data: NAXIS1 * NAXIS2 + PCOUNT).

    Only for uncompressed files (a gzip-compressed one is checked when decompressed).
    """
    if is_gzip(path):
        return
    size = os.path.getsize(path)
    for i, hdu in enumerate(hdul):
        loc = hdu.fileinfo()["datLoc"]
        need = loc + hdu.size
        if need > size:
            raise InputFileError(
                f"events file {path}: truncated: extension {hdu.name or i} needs "
                f"{need} bytes (its header's NAXIS1 * NAXIS2 + PCOUNT after offset {loc}) "
                f"but the file has {size}; copy or download the file again"
            )


def exposure_key(instrument: str, expidstr: str | None) -> str:
    """The exposure's key in the store: camera + EXPIDSTR as in archive names (``PNS003``).

    Without EXPIDSTR the scheduled/unscheduled letter is unknown (EXP_ID holds the exposure
    number only), so the key is the camera alone (``PN``). This is the one definition of an
    exposure's ``expid`` (docs/semantics.md §1; schemas/STORE_FORMAT.md).
    """
    return instrument + (expidstr or "")


@dataclass(frozen=True)
class EpicIdentity:
    """Camera, mode and exposure of an EPIC file, from its header (:func:`epic_identity`).

    Attributes
    ----------
    instrument : {"PN", "M1", "M2"}
    datamode : str
    exp_id, expidstr : str or None
    notes : tuple of str
        What was assumed (absent keywords, an EXPIDSTR not used).
    """

    instrument: str
    datamode: str
    exp_id: str | None
    expidstr: str | None
    notes: tuple[str, ...]

    @property
    def expid(self) -> str:
        """The exposure's key (:func:`exposure_key`)."""
        return exposure_key(self.instrument, self.expidstr)


def epic_identity(
    header: fits.Header | Mapping[str, Any], where: str, *, imaging_only: bool = True
) -> EpicIdentity:
    """Camera, mode and exposure of an EPIC file from INSTRUME, DATAMODE, EXP_ID, EXPIDSTR.

    Parameters
    ----------
    header : mapping
        The header (an astropy Header, or a dict of its keywords).
    where : str
        The file and extension, for messages (``events file X EVENTS header``).
    imaging_only : bool
        Refuse a DATAMODE other than IMAGING (event lists the build extracts); False for
        light curves SAS already made (``xlcat import``).

    Returns
    -------
    EpicIdentity

    Raises
    ------
    InputFileError
        One line naming the file and the keyword: INSTRUME is not EPN, EMOS1 or EMOS2, or
        (``imaging_only``) DATAMODE is not IMAGING (TIMING, BURST...).
    """
    notes: list[str] = []
    instrume = str(header.get("INSTRUME", "") or "").strip().upper()
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
    datamode = str(header.get("DATAMODE", "") or "").strip().upper()
    if not datamode:
        datamode = "IMAGING"
        notes.append("DATAMODE absent: read as IMAGING")
    elif datamode != "IMAGING" and imaging_only:
        raise InputFileError(
            f"{where}: DATAMODE = {header['DATAMODE']!r} is not supported; "
            "give an imaging-mode event list (DATAMODE = 'IMAGING')"
        )
    exp_id = str(header["EXP_ID"]).strip() if header.get("EXP_ID") not in (None, "") else None
    expidstr = str(header.get("EXPIDSTR", "") or "").strip().upper() or None
    if expidstr is not None and not _EXPIDSTR.fullmatch(expidstr):
        notes.append(f"EXPIDSTR = {expidstr!r} is not S/U/X + 3 digits: not used")
        expidstr = None
    if expidstr is None:
        notes.append(
            f"no EXPIDSTR: exposure key {instrument!r} (EXP_ID holds no scheduled/unscheduled "
            "letter)"
        )
    return EpicIdentity(instrument, datamode, exp_id, expidstr, tuple(notes))


def is_nustar_header(header: fits.Header | Mapping[str, Any]) -> bool:
    """Whether an EVENTS header is NuSTAR's (TELESCOP = 'NuSTAR', any case)."""
    return str(header.get("TELESCOP", "") or "").strip().upper() == "NUSTAR"


def nustar_identity(header: fits.Header | Mapping[str, Any], path: str, where: str) -> EpicIdentity:
    """Module and exposure key of a NuSTAR list: ``FPMA``/``FPMB`` and the file name's mode.

    The exposure key is the module plus the two-digit mode of the archive's file name
    ``nu<obsid><A|B><mode>_cl.evt`` (``FPMA01`` for science mode 01, ``FPMA06`` for mode 06):
    the headers carry no mode keyword. A name that does not follow the pattern gives the
    module alone (``FPMA``), noted.

    Raises
    ------
    InputFileError
        INSTRUME is not FPMA or FPMB, or the file name's module letter contradicts it.
    """
    instrume = str(header.get("INSTRUME", "") or "").strip().upper()
    if instrume not in NUSTAR_MODULES:
        raise InputFileError(
            f"{where}: INSTRUME = {header.get('INSTRUME')!r} is not a NuSTAR focal plane "
            "module; give an FPMA or FPMB event list"
        )
    notes: list[str] = []
    m = _NUSTAR_NAME.match(os.path.basename(path))
    mode: str | None = None
    if m is None:
        notes.append(
            f"file name is not nu<obsid><A|B><mode>...: exposure key {instrume!r} (no mode)"
        )
    elif "FPM" + m.group(2).upper() != instrume:
        raise InputFileError(
            f"{where}: INSTRUME = {instrume!r} but the file name says FPM{m.group(2).upper()}; "
            "rename the file or check that it is the list you meant"
        )
    else:
        mode = m.group(3)
    datamode = str(header.get("DATAMODE", "") or "").strip().upper() or "NONE"
    obs_id = str(header.get("OBS_ID") or "").strip() or None
    return EpicIdentity(instrume, datamode, obs_id, mode, tuple(notes))


def _hk_table(hk: str | os.PathLike[str], where: str) -> ExposureTable:
    """The live-time table of a NuSTAR housekeeping file: its first table with TIME and LIVETIME."""
    with open_fits(hk, "housekeeping file") as hdul:
        for i, ext in enumerate(hdul[1:], start=1):
            if not _is_table(ext):
                continue
            names = {c.upper() for c in ext.columns.names}
            if {"TIME", "LIVETIME"} <= names:
                h = ext.header
                return ExposureTable(
                    ccd=0,
                    extname=ext.name.upper() or str(i),
                    n_rows=int(h.get("NAXIS2", 0)),
                    timedel=None,
                    timedel_column=False,
                    timesys=str(h.get("TIMESYS", "")).strip(),
                    timeref=str(h.get("TIMEREF", "")).strip(),
                    file=str(hk),
                    kind="hk",
                )
    raise InputFileError(
        f"housekeeping file {hk}: no table with TIME and LIVETIME columns; give the "
        f"module's nu<obsid><A|B>_fpm.hk file for {where}"
    )


def read_event_info(
    path: str | os.PathLike[str], hk: str | os.PathLike[str] | None = None
) -> EventFileInfo:
    """Read and check the headers and GTI extensions of an event file.

    Parameters
    ----------
    path : str or os.PathLike
        FITS event list with an EVENTS table and STDGTInn extensions (or a NuSTAR cleaned
        list with one GTI extension).
    hk : str or os.PathLike, optional
        NuSTAR only: the module's housekeeping file, whose LIVETIME column gives the live
        time per second (refused for an EPIC list).

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
        _check_complete(hdul, path)
        header = hdu.header
        nustar = is_nustar_header(header)
        where = f"events file {path} EVENTS header"
        if nustar:
            identity = nustar_identity(header, str(path), where)
        else:
            identity = epic_identity(header, where)
            if hk is not None:
                raise InputFileError(
                    f"events file {path}: hk = {os.fspath(hk)} is given but the list is not "
                    "NuSTAR's (TELESCOP is not 'NuSTAR'); remove hk from this observation"
                )
        names = {n.upper() for n in hdu.columns.names}
        required = NUSTAR_REQUIRED_COLUMNS if nustar else REQUIRED_COLUMNS
        for col in required:
            if col not in names:
                raise InputFileError(f"events file {path} EVENTS: column {col} is missing")
        for c in hdu.columns:
            if c.name.upper() in REQUIRED_COLUMNS and np.dtype(c.dtype).kind not in "iuf":
                raise InputFileError(
                    f"events file {path} EVENTS: column {c.name.upper()} has format "
                    f"{c.format!r}, not a number; give an event list whose {c.name.upper()} "
                    "is a numeric column (e.g. TIME as D, PI as I)"
                )
        tstart = _float_key(header, "TSTART", path)
        tstop = _float_key(header, "TSTOP", path)
        if not tstop > tstart:
            raise InputFileError(
                f"events file {path} EVENTS header: TSTOP ({tstop}) must be after TSTART ({tstart})"
            )
        if "MJDREF" in header:
            mjdref = _float_key(header, "MJDREF", path)
        elif "MJDREFI" in header:
            mjdref = _float_key(header, "MJDREFI", path) + float(
                _optional_float(header, "MJDREFF", path, 0.0) or 0.0
            )
        else:
            mjdref = XMM_MJDREF
        ccd_gtis: dict[int, NDArray[np.float64]] = {}
        gti_names: dict[int, str] = {}
        live: dict[int, float] = {}
        ontime: dict[int, float] = {}
        livetime: dict[int, float] = {}
        live_keys: dict[int, str] = {}
        for ext in hdul[1:]:
            m = _STDGTI.fullmatch(ext.name.upper())
            if m and _is_table(ext) and not nustar:
                ccd_gtis[int(m.group(1))] = _table_gti(ext, path)
            elif nustar and ext.name.upper() == "GTI" and _is_table(ext) and 0 not in ccd_gtis:
                ccd_gtis[0] = _table_gti(ext, path)
                gti_names[0] = "GTI"
        if nustar:
            lt = _optional_float(header, "LIVETIME", path)
            on = _optional_float(header, "ONTIME", path)
            if lt is not None and on:
                live[0], live_keys[0] = lt / on, "LIVETIME/ONTIME"
        for ccd in range(0, 0 if nustar else 100):
            lt = _optional_float(header, f"LIVETI{ccd:02d}", path)
            on = _optional_float(header, f"ONTIME{ccd:02d}", path)
            if on is not None:
                ontime[ccd] = on
            if lt is not None:
                livetime[ccd] = lt
            if lt is not None and on:
                live[ccd] = lt / on
        subspace = parse_subspace(header)
        warnings: list[str] = []
        time_filters = _time_filters(hdul, subspace, path, warnings)
        exposures = {} if nustar else _exposure_tables(hdul)
        if hk is not None:
            exposures[0] = _hk_table(hk, f"events file {path}")
        frm = _optional_float(header, "FRMTIME", path)
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
            frmtime=frm / 1000.0 if frm is not None else None,
            ccd_gtis=ccd_gtis,
            live_fraction=live,
            string_keywords=strings,
            ontime=ontime,
            livetime=livetime,
            subspace=subspace,
            time_filters=time_filters,
            exposures=exposures,
            compressed=is_gzip(path),
            warnings=tuple(warnings),
            instrument=identity.instrument,
            datamode=identity.datamode,
            exp_id=identity.exp_id,
            expidstr=identity.expidstr,
            identity_notes=identity.notes,
            gti_names=gti_names,
            live_keywords=live_keys,
        )


def _table_gti(ext: fits.BinTableHDU, path: str | os.PathLike[str]) -> NDArray[np.float64]:
    if not {"START", "STOP"} <= {c.upper() for c in ext.columns.names}:
        raise InputFileError(f"events file {path} {ext.name}: START and STOP columns are required")
    table = np.column_stack(
        [
            np.asarray(ext.data["START"], dtype=np.float64),
            np.asarray(ext.data["STOP"], dtype=np.float64),
        ]
    )
    _finite_bounds(table, f"events file {path} {ext.name}")
    return gtilib.normalize(table)


def _finite_bounds(table: NDArray[np.float64], where: str) -> None:
    """Refuse a GTI table with a NaN or infinite START or STOP (it would drop an interval)."""
    bad = int(np.count_nonzero(~np.isfinite(table).all(axis=1)))
    if bad:
        raise InputFileError(
            f"{where}: {bad} of {len(table)} intervals have a non-finite START or STOP "
            "(NaN or inf); correct or remove those rows"
        )


@dataclass(frozen=True)
class ColumnSummary:
    """What the planner checks of an event list's columns (:func:`scan_event_columns`).

    Attributes
    ----------
    n_rows : int
    nonfinite : dict of str to int
        Rows whose TIME, X or Y is NaN or infinite, by column (columns with none left out).
    pi_min, pi_max : int or None
        The range of PI (None for an empty list).
    ccds : tuple of int
        The CCDNR values present.
    names : tuple of str
        The EVENTS table's column names (upper case), for checking selection expressions.
    """

    n_rows: int
    nonfinite: dict[str, int]
    pi_min: int | None
    pi_max: int | None
    ccds: tuple[int, ...]
    names: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """JSON-able form, kept in the file's record so that a re-run does not scan again."""
        return {
            "columns": {
                "n_rows": self.n_rows,
                "nonfinite": dict(self.nonfinite),
                "pi": [self.pi_min, self.pi_max],
                "ccds": list(self.ccds),
                "names": list(self.names),
            }
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ColumnSummary | None:
        """The summary a file record holds, or None."""
        rec = record.get("columns")
        if not isinstance(rec, dict):
            return None
        try:
            lo, hi = rec["pi"]
            return cls(
                int(rec["n_rows"]),
                {str(k): int(v) for k, v in rec["nonfinite"].items()},
                None if lo is None else int(lo),
                None if hi is None else int(hi),
                tuple(int(c) for c in rec["ccds"]),
                tuple(str(c) for c in rec["names"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def check(self, path: str | os.PathLike[str], instrument: str) -> None:
        """Refuse non-finite TIME/X/Y rows and CCDNR values that are not the camera's CCDs.

        Raises
        ------
        InputFileError
            One line with the counts, naming the file and the column.
        """
        if self.nonfinite:
            counts = ", ".join(f"{n} a non-finite {c}" for c, n in self.nonfinite.items())
            raise InputFileError(
                f"events file {path} EVENTS: of {self.n_rows} rows, {counts} (NaN or inf); "
                "they would be dropped silently: remove them (e.g. evselect "
                "expression='isfinite(TIME)&&isfinite(X)&&isfinite(Y)') and build again"
            )
        valid = CCD_NUMBERS.get(instrument, range(1, 13))
        wrong = [c for c in self.ccds if c not in valid]
        if wrong:
            raise InputFileError(
                f"events file {path} EVENTS: column CCDNR holds {', '.join(map(str, wrong))}, "
                f"not a CCD of {instrument} ({valid.start}-{valid.stop - 1}); check the column"
            )


def scan_event_columns(path: str | os.PathLike[str], chunk_rows: int = 1_000_000) -> ColumnSummary:
    """Read TIME, X, Y, PI and CCDNR once, in chunks: non-finite counts, PI range, CCDs.

    Parameters
    ----------
    path : str or os.PathLike
        The event file (compressed files are decompressed for the scan).
    chunk_rows : int
        Rows per chunk.

    Returns
    -------
    ColumnSummary
    """
    nonfinite = {"TIME": 0, "X": 0, "Y": 0}
    n = 0
    pi_lo: int | None = None
    pi_hi: int | None = None
    ccds: set[int] = set()
    for chunk in iter_event_chunks(path, ("TIME", "X", "Y", "PI", "CCDNR"), chunk_rows):
        n += len(chunk["TIME"])
        for col in nonfinite:
            values = chunk[col]
            if values.dtype.kind == "f":
                nonfinite[col] += int(np.count_nonzero(~np.isfinite(values)))
        pi = chunk["PI"]
        if pi.dtype.kind == "f":
            pi = pi[np.isfinite(pi)]
        if len(pi):
            lo, hi = int(pi.min()), int(pi.max())
            pi_lo = lo if pi_lo is None else min(pi_lo, lo)
            pi_hi = hi if pi_hi is None else max(pi_hi, hi)
        ccds.update(int(c) for c in np.unique(chunk["CCDNR"]))
    with _open(path) as hdul:
        names = tuple(c.upper() for c in _events_hdu(hdul, path).columns.names)
    return ColumnSummary(
        n, {k: v for k, v in nonfinite.items() if v}, pi_lo, pi_hi, tuple(sorted(ccds)), names
    )


def _time_filters(
    hdul: fits.HDUList,
    subspace: DataSubspace,
    path: str | os.PathLike[str],
    warnings: list[str],
) -> tuple[TimeFilter, ...]:
    """The TIME descriptors of every component, their tables read (docs/semantics.md §4)."""
    out = []
    tables = {h.name.upper(): h for h in hdul[1:] if _is_table(h)}
    for comp in subspace.components:
        times = comp.of("TIME")
        if not times:
            out.append(TimeFilter(comp.ccds(), None, "no TIME descriptor"))
            continue
        gti: NDArray[np.float64] | None = None
        sources = []
        for d in times:
            part: NDArray[np.float64] | None = None
            ref = d.table
            if ref is not None:
                file, ext = ref
                if file:
                    warnings.append(
                        f"events file {path}: data-subspace descriptor {d.index} of component "
                        f"{comp.number} refers to table {d.ref} in another file; that time "
                        "filter is not applied (only STDGTInn and the other GTIs are)"
                    )
                elif ext not in tables:
                    warnings.append(
                        f"events file {path}: data-subspace time filter {d.ref} (component "
                        f"{comp.number}) is not an extension of the file; that time filter "
                        "is not applied"
                    )
                else:
                    part = _table_gti(tables[ext], path)
                    sources.append(ext)
            else:
                ranges = parse_time_ranges(d.value)
                if ranges is None:
                    warnings.append(
                        f"events file {path}: data-subspace TIME value {d.value!r} (component "
                        f"{comp.number}) is not understood; that time filter is not applied"
                    )
                else:
                    part = gtilib.normalize(ranges)
                    sources.append(f"DSVAL{d.index} ranges")
            if part is not None:
                gti = part if gti is None else gtilib.intersect(gti, part)
        out.append(TimeFilter(comp.ccds(), gti, " && ".join(sources) or "unreadable"))
    return tuple(out)


def _exposure_tables(hdul: fits.HDUList) -> dict[int, ExposureTable]:
    out = {}
    for ext in hdul[1:]:
        m = _EXPOSU.fullmatch(ext.name.upper())
        if not m or not _is_table(ext):
            continue
        names = {c.upper() for c in ext.columns.names}
        if not {"TIME", "FRACEXP"} <= names:
            continue
        h = ext.header
        td = h.get("TIMEDEL")
        out[int(m.group(1))] = ExposureTable(
            ccd=int(m.group(1)),
            extname=ext.name.upper(),
            n_rows=int(h.get("NAXIS2", 0)),
            timedel=float(td) if td is not None else None,
            timedel_column="TIMEDEL" in names,
            timesys=str(h.get("TIMESYS", "")).strip(),
            timeref=str(h.get("TIMEREF", "")).strip(),
        )
    return out


def iter_event_chunks(
    path: str | os.PathLike[str], columns: Sequence[str], chunk_rows: int = 1_000_000
) -> Iterator[dict[str, NDArray[Any]]]:
    """Yield the chosen EVENTS columns, ``chunk_rows`` rows at a time.

    The table is memory-mapped; each chunk is converted to native byte order
    and scaled (TZERO/TSCAL) on its own, so peak memory is a few chunks of the
    chosen columns regardless of the file size. A gzip-compressed file is
    decompressed as a stream into a temporary file for the iteration (removed when
    the iteration ends); pass an already decompressed copy
    (:func:`pipeline.read.fitsio.decompressed`) to read a compressed file more than once.

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
    with decompressed(path) as plain, _open(plain) as hdul:
        hdu = _events_hdu(hdul, path)
        # plain (name, scale, zero) tuples: holding astropy Column objects past the data access
        # would make astropy copy the whole table into memory when the file closes
        coldefs = {c.name.upper(): (c.name, c.bscale, c.bzero) for c in hdu.columns}
        constant = NUSTAR_CONSTANT_COLUMNS if is_nustar_header(hdu.header) else {}
        given = {c.upper(): constant[c.upper()] for c in columns if c.upper() in constant}
        given = {c: v for c, v in given.items() if c not in coldefs}
        missing = [c for c in columns if c.upper() not in coldefs and c.upper() not in given]
        if missing:
            raise InputFileError(f"events file {path} EVENTS: column {missing[0]} is missing")
        read = [c for c in columns if c.upper() not in given]
        raw = hdu.data.view(np.ndarray)  # memory-mapped records, no scaling, no copy
        n = len(raw)
        for lo in range(0, n, chunk_rows):
            chunk = _convert(raw[lo : lo + chunk_rows], read, coldefs)
            rows = min(chunk_rows, n - lo)
            for name, value in given.items():
                chunk[name] = np.full(rows, value, dtype=np.int16)
            yield chunk
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


def iter_exposure_steps(
    path: str | os.PathLike[str], table: ExposureTable, chunk_rows: int = 1_000_000
) -> Iterator[
    tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
]:
    """Yield the exposure steps of one ``EXPOSUnn`` extension, ``chunk_rows`` at a time.

    Step i is centred on ``TIME_i`` and covers ``[TIME_i - TIMEDEL_i / 2, TIME_i + TIMEDEL_i / 2]``
    (TIMEDEL from the column, else the extension's keyword), with the fraction FRACEXP_i
    of it exposed (docs/semantics.md §5).

    Parameters
    ----------
    path : str or os.PathLike
        The event file (compressed files are decompressed for the iteration).
    table : ExposureTable
        The extension (from :attr:`EventFileInfo.exposures`).
    chunk_rows : int
        Rows per chunk.

    Yields
    ------
    (centre, start, stop, fracexp) : tuple of numpy.ndarray
        Float64 arrays of one chunk's steps.

    Raises
    ------
    InputFileError
        If the extension has neither a TIMEDEL column nor a TIMEDEL keyword.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    if table.kind == "hk":
        yield from _hk_steps(table)
        return
    if not table.timedel_column and table.timedel is None:
        raise InputFileError(
            f"events file {path} {table.extname}: no TIMEDEL column or keyword gives the "
            "length of the exposure steps"
        )
    with decompressed(path) as plain, _open(plain) as hdul:
        ext = hdul[table.extname]
        coldefs = {c.name.upper(): (c.name, c.bscale, c.bzero) for c in ext.columns}
        names = ["TIME", "FRACEXP"] + (["TIMEDEL"] if table.timedel_column else [])
        raw = ext.data.view(np.ndarray)
        for lo in range(0, len(raw), chunk_rows):
            cols = _convert(raw[lo : lo + chunk_rows], names, coldefs)
            t = cols["TIME"].astype(np.float64)
            td = (
                cols["TIMEDEL"].astype(np.float64)
                if table.timedel_column
                else np.full(len(t), float(table.timedel or 0.0))
            )
            yield t, t - 0.5 * td, t + 0.5 * td, cols["FRACEXP"].astype(np.float64)
        del raw


def _hk_steps(
    table: ExposureTable,
) -> Iterator[
    tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]
]:
    """The live-time steps of a NuSTAR housekeeping table (docs/semantics.md §20).

    Row i covers ``[TIME_i, TIME_i+1)`` (the last row as long as the median row), and its live
    fraction is ``LIVETIME_i`` divided by that length, clipped to [0, 1]: the live seconds
    nulccorr takes from the same column. Rows are sorted by TIME first.
    """
    assert table.file is not None
    with open_fits(table.file, "housekeeping file") as hdul:
        ext = hdul[table.extname] if not table.extname.isdigit() else hdul[int(table.extname)]
        t = np.asarray(ext.data["TIME"], dtype=np.float64)
        live = np.asarray(ext.data["LIVETIME"], dtype=np.float64)
    if len(t) == 0:
        return
    order = np.argsort(t, kind="stable")
    t, live = t[order], live[order]
    bad = ~(np.isfinite(t) & np.isfinite(live))
    if bad.any():
        raise InputFileError(
            f"housekeeping file {table.file} {table.extname}: {int(bad.sum())} rows have a "
            "non-finite TIME or LIVETIME; give the archive's hk file"
        )
    step = np.diff(t)
    last = float(np.median(step)) if len(step) else 1.0
    length = np.append(step, last)
    if np.any(length <= 0):
        raise InputFileError(
            f"housekeeping file {table.file} {table.extname}: TIME repeats a value; give the "
            "archive's hk file"
        )
    frac = np.clip(live / length, 0.0, 1.0)
    yield t + 0.5 * length, t, t + length, frac


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
        tables = [h for h in hdul[1:] if _is_table(h)]
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
    _finite_bounds(np.column_stack([start, stop]), f"GTI file {path} extension {chosen.name}")
    if np.any(stop < start):
        raise InputFileError(f"GTI file {path} extension {chosen.name}: a STOP precedes its START")
    return gtilib.normalize(np.column_stack([start, stop]))
