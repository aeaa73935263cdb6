"""A first build file and ds9 regions for a folder of EPIC event lists (``xlcat init``).

:func:`scaffold_build` scans a folder (and its sub-folders) for FITS files by name
(:data:`EVENT_SUFFIXES`: ``.fits``, ``.fits.gz``, ``.FTZ``, ``.evt``, ``.ds``, ...), decides from
each file's headers whether it is an EPIC imaging event list (an EVENTS table, INSTRUME,
DATAMODE: :func:`pipeline.read.events.read_event_info`'s rules) and says why the others are
skipped (a GTI table, a light curve, a timing-mode list, another instrument). For every event
list it reads OBS_ID, the exposure (INSTRUME + EXPIDSTR) and the target position (RA_OBJ /
DEC_OBJ, else RA_PNT / DEC_PNT), and places a source and a background circle on the events
(:mod:`pipeline.build.placement`), written in fk5 degrees through the file's X/Y column WCS
(:func:`pipeline.read.wcs.read_sky_wcs`), or in physical pixels when the file has none.

The build file it writes loads with :func:`schemas.build.load_build` as it is: the store, the
time bin, one ``[[observations]]`` entry per event list (paths relative to the build file), no
screening table (the cameras' defaults apply when the event files are read), the flare filter
commented out with the cameras' defaults, and one example energy scheme. A store holds one
event list per exposure: of several lists of one exposure (the archive's and a filtered
one) one is listed and the others are written commented out; when the build-file schema takes
one event list per obsid, so are further exposures of an obsid.
"""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import FK5, SkyCoord
from astropy.io import fits
from astropy.wcs.utils import pixel_to_skycoord, proj_plane_pixel_scales, skycoord_to_pixel
from numpy.typing import NDArray
from pydantic import ValidationError

from pipeline.build.placement import (
    CCD_PURITY,
    BackgroundChoice,
    brightest_spot,
    choose_background,
    recentre,
    source_ccd,
    source_excess,
)
from pipeline.read.events import (
    INSTRUMENTS,
    NUSTAR_MODULES,
    EventFileInfo,
    is_nustar_header,
    iter_event_chunks,
    read_event_info,
)
from pipeline.read.fitsio import open_fits
from pipeline.read.wcs import SkyPixelWCS, read_sky_wcs
from pipeline.select.expression import compile_expression
from pipeline.select.regions import parse_regions
from pipeline.select.shapes import Circle
from schemas.build import DEFAULT_FLARE, DEFAULT_SCREENING, BuildFile, parse_build
from schemas.errors import ConfigError, InputFileError
from schemas.schemes import preset_names

__all__ = [
    "EVENT_SUFFIXES",
    "SOURCE_RADIUS_ARCSEC",
    "BACKGROUND_RINGS_ARCSEC",
    "BACKGROUND_RADII_ARCSEC",
    "EXAMPLE_SCHEME",
    "Skipped",
    "RegionPlan",
    "ListedEventFile",
    "Scaffold",
    "find_event_lists",
    "place_regions",
    "scaffold_build",
    "find_hk",
]

#: File names read as FITS (case-insensitive); other files in the folder are not opened.
EVENT_SUFFIXES: tuple[str, ...] = (
    ".fits",
    ".fit",
    ".fts",
    ".ftz",
    ".evt",
    ".ds",
    ".fits.gz",
    ".fit.gz",
    ".fts.gz",
    ".evt.gz",
    ".ds.gz",
)
#: First source-circle radius per camera, arcsec: about 80 % of the PSF's energy (a choice to
#: check: a bright source wants more, a faint one less, a piled-up one an annulus).
SOURCE_RADIUS_ARCSEC: dict[str, float] = {
    "PN": 20.0,
    "M1": 15.0,
    "M2": 15.0,
    # NuSTAR: a 60" circle holds about 75 % of the PSF's energy (HPD 58")
    "FPMA": 60.0,
    "FPMB": 60.0,
}
#: Distances of the background candidates' centres from the source, arcsec (1.5'-3').
BACKGROUND_RINGS_ARCSEC: tuple[float, ...] = (90.0, 120.0, 150.0, 180.0)
#: Background candidate radii, arcsec, largest first.
BACKGROUND_RADII_ARCSEC: tuple[float, ...] = (60.0, 45.0, 30.0)
#: The example scheme of the written build file: name and TOML table.
EXAMPLE_SCHEME: tuple[str, str] = ("soft_hard", '{ unit = "keV", edges = [0.5, 2, 10] }')
#: The example scheme for NuSTAR lists (the EPIC one is then limited to EPIC).
NUSTAR_EXAMPLE_SCHEME: tuple[str, str] = (
    "nustar",
    '{ unit = "keV", edges = [3, 10, 79], instruments = ["FPMA", "FPMB"] }',
)
#: XMM-Newton sky pixel, arcsec: the scale assumed for a list without a usable X/Y WCS.
XMM_SKY_PIXEL_ARCSEC = 0.05
#: NuSTAR sky pixel, arcsec (the same for a list without a usable X/Y WCS).
NUSTAR_SKY_PIXEL_ARCSEC = 2.46

