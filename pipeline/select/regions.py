"""ds9 region files in physical (sky pixel) coordinates: the parser and the source/background sets.

Only what the extraction needs is accepted: ``circle``, ``annulus`` (one ring), ``ellipse``
and ``box`` (:mod:`pipeline.select.shapes`) in ``physical`` coordinates. A shape whose ds9
properties carry the word ``background`` is a background shape; every other shape is a source
shape. Several shapes of one kind are OR-ed, inside one pair of parentheses in SAS text
(see docs/semantics.md §2).
Anything else is rejected with the file and line; text is never evaluated.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, NoReturn

import numpy as np
from numpy.typing import ArrayLike, NDArray

from pipeline.select.shapes import Annulus, Box, Circle, Ellipse, Shape, union_area
from schemas.errors import ConfigError, InputFileError

__all__ = ["RegionSet", "read_regions", "parse_regions"]


@dataclass(frozen=True)
class RegionSet:
    """Source and background shapes of one regions file, sky pixels.

    Parameters
    ----------
    source, background : tuple of shapes
        OR-ed within each kind.
    text : str
        The file's text (for provenance).
    path : str
        Where it came from.
    """

    source: tuple[Shape, ...]
    background: tuple[Shape, ...]
    text: str = ""
    path: str = "<string>"

    def __post_init__(self) -> None:
        if not self.source or not self.background:
            kind = "source" if not self.source else "background"
            raise ConfigError(f"regions {self.path}: no {kind} shape; give at least one")

    def in_source(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where (X, Y), sky pixels, lies in any source shape (borders inclusive)."""
        inside: NDArray[np.bool_] = np.logical_or.reduce([s.contains(X, Y) for s in self.source])
        return inside

    def in_background(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where (X, Y), sky pixels, lies in any background shape (borders inclusive)."""
        inside: NDArray[np.bool_] = np.logical_or.reduce(
            [s.contains(X, Y) for s in self.background]
        )
        return inside

    @cached_property
    def source_area(self) -> float:
        """Geometric area of the union of the source shapes, square sky pixels."""
        return union_area(self.source)

    @cached_property
    def background_area(self) -> float:
        """Geometric area of the union of the background shapes, square sky pixels."""
        return union_area(self.background)

    @property
    def area_ratio(self) -> float:
        """A_src / A_bkg, the factor that scales background counts to the source region."""
        return self.source_area / self.background_area

    def sas_expression(self, which: Literal["source", "background"]) -> str:
        """selectlib filter, e.g. ``((X,Y) IN circle(a) || (X,Y) IN circle(b))``.

        The shapes are OR-ed inside ONE pair of parentheses, so ``A && <region> && B`` never lets
        a shape bypass A or B (docs/semantics.md §2).

        Raises
        ------
        ConfigError
            If ``which`` is neither "source" nor "background".
        """
        if which not in ("source", "background"):
            raise ConfigError(f"sas_expression: which={which!r}; use 'source' or 'background'")
        shapes = self.source if which == "source" else self.background
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
    if unit and _NUMBER.fullmatch(s[:-1]):
        fail(f"{name}={s} is in {unit}; {_PHYSICAL_HINT} (plain numbers, sky pixels)")
    if ":" in s:
        fail(f"{name}={s} is sexagesimal; {_PHYSICAL_HINT}")
    fail(f"{name}={s!r} is not a number; write plain numbers in sky pixels")
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


def _shape(item: str, fail: _Fail) -> Shape:
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
        fail(f"'{name}' {known}; use circle, annulus, ellipse or box in physical coordinates")
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


def parse_regions(text: str, path: str = "<string>") -> RegionSet:
    """Parse a ds9 region file's text (physical coordinates).

    Parameters
    ----------
    text : str
        The file's content.
    path : str
        Name used in messages and kept in the result.

    Returns
    -------
    RegionSet

    Raises
    ------
    InputFileError
        Naming the file and line: other coordinate systems, sky units, exclusion or unsupported
        shapes, malformed numbers, non-positive sizes, r_in >= r_out, a shape before the
        ``physical`` line, or a file without a source or without a background shape.
    """
    path = str(path)
    source: list[Shape] = []
    background: list[Shape] = []
    physical = False
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
                if item.lower() != "physical":
                    fail(f"coordinate system '{item}' is not supported; {_PHYSICAL_HINT}")
                physical = True
                continue
            shapes += 1
            if shapes > 1:
                fail("several shapes on one line; put one shape per line")
            if not physical:
                fail(
                    f"shape '{item}' comes before any coordinate-system line; add a line "
                    f"'physical' before it ({_PHYSICAL_HINT})"
                )
            shape = _shape(item, fail)
            (background if _role(props, fail) == "background" else source).append(shape)
    where = f"regions file {path} (lines 1-{len(lines)})"
    if not source:
        raise InputFileError(
            f"{where}: no source shape; add e.g. 'circle(x,y,r)' in physical "
            "coordinates without the background tag"
        )
    if not background:
        raise InputFileError(
            f"{where}: no background shape; tag background shapes with "
            "'# background' (ds9: Region > Properties > Background)"
        )
    return RegionSet(tuple(source), tuple(background), text, path)


def read_regions(path: str | os.PathLike[str]) -> RegionSet:
    """Read a ds9 region file in physical coordinates.

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
