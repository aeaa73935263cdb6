"""First source and background circles on events (pipeline.build.placement), on made-up fields.

Sky pixels of 0.05": a source radius of 20" is 400 pixels, the background rings 1.5'-3' are
1800-3600 pixels and the radii 30"-60" are 600-1200 pixels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.build.placement import (
    brightest_spot,
    choose_background,
    recentre,
    source_ccd,
    source_excess,
)

CENTRE = (25000.0, 25000.0)
R_SRC = 400.0
RINGS = [1800.0, 2400.0, 3000.0, 3600.0]
RADII = [1200.0, 900.0, 600.0]


def _field(seed: int, *, n_bkg: int = 60_000, half: float = 8000.0):
    """A uniform background over a square and a bright source (Gaussian, sigma 100 px)."""
    rng = np.random.default_rng(seed)
    bx = rng.uniform(CENTRE[0] - half, CENTRE[0] + half, n_bkg)
    by = rng.uniform(CENTRE[1] - half, CENTRE[1] + half, n_bkg)
    sx = rng.normal(CENTRE[0] + 37.0, 100.0, 5000)
    sy = rng.normal(CENTRE[1] - 21.0, 100.0, 5000)
    return np.concatenate([bx, sx]), np.concatenate([by, sy])


def test_recentre_climbs_onto_the_source():
    x, y = _field(1)
    start = (CENTRE[0] + 150.0, CENTRE[1] + 100.0)  # 9" off
    found = recentre(x, y, start, R_SRC, max_shift=R_SRC)
    assert found is not None
    assert math.hypot(found[0] - (CENTRE[0] + 37.0), found[1] - (CENTRE[1] - 21.0)) < 5.0
    excess = source_excess(x, y, found, R_SRC, 1200.0, 3600.0)
    assert excess.significant and excess.counts > 4900
    # the surroundings predict the background inside the circle: 60000 events over 16000^2 px^2
    assert excess.expected == pytest.approx(60_000 * math.pi * R_SRC**2 / 16000.0**2, rel=0.1)


def test_recentre_gives_up_when_it_wanders_too_far():
    x, y = _field(2)
    start = (CENTRE[0] + 700.0, CENTRE[1])  # the source lies 35" away, the limit is 10"
    assert recentre(x, y, start, R_SRC, max_shift=200.0) is None


def test_nothing_stands_out_in_a_flat_field():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 16000, 50_000)
    y = rng.uniform(0, 16000, 50_000)
    excess = source_excess(x, y, (8000.0, 8000.0), R_SRC, 1200.0, 3600.0)
    assert not excess.significant
    assert abs(excess.counts - excess.expected) < 5 * math.sqrt(excess.expected)


def test_brightest_spot_finds_the_source_anywhere_in_the_field():
    x, y = _field(4)
    spot = brightest_spot(x, y, R_SRC)
    assert spot is not None
    assert math.hypot(spot[0] - (CENTRE[0] + 37.0), spot[1] - (CENTRE[1] - 21.0)) < 5.0
    assert brightest_spot(np.zeros(0), np.zeros(0), R_SRC) is None


def test_source_ccd_is_the_ccd_most_source_events_are_on():
    x, y = _field(5)
    ccd = np.where(x < CENTRE[0] + 300.0, 4, 5)  # a CCD edge 15" east of the source
    number, share = source_ccd(x, y, ccd, CENTRE, R_SRC)
    assert number == 4
    assert 0.9 < share < 1.0
    assert source_ccd(x, y, ccd, (0.0, 0.0), R_SRC) is None


def test_background_stays_on_the_ccd_and_away_from_another_source():
    x, y = _field(6)
    # a second bright source 2' north of the source
    rng = np.random.default_rng(60)
    x = np.concatenate([x, rng.normal(CENTRE[0], 150.0, 3000)])
    y = np.concatenate([y, rng.normal(CENTRE[1] + 2400.0, 150.0, 3000)])
    # CCD 1 west of a CCD edge 2.5' east of the source, CCD 2 east of it
    edge = CENTRE[0] + 3000.0
    ccd = np.where(x < edge, 1, 2)
    choice = choose_background(x, y, ccd, CENTRE, R_SRC, 1, rings=RINGS, radii=RADII)
    assert choice is not None and choice.qualified
    assert choice.r == 1200.0  # the largest radius has qualifying circles
    assert choice.x + choice.r <= edge  # wholly on CCD 1
    assert choice.on_ccd == choice.events
    # clear of the other source (its 3-sigma core) and of the source circle
    assert math.hypot(choice.x - CENTRE[0], choice.y - (CENTRE[1] + 2400.0)) > choice.r + 450.0
    assert choice.ring - choice.r - R_SRC >= R_SRC
    assert choice.candidates == len(RINGS) * len(RADII) * 36
    # its count density is the lowest of the qualifying circles of that radius: none has fewer
    inside = np.hypot(x - choice.x, y - choice.y) <= choice.r
    assert choice.events == int(inside.sum())
    assert choice.events < 60_000 * math.pi * 1200.0**2 / 16000.0**2 * 1.1


def test_background_falls_back_to_the_best_circle_on_a_narrow_ccd():
    x, y = _field(7, n_bkg=400_000)
    # the source's CCD is a strip 40" wide: no circle of 30" or more fits beside the source
    half_width = 400.0
    ccd = np.where(np.abs(x - CENTRE[0]) < half_width, 3, 6)
    choice = choose_background(x, y, ccd, CENTRE, R_SRC, 3, rings=RINGS, radii=RADII)
    assert choice is not None and not choice.qualified
    assert not choice.inside_ccd and choice.away
    # the best: the smallest circle straight along the strip, holding the largest share
    assert choice.r == 600.0
    assert abs(choice.x - CENTRE[0]) < 1.0
    inside = np.hypot(x - choice.x, y - choice.y) <= choice.r
    assert choice.events == int(inside.sum())
    assert choice.on_ccd == int((inside & (ccd == 3)).sum())
    # the share of a disc of radius R inside a central strip of half-width a
    a, r = half_width, choice.r
    share = 2 * (a * math.sqrt(r * r - a * a) + r * r * math.asin(a / r)) / (math.pi * r * r)
    assert choice.purity == pytest.approx(share, abs=0.04)  # 0.781


def test_no_background_when_the_list_was_cut_to_the_source():
    rng = np.random.default_rng(8)
    x = rng.normal(CENTRE[0], 80.0, 4000)
    y = rng.normal(CENTRE[1], 80.0, 4000)
    ccd = np.full(x.size, 10)
    assert choose_background(x, y, ccd, CENTRE, R_SRC, 10, rings=RINGS, radii=RADII) is None