_CAMERA_NAMES = {"PN": "pn", "M1": "MOS1", "M2": "MOS2", "FPMA": "FPMA", "FPMB": "FPMB"}
_CAMERA_ORDER = {"PN": 0, "M1": 1, "M2": 2, "FPMA": 3, "FPMB": 4}
#: Archive (PPS) event-list names: P<obsid><camera><S|U|X><nnn>...EVLI...
_PPS_NAME = re.compile(r"^P(\d{10})(PN|M1|M2)([SUX]\d{3})\w*EVLI", re.IGNORECASE)
_TARGET_KEYS = (("RA_OBJ", "DEC_OBJ"), ("RA_PNT", "DEC_PNT"))


@dataclass(frozen=True)
class Skipped:
    """A FITS file of the folder that is not in the build, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class RegionPlan:
    """The regions placed for one event list.

    Attributes
    ----------
    frame : {"fk5", "physical"}
        The coordinate system the regions file is written in.
    source : Circle
        Source circle, sky pixels.
    source_arcsec : float
        Its radius, arcsec.
    source_sky : (float, float) or None
        Its centre, fk5 degrees (None without a WCS).
    source_how : str
        How the centre was found (the ``# check:`` line says it).
    target : (float, float, str) or None
        The header's target position (fk5 degrees) and the keywords it came from.
    ccd : int or None
        The CCD the source is on.
    ccd_share : float or None
        Fraction of the source circle's events on that CCD.
    background : BackgroundChoice or None
        The background circle (sky pixels), or None: source-only.
    background_arcsec : float or None
        Its radius, arcsec.
    text : str
        The regions file.
    summary : str
        One line for the command line.
    """

    frame: str
    source: Circle
    source_arcsec: float
    source_sky: tuple[float, float] | None
    source_how: str
    target: tuple[float, float, str] | None
    ccd: int | None
    ccd_share: float | None
    background: BackgroundChoice | None
    background_arcsec: float | None
    text: str
    summary: str


@dataclass(frozen=True)
class ListedEventFile:
    """An event list of the folder, its regions, and its place in the build file.

    Attributes
    ----------
    path : Path
        The event list, as found in the folder (symbolic links are not resolved).
    info : EventFileInfo
        Its headers.
    obsid : str
        The 10-digit obsid.
    regions : Path
        Its regions file (next to the build file, ``regions/<obsid>_<exposure>.reg``).
    plan : RegionPlan
        The regions placed.
    active : bool
        Listed in the build file; False: written commented out (see ``remarks``).
    remarks : tuple of str
        What the build file says about it (commented out because..., a name/header mismatch).
    hk : Path or None
        NuSTAR: the module's housekeeping file found beside the list (:func:`find_hk`).
    """

    path: Path
    info: EventFileInfo
    obsid: str
    regions: Path
    plan: RegionPlan
    active: bool
    remarks: tuple[str, ...] = ()
    hk: Path | None = None


@dataclass(frozen=True)
class Scaffold:
    """A build file and its regions files, ready to be written.

    Attributes
    ----------
    folder : Path
        The folder scanned.
    output : Path
        The build file.
    text : str
        The build file's text (checked with :func:`schemas.build.parse_build`).
    entries : tuple of ListedEventFile
        The event lists, in build-file order.
    skipped : tuple of Skipped
        FITS files that are not event lists EPIC imaging lists, with the reason.
    ignored : int
        Files not named like FITS (not opened).
    """

    folder: Path
    output: Path
    text: str
    entries: tuple[ListedEventFile, ...]
    skipped: tuple[Skipped, ...]
    ignored: int
    regions: dict[Path, str] = field(repr=False, default_factory=dict)

    def outputs(self) -> list[Path]:
        """The files :meth:`write` writes: the build file, then the regions files."""
        return [self.output, *self.regions]

    def write(self, *, force: bool = False) -> list[Path]:
        """Write the regions files and the build file.

        Parameters
        ----------
        force : bool
            Overwrite files that exist (otherwise refuse before writing anything).

        Returns
        -------
        list of Path
            The files written.

        Raises
        ------
        ConfigError
            If a file exists and ``force`` is False.
        """
        if not force:
            if self.output.exists():
                raise ConfigError(
                    f"build file {self.output} exists; give --force to overwrite it and its "
                    "regions files, or another -o"
                )
            for path in self.regions:
                if path.exists():
                    raise ConfigError(
                        f"regions file {path} exists (edits to it would be lost); give --force "
                        "to overwrite it, or another -o"
                    )
        for path, text in self.regions.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(self.text, encoding="utf-8")  # last: no build file without regions
        return self.outputs()


# -- finding the event lists -------------------------------------------------------------------
def _walk(folder: Path) -> Iterator[Path]:
    """Files under ``folder`` in sorted order, skipping hidden folders and Zarr stores."""
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not d.endswith(".zarr"))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name


def _looks_like_fits(path: Path) -> bool:
    return path.name.lower().endswith(EVENT_SUFFIXES)


def _what_it_is(hdul: fits.HDUList) -> str:
    """Why a FITS file without an EVENTS table is not an event list, in a few words."""
    tables = [h for h in hdul[1:] if isinstance(h, (fits.BinTableHDU, fits.TableHDU))]
    names = [h.name or "(no name)" for h in hdul[1:]]
    listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    classes = {str(h.header.get("HDUCLAS1", "")).strip().upper() for h in tables}
    upper = [n.upper() for n in names]
    if "LIGHTCURVE" in classes or "RATE" in upper:
        kind = "a light curve"
    elif "SPECTRUM" in classes or "SPECTRUM" in upper:
        kind = "a spectrum"
    elif "GTI" in classes or (tables and all("GTI" in n for n in upper)):
        kind = "a GTI table"
    elif not tables:
        kind = "an image" if hdul[0].header.get("NAXIS", 0) else "no table at all"
    else:
        kind = "not an event list"
    return f"no EVENTS table (extensions: {listed or 'none'}): {kind}"


def _identity_reason(header: fits.Header) -> str | None:
    """Why an EVENTS table is not an EPIC imaging list (INSTRUME, DATAMODE) nor a NuSTAR
    FPMA/FPMB list, or None."""
    instrume = str(header.get("INSTRUME", "")).strip().upper()
    if is_nustar_header(header):
        if instrume in NUSTAR_MODULES:
            return None
        return f"INSTRUME = {header.get('INSTRUME')!r} of NuSTAR is not FPMA or FPMB"
    if instrume and instrume not in INSTRUMENTS:
        telescope = str(header.get("TELESCOP", "")).strip()
        on = f" of {telescope}" if telescope else ""
        return (
            f"INSTRUME = {header['INSTRUME']!r}{on} is not an XMM-Newton EPIC camera "
            "(EPN, EMOS1, EMOS2)"
        )
    datamode = str(header.get("DATAMODE", "")).strip().upper()
    if datamode and datamode != "IMAGING":
        mode = "a timing-mode list" if datamode == "TIMING" else f"a {datamode.lower()}-mode list"
        return f"DATAMODE = {header['DATAMODE']!r}: {mode}; xlcat reads imaging-mode lists only"
    return None


def _obsid(info: EventFileInfo, path: Path) -> tuple[str | None, str | None]:
    """The obsid (OBS_ID, else the archive file name), and a note when from the name."""
    obs_id = info.obs_id.strip()
    if len(obs_id) == (11 if info.is_nustar else 10) and obs_id.isascii() and obs_id.isdigit():
        return obs_id, None
    m = _PPS_NAME.match(path.name)
    if m:
        return m.group(1), f"OBS_ID = {info.obs_id!r} is not an obsid: {m.group(1)} from the name"
    return None, None


def find_event_lists(
    folder: str | os.PathLike[str],
) -> tuple[list[tuple[Path, EventFileInfo, str, list[str]]], list[Skipped], int]:
    """The EPIC imaging event lists under a folder, the FITS files skipped, and the rest.

    Parameters
    ----------
    folder : str or os.PathLike
        Searched with its sub-folders (hidden folders and ``*.zarr`` stores are not entered).

    Returns
    -------
    (lists, skipped, ignored)
        ``lists``: (path, header facts, obsid, notes) per event list; ``skipped``: FITS files
        that are not EPIC imaging event lists, with the reason; ``ignored``: how many files are
        not named like FITS (:data:`EVENT_SUFFIXES`) and were not opened.

    Raises
    ------
    InputFileError
        If the folder does not exist or is empty.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputFileError(f"folder {root}: not found; give a folder of event lists")
    files = list(_walk(root))
    if not files:
        raise InputFileError(
            f"folder {root}: empty; put event lists in it ({', '.join(EVENT_SUFFIXES[:7])}, ...)"
        )
    found: list[tuple[Path, EventFileInfo, str, list[str]]] = []
    skipped: list[Skipped] = []
    ignored = 0
    for path in files:
        if not _looks_like_fits(path):
            ignored += 1
            continue
        try:
            with open_fits(path, "file") as hdul:
                if "EVENTS" not in hdul:
                    skipped.append(Skipped(path, _what_it_is(hdul)))
                    continue
                header = hdul["EVENTS"].header
                reason = _identity_reason(header)
        except InputFileError as exc:
            skipped.append(Skipped(path, str(exc).split(": ", 1)[-1]))
            continue
        except (OSError, ValueError) as exc:  # a truncated or malformed file opened lazily
            skipped.append(Skipped(path, f"cannot be read ({exc})"))
            continue
        if reason is not None:
            skipped.append(Skipped(path, reason))
            continue
        try:
            info = read_event_info(path)
        except InputFileError as exc:
            skipped.append(Skipped(path, str(exc).removeprefix(f"events file {path}").lstrip(" :")))
            continue
        obsid, note = _obsid(info, path)
        if obsid is None:
            skipped.append(
                Skipped(
                    path,
                    f"OBS_ID = {info.obs_id!r} is not a 10-digit XMM-Newton obsid (and the name "
                    "is not an archive name P<obsid>...)",
                )
            )
            continue
        found.append((path, info, obsid, [note] if note else []))
    return found, skipped, ignored


# -- reading what the placement needs ---------------------------------------------------------
def _target(headers: Sequence[fits.Header]) -> tuple[SkyCoord, str] | None:
    """The target position (RA_OBJ/DEC_OBJ, else RA_PNT/DEC_PNT) of the EVENTS or primary header."""
    for ra_key, dec_key in _TARGET_KEYS:
        for header in headers:
            ra, dec = header.get(ra_key), header.get(dec_key)
            numbers = all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in (ra, dec)
            )
            if not numbers:
                continue
            ra, dec = float(ra), float(dec)
            if math.isfinite(ra) and math.isfinite(dec) and 0 <= ra <= 360 and -90 <= dec <= 90:
                system = str(header.get("RADESYS", header.get("RADECSYS", "FK5"))).strip().upper()
                if system == "ICRS":
                    coord = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
                else:  # XMM-Newton lists: FK5, equinox 2000
                    equinox = header.get("EQUINOX")
                    year = float(equinox) if isinstance(equinox, (int, float)) else 2000.0
                    coord = SkyCoord(ra * u.deg, dec * u.deg, frame=FK5(equinox=f"J{year:g}"))
                return coord.transform_to(FK5(equinox="J2000")), f"{ra_key}/{dec_key}"
    return None


