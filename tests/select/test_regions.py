"""Tests of pipeline.select.regions: ds9 parsing, inclusive borders, areas of unions, SAS text."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from pipeline.select.regions import RegionSet, parse_regions, read_regions
from pipeline.select.shapes import Annulus, Box, Circle, Ellipse, union_area
from schemas.errors import ConfigError, InputFileError

HEADER = "# Region file format: DS9 version 4.1\n"
GLOBAL = (
    'global color=green dashlist=8 3 width=1 font="helvetica 10 normal roman" select=1 '
    "highlite=1 dash=0 fixed=0 edit=1 move=1 delete=1 include=1 source=1\n"
)


def lens(r: float, R: float, d: float) -> float:
    """Area of the intersection of two discs of radii r, R whose centres are d apart."""
    if d >= r + R:
        return 0.0
    if d <= abs(R - r):
        return math.pi * min(r, R) ** 2
    a = r * r * math.acos((d * d + r * r - R * R) / (2 * d * r))
    b = R * R * math.acos((d * d + R * R - r * r) / (2 * d * R))
    c = 0.5 * math.sqrt((-d + r + R) * (d + r - R) * (d - r + R) * (d + r + R))
    return a + b - c


def local_frame(X, Y, x, y, angle_deg):
    """(u, v): the points in a frame centred on (x, y) and turned by angle (complex rotation)."""
    z = ((np.asarray(X, float) - x) + 1j * (np.asarray(Y, float) - y)) * np.exp(
        -1j * np.deg2rad(angle_deg)
    )
    return z.real, z.imag


# ---------------------------------------------------------------------------------------------
# borders, exactly on and one pixel outside


BORDER_CASES = [
    # shape, points on the border or inside (True), points one pixel outside (False)
    (
        Circle(100, 200, 5),
        [
            (105, 200),
            (95, 200),
            (100, 205),
            (100, 195),
            (103, 204),
            (97, 196),
            (104, 197),
            (100, 200),
        ],
        [(106, 200), (94, 200), (100, 206), (104, 204), (103, 205), (96, 196)],
    ),
    (
        Annulus(100, 200, 3, 5),
        [(103, 200), (100, 197), (105, 200), (103, 204), (96, 197), (102, 203)],
        [(100, 200), (102, 202), (101, 201), (106, 200), (104, 204), (100, 194)],
    ),
    (Annulus(100, 200, 0, 5), [(100, 200), (103, 204), (105, 200)], [(106, 200), (104, 204)]),
    (
        Ellipse(0, 0, 10, 5, 0),
        [(10, 0), (-10, 0), (0, 5), (0, -5), (6, 4), (-6, -4), (8, 3)],
        [(11, 0), (0, 6), (7, 4), (6, 5), (9, 3)],
    ),
    (
        Ellipse(0, 0, 10, 5, 90),
        [(0, 10), (0, -10), (5, 0), (4, 6), (-4, 6)],
        [(10, 0), (0, 11), (6, 0), (4, 7), (5, 6)],
    ),
    (Ellipse(0, 0, 10, 5, 180), [(6, 4), (-10, 0)], [(7, 4), (11, 0)]),
    (
        Box(100, 200, 10, 6, 0),
        [(105, 203), (95, 197), (105, 197), (95, 203), (100, 203), (105, 200)],
        [(106, 200), (100, 204), (94, 200), (100, 196), (106, 204)],
    ),
    (
        Box(100, 200, 10, 6, 90),
        [(103, 205), (97, 195), (100, 205), (103, 200)],
        [(104, 200), (100, 206), (105, 200)],
    ),
    (Box(100, 200, 10, 6, 270), [(103, 205), (97, 195)], [(104, 200), (100, 206)]),
    (Box(100, 200, 10, 6, -180), [(105, 203), (95, 197)], [(106, 200), (100, 204)]),
]


@pytest.mark.parametrize(("shape", "inside", "outside"), BORDER_CASES)
def test_borders_are_inclusive_and_exact(shape, inside, outside):
    xi, yi = np.array(inside, dtype=np.int32).T
    xo, yo = np.array(outside, dtype=np.int32).T
    assert shape.contains(xi, yi).tolist() == [True] * len(inside)
    assert shape.contains(xo, yo).tolist() == [False] * len(outside)


@pytest.mark.parametrize("angle", [17.0, 33.3, 120.0, 251.5, -40.0])
@pytest.mark.parametrize("kind", ["ellipse", "box"])
def test_rotated_shapes_against_brute_force(kind, angle):
    rng = np.random.default_rng(7)
    x, y, a, b = 500.0, 700.0, 40.0, 15.0
    X = rng.uniform(x - 50, x + 50, 20000)
    Y = rng.uniform(y - 50, y + 50, 20000)
    u, v = local_frame(X, Y, x, y, angle)
    if kind == "ellipse":
        shape = Ellipse(x, y, a, b, angle)
        level = (u / a) ** 2 + (v / b) ** 2
        expected = level <= 1
        clear = np.abs(level - 1) > 1e-9
    else:
        shape = Box(x, y, 2 * a, 2 * b, angle)
        level = np.maximum(np.abs(u) / a, np.abs(v) / b)
        expected = level <= 1
        clear = np.abs(level - 1) > 1e-9
    got = shape.contains(X, Y)
    assert expected.sum() > 1000
    np.testing.assert_array_equal(got[clear], expected[clear])


@pytest.mark.parametrize("angle", [0.0, 25.0, 90.0, 163.0])
def test_rotated_shapes_by_construction(angle):
    """Points built in the shape's own frame, then turned by +angle, just in and just out."""
    t = np.linspace(0, 2 * np.pi, 361)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    ell = Ellipse(10.0, -20.0, 30.0, 12.0, angle)
    box = Box(10.0, -20.0, 60.0, 24.0, angle)
    for scale, want in ((0.999, True), (1.001, False)):
        u, v = scale * 30 * np.cos(t), scale * 12 * np.sin(t)
        assert np.all(ell.contains(10 + u * c - v * s, -20 + u * s + v * c) == want)
        # a square path around the box's outline
        k = np.clip(np.cos(t) * 2, -1, 1), np.clip(np.sin(t) * 2, -1, 1)
        u, v = scale * 30 * k[0], scale * 12 * k[1]
        assert np.all(box.contains(10 + u * c - v * s, -20 + u * s + v * c) == want)


