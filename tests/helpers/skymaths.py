"""Sky geometry written out by hand, as independent references for the WCS conversions.

The gnomonic (TAN) projection of FITS WCS paper II (zenithal, LONPOLE = 180) and the
spherical offset by a position angle; xlcat itself uses astropy.wcs and astropy.coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: A well-formed X/Y column WCS for the hand-made event files (X, Y are columns 2, 3):
#: (200, -10) degrees FK5 J2000 at pixel 25921, 0.05 arcsec per pixel, east to lower X.
GOOD_WCS = {
    "TCTYP2": "RA---TAN",
    "TCRVL2": 200.0,
    "TCRPX2": 25921.0,
    "TCDLT2": -0.05 / 3600,
    "TCTYP3": "DEC--TAN",
    "TCRVL3": -10.0,
    "TCRPX3": 25921.0,
    "TCDLT3": 0.05 / 3600,
    "RADECSYS": "FK5",
    "EQUINOX": 2000.0,
}


def gnomonic_pixel(
    ra: float, dec: float, kw: Mapping[str, float], ix: int, iy: int
) -> tuple[float, float]:
    """Sky pixel (column value) of (ra, dec), degrees, for TCRVL/TCRPX/TCDLT of columns ix, iy."""
    a0, d0 = math.radians(kw[f"TCRVL{ix}"]), math.radians(kw[f"TCRVL{iy}"])
    a, d = math.radians(ra), math.radians(dec)
    cos_c = math.sin(d0) * math.sin(d) + math.cos(d0) * math.cos(d) * math.cos(a - a0)
    xi = math.cos(d) * math.sin(a - a0) / cos_c
    eta = (math.cos(d0) * math.sin(d) - math.sin(d0) * math.cos(d) * math.cos(a - a0)) / cos_c
    x = kw[f"TCRPX{ix}"] + math.degrees(xi) / kw[f"TCDLT{ix}"]
    y = kw[f"TCRPX{iy}"] + math.degrees(eta) / kw[f"TCDLT{iy}"]
    return x, y


def offset(ra: float, dec: float, pa: float, sep: float) -> tuple[float, float]:
    """The point ``sep`` degrees from (ra, dec) at position angle ``pa`` (east of north), deg."""
    a, d, p, s = (math.radians(v) for v in (ra, dec, pa, sep))
    d2 = math.asin(math.sin(d) * math.cos(s) + math.cos(d) * math.sin(s) * math.cos(p))
    y = math.sin(p) * math.sin(s) * math.cos(d)
    a2 = a + math.atan2(y, math.cos(s) - math.sin(d) * math.sin(d2))
    return math.degrees(a2), math.degrees(d2)