def _headers(path: Path) -> list[fits.Header]:
    with open_fits(path, "events file") as hdul:
        return [hdul["EVENTS"].header.copy(), hdul[0].header.copy()]


def _screened_events(
    path: Path, info: EventFileInfo
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int16]]:
    """X, Y and CCDNR of the events passing the camera's default screening.

    The screening is :data:`schemas.build.DEFAULT_SCREENING` of the list's camera (the one the
    build applies without a screening table); a macro the header lacks reads ``FLAG==0``.
    """
    rule = DEFAULT_SCREENING[info.instrument]
    terms = [f"(PATTERN<={rule['pattern_max']})", f"(PI in [{rule['pi'][0]}:{rule['pi'][1]}])"]
    if rule["flag_zero"]:
        terms.append("(FLAG==0)")
    if rule["expression"]:
        terms.append(f"({rule['expression']})")
    expression = compile_expression(
        " && ".join(terms),
        macros=lambda name: info.macro(name) or "FLAG==0",
        source=f"events file {path}: default screening",
        error=InputFileError,
    )
    columns = sorted({"X", "Y", "CCDNR"} | set(expression.columns))
    xs, ys, cs = [], [], []
    for chunk in iter_event_chunks(path, columns):
        keep = expression.evaluate(chunk)
        xs.append(chunk["X"][keep].astype(np.float32))
        ys.append(chunk["Y"][keep].astype(np.float32))
        cs.append(chunk["CCDNR"][keep].astype(np.int16))
    if not xs:
        return np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)