@pytest.mark.parametrize(
    "shape",
    [
        Circle(3, 4, 5),
        Annulus(3, 4, 2, 5),
        Ellipse(3, 4, 6, 2, 0),
        Ellipse(3, 4, 6, 2, 37),
        Box(3, 4, 6, 2, 0),
        Box(3, 4, 6, 2, 123),
    ],
)
def test_bounds_match_a_dense_outline(shape):
    t = np.linspace(0, 2 * np.pi, 200001)
    if isinstance(shape, (Circle, Annulus)):
        r = shape.r if isinstance(shape, Circle) else shape.r_out
        xs, ys = shape.x + r * np.cos(t), shape.y + r * np.sin(t)
    elif isinstance(shape, Ellipse):
        c, s = math.cos(math.radians(shape.angle)), math.sin(math.radians(shape.angle))
        u, v = shape.a * np.cos(t), shape.b * np.sin(t)
        xs, ys = shape.x + u * c - v * s, shape.y + u * s + v * c
    else:
        c, s = math.cos(math.radians(shape.angle)), math.sin(math.radians(shape.angle))
        corners = [
            (su * shape.width / 2, sv * shape.height / 2) for su in (-1, 1) for sv in (-1, 1)
        ]
        xs = np.array([shape.x + u * c - v * s for u, v in corners])
        ys = np.array([shape.y + u * s + v * c for u, v in corners])
    np.testing.assert_allclose(shape.bounds, (xs.min(), xs.max(), ys.min(), ys.max()), atol=1e-6)


def test_exact_areas():
    assert Circle(0, 0, 3).area == pytest.approx(math.pi * 9, rel=1e-15)
    assert Annulus(0, 0, 2, 3).area == pytest.approx(math.pi * 5, rel=1e-15)
    assert Annulus(0, 0, 0, 3).area == pytest.approx(math.pi * 9, rel=1e-15)
    assert Ellipse(0, 0, 3, 2, 40).area == pytest.approx(math.pi * 6, rel=1e-15)
    assert Box(0, 0, 3, 2, 40).area == 6.0


# ---------------------------------------------------------------------------------------------
# union areas against analytic results


