"""Region shapes in celestial coordinates (ds9 ``fk5``, ``icrs``, ``galactic``) and their
conversion to physical sky pixels through an event file's X/Y column WCS.

A :class:`SkyShape` is what a ds9 line in a sky system says: a centre (degrees in its frame),
sizes (degrees) and an angle. :meth:`SkyShape.to_physical` maps its defining points through
the WCS with astropy.coordinates and astropy.wcs: the centre; for each axis, the point one
semi-axis (or radius, or half side) away along the axis's position angle. The physical shape
takes the mapped centre, the pixel distances to the mapped points, and the pixel direction of
the first axis. Rules: docs/semantics.md §2.

ds9's sky angle: 0 puts a shape's first axis along the frame's longitude direction and the
angle turns it toward north (with north up and east left, as XMM sky pixels are, the pixel
angle equals the sky angle). So the first axis has position angle ``angle - 90`` degrees
(east of north), the second ``angle``.

astropy (coordinates, wcs) is imported when a shape is converted, not with this module, so a
build whose regions are all physical never loads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipeline.select.shapes import Annulus, Box, Circle, Ellipse, Shape, format_number
from schemas.errors import ConfigError

if TYPE_CHECKING:
    from astropy.coordinates import SkyCoord

__all__ = ["SKY_FRAMES", "SkyShape"]

#: ds9 coordinate-system names read as celestial frames -> astropy frame names
#: (ds9 writes ``j2000`` as another name of ``fk5``).
SKY_FRAMES: dict[str, str] = {"fk5": "fk5", "j2000": "fk5", "icrs": "icrs", "galactic": "galactic"}

ShapeKind = Literal["circle", "annulus", "ellipse", "box"]


@dataclass(frozen=True)
class SkyShape:
    """A ds9 shape in a celestial frame, as written (degrees).

    Attributes
    ----------
    kind : {"circle", "annulus", "ellipse", "box"}
    frame : {"fk5", "icrs", "galactic"}
        astropy frame name (``fk5`` is FK5 at equinox J2000, as ds9's ``fk5``).
    lon, lat : float
        Centre, degrees (RA/Dec or l/b).
    sizes : tuple of float
        Degrees: ``(r,)``, ``(r_in, r_out)``, ``(a, b)`` semi-axes, or ``(width, height)``.
    angle : float
        Degrees, ds9 convention (ellipse and box; 0 for circle and annulus).
    text : str
        The shape as written in the file.
    """

    kind: ShapeKind
    frame: str
    lon: float
    lat: float
    sizes: tuple[float, ...]
    angle: float = 0.0
    text: str = ""

    def __post_init__(self) -> None:
        if self.frame not in set(SKY_FRAMES.values()):
            raise ConfigError(
                f"{self.text or self.kind}: frame {self.frame!r} is not fk5/icrs/galactic"
            )
        values = (self.lon, self.lat, self.angle, *self.sizes)
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"{self.text or self.kind}: every value must be a finite number")
        if not -90.0 <= self.lat <= 90.0:
            raise ConfigError(f"{self.text or self.kind}: latitude {self.lat} is outside -90..90")
        if self.kind == "annulus":
            if not 0 <= self.sizes[0] < self.sizes[1]:
                raise ConfigError(f"{self.text}: radii need 0 <= r_in < r_out")
        elif not all(s > 0 for s in self.sizes):
            raise ConfigError(f"{self.text or self.kind}: sizes must be > 0")

    def centre(self) -> SkyCoord:
        """The centre as an astropy SkyCoord in its own frame."""
        import astropy.units as u  # astropy only when a celestial shape is converted
        from astropy.coordinates import SkyCoord

        return SkyCoord(self.lon * u.deg, self.lat * u.deg, frame=self.frame)

    def to_physical(self, wcs: Any) -> Shape:
        """The same shape in physical sky pixels of an event file.

        Parameters
        ----------
        wcs : astropy.wcs.WCS
            The X/Y column WCS (column values are FITS pixel coordinates, origin 1);
            see :func:`pipeline.read.wcs.read_sky_wcs`.

        Returns
        -------
        Circle, Annulus, Ellipse or Box
        """
        import astropy.units as u
        from astropy.wcs.utils import skycoord_to_pixel

        centre = self.centre()
        x0, y0 = (float(v) for v in skycoord_to_pixel(centre, wcs, origin=1))

        def axis(position_angle: float, size: float) -> tuple[float, float]:
            """Pixel length and direction (degrees from +X) of ``size`` degrees along a PA."""
            end = centre.directional_offset_by(position_angle * u.deg, size * u.deg)
            x, y = (float(v) for v in skycoord_to_pixel(end, wcs, origin=1))
            return math.hypot(x - x0, y - y0), math.degrees(math.atan2(y - y0, x - x0))

        first = self.angle - 90.0  # position angle of the first axis (docstring of the module)
        if self.kind in ("circle", "annulus"):
            # the mean of two perpendicular radii: equal to 1e-7 for XMM fields (TAN projection)
            def radius(r: float) -> float:
                return 0.0 if r == 0 else 0.5 * (axis(first, r)[0] + axis(first + 90.0, r)[0])

            if self.kind == "circle":
                return Circle(x0, y0, radius(self.sizes[0]))
            return Annulus(x0, y0, radius(self.sizes[0]), radius(self.sizes[1]))
        half = 0.5 if self.kind == "box" else 1.0
        len_a, direction = axis(first, half * self.sizes[0])
        len_b, _ = axis(first + 90.0, half * self.sizes[1])
        angle = float(np.round(direction % 360.0, 10)) % 360.0
        if self.kind == "ellipse":
            return Ellipse(x0, y0, len_a, len_b, angle)
        return Box(x0, y0, len_a / half, len_b / half, angle)

    def describe(self) -> str:
        """The shape in degrees, e.g. ``fk5 circle(263.679103,-32.580473,0.00277778d)``."""
        sizes = ",".join(f"{format_number(s)}d" for s in self.sizes)
        extra = f",{format_number(self.angle)}" if self.kind in ("ellipse", "box") else ""
        lon, lat = format_number(self.lon), format_number(self.lat)
        return f"{self.frame} {self.kind}({lon},{lat},{sizes}{extra})"