# -- placing the regions ------------------------------------------------------------------------
def _arcsec(value: float) -> str:
    """A length in arcsec for messages: 6.4", 2.5'."""
    return f"{value / 60:.1f}'" if value >= 90 else f'{value:.1f}"'


def _size(value: float) -> str:
    """A region size in ds9 syntax, arcsec: 15", 60"."""
    return f'{round(value, 6):g}"'


def _deg(value: float) -> str:
    return f"{value:.7f}"


@dataclass(frozen=True)
class _SkyPixels:
    """An event list's sky pixels: their WCS (None without a usable one) and arcsec per pixel."""

    wcs: SkyPixelWCS | None
    scale: float
    why_not: str = ""

    @classmethod
    def of(cls, path: Path, nustar: bool = False) -> _SkyPixels:
        try:
            wcs = read_sky_wcs(path)
        except InputFileError as exc:
            reason = str(exc).split(": ", 1)[-1].split(";")[0]
            return cls(None, NUSTAR_SKY_PIXEL_ARCSEC if nustar else XMM_SKY_PIXEL_ARCSEC, reason)
        return cls(wcs, float(np.mean(proj_plane_pixel_scales(wcs.wcs))) * 3600.0)

    def pixel(self, coord: SkyCoord) -> tuple[float, float]:
        assert self.wcs is not None
        x, y = skycoord_to_pixel(coord, self.wcs.wcs, origin=1)
        return float(x), float(y)

    def fk5(self, x: float, y: float) -> tuple[float, float]:
        assert self.wcs is not None
        c = pixel_to_skycoord(x, y, self.wcs.wcs, origin=1).transform_to(FK5(equinox="J2000"))
        return float(c.ra.deg), float(c.dec.deg)


@dataclass(frozen=True)
class _SourcePlace:
    """Where the source circle goes: its centre, the ``# check:`` text, a short form, notes."""

    centre: tuple[float, float]
    check: str
    short: str
    notes: tuple[str, ...] = ()


def _place_source(
    x: NDArray[np.float32],
    y: NDArray[np.float32],
    pixels: _SkyPixels,
    target: tuple[SkyCoord, str] | None,
    radius_arcsec: float,
    recentre_source: bool,
) -> _SourcePlace | None:
    """The source circle's centre (see :func:`place_regions`); None when there is nowhere."""
    r_px = radius_arcsec / pixels.scale
    if target is None or pixels.wcs is None:
        spot = brightest_spot(x, y, r_px)
        if pixels.wcs is None:
            why = f"no usable X/Y WCS, {pixels.why_not}: physical pixels"
        else:
            why = "the header gives no target position RA_OBJ/DEC_OBJ or RA_PNT/DEC_PNT"
        if spot is None:
            return None
        return _SourcePlace(
            spot,
            f"source circle on the brightest spot of the events ({why})",
            "on the brightest spot of the events",
        )
    coord, keys = target
    notes = ["the header gives no RA_OBJ/DEC_OBJ: the target is the pointing"] * (
        keys == "RA_PNT/DEC_PNT"
    )
    tx, ty = pixels.pixel(coord)
    near = int(np.count_nonzero((x - tx) ** 2 + (y - ty) ** 2 <= r_px**2))
    spot = brightest_spot(x, y, r_px) if near == 0 else None
    if spot is not None:
        away = _arcsec(math.hypot(spot[0] - tx, spot[1] - ty) * pixels.scale)
        return _SourcePlace(
            spot,
            f"source circle on the brightest spot of the events, {away} from the target "
            f"position {keys} (no event within {_size(radius_arcsec)} of it)",
            f"on the brightest spot of the events, {away} from {keys}",
            tuple(notes),
        )
    moved = recentre(x, y, (tx, ty), r_px, max_shift=r_px) if recentre_source and near else None
    if moved is not None:
        excess = source_excess(x, y, moved, r_px, 60.0 / pixels.scale, 180.0 / pixels.scale)
        shift = _arcsec(math.hypot(moved[0] - tx, moved[1] - ty) * pixels.scale)
        if excess.significant:
            return _SourcePlace(
                moved,
                f"source circle at the target position {keys}, moved {shift} onto the "
                "events' centroid",
                f"at {keys}, moved {shift} onto the events",
                tuple(notes),
            )
        notes.append(
            f"no source stands out within {_size(radius_arcsec)} of the target ({excess.counts} "
            f'events, {excess.expected:.1f} expected from a 60"-180" ring): kept at the target'
        )
    return _SourcePlace(
        (tx, ty), f"source circle at the target position {keys}", f"at {keys}", tuple(notes)
    )


