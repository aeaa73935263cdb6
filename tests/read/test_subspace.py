"""Data-subspace keywords: parsed from hand-written headers and from the real SAS files."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.read.subspace import (
    ALL_FLAG_BITS,
    FlagMask,
    IntRanges,
    parse_bit_pattern,
    parse_ranges,
    parse_subspace,
    parse_time_ranges,
)
from tests.helpers.realfiles import MOS1_CLEAN, MOS1_RAW, PN


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("500:10000", ((500, 10000),)),
        ("[500:10000]", ((500, 10000),)),
        (":12", ((None, 12),)),
        ("(:12]", ((None, 12),)),
        ("0", ((0, 0),)),
        ("10001:", ((10001, None),)),
        ("(0:12)", ((1, 11),)),
        ("[200:12000)", ((200, 11999),)),
        ("0:4,6:12", ((0, 4), (6, 12))),
        ("0.5:3.5", ((1, 3),)),
    ],
)
def test_ranges(text, ranges):
    r = parse_ranges(text)
    assert r is not None and r.ranges == ranges


@pytest.mark.parametrize("text", ["TABLE", "", "abc", "1:2:3", "b0x1"])
def test_not_ranges(text):
    assert parse_ranges(text) is None


def test_ranges_cover_integers_across_touching_ranges():
    r = IntRanges(((0, 4), (5, 12)))
    assert r.covers(0, 12) and not r.covers(0, 13) and not IntRanges(((0, 4), (6, 12))).covers(0, 6)
    assert IntRanges(((None, 12),)).covers(-5, 12) and r.text() == "[0:4],[5:12]"


def test_bit_pattern_last_character_is_bit_zero():
    assert parse_bit_pattern("bx01") == FlagMask(clear=0b10, set=0b01)
    # the two MOS patterns of M1_clean.fits are epiclccorr's FLAG&0x762aa000 and FLAG&0x766ba000
    assert parse_bit_pattern("b000x00xxx0x0x0x0x0xxxxxxxxxxxxx") == FlagMask(0x762AA000)
    assert parse_bit_pattern("b000x00xx00x0x000x0xxxxxxxxxxxxx") == FlagMask(0x766BA000)
    # the pn pattern of the 0201160101 list is its XMMEA_EP mask
    assert parse_bit_pattern("b00000x0xxxxxxxxxxxxxxxxx") == FlagMask(0xFA0000)
    assert parse_bit_pattern("500:10000") is None


def test_time_ranges():
    assert parse_time_ranges("1:2,5:") == [(1.0, 2.0), (5.0, np.inf)]
    assert parse_time_ranges("TABLE") is None and parse_time_ranges("7") is None


def test_components_inherit_from_the_first():
    h = {
        "DSTYP1": "CCDNR",
        "DSVAL1": "1",
        "DSTYP2": "PI",
        "DSVAL2": "500:10000",
        "DSTYP3": "TIME",
        "DSVAL3": "TABLE",
        "DSREF3": ":GTI00004",
        "2DSVAL1": "2",
        "2DSREF3": ":GTI00104",
        "3DSVAL1": "3",
        "3DSVAL2": "1000:2000",
    }
    s = parse_subspace(h)
    assert [c.ccds() for c in s.components] == [frozenset({1}), frozenset({2}), frozenset({3})]
    assert [c.of("TIME")[0].table for c in s.components] == [
        ("", "GTI00004"),
        ("", "GTI00104"),
        ("", "GTI00004"),
    ]
    assert s.ranges("PI") == IntRanges(((500, 10000), (1000, 2000)))
    assert s.ranges("PATTERN") is None and s.flag_masks() is None
    assert s.components_for_ccd(2) == (s.components[1],)
    assert parse_subspace({"TSTART": 1.0}).empty


def test_filtered_mos1_list():
    """M1_clean.fits: one component per CCD, each with its own filter GTI; PI, PATTERN, FLAG."""
    s = parse_subspace(fits.getheader(MOS1_CLEAN, "EVENTS"))
    assert len(s.components) == 7
    for ccd in range(1, 8):
        (comp,) = s.components_for_ccd(ccd)
        assert comp.of("TIME")[0].table == ("", f"GTI{ccd - 1:03d}04")
    assert s.ranges("PI") == IntRanges(((500, 10000),))
    assert s.ranges("PATTERN") == IntRanges(((None, 12),))
    assert s.flag_masks() == FlagMask(0x762AA000 | 0x766BA000)
    assert s.describe()[1] == {
        "CCDNR": "2",
        "FLAG": "b000x00xxx0x0x0x0x0xxxxxxxxxxxxx && b000x00xx00x0x000x0xxxxxxxxxxxxx",
        "PATTERN": ":12",
        "PI": "500:10000",
        "TIME": "TABLE :GTI00104",
    }


def test_pipeline_mos1_list_is_cut_by_time_and_flag_only():
    s = parse_subspace(fits.getheader(MOS1_RAW, "EVENTS"))
    assert len(s.components) == 7
    assert s.components[0].of("TIME")[0].table == ("", "STDGTI01")
    assert s.ranges("PI") is None and s.ranges("PATTERN") is None
    assert s.flag_masks() == FlagMask(0x762AA000)


def test_pn_list_flag_zero_and_region():
    s = parse_subspace(fits.getheader(PN, "EVENTS"))
    assert len(s.components) == 12
    assert s.ranges("PI") == IntRanges(((300, 10000),))
    assert s.ranges("PATTERN") == IntRanges(((None, 4),))
    assert s.flag_masks() == FlagMask(ALL_FLAG_BITS)  # DSVAL5 = '0': FLAG == 0
    assert s.components[9].describe()["POS(X,Y)"] == "TABLE :REG00107"
    assert s.components[9].of("TIME")[0].table == ("", "STDGTI10")
