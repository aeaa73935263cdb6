"""ds9 regions in celestial coordinates, converted with the event file's X/Y WCS.

Rules: docs/semantics.md §2.

The MOS1 source circle of the real files, written in fk5 degrees and in sexagesimal with a
10" radius (200 pixels at 0.05"/pixel), selects exactly the events of the physical circle.
Conversions are checked against the TAN projection and spherical offsets written out here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs.utils import pixel_to_skycoord

from pipeline.read.wcs import read_sky_wcs
from pipeline.select.regions import RegionSet, parse_regions
from pipeline.select.shapes import Box, Circle, Ellipse
from pipeline.select.sky import SkyShape
from schemas.errors import ConfigError, InputFileError
from tests.helpers.realfiles import MOS1_CLEAN, mos1_circles
from tests.helpers.skymaths import gnomonic_pixel, offset


@pytest.fixture(scope="module")
def mos1():
    sky = read_sky_wcs(MOS1_CLEAN)
    with fits.open(MOS1_CLEAN) as hdul:
        x = np.asarray(hdul["EVENTS"].data["X"], dtype=np.float64)
        y = np.asarray(hdul["EVENTS"].data["Y"], dtype=np.float64)
    return sky, x, y


def _fk5_texts(sky, circle):
    """The physical circle in fk5: degrees, and sexagesimal; radius in arcsec."""
    x, y, r = circle
    c = pixel_to_skycoord(x, y, sky.wcs, origin=1)
    radius = r * 0.05  # arcsec
    hms = c.to_string("hmsdms", sep=":", precision=6).split()
    return (
        f'circle({c.ra.deg:.10f},{c.dec.deg:.10f},{radius:g}")',
        f'circle({hms[0]},{hms[1]},{radius:g}")',
        c,
    )


def test_fk5_circle_selects_the_same_events_as_the_physical_one(mos1):
    sky, X, Y = mos1
    circles = mos1_circles()
    deg, sexa, c = _fk5_texts(sky, circles["source"])
    bdeg, bsexa, _ = _fk5_texts(sky, circles["background"])
    assert sexa == 'circle(17:34:42.984837,-32:34:49.703596,10")'
    physical = parse_regions(
        "physical\ncircle({},{},{})\ncircle({},{},{}) # background\n".format(
            *circles["source"], *circles["background"]
        )
    )
    n_src, n_bkg = physical.in_source(X, Y).sum(), physical.in_background(X, Y).sum()
    assert (n_src, n_bkg) == (2456, 57)
    for text in (
        f"fk5\n{deg}\n{bdeg} # background\n",
        f"fk5\n{sexa}\n{bsexa} # background\n",
        f"j2000;{sexa}\nfk5;{bdeg} # background\n",
    ):
        regions = parse_regions(text, "fk5.reg")
        assert regions.needs_wcs
        resolved = regions.resolve(sky.wcs, sky.keywords)
        assert not resolved.needs_wcs
        (s,), (b,) = resolved.source, resolved.background
        assert isinstance(s, Circle) and isinstance(b, Circle)
        assert (s.x, s.y) == pytest.approx(circles["source"][:2], abs=2e-4)
        # 10" is 200 pixels; the TAN projection stretches it by 2e-7 this far off axis
        assert s.r == pytest.approx(200.0, rel=1e-6) and s.r >= 200.0
        assert resolved.in_source(X, Y).sum() == n_src
        assert resolved.in_background(X, Y).sum() == n_bkg
        assert resolved.area_ratio == pytest.approx(1.0, rel=1e-6)
    # the same circle in galactic coordinates (sexagesimal there is degrees, as in ds9)
    g = c.galactic
    gal = parse_regions(f"galactic\ncircle({g.l.deg:.10f},{g.b.deg:.10f},0.1666666666666667')\n")
    (s,) = gal.resolve(sky.wcs).source
    assert (s.x, s.y, s.r) == pytest.approx((*circles["source"][:2], 200.0), abs=2e-4)
    assert gal.resolve(sky.wcs).in_source(X, Y).sum() == n_src


def test_the_conversion_is_recorded(mos1):
    sky, _, _ = mos1
    deg, _, _ = _fk5_texts(sky, mos1_circles()["source"])
    resolved = parse_regions(f"fk5;{deg}\nphysical;circle(1,2,3) # background\n", "a.reg").resolve(
        sky.wcs, {"events_file": str(MOS1_CLEAN), **sky.keywords}
    )
    conv = resolved.conversion
    assert conv is not None and conv["wcs"]["RADESYS"] == "FK5" and conv["wcs"]["TCRPX6"] == 25921
    (shape,) = conv["shapes"]
    assert shape["role"] == "source" and shape["as_written"] == deg
    assert shape["sky"] == "fk5 circle(263.6791034857,-32.5804732211,0.002777777777777778d)"
    assert shape["physical"].startswith("circle(24635.59999")
    assert resolved.background == (Circle(1, 2, 3),)  # physical shapes pass through
    assert resolved.text.startswith("fk5;circle(")


@pytest.mark.parametrize("angle", [0.0, 33.0, 90.0, 151.0])
@pytest.mark.parametrize("where", ["tangent point", "off axis"])
def test_ellipse_and_box_angles_follow_ds9(mos1, angle, where):
    """ds9's sky angle: 0 along the longitude axis, turning towards north; pixel angle = sky angle
    at the tangent point of a north-up, east-left WCS. Off axis the meridians converge."""
    sky, _, _ = mos1
    kw = sky.keywords
    ra, dec = (kw["TCRVL6"], kw["TCRVL7"]) if where == "tangent point" else (263.45, -32.71)
    a, b = 20.0 / 3600, 8.0 / 3600
    ell = SkyShape("ellipse", "fk5", ra, dec, (a, b), angle).to_physical(sky.wcs)
    box = SkyShape("box", "fk5", ra, dec, (2 * a, 2 * b), angle).to_physical(sky.wcs)
    assert isinstance(ell, Ellipse) and isinstance(box, Box)
    # independent: the ends of the first axis (position angle angle - 90) through the TAN formula
    x0, y0 = gnomonic_pixel(ra, dec, kw, 6, 7)
    xa, ya = gnomonic_pixel(*offset(ra, dec, angle - 90.0, a), kw, 6, 7)
    xb, yb = gnomonic_pixel(*offset(ra, dec, angle, b), kw, 6, 7)
    expected_angle = math.degrees(math.atan2(ya - y0, xa - x0)) % 360.0
    for shape, scale in ((ell, 1.0), (box, 2.0)):
        assert (shape.x, shape.y) == pytest.approx((x0, y0), abs=1e-6)
        size_a = shape.a if isinstance(shape, Ellipse) else shape.width
        size_b = shape.b if isinstance(shape, Ellipse) else shape.height
        assert size_a == pytest.approx(scale * math.hypot(xa - x0, ya - y0), abs=1e-6)
        assert size_b == pytest.approx(scale * math.hypot(xb - x0, yb - y0), abs=1e-6)
        assert (shape.angle - expected_angle + 180.0) % 360.0 - 180.0 == pytest.approx(0, abs=1e-7)
        if where == "tangent point":
            assert shape.angle == pytest.approx(angle, abs=1e-9)
            assert size_a == pytest.approx(scale * 400.0, rel=1e-8)
        else:
            # the meridians converge towards the south pole, below the field: west of the
            # tangent point (+X) north leans towards +X, by about (ra - ra0) sin(dec) = 0.11 deg
            turn = (angle - shape.angle + 180.0) % 360.0 - 180.0
            assert turn == pytest.approx(
                (ra - kw["TCRVL6"]) * math.sin(math.radians(dec)), abs=1e-3
            )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('fk5;circle(263.5,-32.5,10")', ("fk5", 263.5, -32.5, (10 / 3600,))),
        ("fk5;circle(263.5d,-32.5d,0.5')", ("fk5", 263.5, -32.5, (0.5 / 60,))),
        ("j2000;circle(17:34:00,-32:30:00,0.01d)", ("fk5", 263.5, -32.5, (0.01,))),
        ("icrs;circle(17h34m00s,-32d30m00s,1')", ("icrs", 263.5, -32.5, (1 / 60,))),
        ('fk5;circle(00:30:00,-00:30:00,1")', ("fk5", 7.5, -0.5, (1 / 3600,))),
        ('galactic;circle(355:30:00,+00:03:00,3")', ("galactic", 355.5, 0.05, (3 / 3600,))),
        ('fk5;annulus(1,2,0",5")', ("fk5", 1.0, 2.0, (0.0, 5 / 3600))),
        ("fk5;ellipse(1,2,4',2',30d)", ("fk5", 1.0, 2.0, (4 / 60, 2 / 60))),
    ],
)
def test_sky_forms(text, expected):
    (shape,) = parse_regions(text).source
    assert isinstance(shape, SkyShape)
    frame, lon, lat, sizes = expected
    assert shape.frame == frame
    assert (shape.lon, shape.lat) == pytest.approx((lon, lat), abs=1e-12)
    assert shape.sizes == pytest.approx(sizes, abs=1e-15)
    assert shape.text == text.split(";", 1)[1]


BKG = "physical;circle(0,0,5) # background\n"
SKY_REJECTIONS = [
    (
        "fk5\ncircle(263.5,-32.5,10)\n",
        2,
        "circle r=10 has no unit; in a celestial system give sizes",
    ),
    ("fk5\ncircle(263.5,-32.5,10p)\n", 2, "circle r='10p' is not a size"),
    ('fk5\ncircle(263.5,-32h30m,10")\n', 2, "circle y=-32h30m is in hours"),
    ('fk5\ncircle(17:3x,-32.5,10")\n', 2, "circle x='17:3x' is not a celestial coordinate"),
    ('fk5\ncircle(263.5,95,10")\n', 2, "latitude 95 is outside -90..90 degrees"),
    ('fk5\nannulus(1,2,5",5")\n', 2, "radii need 0 <= r_in < r_out"),
    ('fk5\nellipse(1,2,0",5",3)\n', 2, "sizes must be > 0"),
    ('ecliptic\ncircle(1,2,3")\n', 1, "coordinate system 'ecliptic' is not supported"),
    ('fk5\ncircle(1,2,nan")\n', 2, "is not a size"),
]


@pytest.mark.parametrize(("text", "line", "part"), SKY_REJECTIONS)
def test_sky_rejections_name_file_and_line(text, line, part):
    with pytest.raises(InputFileError) as info:
        parse_regions(text + BKG, "obs/sky.reg")
    message = str(info.value)
    assert message.startswith(f"regions file obs/sky.reg line {line}: ") and part in message


def test_unresolved_regions_refuse_to_select():
    regions = parse_regions('fk5;circle(263.5,-32.5,10")\n', "s.reg")
    assert regions.needs_wcs and not regions.has_background
    with pytest.raises(ConfigError, match="is in fk5 coordinates; convert the regions"):
        regions.in_source([1.0], [2.0])
    with pytest.raises(ConfigError, match="RegionSet.resolve"):
        _ = regions.source_area
    physical = RegionSet((Circle(1, 2, 3),))
    assert physical.resolve(object()) is physical  # nothing to convert: the WCS is not used