def _background_comment(bkg: BackgroundChoice, ccd: int, scale: float) -> list[str]:
    """The ``# check:`` line of a background circle and how it was chosen."""
    rings = BACKGROUND_RINGS_ARCSEC
    span = f"{_arcsec(min(rings))}-{_arcsec(max(rings))}"
    where = f"radius {_size(bkg.r * scale)}, {_arcsec(bkg.ring * scale)} from the source"
    lines = [
        f"# check: background circle on the same CCD (CCD {ccd}), free of sources; "
        "move it if needed"
    ]
    if bkg.qualified:
        share = "all" if bkg.on_ccd == bkg.events else f"{bkg.purity:.1%}"
        lines.append(
            f"# chosen of {bkg.candidates} circles {span} from the source: {where}, "
            f"{bkg.events:,} screened events ({share} on CCD {ccd}), the lowest count density "
            f"of those lying on CCD {ccd}"
        )
        return lines
    faults = []
    if not bkg.away:
        faults.append("close to the source")
    if bkg.events and bkg.purity < CCD_PURITY:
        faults.append(f"only {bkg.purity:.1%} of its {bkg.events:,} events on CCD {ccd}")
    if not bkg.inside_ccd:
        faults.append(f"partly beyond the area of CCD {ccd}'s events")
    lines.append(
        f"# no circle {span} from the source lies on CCD {ccd} with >= {CCD_PURITY:.0%} of its "
        f"events on it and clear of the source: this is the best one ({where}; "
        f"{', '.join(faults)}); move it"
    )
    return lines


