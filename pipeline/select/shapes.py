"""Region shapes in physical (sky pixel) coordinates: membership, areas of unions, SAS text.

``circle``, ``annulus`` (one ring), ``ellipse`` and ``box``, as ds9 and SAS selectlib define
them, in XMM sky pixels (1 px = 0.05 arcsec [ref 16]). Borders are inclusive, as selectlib's
region functions are true "inside or on the border" [ref 7]. Rules: docs/semantics.md §2;
``[ref N]`` is entry N of its reference list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from schemas.errors import ConfigError

__all__ = [
    "Circle",
    "Annulus",
    "Ellipse",
    "Box",
    "Shape",
    "union_area",
    "format_number",
    "ds9_text",
]

_Chords: TypeAlias = list[tuple[NDArray[np.float64], NDArray[np.float64]]]
"""Horizontal chords of a shape: (x_lo, x_hi) arrays over the y values asked for."""


def format_number(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (integers without '.0')."""
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


def _cos_sin(angle_deg: float) -> tuple[float, float]:
    """cos and sin of an angle in degrees, exact for multiples of 90 degrees."""
    exact = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}
    a = float(angle_deg) % 360.0
    if a in exact:
        return exact[a]
    rad = math.radians(a)
    return math.cos(rad), math.sin(rad)


def _check(shape: str, **values: float) -> None:
    for name, v in values.items():
        if not math.isfinite(v):
            raise ConfigError(f"{shape}: {name}={v!r} is not a finite number; give a finite value")


def _positive(shape: str, **values: float) -> None:
    for name, v in values.items():
        if not v > 0:
            raise ConfigError(
                f"{shape}: {name}={format_number(v)} must be > 0; "
                "give a positive size in sky pixels"
            )


def _xy(X: ArrayLike, Y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)


