"""The X/Y column WCS of real event lists, and the refusal of malformed ones (docs/semantics.md §2).

The pixel <-> sky mapping is checked against the gnomonic (TAN) projection written out
independently (tests/helpers/skymaths.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import FK5
from astropy.wcs.utils import pixel_to_skycoord, wcs_to_celestial_frame

from pipeline.read.wcs import read_sky_wcs
from schemas.errors import InputFileError
from tests.helpers.eventfiles import FileSpec, edge_events, write_event_file
from tests.helpers.realfiles import MOS1_CLEAN, NUSTAR_EVENTS, PN, mos1_circles
from tests.helpers.skymaths import GOOD_WCS, gnomonic_pixel


@pytest.mark.parametrize("path", [MOS1_CLEAN, PN])
def test_real_wcs_is_fk5_j2000_and_the_tan_projection(path):
    sky = read_sky_wcs(path)
    kw = sky.keywords
    ix, iy = kw["columns"]["X"], kw["columns"]["Y"]
    assert (ix, iy) == (6, 7)
    assert (kw[f"TCTYP{ix}"], kw[f"TCTYP{iy}"]) == ("RA---TAN", "DEC--TAN")
    # 0.05 arcsec per sky pixel, east to lower X
    assert kw[f"TCDLT{ix}"] * 3600 == pytest.approx(-0.05, rel=1e-12)
    assert kw[f"TCDLT{iy}"] * 3600 == pytest.approx(0.05, rel=1e-12)
    frame = wcs_to_celestial_frame(sky.wcs)
    assert isinstance(frame, FK5) and frame.equinox.jyear == 2000.0  # RADECSYS = 'FK5'
    # the reference pixel is the reference value; other pixels follow the TAN projection
    ref = pixel_to_skycoord(kw[f"TCRPX{ix}"], kw[f"TCRPX{iy}"], sky.wcs, origin=1)
    assert ref.ra.deg == pytest.approx(kw[f"TCRVL{ix}"], abs=1e-12)
    assert ref.dec.deg == pytest.approx(kw[f"TCRVL{iy}"], abs=1e-12)
    rng = np.random.default_rng(5)
    for x, y in rng.uniform(kw[f"TCRPX{ix}"] - 18000, kw[f"TCRPX{ix}"] + 18000, (20, 2)):
        c = pixel_to_skycoord(x, y, sky.wcs, origin=1)
        gx, gy = gnomonic_pixel(c.ra.deg, c.dec.deg, kw, ix, iy)
        assert (gx, gy) == pytest.approx((x, y), abs=1e-6)


def test_mos1_source_circle_position():
    sky = read_sky_wcs(MOS1_CLEAN)
    x, y, _ = mos1_circles()["source"]
    c = pixel_to_skycoord(x, y, sky.wcs, origin=1)
    # 17:34:42.98 -32:34:49.7 (the source EXOD names J173442-323451)
    assert c.ra.deg == pytest.approx(263.6791034857, abs=1e-9)
    assert c.dec.deg == pytest.approx(-32.5804732211, abs=1e-9)


def test_nustar_malformed_wcs_is_refused():
    with pytest.raises(InputFileError) as err:
        read_sky_wcs(NUSTAR_EVENTS)
    assert str(err.value) == (
        f"events file {NUSTAR_EVENTS} EVENTS header: keyword TCRVL13 = '0.0' is not a number "
        "(a str); sky regions need the X/Y column WCS; give the regions in physical coordinates"
    )


def _file(tmp_path: Path, header: dict) -> Path:
    return write_event_file(tmp_path / "ev.fits", edge_events(), FileSpec(header=header))


def test_hand_made_wcs(tmp_path):
    sky = read_sky_wcs(_file(tmp_path, GOOD_WCS))
    assert sky.keywords["columns"] == {"X": 2, "Y": 3}
    c = pixel_to_skycoord(25921.0 + 7200, 25921.0, sky.wcs, origin=1)  # 6 arcmin towards west
    assert c.dec.deg == pytest.approx(-10.0, abs=1e-4)
    assert (200.0 - c.ra.deg) * math.cos(math.radians(10.0)) == pytest.approx(0.1, rel=1e-5)


@pytest.mark.parametrize(
    ("change", "part"),
    [
        ({"TCTYP2": None}, "keyword TCTYP2 is missing"),
        ({"TCRVL3": None}, "keyword TCRVL3 is missing"),
        ({"TCRPX2": "25921"}, "keyword TCRPX2 = '25921' is not a number (a str)"),
        ({"TCDLT3": 0.0}, "keyword TCDLT3 = 0"),
        ({"TCTYP2": "DETX", "TCTYP3": "DETY"}, "are not a celestial longitude/latitude pair"),
        ({"TCTYP3": "GLAT-TAN"}, "are not a celestial longitude/latitude pair"),
        ({"EQUINOX": "J2000"}, "keyword EQUINOX = 'J2000' is not a number"),
    ],
)
def test_malformed_wcs_is_one_line_naming_the_keyword(tmp_path, change, part):
    header = {k: v for k, v in {**GOOD_WCS, **change}.items() if v is not None}
    path = _file(tmp_path, header)
    with pytest.raises(InputFileError) as err:
        read_sky_wcs(path)
    msg = str(err.value)
    assert msg.startswith(f"events file {path} EVENTS header: ") and part in msg
    assert msg.endswith("give the regions in physical coordinates") and "\n" not in msg