def place_regions(
    path: str | os.PathLike[str],
    info: EventFileInfo,
    *,
    label: str | None = None,
    recentre_source: bool = True,
) -> RegionPlan:
    """Place a source and a background circle on an event list and write its regions file.

    The source circle (radius :data:`SOURCE_RADIUS_ARCSEC` of the camera) goes to the target
    position (RA_OBJ/DEC_OBJ, else RA_PNT/DEC_PNT, converted with the X/Y column WCS) and,
    when a source stands out there (5 sigma above a 60"-180" ring), onto the centroid of the
    events around it, moving at most one radius (``recentre_source=False``: stays at the
    target). Without events within a radius of the target, or without a target or a WCS, it
    goes to the brightest spot of the list. The background circle is chosen by
    :func:`pipeline.build.placement.choose_background` on rings
    :data:`BACKGROUND_RINGS_ARCSEC` with radii :data:`BACKGROUND_RADII_ARCSEC`, on the source's
    CCD; a list with no events around the source gets none (source-only curves). Only events
    passing the camera's default screening are used. The regions are written in fk5 degrees,
    or in physical pixels when the list has no usable X/Y WCS.

    Parameters
    ----------
    path : str or os.PathLike
        The event list.
    info : EventFileInfo
        Its headers (:func:`pipeline.read.events.read_event_info`).
    label : str, optional
        How the regions file names the event list (default: its path).
    recentre_source : bool
        Move the source circle onto the events' centroid near the target.

    Returns
    -------
    RegionPlan

    Raises
    ------
    InputFileError
        If no event passes the screening and the header gives no target position (or the file
        no WCS): there is nowhere to put a source circle.
    """
    path = Path(path)
    camera = info.instrument
    radius_arcsec = SOURCE_RADIUS_ARCSEC[camera]
    pixels = _SkyPixels.of(path, info.is_nustar)
    target = _target(_headers(path))
    x, y, ccd = _screened_events(path, info)
    r_px = radius_arcsec / pixels.scale
    place = _place_source(x, y, pixels, target, radius_arcsec, recentre_source)
    if place is None:
        raise InputFileError(
            f"events file {path}: no event passes the {camera} default screening and there is no "
            "target position to go by: nowhere to put a source circle"
        )
    centre = place.centre
    source = Circle(centre[0], centre[1], r_px)
    on = source_ccd(x, y, ccd, centre, r_px)
    name = _CAMERA_NAMES[camera]
    other = {"PN": "M1", "FPMA": "FPMB", "FPMB": "FPMA"}.get(camera, "PN")
    notes = list(place.notes)
    if pixels.wcs is None and info.is_nustar:
        notes.append(f'sizes from the NuSTAR sky pixel, {NUSTAR_SKY_PIXEL_ARCSEC}"/pixel')
    elif pixels.wcs is None:
        notes.append(f'sizes from the XMM-Newton sky pixel, {XMM_SKY_PIXEL_ARCSEC}"/pixel')
    notes.append(
        f"radius {_size(radius_arcsec)}, the first choice for {name} "
        f"({_CAMERA_NAMES[other]}: {_size(SOURCE_RADIUS_ARCSEC[other])}); set it for your source"
    )
    bkg: BackgroundChoice | None = None
    if on is None:
        bkg_lines = [
            "# no background circle: the source circle holds no screened event, so its CCD is "
            "unknown; the light curves are source-only. Add a circle tagged '# background'"
        ]
    else:
        inside = int(np.count_nonzero(source.contains(x, y)))
        notes.append(f"{inside:,} screened events inside, {on[1]:.0%} of them on CCD {on[0]}")
        rings = [r / pixels.scale for r in BACKGROUND_RINGS_ARCSEC]
        radii = [r / pixels.scale for r in BACKGROUND_RADII_ARCSEC]
        bkg = choose_background(x, y, ccd, centre, r_px, on[0], rings=rings, radii=radii)
        if bkg is None:
            reach = _arcsec(max(BACKGROUND_RINGS_ARCSEC) + max(BACKGROUND_RADII_ARCSEC))
            bkg_lines = [
                f"# no background circle: the list has no screened event between the source "
                f"circle and {reach} from it (a list cut to the source region?); the light "
                "curves are source-only. Add a circle tagged '# background' where there is "
                "background"
            ]
        else:
            bkg_lines = _background_comment(bkg, on[0], pixels.scale)

    lines = [
        "# Region file format: DS9 version 4.1",
        f"# xlcat init: regions for {label or path} ({name} {info.exposure}, "
        f"{info.n_rows:,} events)",
    ]
    if target is not None:
        ra, dec = float(target[0].ra.deg), float(target[0].dec.deg)
        lines.append(f"# target position {target[1]}: {_deg(ra)}, {_deg(dec)} (fk5, degrees)")
    lines.append("global color=green width=1")
    src_sky: tuple[float, float] | None = None
    if pixels.wcs is not None:
        src_sky = pixels.fk5(*centre)
        lines.append("fk5")
        src_shape = f"circle({_deg(src_sky[0])},{_deg(src_sky[1])},{_size(radius_arcsec)})"
    else:
        lines.append("physical")
        src_shape = f"circle({centre[0]:.2f},{centre[1]:.2f},{r_px:.2f})"
    lines.append(f"# check: {place.check}; centre it on the source and set the radius")
    lines += [f"# {n}" for n in notes]
    lines.append(f"{src_shape} # source")
    lines += bkg_lines
    if bkg is not None:
        if pixels.wcs is not None:
            bx, by = pixels.fk5(bkg.x, bkg.y)
            bkg_shape = f"circle({_deg(bx)},{_deg(by)},{_size(bkg.r * pixels.scale)})"
        else:
            bkg_shape = f"circle({bkg.x:.2f},{bkg.y:.2f},{bkg.r:.2f})"
        lines.append(f"{bkg_shape} # background color=red")
    text = "\n".join(lines) + "\n"
    parse_regions(text, str(label or path))  # what is written must read back

    summary = f"source {_size(radius_arcsec)} {place.short}"
    summary += f", on CCD {on[0]}" if on else ""
    if bkg is None:
        summary += "; no background (source-only)"
    else:
        summary += (
            f"; background {_size(bkg.r * pixels.scale)} {_arcsec(bkg.ring * pixels.scale)} "
            f"away, {bkg.purity:.0%} of its {bkg.events:,} events on the CCD"
            + ("" if bkg.qualified else " (the best available: check it)")
        )
    return RegionPlan(
        frame="fk5" if pixels.wcs is not None else "physical",
        source=source,
        source_arcsec=radius_arcsec,
        source_sky=src_sky,
        source_how=place.check,
        target=(float(target[0].ra.deg), float(target[0].dec.deg), target[1]) if target else None,
        ccd=on[0] if on else None,
        ccd_share=on[1] if on else None,
        background=bkg,
        background_arcsec=bkg.r * pixels.scale if bkg is not None else None,
        text=text,
        summary=summary,
    )