def test_union_two_overlapping_circles_lens_formula():
    for d in (1.0, 7.5, 12.0, 19.9):
        shapes = [Circle(25000, 26000, 10), Circle(25000 + d * 0.6, 26000 + d * 0.8, 10)]
        expected = 2 * math.pi * 100 - lens(10, 10, d)
        assert union_area(shapes) == pytest.approx(expected, rel=1e-9)
    shapes = [Circle(0, 0, 800), Circle(900, 300, 500)]
    expected = math.pi * (800**2 + 500**2) - lens(800, 500, math.hypot(900, 300))
    assert union_area(shapes) == pytest.approx(expected, rel=1e-9)


def test_union_circle_inside_circle():
    assert union_area([Circle(0, 0, 10), Circle(2, 3, 4)]) == pytest.approx(100 * math.pi, 1e-9)


def test_union_annulus_and_circle_in_its_hole():
    expected = math.pi * (20**2 - 8**2) + math.pi * 5**2
    assert union_area([Annulus(0, 0, 8, 20), Circle(1, -2, 5)]) == pytest.approx(expected, 1e-9)


def test_union_annulus_and_circle_across_its_ring():
    ring, disc = Annulus(0, 0, 8, 20), Circle(15, 4, 9)
    d = math.hypot(15, 4)
    overlap = lens(9, 20, d) - lens(9, 8, d)
    expected = ring.area + disc.area - overlap
    assert union_area([ring, disc]) == pytest.approx(expected, rel=1e-9)


def test_union_box_inside_circle():
    assert union_area([Circle(0, 0, 10), Box(1, 1, 8, 6, 30)]) == pytest.approx(100 * math.pi, 1e-9)


def test_union_overlapping_axis_aligned_boxes():
    # [0,10]x[0,6] and [4,12]x[3,9]: 60 + 48 - 6*3
    assert union_area([Box(5, 3, 10, 6), Box(8, 6, 8, 6)]) == pytest.approx(90.0, rel=1e-9)


@pytest.mark.parametrize(
    "shape", [Ellipse(3, 4, 6, 2, 33), Box(3, 4, 6, 2, 33), Annulus(3, 4, 1, 6)]
)
def test_union_of_a_shape_with_itself_is_its_area(shape):
    assert union_area([shape, shape]) == pytest.approx(shape.area, rel=1e-9)


def test_union_disjoint_shapes_is_the_sum():
    shapes = [Circle(0, 0, 10), Ellipse(100, 0, 10, 5, 20), Box(0, 100, 3, 4, 0)]
    assert union_area(shapes) == pytest.approx(sum(s.area for s in shapes), rel=1e-15)
    assert union_area([]) == 0.0


