"""ds9 region files: the parser and the source/background sets.

Only what the extraction needs is accepted: ``circle``, ``annulus`` (one ring), ``ellipse``
and ``box`` (:mod:`pipeline.select.shapes`), in ``physical`` coordinates (sky pixels) or in a
celestial system (``fk5``, its ds9 alias ``j2000``, ``icrs``, ``galactic``; degrees or
sexagesimal, sizes in arcsec ``"``, arcmin ``'`` or degrees ``d``). Shapes in a celestial
system are kept as written (:class:`pipeline.select.sky.SkyShape`) until
:meth:`RegionSet.resolve` converts them with the event file's X/Y column WCS.

A shape whose ds9 properties carry the word ``background`` is a background shape; every other
shape is a source shape. Several shapes of one kind are OR-ed, inside one pair of parentheses
in SAS text. The background is optional: without one, the light curves are source-only
(docs/semantics.md §2, §6).
Anything else is rejected with the file and line; text is never evaluated.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NoReturn, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.select.shapes import Annulus, Box, Circle, Ellipse, Shape, ds9_text, union_area
from pipeline.select.sky import SKY_FRAMES, SkyShape
from schemas.errors import ConfigError, InputFileError

__all__ = ["RegionSet", "read_regions", "parse_regions", "NO_BACKGROUND_NOTE"]

#: What source-only curves are (docs/semantics.md §6), for provenance and group attributes.
NO_BACKGROUND_NOTE = (
    "no background region: source-only curves; rate = src/(dt f), error = sqrt(src)/(dt f); "
    "bkg_counts, backv and backe are NaN"
)


@dataclass(frozen=True)
class RegionSet:
    """Source and (optional) background shapes of one regions file.

    Parameters
    ----------
    source, background : tuple of shapes
        OR-ed within each kind; physical shapes (sky pixels) or, before :meth:`resolve`,
        :class:`~pipeline.select.sky.SkyShape` s. ``background`` may be empty: source-only curves.
    text : str
        The file's text (for provenance).
    path : str
        Where it came from.
    conversion : dict or None
        After :meth:`resolve`: the WCS used and, per converted shape, its text as written and
        its physical form (for provenance). None when nothing was converted.
    """

    source: tuple[Shape | SkyShape, ...]
    background: tuple[Shape | SkyShape, ...] = ()
    text: str = ""
    path: str = "<string>"
    conversion: dict[str, Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.source:
            raise ConfigError(f"regions {self.path}: no source shape; give at least one")

    @property
    def has_background(self) -> bool:
        """True when a background region is given."""
        return bool(self.background)

    @property
    def needs_wcs(self) -> bool:
        """True while a shape is in celestial coordinates (see :meth:`resolve`)."""
        return any(isinstance(s, SkyShape) for s in self.source + self.background)

    def _physical(self, shapes: tuple[Shape | SkyShape, ...]) -> tuple[Shape, ...]:
        out: list[Shape] = []
        for s in shapes:
            if isinstance(s, SkyShape):
                raise ConfigError(
                    f"regions file {self.path}: shape '{s.text}' is in {s.frame} coordinates; "
                    "convert the regions with the event file's X/Y WCS first (RegionSet.resolve)"
                )
            out.append(s)
        return tuple(out)

    def physical(self, which: Literal["source", "background"]) -> tuple[Shape, ...]:
        """The shapes of one side in sky pixels (empty for a missing background).

        Raises
        ------
        ConfigError
            While a shape is still in celestial coordinates (see :meth:`resolve`).
        """
        return self._physical(self.source if which == "source" else self.background)

    def resolve(self, wcs: Any, description: dict[str, Any] | None = None) -> RegionSet:
        """The same regions with every celestial shape converted to physical sky pixels.

        Parameters
        ----------
        wcs : astropy.wcs.WCS
            The event file's X/Y column WCS (column values = FITS pixels, origin 1), from
            :func:`pipeline.read.wcs.read_sky_wcs`.
        description : dict, optional
            What the WCS is (file, keywords), kept in :attr:`conversion`.

        Returns
        -------
        RegionSet
            ``self`` when nothing needs converting.
        """
        if not self.needs_wcs:
            return self
        shapes: list[dict[str, Any]] = []

        def convert(role: str, items: tuple[Shape | SkyShape, ...]) -> tuple[Shape, ...]:
            out: list[Shape] = []
            for s in items:
                if isinstance(s, SkyShape):
                    p = s.to_physical(wcs)
                    shapes.append(
                        {
                            "role": role,
                            "as_written": s.text,
                            "sky": s.describe(),
                            "physical": ds9_text(p),
                        }
                    )
                    out.append(p)
                else:
                    out.append(s)
            return tuple(out)

        source = convert("source", self.source)
        background = convert("background", self.background)
        conversion = {"wcs": description or {}, "shapes": shapes}
        return RegionSet(source, background, self.text, self.path, conversion)

    def in_source(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where (X, Y), sky pixels, lies in any source shape (borders inclusive)."""
        shapes = self._physical(self.source)
        inside: NDArray[np.bool_] = np.logical_or.reduce([s.contains(X, Y) for s in shapes])
        return inside

    def in_background(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where (X, Y), sky pixels, lies in any background shape (all False without one)."""
        shapes = self._physical(self.background)
        if not shapes:
            return np.zeros(np.broadcast_shapes(np.shape(X), np.shape(Y)), dtype=bool)
        inside: NDArray[np.bool_] = np.logical_or.reduce([s.contains(X, Y) for s in shapes])
        return inside

    @cached_property
    def source_area(self) -> float:
        """Geometric area of the union of the source shapes, square sky pixels."""
        return union_area(self._physical(self.source))

    @cached_property
    def background_area(self) -> float:
        """Geometric area of the union of the background shapes, square sky pixels (0: none)."""
        return union_area(self._physical(self.background))

    @property
    def area_ratio(self) -> float | None:
        """A_src / A_bkg, the factor that scales background counts to the source region.

        None without a background region (source-only curves).
        """
        if not self.has_background:
            return None
        return self.source_area / self.background_area

    def physical_text(self) -> dict[str, list[str] | None]:
        """The shapes selected with, as ds9 physical text (celestial ones as converted).

        Returns
        -------
        dict
            ``{"source": [...], "background": [...]}``; ``background`` None without a
            background region.

        Raises
        ------
        ConfigError
            While a shape is still in celestial coordinates (see :meth:`resolve`).
        """
        return {
            "source": [ds9_text(s) for s in self.physical("source")],
            "background": [ds9_text(s) for s in self.physical("background")]
            if self.has_background
            else None,
        }

    def describe(self, origin: str | None = None) -> dict[str, Any]:
        """What a stored group records of its regions (JSON-able).

        Parameters
        ----------
        origin : str, optional
            Where the regions came from, appended to ``area_method``.

        Returns
        -------
        dict
            ``path``, ``text``, the physical ``source`` and ``background`` shapes
            (:meth:`physical_text`), ``source_only``, the areas ``src_area``, ``bkg_area`` and
            ``area_ratio`` (sky pixels²; ``bkg_area`` and ``area_ratio`` None without a
            background), ``area_method``, the SAS expressions ``src_expression`` and
            ``bkg_expression`` (None without a background), ``conversion`` (the WCS and each
            celestial shape as written and converted; None when all are physical) and
            ``note`` (what source-only means; None with a background).
        """
        method = "geometric (union of shapes), sky pixels^2"
        return {
            "path": self.path,
            "text": self.text,
            **self.physical_text(),
            "source_only": not self.has_background,
            "src_area": self.source_area,
            "bkg_area": self.background_area if self.has_background else None,
            "area_ratio": self.area_ratio,
            "area_method": f"{method}; {origin}" if origin else method,
            "src_expression": self.sas_expression("source"),
            "bkg_expression": self.sas_expression("background"),
            "conversion": self.conversion,
            "note": None if self.has_background else NO_BACKGROUND_NOTE,
        }

    @overload
    def sas_expression(self, which: Literal["source"]) -> str: ...

    @overload
    def sas_expression(self, which: str) -> str | None: ...

    def sas_expression(self, which: str) -> str | None:
        """selectlib filter, e.g. ``((X,Y) IN circle(a) || (X,Y) IN circle(b))``.

        The shapes are OR-ed inside ONE pair of parentheses, so ``A && <region> && B`` never lets
        a shape bypass A or B (docs/semantics.md §2). None for ``"background"`` without a
        background region.

        Raises
        ------
        ConfigError
            If ``which`` is neither "source" nor "background".
        """
        if which not in ("source", "background"):
            raise ConfigError(f"sas_expression: which={which!r}; use 'source' or 'background'")
        shapes = self._physical(self.source if which == "source" else self.background)
        if not shapes:
            return None
        return "(" + " || ".join(f"(X,Y) IN {shape.sas}" for shape in shapes) + ")"


_COORDINATE_SYSTEMS = frozenset(
    [
        "image",
        "physical",
        "detector",
        "amplifier",
        "linear",
        "fk4",
        "b1950",
        "fk5",
        "j2000",
        "icrs",
        "galactic",
        "ecliptic",
        "wcs",
        "tile",
    ]
    + [f"wcs{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
)
_OTHER_DS9_SHAPES = frozenset(
    "polygon point line vector text ruler compass projection panda epanda bpanda segment "
    "composite circle3d".split()
)
_ARGS = {
    "circle": ("x", "y", "r"),
    "annulus": ("x", "y", "r_in", "r_out"),
    "ellipse": ("x", "y", "a", "b", "angle"),
    "box": ("x", "y", "width", "height", "angle"),
}
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SHAPE = re.compile(r"([+-]?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)")
_QUOTED = re.compile(r"\{[^}]*\}|\"[^\"]*\"|'[^']*'")
_PHYSICAL_HINT = "use physical coordinates; in ds9: Region > Save > coordinate system physical"
_SYSTEMS_HINT = (
    "use physical (sky pixels) or a celestial system: fk5 (alias j2000), icrs or galactic"
)
_SIZE_UNITS = {'"': 1.0 / 3600.0, "'": 1.0 / 60.0, "d": 1.0}
_SIZE_HINT = "give sizes with a unit: 10\" (arcsec), 0.5' (arcmin) or 0.01d (degrees)"
_SEXAGESIMAL = re.compile(r"[+-]?\d+(?::\d+(?:\.\d*)?){1,2}")
_HMS = re.compile(r"[+-]?\d+h(?:\d+m(?:\d+(?:\.\d*)?s)?)?", re.IGNORECASE)
_DMS = re.compile(r"[+-]?\d+d(?:\d+m(?:\d+(?:\.\d*)?s)?)?", re.IGNORECASE)

_Fail = Callable[[str], NoReturn]
"""Reports a problem of one regions-file line: raises InputFileError, never returns."""


def _number(tok: str, name: str, fail: _Fail) -> float:
    s = tok.strip()
    if _NUMBER.fullmatch(s):
        value = float(s)
        if not math.isfinite(value):
            fail(f"{name}={s} is not a finite number; write plain numbers in sky pixels")
        return value
    unit = {
        '"': "arcsec",
        "'": "arcmin",
        "d": "degrees",
        "r": "radians",
        "i": "image pixels",
        "p": "explicit pixel units",
    }.get(s[-1:].lower())
    sky = "; or put the shape after an 'fk5' (or icrs, galactic) line"
    if unit and _NUMBER.fullmatch(s[:-1]):
        fail(f"{name}={s} is in {unit}; {_PHYSICAL_HINT} (plain numbers, sky pixels){sky}")
    if ":" in s:
        fail(f"{name}={s} is sexagesimal; {_PHYSICAL_HINT}{sky}")
    fail(f"{name}={s!r} is not a number; write plain numbers in sky pixels")
    raise AssertionError  # fail() always raises


def _finite(value: float, name: str, tok: str, fail: _Fail) -> float:
    if not math.isfinite(value):
        fail(f"{name}={tok} is not a finite number")
    return value


def _sky_coordinate(tok: str, name: str, hours: bool, fail: _Fail) -> float:
    """Degrees from a ds9 celestial coordinate: degrees (``263.68``, ``263.68d``) or sexagesimal.

    Sexagesimal longitudes of fk5/icrs are hours (``17:34:42.1``, ``17h34m42.1s``); latitudes,
    and galactic longitudes, are degrees (``-32:34:51``, ``-32d34m51s``), as in ds9.
    """
    s = tok.strip()
    if _NUMBER.fullmatch(s):
        return _finite(float(s), name, s, fail)
    if s[-1:].lower() == "d" and _NUMBER.fullmatch(s[:-1]):
        return _finite(float(s[:-1]), name, s, fail)
    if _SEXAGESIMAL.fullmatch(s) or _HMS.fullmatch(s) or _DMS.fullmatch(s):
        if _HMS.fullmatch(s) and not hours:
            fail(f"{name}={s} is in hours; write this coordinate in degrees (d:m:s)")
        import astropy.units as u  # here: a build with physical regions never imports astropy
        from astropy.coordinates import Angle

        unit = u.hourangle if hours and not _DMS.fullmatch(s) else u.deg
        try:
            return float(Angle(s, unit=unit).deg)
        except ValueError:
            pass
    fail(
        f"{name}={s!r} is not a celestial coordinate; write degrees (263.679) or sexagesimal "
        "(17:34:43.0 for RA, -32:34:49 for Dec)"
    )
    raise AssertionError  # fail() always raises


def _sky_size(tok: str, name: str, fail: _Fail) -> float:
    """Degrees from a ds9 size with a unit: ``10"``, ``0.5'``, ``0.01d``."""
    s = tok.strip()
    factor = _SIZE_UNITS.get(s[-1:].lower())
    if factor is not None and _NUMBER.fullmatch(s[:-1]):
        return _finite(float(s[:-1]), name, s, fail) * factor
    if _NUMBER.fullmatch(s):
        fail(f"{name}={s} has no unit; in a celestial system {_SIZE_HINT}")
    fail(f"{name}={s!r} is not a size; {_SIZE_HINT}")
    raise AssertionError  # fail() always raises


def _role(props: str, fail: _Fail) -> str:
    words = _QUOTED.sub(" ", props).lower().split()
    if "include=0" in words:
        fail(
            "an excluded shape (include=0) is not supported; remove it, or describe the wanted "
            "area with positive shapes (e.g. an annulus)"
        )
    if "background" in words and "source" in words:
        fail("shape is tagged both 'source' and 'background'; keep one")
    return "background" if "background" in words else "source"


def _split_shape(item: str, fail: _Fail) -> tuple[str, list[str]]:
    """The shape's name and its argument texts, with the counts checked."""
    m = _SHAPE.fullmatch(item)
    if m is None:
        if re.match(r"[+-]?[A-Za-z]+\s", item):
            fail(f"'{item}': write shapes as name(x,y,...) with parentheses and commas")
        fail(
            f"cannot read '{item}'; expected circle(x,y,r), annulus(x,y,r_in,r_out), "
            "ellipse(x,y,a,b,angle) or box(x,y,width,height,angle)"
        )
    sign, name, body = m.group(1), m.group(2).lower(), m.group(3)
    if sign == "-":
        fail(
            f"exclusion shape '{item}' is not supported; remove the leading '-' and make the "
            "region positive (an annulus excludes a core)"
        )
    if name not in _ARGS:
        known = "is not supported" if name in _OTHER_DS9_SHAPES else "is not a known shape"
        fail(f"'{name}' {known}; use circle, annulus, ellipse or box")
    names = _ARGS[name]
    args = body.split(",")
    lo_n = 3 if name == "circle" else 4
    if not lo_n <= len(args) <= len(names):
        if name in ("annulus", "ellipse", "box") and len(args) > len(names):
            fail(
                f"'{item}' has {len(args)} values: multi-ring {name} regions are not supported; "
                f"write one {name}({','.join(names)}) per line"
            )
        fail(
            f"'{item}' has {len(args)} values; {name} takes {name}({','.join(names)})"
            + (" (angle optional)" if len(names) == 5 else "")
        )
    return name, args


def _shape(item: str, fail: _Fail) -> Shape:
    """A shape in physical coordinates (sky pixels)."""
    name, args = _split_shape(item, fail)
    names = _ARGS[name]
    values = [_number(tok, f"{name} {n}", fail) for tok, n in zip(args, names, strict=False)]
    try:
        kinds: dict[str, type[Shape]] = {
            "circle": Circle,
            "annulus": Annulus,
            "ellipse": Ellipse,
            "box": Box,
        }
        return kinds[name](*values)
    except ConfigError as exc:
        fail(f"'{item}': {str(exc).split(': ', 1)[1]}")
        raise  # unreachable


def _sky_shape(item: str, frame: str, fail: _Fail) -> SkyShape:
    """A shape in a celestial frame (``fk5``, ``icrs``, ``galactic``), kept as written."""
    name, args = _split_shape(item, fail)
    names = _ARGS[name]
    hours = frame != "galactic"
    lon = _sky_coordinate(args[0], f"{name} {names[0]}", hours, fail)
    lat = _sky_coordinate(args[1], f"{name} {names[1]}", False, fail)
    n_sizes = 1 if name == "circle" else 2
    sizes = tuple(
        _sky_size(tok, f"{name} {n}", fail)
        for tok, n in zip(args[2 : 2 + n_sizes], names[2 : 2 + n_sizes], strict=True)
    )
    angle = 0.0
    if len(args) > 2 + n_sizes:
        tok = args[2 + n_sizes].strip()
        tok = tok[:-1] if tok[-1:].lower() == "d" else tok
        angle = _number(tok, f"{name} angle", fail)
    if not -90.0 <= lat <= 90.0:
        fail(f"'{item}': latitude {lat:g} is outside -90..90 degrees")
    try:
        return SkyShape(name, SKY_FRAMES[frame], lon, lat, sizes, angle, item)  # type: ignore[arg-type]
    except ConfigError as exc:
        fail(f"'{item}': {str(exc).split(': ', 1)[1]}")
        raise  # unreachable


def parse_regions(text: str, path: str = "<string>") -> RegionSet:
    """Parse a ds9 region file's text (physical or celestial coordinates).

    Parameters
    ----------
    text : str
        The file's content.
    path : str
        Name used in messages and kept in the result.

    Returns
    -------
    RegionSet
        Shapes in a celestial system stay :class:`~pipeline.select.sky.SkyShape` s until
        :meth:`RegionSet.resolve`; a file without a background shape gives an empty background.

    Raises
    ------
    InputFileError
        Naming the file and line: unsupported coordinate systems, units that do not fit the
        system, exclusion or unsupported shapes, malformed numbers or coordinates, non-positive
        sizes, r_in >= r_out, a shape before any coordinate-system line, or a file without a
        source shape.
    """
    path = str(path)
    source: list[Shape | SkyShape] = []
    background: list[Shape | SkyShape] = []
    system: str | None = None
    lines = text.splitlines()
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()

        def fail(msg: str, _n: int = lineno) -> NoReturn:
            raise InputFileError(f"regions file {path} line {_n}: {msg}")

        if not line or line.startswith("#"):
            continue
        if re.match(r"global\b", line, re.IGNORECASE):
            words = _QUOTED.sub(" ", line).lower().split()
            if "background" in words or "source=0" in words or "include=0" in words:
                fail(
                    "a 'global' default of background or exclusion is not supported; "
                    "tag each background shape with '# background'"
                )
            continue
        command, _, props = line.partition("#")
        shapes = 0
        for item in (part.strip() for part in command.split(";")):
            if not item:
                continue
            if item.lower() in _COORDINATE_SYSTEMS:
                if item.lower() != "physical" and item.lower() not in SKY_FRAMES:
                    fail(f"coordinate system '{item}' is not supported; {_SYSTEMS_HINT}")
                system = item.lower()
                continue
            shapes += 1
            if shapes > 1:
                fail("several shapes on one line; put one shape per line")
            if system is None:
                fail(
                    f"shape '{item}' comes before any coordinate-system line; add a line "
                    f"'physical' (or 'fk5') before it ({_PHYSICAL_HINT})"
                )
            shape: Shape | SkyShape = (
                _shape(item, fail) if system == "physical" else _sky_shape(item, system, fail)
            )
            (background if _role(props, fail) == "background" else source).append(shape)
    where = f"regions file {path} (lines 1-{len(lines)})"
    if not source:
        raise InputFileError(
            f"{where}: no source shape; add e.g. 'circle(x,y,r)' in physical "
            "coordinates without the background tag"
        )
    return RegionSet(tuple(source), tuple(background), text, path)


def read_regions(path: str | os.PathLike[str]) -> RegionSet:
    """Read a ds9 region file (physical or celestial coordinates; see :func:`parse_regions`).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    RegionSet

    Raises
    ------
    InputFileError
        If the file is missing, unreadable, not text, or invalid (see :func:`parse_regions`).
    """
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError:
        raise InputFileError(
            f"regions file {name}: not a text file; save the regions from ds9 in ds9 format"
        ) from None
    except OSError as exc:
        raise InputFileError(
            f"regions file {name}: cannot be read ({exc.strerror or exc}); check the path"
        ) from None
    return parse_regions(text, name)
