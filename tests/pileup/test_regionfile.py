"""Writing the chosen annulus into a regions file: same centre and outer radius, the file's own
system, the original kept, nothing half-written, and the project's parser reads it back."""

from __future__ import annotations

import os

import pytest

from pipeline.pileup.regionfile import write_annulus
from pipeline.select.regions import read_regions
from pipeline.select.shapes import Annulus, Circle
from pipeline.select.sky import SkyShape
from schemas.errors import ConfigError

PHYSICAL = """# Region file format: DS9 version 4.1
global color=green width=1
physical
circle(28374,20846,800) # source color=green
circle(29274,15346,1000) # background
"""

FK5 = """# Region file format: DS9 version 4.1
fk5
circle(263.6791034857,-32.5804732211,10")
circle(17:34:42.98,-32:37:49.7,0.5') # background
"""


def test_physical_circle_becomes_an_annulus(tmp_path):
    reg = tmp_path / "ds9.reg"
    reg.write_text(PHYSICAL)
    backup = write_annulus(reg, 130, 'inner radius 6.5" excised')
    assert backup == tmp_path / "ds9.reg.orig" and backup.read_text() == PHYSICAL
    lines = reg.read_text().splitlines()
    assert lines[3] == (
        '# xlcat pileup: inner radius 6.5" excised; was: circle(28374,20846,800) # source '
        "color=green"
    )
    assert lines[4] == "annulus(28374,20846,130,800) # source color=green"
    assert lines[5] == "circle(29274,15346,1000) # background"
    regions = read_regions(reg)
    assert regions.source == (Annulus(28374, 20846, 130, 800),)
    assert regions.background == (Circle(29274, 15346, 1000),)
    # a second write keeps the first backup and adds another
    assert write_annulus(reg, 140, "again") == tmp_path / "ds9.reg.orig.1"
    assert (tmp_path / "ds9.reg.orig").read_text() == PHYSICAL
    assert read_regions(reg).source == (Annulus(28374, 20846, 140, 800),)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ds9.reg",
        "ds9.reg.orig",
        "ds9.reg.orig.1",
    ]


def test_celestial_circle_keeps_its_system(tmp_path):
    reg = tmp_path / "src.reg"
    reg.write_text(FK5)
    write_annulus(reg, 4.5, "excised")
    text = reg.read_text()
    assert 'annulus(263.6791034857,-32.5804732211,4.5",10")\n' in text
    (src,) = read_regions(reg).source
    assert isinstance(src, SkyShape) and src.kind == "annulus" and src.frame == "fk5"
    assert src.sizes == pytest.approx((4.5 / 3600, 10 / 3600), rel=1e-12)
    assert (src.lon, src.lat) == (263.6791034857, -32.5804732211)


def test_refused_without_one_source_circle_and_nothing_changes(tmp_path):
    reg = tmp_path / "two.reg"
    text = "physical\ncircle(100,100,50)\ncircle(300,300,50)\n"
    reg.write_text(text)
    with pytest.raises(ConfigError, match=r"two.reg: the pile-up annulus needs exactly one"):
        write_annulus(reg, 10, "x")
    reg2 = tmp_path / "box.reg"
    reg2.write_text("physical\nbox(100,100,50,50,0)\n")
    with pytest.raises(
        ConfigError, match=r"source shape 'box\(100,100,50,50,0\)' is not a circle or an annulus"
    ):
        write_annulus(reg2, 10, "x")
    assert reg.read_text() == text and sorted(os.listdir(tmp_path)) == ["box.reg", "two.reg"]
