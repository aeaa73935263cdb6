"""The sky WCS of an event list's X and Y columns, for regions given in celestial coordinates.

An event list states how its sky pixels map to the sky with the pixel-list keywords of its
X and Y columns (``TCTYPn``, ``TCRVLn``, ``TCRPXn``, ``TCDLTn``, ``TCUNIn``, and ``TCROTn``
or ``TPCn_m`` / ``TCDn_m`` where given) and the frame keywords ``RADESYS`` (or the older
``RADECSYS``) and ``EQUINOX``. astropy.wcs reads the column keywords; the frame keywords,
which wcslib does not take from a binary-table header, are set from the header here. Every
keyword is checked first: astropy turns a malformed value into a warning and a default
(NuSTAR's string ``TCRVL13 = '0.0'`` becomes 0), which would put a region in the wrong
place without a word. Rules: docs/semantics.md §2.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from pipeline.read.fitsio import open_fits
from schemas.errors import InputFileError

__all__ = ["SkyPixelWCS", "read_sky_wcs", "sky_wcs_from_header"]

#: Celestial axis types a sky-pixel column may carry (longitude, latitude), without projection.
_CELESTIAL = (("RA", "DEC"), ("GLON", "GLAT"), ("ELON", "ELAT"))


@dataclass(frozen=True)
class SkyPixelWCS:
    """The celestial WCS of the X/Y columns: column value (FITS pixel, 1-based) <-> sky.

    Attributes
    ----------
    wcs : astropy.wcs.WCS
        Two axes, X then Y; pixel coordinates are the column values with origin 1.
    path : str
        The event file (for messages).
    keywords : dict
        The keywords it was built from (for provenance).
    """

    wcs: Any = field(repr=False)
    path: str
    keywords: dict[str, Any]


def _column_numbers(header: fits.Header, where: str) -> tuple[int, int]:
    names = {
        str(header.get(f"TTYPE{i}", "")).strip().upper(): i
        for i in range(1, int(header.get("TFIELDS", 0)) + 1)
    }
    missing = [c for c in ("X", "Y") if c not in names]
    if missing:
        raise InputFileError(f"{where}: no {missing[0]} column; sky regions need X and Y columns")
    return names["X"], names["Y"]


def _number(header: fits.Header, key: str, where: str, hint: str) -> float:
    if key not in header:
        raise InputFileError(f"{where}: keyword {key} is missing; {hint}")
    value = header[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputFileError(
            f"{where}: keyword {key} = {value!r} is not a number (a {type(value).__name__}); {hint}"
        )
    return float(value)


def sky_wcs_from_header(header: fits.Header, path: str | os.PathLike[str]) -> SkyPixelWCS:
    """The X/Y column WCS of an EVENTS header, checked.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The EVENTS extension's header.
    path : str or os.PathLike
        The event file, for messages.

    Returns
    -------
    SkyPixelWCS

    Raises
    ------
    InputFileError
        One line naming the file and the keyword when the X/Y columns lack a complete, numeric,
        celestial WCS (a missing TCTYPn, TCRVLn, TCRPXn or TCDLTn, a value that is not a
        number, a zero scale, axis types that are not a longitude/latitude pair).
    """
    where = f"events file {os.fspath(path)} EVENTS header"
    hint = "sky regions need the X/Y column WCS; give the regions in physical coordinates"
    ix, iy = _column_numbers(header, where)
    keywords: dict[str, Any] = {"columns": {"X": ix, "Y": iy}}
    types = []
    for i in (ix, iy):
        key = f"TCTYP{i}"
        ctype = header.get(key)
        if not isinstance(ctype, str) or not ctype.strip():
            raise InputFileError(f"{where}: keyword {key} is missing; {hint}")
        types.append(ctype.strip().upper())
        keywords[key] = ctype
        for prefix in ("TCRVL", "TCRPX", "TCDLT"):
            keywords[f"{prefix}{i}"] = _number(header, f"{prefix}{i}", where, hint)
        if keywords[f"TCDLT{i}"] == 0:
            raise InputFileError(f"{where}: keyword TCDLT{i} = 0; {hint}")
    axes = tuple(t.split("-", 1)[0] for t in types)
    if axes not in _CELESTIAL or not all(len(t) == 8 and t[4] == "-" for t in types):
        raise InputFileError(
            f"{where}: TCTYP{ix}, TCTYP{iy} = {types[0]!r}, {types[1]!r} are not a celestial "
            f"longitude/latitude pair such as 'RA---TAN', 'DEC--TAN'; {hint}"
        )
    radesys = header.get("RADESYS", header.get("RADECSYS"))
    equinox = header.get("EQUINOX")
    if equinox is not None:
        equinox = _number(header, "EQUINOX", where, hint)
    with warnings.catch_warnings():
        # the checks above cover what astropy would only warn about
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(header, keysel=["pixel"], colsel=[ix, iy], fix=False)
        if radesys is not None:
            wcs.wcs.radesys = str(radesys).strip().upper()
        if equinox is not None:
            wcs.wcs.equinox = equinox
        wcs.wcs.set()
    keywords.update({"RADESYS": wcs.wcs.radesys, "EQUINOX": equinox})
    return SkyPixelWCS(wcs=wcs, path=os.fspath(path), keywords=keywords)


def read_sky_wcs(path: str | os.PathLike[str]) -> SkyPixelWCS:
    """Read and check the X/Y column WCS of an event file's EVENTS table.

    Parameters
    ----------
    path : str or os.PathLike
        Event file (plain or gzip-compressed FITS).

    Returns
    -------
    SkyPixelWCS

    Raises
    ------
    InputFileError
        If the file is unreadable, has no EVENTS table, or its X/Y WCS is absent or malformed
        (see :func:`sky_wcs_from_header`).
    """
    with open_fits(path, "events file") as hdul:
        if "EVENTS" not in hdul:
            raise InputFileError(f"events file {os.fspath(path)}: no EVENTS extension")
        header = hdul["EVENTS"].header.copy()
    return sky_wcs_from_header(header, path)