def find_hk(events: Path, obsid: str) -> Path | None:
    """The housekeeping file of a NuSTAR list: ``nu<obsid><A|B>_fpm.hk`` (or ``.hk.gz``) in
    the list's folder or in ``../hk`` (the archive's layout: ``event_cl/`` beside ``hk/``)."""
    m = re.match(r"nu\d{11}([AB])", events.name, re.IGNORECASE)
    if m is None:
        return None
    stem = f"nu{obsid}{m.group(1).upper()}_fpm.hk"
    for folder in (events.parent, events.parent.parent / "hk"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


# -- the build file -------------------------------------------------------------------------------
def _several_lists_per_obsid() -> bool:
    """True when the build-file schema takes several event lists (exposures) of one obsid.

    Store format 1 keeps one group per (obsid, scheme), so its build file refuses an obsid
    listed twice; a schema with one group per exposure accepts it. Asked of the schema itself.
    """
    probe: dict[str, Any] = {
        "store": "probe.zarr",
        "time_bin": 1.0,
        "observations": [
            {"obsid": "0000000000", "events": name, "regions": "probe.reg"}
            for name in ("a.fits", "b.fits")
        ],
    }
    try:
        BuildFile.model_validate(probe)
    except ValidationError:
        return False
    return True


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _preference(path: Path) -> tuple[int, str]:
    """Order of the event lists of one exposure: one made from the archive's list first."""
    return (1 if _PPS_NAME.match(path.name) else 0, path.as_posix())


def _screening_comment(nustar: bool = False) -> list[str]:
    lines = [
        "# No [screening] table: when its event file is read, each observation gets its camera's",
        "# default screening (schemas/build.py DEFAULT_SCREENING, docs/semantics.md §1):",
    ]
    for camera, rule in DEFAULT_SCREENING.items():
        if camera in NUSTAR_MODULES:
            continue
        terms = [f"PATTERN<={rule['pattern_max']}", f"PI in [{rule['pi'][0]}:{rule['pi'][1]}]"]
        if rule["flag_zero"]:
            terms.append("FLAG==0")
        if rule["expression"]:
            terms.append(str(rule["expression"]))
        lines.append(f"#   {_CAMERA_NAMES.get(camera, camera):5s} {' && '.join(terms)}")
    lines += [
        "# (a macro such as #XMMEA_EP that the EVENTS header lacks reads FLAG==0). A [screening]",
        "# table here, or screening = {...} in an observation, is used as written instead.",
    ]
    if nustar:
        lines.append(
            "# NuSTAR FPMA/FPMB cleaned lists get no screening and no flare filter (screened by "
            "nupipeline already; docs/semantics.md §20)."
        )
    return lines


def _flare_comment() -> list[str]:
    lines = [
        "# Soft-proton flare filter: off. Uncomment [flare] to filter every observation with its",
        "# camera's defaults (docs/semantics.md §9); keys written under it replace them. A list",
        "# already filtered for flares (a *_clean list) needs none; flare = false in an",
        "# observation switches it off there. The defaults:",
    ]
    for camera, rule in DEFAULT_FLARE.items():
        lo, hi = rule["pi"]
        lines.append(
            f"#   {_CAMERA_NAMES.get(camera, camera):5s} threshold = {rule['threshold']:<5g} "
            f"pi = [{lo}, {hi}]  pattern = {rule['pattern']}  bin = {rule['bin']}  "
            f"expression = {_toml_string(rule['expression'])}"
        )
    lines.append("# [flare]")
    return lines


def _comment(text: str, *, indent: str = "# ", more: str | None = None) -> list[str]:
    """A TOML comment of lines at most 96 characters long."""
    return textwrap.wrap(
        text,
        96,
        initial_indent=indent,
        subsequent_indent=more if more is not None else indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _entry_lines(entry: ListedEventFile, base: Path) -> list[str]:
    info = entry.info
    plan = entry.plan
    described = (
        f"{_CAMERA_NAMES[info.instrument]} ({info.instrume or 'no INSTRUME'}) exposure "
        f"{info.exposure}, {info.n_rows:,} events"
    )
    where = f"source {_size(plan.source_arcsec)}" + (
        f" on CCD {plan.ccd}" if plan.ccd is not None else ""
    )
    where += ", no background (source-only)" if plan.background is None else ", background"
    lines = _comment(described + f"; regions ({plan.frame}): {where}")
    for remark in entry.remarks:
        lines += _comment(remark)
    body = [
        "[[observations]]",
        f"obsid = {_toml_string(entry.obsid)}",
        f"events = {_toml_string(_rel(entry.path, base))}",
        f"regions = {_toml_string(_rel(entry.regions, base))}",
    ]
    if info.is_nustar and entry.hk is not None:
        body.append(f"hk = {_toml_string(_rel(entry.hk, base))}  # live time per second")
    elif info.is_nustar:
        lines += _comment(
            "no housekeeping file nu<obsid><A|B>_fpm.hk found beside it (or in ../hk): the live "
            'time comes from the LIVETIME/ONTIME keywords; add hk = "..." for nulccorr\'s '
            "per-second live time"
        )
    lines += body if entry.active else [f"# {line}" for line in body]
    return lines


def _build_text(
    output: Path,
    folder: Path,
    store: str,
    time_bin: float,
    entries: Sequence[ListedEventFile],
    skipped: Sequence[Skipped],
) -> str:
    base = output.parent
    active = sum(e.active for e in entries)
    presets = preset_names()
    lines = [
        *_comment(
            f"xlcat build file, written by xlcat init from the event lists under "
            f"{_rel(folder, base)}/: {len(entries)} found, {active} listed, "
            f"{len(entries) - active} commented out."
        ),
        "# Check the regions files first (their '# check:' lines), then: "
        f"xlcat build {output.name}",
        f"store = {_toml_string(store)}  # paths are relative to this file",
        f"time_bin = {float(time_bin)!r}  # seconds",
    ]
    if presets:
        lines.append(
            f"# presets = [{_toml_string(presets[0])}]  # adds a preset's energy schemes "
            f"(shipped: {', '.join(presets)})"
        )
    lines += [
        "",
        *_screening_comment(any(e.info.is_nustar for e in entries)),
        "",
        *_flare_comment(),
    ]
    for entry in entries:
        lines += ["", *_entry_lines(entry, base)]
    name, table = EXAMPLE_SCHEME
    lines += [
        "",
        "[schemes]",
        "# one example; add your own (README, 'The build file'), or a preset: presets above",
        f"{name} = {table}",
    ]
    if any(e.info.is_nustar for e in entries):
        nu_name, nu_table = NUSTAR_EXAMPLE_SCHEME
        lines[-1] = f'{name} = {table[:-2]}, instruments = ["PN", "M1", "M2"] }}'
        lines.append(f"{nu_name} = {nu_table}  # NuSTAR: 1.6-79 keV, 40 eV channels")
    if skipped:
        lines += ["", "# Files of the folder that are not event lists xlcat reads:"]
        for s in skipped:
            lines += _comment(f"{_rel(s.path, base)}: {s.reason}", indent="#   ", more="#     ")
    return "\n".join(lines) + "\n"


def scaffold_build(
    folder: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    time_bin: float = 128.0,
    store: str | None = None,
    regions_dir: str = "regions",
    recentre_source: bool = True,
) -> Scaffold:
    """A build file and regions for every EPIC imaging event list under a folder.

    Nothing is written: :meth:`Scaffold.write` writes the files.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder of event lists (sub-folders included).
    output : str or os.PathLike, optional
        The build file (default ``<folder>/build.toml``); the regions go next to it,
        ``<regions_dir>/<obsid>_<exposure>.reg``.
    time_bin : float
        Light-curve bin, s.
    store : str, optional
        The store, relative to the build file (default: the build file's name with ``.zarr``).
    regions_dir : str
        Folder of the regions files, relative to the build file.
    recentre_source : bool
        Move source circles onto the events' centroid near the target (see
        :func:`place_regions`).

    Returns
    -------
    Scaffold

    Raises
    ------
    InputFileError
        If the folder is missing or empty, or holds no EPIC imaging event list (one line with
        the first reasons).
    ConfigError
        If ``time_bin`` is not positive.
    """
    root = Path(folder)
    out = Path(output) if output is not None else root / "build.toml"
    if not (time_bin > 0 and math.isfinite(time_bin)):
        raise ConfigError(f"--time-bin {time_bin}: give a positive number of seconds")
    found, skipped, ignored = find_event_lists(root)
    if not found:
        reasons = "; ".join(f"{_rel(s.path, root)}: {s.reason}" for s in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        what = (
            f"{len(skipped)} FITS files, none an EPIC imaging event list ({reasons}{more})"
            if skipped
            else f"no FITS file among its {ignored} files (names ending "
            f"{', '.join(EVENT_SUFFIXES[:7])}, ...)"
        )
        raise InputFileError(f"folder {root}: no event lists found: {what}")
    found.sort(
        key=lambda f: (f[2], _CAMERA_ORDER[f[1].instrument], f[1].exposure, _preference(f[0]))
    )
    several = _several_lists_per_obsid()
    base = out.parent
    entries: list[ListedEventFile] = []
    regions: dict[Path, str] = {}
    first_of_exposure: dict[tuple[str, str], Path] = {}
    first_of_obsid: dict[str, str] = {}
    for path, info, obsid, notes in found:
        try:
            plan = place_regions(
                path, info, label=_rel(path, base), recentre_source=recentre_source
            )
        except InputFileError as exc:
            skipped.append(Skipped(path, str(exc).removeprefix(f"events file {path}: ")))
            continue
        key = (obsid, info.exposure)
        reg = base / regions_dir / f"{obsid}_{info.exposure}.reg"
        n = 1
        while reg in regions:
            n += 1
            reg = base / regions_dir / f"{obsid}_{info.exposure}_{n}.reg"
        regions[reg] = plan.text
        remarks = list(notes)
        m = _PPS_NAME.match(path.name)
        if m and (m.group(2) + m.group(3)).upper() != info.exposure:
            remarks.append(
                f"the file name says {m.group(2).upper()}{m.group(3).upper()}, the header "
                f"{info.exposure} (EXP_ID {info.exp_id}, EXPIDSTR {info.expidstr}): the header's "
                "is used"
            )
        if key in first_of_exposure:
            remarks.append(
                f"commented out: the same exposure ({obsid} {info.exposure}) as "
                f"{_rel(first_of_exposure[key], base)}, and a store holds one event list per "
                "exposure; swap the two entries to build this one instead"
            )
        elif not several and obsid in first_of_obsid:
            remarks.append(
                f"commented out: obsid {obsid} is listed already ({first_of_obsid[obsid]}), and "
                "this build file takes one event list per obsid; build this exposure from a "
                "second build file (xlcat init -o), or swap the entries"
            )
        else:
            first_of_exposure[key] = path
            first_of_obsid[obsid] = info.exposure
        active = first_of_exposure.get(key) == path
        hk = find_hk(path, obsid) if info.is_nustar else None
        entries.append(ListedEventFile(path, info, obsid, reg, plan, active, tuple(remarks), hk))
    if not entries:
        reasons = "; ".join(f"{_rel(s.path, root)}: {s.reason}" for s in skipped[-len(found) :])
        raise InputFileError(f"folder {root}: no event list can be used: {reasons}")
    store_name = store if store is not None else out.with_suffix(".zarr").name
    text = _build_text(out, root, store_name, time_bin, entries, skipped)
    parse_build(text, out)  # the file must load as it is written
    return Scaffold(root, out, text, tuple(entries), tuple(skipped), ignored, regions)