def test_union_three_mixed_shapes_against_a_pixel_grid():
    shapes = [Circle(0, 0, 30), Annulus(25, 10, 10, 28), Box(-10, 25, 40, 16, 35)]
    h = 0.05
    g = np.arange(-70, 70, h) + h / 2
    X, Y = np.meshgrid(g, g)
    inside = np.zeros(X.shape, bool)
    for s in shapes:
        inside |= s.contains(X, Y)
    assert union_area(shapes) == pytest.approx(inside.sum() * h * h, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# SAS text


def test_sas_text_of_each_shape():
    assert Circle(25000, 26000, 800).sas == "circle(25000,26000,800)"
    assert Annulus(25000, 26000, 60, 800).sas == "annulus(25000,26000,60,800)"
    assert Annulus(25000, 26000, 0, 800).sas == "annulus(25000,26000,0,800)"
    assert Ellipse(25000.5, 26000, 300, 200, 45).sas == "ellipse(25000.5,26000,300,200,45)"
    # selectlib's box takes half widths; ds9's takes full widths
    assert Box(25000, 26000, 300, 201, 10).sas == "box(25000,26000,150,100.5,10)"


def test_sas_numbers_keep_full_precision():
    x, y, r = 25123.456789012345, 26000.000001, 812.3456789012
    text = Circle(x, y, r).sas
    assert text.startswith("circle(") and text.endswith(")")
    numbers = text[len("circle(") : -1].split(",")
    assert [float(n) for n in numbers] == [x, y, r]


def test_sas_expression_parenthesises_several_shapes():
    regions = RegionSet(
        (Circle(1, 2, 3),), (Circle(10, 20, 30), Annulus(5, 6, 7, 8)), "", "test.reg"
    )
    assert regions.sas_expression("source") == "((X,Y) IN circle(1,2,3))"
    assert (
        regions.sas_expression("background")
        == "((X,Y) IN circle(10,20,30) || (X,Y) IN annulus(5,6,7,8))"
    )
    with pytest.raises(ConfigError, match="which"):
        regions.sas_expression("both")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# parsing


GOOD = (
    HEADER
    + GLOBAL
    + "physical\n"
    + "circle(25000,26000,800) # color=green text={background of the source}\n"
    + "\n"
    + "circle(20000,26000,1200) # background\n"
    + "physical;annulus(21000.5,26000,0,100) # color=red background\n"
    + "CIRCLE( 23000 , 26000 , 100 )# background dash=1\n"
    + "ellipse(25010,26010,20,10) # source\n"
    + "box(25020,26020,20,10,30)\n"
)


def test_parse_a_ds9_file():
    regions = parse_regions(GOOD, "obs/ds9.reg")
    assert regions.source == (
        Circle(25000, 26000, 800),
        Ellipse(25010, 26010, 20, 10, 0),
        Box(25020, 26020, 20, 10, 30),
    )
    assert regions.background == (
        Circle(20000, 26000, 1200),
        Annulus(21000.5, 26000, 0, 100),
        Circle(23000, 26000, 100),
    )
    assert regions.text == GOOD and regions.path == "obs/ds9.reg"
    # the source ellipse and box lie inside the circle; background shapes overlap partly
    assert regions.source_area == pytest.approx(math.pi * 800**2, rel=1e-9)
    expected_bkg = math.pi * 1200**2 + math.pi * 100**2 - lens(1200, 100, 1000.5)
    expected_bkg += math.pi * 100**2
    assert regions.background_area == pytest.approx(expected_bkg, rel=1e-9)
    assert regions.area_ratio == pytest.approx(math.pi * 800**2 / expected_bkg, rel=1e-9)


def test_crlf_and_physical_prefix_only():
    text = "physical;circle(1,2,3)\r\nphysical;circle(10,20,3) # background\r\n"
    regions = parse_regions(text)
    assert regions.source == (Circle(1, 2, 3),) and regions.background == (Circle(10, 20, 3),)


def test_in_source_and_in_background_or_the_shapes():
    regions = parse_regions(
        "physical\ncircle(0,0,5)\ncircle(20,0,5)\ncircle(100,0,5) # background\n"
        "box(130,0,10,10) # background\n"
    )
    X = np.array([5, 20, 25, 11, 100, 135, 136, 0])
    Y = np.array([0, 5, 0, 0, 5, 5, 0, 6])
    assert regions.in_source(X, Y).tolist() == [True, True, True, False, False, False, False, False]
    assert regions.in_background(X, Y).tolist() == [
        False,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_region_set_pickles():
    regions = parse_regions(GOOD, "obs/ds9.reg")
    assert pickle.loads(pickle.dumps(regions)) == regions


def test_read_regions_from_disk(tmp_path):
    path = tmp_path / "ds9.reg"
    path.write_text(GOOD)
    regions = read_regions(path)
    assert regions.path == str(path) and len(regions.source) == 3


def test_read_regions_missing_or_binary(tmp_path):
    with pytest.raises(InputFileError, match=r"regions file .*nothere\.reg: cannot be read"):
        read_regions(tmp_path / "nothere.reg")
    with pytest.raises(InputFileError, match="cannot be read"):
        read_regions(tmp_path)
    binary = tmp_path / "b.reg"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 10)
    with pytest.raises(InputFileError, match="not a text file"):
        read_regions(binary)


BKG = "circle(0,0,5) # background\n"
REJECTIONS = [
    # text, line named in the message, part of the message
    ("fk4\ncircle(1,2,3)\n", 1, "coordinate system 'fk4'"),
    ("ecliptic;circle(1,2,3)\n", 1, "coordinate system 'ecliptic'"),
    ("image\ncircle(1,2,3)\n", 1, "fk5 (alias j2000), icrs or galactic"),
    ("physical\ncircle(1,2,3)\nb1950\n", 3, "coordinate system 'b1950'"),
    ("physical\ncircle(1,2,3)\nwcs\n", 3, "coordinate system 'wcs'"),
    ('physical\ncircle(1,2,3")\n', 2, "arcsec"),
    ("physical\ncircle(1,2,3')\n", 2, "arcmin"),
    ("physical\ncircle(1d,2,3)\n", 2, "degrees"),
    ("physical\ncircle(12:30:00,2,3)\n", 2, "sexagesimal"),
    ("physical\n-circle(1,2,3)\n", 2, "exclusion"),
    ("physical\ncircle(1,2,3) # include=0\n", 2, "include=0"),
    ("physical\npolygon(1,2,3,4,5,6)\n", 2, "'polygon' is not supported"),
    ("physical\npoint(1,2)\n", 2, "'point' is not supported"),
    ("physical\nblob(1,2)\n", 2, "'blob' is not a known shape"),
    ("physical\ncircle(1,2,x)\n", 2, "'x' is not a number"),
    ("physical\ncircle(1,,3)\n", 2, "is not a number"),
    ("physical\ncircle(1,2,1e999)\n", 2, "not a finite number"),
    ("physical\ncircle(1,2,nan)\n", 2, "is not a number"),
    ("physical\ncircle(1,2)\n", 2, "has 2 values"),
    ("physical\ncircle(1,2,3,4)\n", 2, "has 4 values"),
    ("physical\ncircle 1 2 3\n", 2, "parentheses"),
    ("physical\ncircle(1,2,0)\n", 2, "r=0 must be > 0"),
    ("physical\ncircle(1,2,-3)\n", 2, "r=-3 must be > 0"),
    ("physical\nellipse(1,2,0,3)\n", 2, "a=0 must be > 0"),
    ("physical\nbox(1,2,3,-1,0)\n", 2, "height=-1 must be > 0"),
    ("physical\nannulus(1,2,5,5)\n", 2, "r_in < r_out"),
    ("physical\nannulus(1,2,6,5)\n", 2, "r_in < r_out"),
    ("physical\nannulus(1,2,-1,5)\n", 2, "0 <= r_in"),
    ("physical\nannulus(1,2,3,4,5)\n", 2, "multi-ring annulus"),
    ("physical\nbox(1,2,3,4,5,6,7)\n", 2, "multi-ring box"),
    ("# comment\ncircle(1,2,3)\nphysical\n", 2, "before any coordinate-system line"),
    ("physical\ncircle(1,2,3);circle(4,5,6)\n", 2, "one shape per line"),
    ("physical\ncircle(1,2,3) # source background\n", 2, "both 'source' and 'background'"),
    ("global color=green background\nphysical\ncircle(1,2,3)\n", 1, "global"),
]


@pytest.mark.parametrize(("text", "line", "part"), REJECTIONS)
def test_rejections_name_file_and_line(text, line, part):
    with pytest.raises(InputFileError) as info:
        parse_regions(text + "physical\n" + BKG, "obs/bad.reg")
    message = str(info.value)
    assert message.startswith(f"regions file obs/bad.reg line {line}: ")
    assert part in message


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("physical\ncircle(1,2,3) # background\n", "no source shape"),
        ("", "no source shape"),
        (HEADER + "physical\n", "no source shape"),
    ],
)
def test_files_without_source(text, part):
    with pytest.raises(InputFileError) as info:
        parse_regions(text, "obs/bad.reg")
    message = str(info.value)
    n = len(text.splitlines())
    assert message.startswith(f"regions file obs/bad.reg (lines 1-{n}): {part}")


def test_direct_construction_is_validated():
    with pytest.raises(ConfigError, match="r=0"):
        Circle(0, 0, 0)
    with pytest.raises(ConfigError, match="r_in"):
        Annulus(0, 0, 3, 2)
    with pytest.raises(ConfigError, match="finite"):
        Ellipse(0, math.inf, 1, 1)
    with pytest.raises(ConfigError, match="no source shape"):
        RegionSet((), (Circle(0, 0, 1),))


@pytest.mark.parametrize(
    "text", ["physical\ncircle(1,2,3)\n", "physical\ncircle(1,2,3) # text={background}\n"]
)
def test_a_file_without_background_is_source_only(text):
    regions = parse_regions(text, "obs/src.reg")
    assert regions.source == (Circle(1, 2, 3),) and regions.background == ()
    assert not regions.has_background and regions.area_ratio is None
    assert regions.background_area == 0.0
    assert regions.sas_expression("background") is None
    assert regions.sas_expression("source") == "((X,Y) IN circle(1,2,3))"
    assert regions.in_background([1, 4], [2, 2]).tolist() == [False, False]
    assert regions.in_source([1, 4], [2, 2]).tolist() == [True, True]