@dataclass(frozen=True)
class Circle:
    """Circle of centre (x, y) and radius r, sky pixels; contains (X-x)^2 + (Y-y)^2 <= r^2."""

    x: float
    y: float
    r: float

    def __post_init__(self) -> None:
        _check("circle", x=self.x, y=self.y, r=self.r)
        _positive("circle", r=self.r)

    def contains(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where the point (X, Y), sky pixels, lies inside or on the border."""
        X, Y = _xy(X, Y)
        dx, dy = X - self.x, Y - self.y
        return dx * dx + dy * dy <= self.r * self.r

    @property
    def area(self) -> float:
        """Geometric area pi r^2, square sky pixels."""
        return math.pi * self.r * self.r

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax), sky pixels."""
        return self.x - self.r, self.x + self.r, self.y - self.r, self.y + self.r

    @property
    def sas(self) -> str:
        """selectlib text ``circle(x,y,r)``."""
        return f"circle({format_number(self.x)},{format_number(self.y)},{format_number(self.r)})"

    def _chords(self, y: NDArray[np.float64]) -> _Chords:
        dy = y - self.y
        w = np.sqrt(np.maximum(self.r * self.r - dy * dy, 0.0))
        return [(self.x - w, self.x + w)]

    def _ybreaks(self) -> list[float]:
        return [self.y - self.r, self.y + self.r]


@dataclass(frozen=True)
class Annulus:
    """Ring of centre (x, y) and radii r_in < r_out, sky pixels; contains r_in^2 <= d^2 <= r_out^2.

    ``r_in == 0`` is allowed (a full disc written as an annulus).
    """

    x: float
    y: float
    r_in: float
    r_out: float

    def __post_init__(self) -> None:
        _check("annulus", x=self.x, y=self.y, r_in=self.r_in, r_out=self.r_out)
        if not 0 <= self.r_in < self.r_out:
            raise ConfigError(
                f"annulus: radii r_in={format_number(self.r_in)}, "
                f"r_out={format_number(self.r_out)} need "
                "0 <= r_in < r_out; give the inner radius first"
            )

    def contains(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where r_in^2 <= (X-x)^2 + (Y-y)^2 <= r_out^2 (both borders inclusive [ref 7])."""
        X, Y = _xy(X, Y)
        dx, dy = X - self.x, Y - self.y
        d2 = dx * dx + dy * dy
        return (d2 >= self.r_in * self.r_in) & (d2 <= self.r_out * self.r_out)

    @property
    def area(self) -> float:
        """Geometric area pi (r_out^2 - r_in^2), square sky pixels."""
        return math.pi * (self.r_out * self.r_out - self.r_in * self.r_in)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax), sky pixels."""
        r = self.r_out
        return self.x - r, self.x + r, self.y - r, self.y + r

    @property
    def sas(self) -> str:
        """selectlib text ``annulus(x,y,r_in,r_out)``."""
        vals = (self.x, self.y, self.r_in, self.r_out)
        return "annulus(" + ",".join(format_number(v) for v in vals) + ")"

    def _chords(self, y: NDArray[np.float64]) -> _Chords:
        dy2 = (y - self.y) ** 2
        wo = np.sqrt(np.maximum(self.r_out * self.r_out - dy2, 0.0))
        wi = np.sqrt(np.maximum(self.r_in * self.r_in - dy2, 0.0))
        return [(self.x - wo, self.x - wi), (self.x + wi, self.x + wo)]

    def _ybreaks(self) -> list[float]:
        return [self.y - self.r_out, self.y - self.r_in, self.y + self.r_in, self.y + self.r_out]


@dataclass(frozen=True)
class Ellipse:
    """Ellipse of centre (x, y), semi-axes a (along ``angle``) and b, sky pixels.

    ``angle`` is in degrees, counter-clockwise from +X (ds9 and selectlib convention, assumed).
    Contains u^2 b^2 + v^2 a^2 <= a^2 b^2 with (u, v) the point in the ellipse's frame.
    """

    x: float
    y: float
    a: float
    b: float
    angle: float = 0.0

    def __post_init__(self) -> None:
        _check("ellipse", x=self.x, y=self.y, a=self.a, b=self.b, angle=self.angle)
        _positive("ellipse", a=self.a, b=self.b)

    def contains(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where the point (X, Y), sky pixels, lies inside or on the border."""
        X, Y = _xy(X, Y)
        c, s = _cos_sin(self.angle)
        dx, dy = X - self.x, Y - self.y
        u, v = dx * c + dy * s, dy * c - dx * s
        a2, b2 = self.a * self.a, self.b * self.b
        return u * u * b2 + v * v * a2 <= a2 * b2

    @property
    def area(self) -> float:
        """Geometric area pi a b, square sky pixels."""
        return math.pi * self.a * self.b

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) of the rotated ellipse, sky pixels."""
        c, s = _cos_sin(self.angle)
        hx = math.hypot(self.a * c, self.b * s)
        hy = math.hypot(self.a * s, self.b * c)
        return self.x - hx, self.x + hx, self.y - hy, self.y + hy

    @property
    def sas(self) -> str:
        """selectlib text ``ellipse(x,y,a,b,angle)`` (selectlib takes the half widths)."""
        vals = (self.x, self.y, self.a, self.b, self.angle)
        return "ellipse(" + ",".join(format_number(v) for v in vals) + ")"

    def _chords(self, y: NDArray[np.float64]) -> _Chords:
        # A dx^2 + B dx + C <= 0 for fixed dy (the ellipse equation expanded in dx)
        c, s = _cos_sin(self.angle)
        ia2, ib2 = 1.0 / (self.a * self.a), 1.0 / (self.b * self.b)
        dy = y - self.y
        A = c * c * ia2 + s * s * ib2
        B = 2.0 * dy * c * s * (ia2 - ib2)
        C = dy * dy * (s * s * ia2 + c * c * ib2) - 1.0
        half = np.sqrt(np.maximum(B * B - 4.0 * A * C, 0.0)) / (2.0 * A)
        centre = self.x - B / (2.0 * A)
        return [(centre - half, centre + half)]

    def _ybreaks(self) -> list[float]:
        return list(self.bounds[2:])


@dataclass(frozen=True)
class Box:
    """Rectangle of centre (x, y), full width and height (ds9 convention), sky pixels.

    ``angle`` is in degrees, counter-clockwise from +X (assumed). Contains |u| <= width/2 and
    |v| <= height/2 with (u, v) the point in the box's frame.
    """

    x: float
    y: float
    width: float
    height: float
    angle: float = 0.0

    def __post_init__(self) -> None:
        _check("box", x=self.x, y=self.y, width=self.width, height=self.height, angle=self.angle)
        _positive("box", width=self.width, height=self.height)

    def contains(self, X: ArrayLike, Y: ArrayLike) -> NDArray[np.bool_]:
        """True where the point (X, Y), sky pixels, lies inside or on the border."""
        X, Y = _xy(X, Y)
        c, s = _cos_sin(self.angle)
        dx, dy = X - self.x, Y - self.y
        u, v = dx * c + dy * s, dy * c - dx * s
        return (np.abs(u) <= self.width / 2) & (np.abs(v) <= self.height / 2)

    @property
    def area(self) -> float:
        """Geometric area width x height, square sky pixels."""
        return self.width * self.height

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) of the rotated box, sky pixels."""
        c, s = _cos_sin(self.angle)
        hw, hh = self.width / 2, self.height / 2
        hx = abs(hw * c) + abs(hh * s)
        hy = abs(hw * s) + abs(hh * c)
        return self.x - hx, self.x + hx, self.y - hy, self.y + hy

    @property
    def sas(self) -> str:
        """selectlib text ``box(x,y,width/2,height/2,angle)``, in half widths [ref 7]."""
        vals = (self.x, self.y, self.width / 2, self.height / 2, self.angle)
        return "box(" + ",".join(format_number(v) for v in vals) + ")"

    def _chords(self, y: NDArray[np.float64]) -> _Chords:
        c, s = _cos_sin(self.angle)
        dy = y - self.y
        lo = np.full_like(dy, -np.inf)
        hi = np.full_like(dy, np.inf)
        # |k dx + m| <= half for (k, m, half) = (c, s dy, w/2) and (-s, c dy, h/2)
        for k, m, half in ((c, s * dy, self.width / 2), (-s, c * dy, self.height / 2)):
            if k == 0:
                bad = np.abs(m) > half
                lo, hi = np.where(bad, np.inf, lo), np.where(bad, -np.inf, hi)
                continue
            e1, e2 = (-half - m) / k, (half - m) / k
            lo, hi = np.maximum(lo, np.minimum(e1, e2)), np.minimum(hi, np.maximum(e1, e2))
        empty = ~(hi >= lo)
        lo, hi = np.where(empty, 0.0, lo), np.where(empty, 0.0, hi)
        return [(self.x + lo, self.x + hi)]

    def _ybreaks(self) -> list[float]:
        c, s = _cos_sin(self.angle)
        hw, hh = self.width / 2, self.height / 2
        return [self.y + su * hw * s + sv * hh * c for su in (-1, 1) for sv in (-1, 1)]


Shape: TypeAlias = Circle | Annulus | Ellipse | Box


def ds9_text(shape: Shape) -> str:
    """The shape as a ds9 physical region, e.g. ``box(x,y,width,height,angle)`` (full sides)."""
    if isinstance(shape, Box):
        vals = (shape.x, shape.y, shape.width, shape.height, shape.angle)
        return "box(" + ",".join(format_number(v) for v in vals) + ")"
    return shape.sas


# ---------------------------------------------------------------------------------------------
# Area of a union of shapes

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_T = (_GL_NODES + 1.0) / 2.0
# substitution y = a + (b - a)(1 - cos(pi t))/2 removes the sqrt endpoint singularities of chords
_SUB_Y = (1.0 - np.cos(np.pi * _T)) / 2.0
_SUB_W = _GL_WEIGHTS / 2.0 * np.pi / 2.0 * np.sin(np.pi * _T)


def _union_length(shapes: Sequence[Shape], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exact length of the union of the shapes' horizontal chords at each y."""
    pairs = [p for shape in shapes for p in shape._chords(y)]
    lo = np.stack([p[0] for p in pairs], axis=-1)
    hi = np.stack([p[1] for p in pairs], axis=-1)
    order = np.argsort(lo, axis=-1)
    lo, hi = np.take_along_axis(lo, order, -1), np.take_along_axis(hi, order, -1)
    reach = np.maximum.accumulate(hi, axis=-1)
    prev = np.concatenate([np.full(lo.shape[:-1] + (1,), -np.inf), reach[..., :-1]], axis=-1)
    length: NDArray[np.float64] = np.clip(hi - np.maximum(lo, prev), 0.0, None).sum(axis=-1)
    return length


def _integrate(shapes: Sequence[Shape], rel_tol: float = 1e-11) -> float:
    """Adaptive Gauss-Legendre integral over y of the union chord length (area of the union)."""
    breaks = np.unique(np.concatenate([shape._ybreaks() for shape in shapes]))
    scale = sum(shape.area for shape in shapes)
    span = breaks[-1] - breaks[0]
    pieces = zip(breaks[:-1], breaks[1:], strict=True)
    edges = np.concatenate([np.linspace(lo, hi, 5)[:-1] for lo, hi in pieces])
    a, b = edges, np.append(edges[1:], breaks[-1])

    def quad(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        y = a[:, None] + (b - a)[:, None] * _SUB_Y
        integral: NDArray[np.float64] = (_union_length(shapes, y) * _SUB_W).sum(axis=1) * (b - a)
        return integral

    whole = quad(a, b)
    total = 0.0
    for _ in range(60):
        mid = (a + b) / 2
        left, right = quad(a, mid), quad(mid, b)
        halves = left + right
        done = np.abs(halves - whole) <= rel_tol * scale * np.maximum((b - a) / span, 1e-6)
        total += halves[done].sum()
        keep = ~done
        if not keep.any():
            return float(total)
        a, b = np.concatenate([a[keep], mid[keep]]), np.concatenate([mid[keep], b[keep]])
        whole = np.concatenate([left[keep], right[keep]])
    return float(total + whole.sum())


def union_area(shapes: Sequence[Shape]) -> float:
    """Geometric area of the union of shapes, square sky pixels.

    Shapes whose bounding boxes overlap no other shape's contribute their exact area; each group
    of overlapping shapes is integrated: the exact union length of the horizontal chords (every
    shape gives 0, 1 or 2 x-intervals at a given y) integrated over y by adaptive Gauss-Legendre
    quadrature with breakpoints at every shape's y-extent (relative accuracy ~1e-10).

    Parameters
    ----------
    shapes : sequence of Circle, Annulus, Ellipse or Box

    Returns
    -------
    float
        Area of the union, square sky pixels (0 for no shapes).
    """
    shapes = list(shapes)
    group = list(range(len(shapes)))  # union-find over bounding-box overlaps

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    bounds = [shape.bounds for shape in shapes]
    for i, bi in enumerate(bounds):
        for j in range(i):
            bj = bounds[j]
            if bi[0] < bj[1] and bj[0] < bi[1] and bi[2] < bj[3] and bj[2] < bi[3]:
                group[root(i)] = root(j)
    members: dict[int, list[Shape]] = {}
    for i, shape in enumerate(shapes):
        members.setdefault(root(i), []).append(shape)
    return float(sum(g[0].area if len(g) == 1 else _integrate(g) for g in members.values()))
