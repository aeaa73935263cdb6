"""The simulator's pile-up: events of one frame in touching pn pixels read out as one event."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.simulate import simulate_observation
from pipeline.simulate.detector import PN_PIXEL, pile_up

FRAME = 0.07336


def _run(t, x, y, pi, pattern, flag=None):
    cols = [
        np.asarray(t, float),
        np.asarray(x, np.int64),
        np.asarray(y, np.int64),
        np.asarray(pi, np.int16),
        np.asarray(pattern, np.uint8),
        np.asarray(flag if flag is not None else [0] * len(t), np.int32),
    ]
    keep, stats = pile_up(np.random.default_rng(0), *cols, 0.0, FRAME)
    return keep, cols, stats


def test_merging_rules():
    p = PN_PIXEL
    # frame 0: two singles in one pn pixel -> one single of the summed energy
    # frame 1: two singles in neighbouring pixels -> a double
    # frame 2: two singles two pixels apart -> untouched; frame 3/4: one single each -> untouched
    # frame 5: sum above 15 keV -> both lost; frame 6: a triple next to a double -> lost (5 px)
    # frame 7: two doubles side by side -> a quadruple (2 pixels + 1 + 1)
    t = np.array([0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 6, 7, 7]) * FRAME + 0.01
    x = [0, 10, 0, p, 0, 2 * p, 0, 0, 0, p, 0, p, 0, p]
    pi = [1000, 700, 1000, 500, 900, 800, 600, 600, 9000, 7000, 3000, 2000, 1500, 1200]
    pattern = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 2, 1, 3]
    flag = [0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    keep, (tt, xx, yy, pp, pat, fl), stats = _run(t, x, [0] * 14, pi, pattern, flag)
    assert keep.tolist() == [1, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    assert (pp[0], pat[0], fl[0]) == (1700, 0, 4)  # energy pile-up, FLAGs OR-ed
    assert pp[2] == 1500 and 1 <= pat[2] <= 4  # pattern pile-up: a double
    assert pp[4] == 900 and pp[5] == 800 and pat[4] == 0  # two pixels apart: untouched
    assert pp[12] == 2700 and 9 <= pat[12] <= 12  # a quadruple
    assert (stats.n_in, stats.n_groups, stats.n_merged, stats.n_lost) == (14, 5, 10, 4)


def test_pileup_grows_with_rate_and_hits_the_core(tmp_path):
    fractions = {}
    for rate in (10.0, 40.0):
        tr = simulate_observation(
            tmp_path / str(rate), "0000000001", exposure=1000.0, source_rate=rate,
            mjd=55000.25, seed=4, flares=False, ccd_gaps=False, pileup=True, nh_22=0.1,
        )  # fmt: skip
        fractions[rate] = tr.pileup["n_merged"] / tr.pileup["n_in"]
        ev = fits.getdata(tmp_path / str(rate) / tr.events_path, "EVENTS")
        r = np.hypot(ev["X"] - tr.source_xy[0], ev["Y"] - tr.source_xy[1])
        band = (ev["PI"] >= 500) & (ev["PI"] < 2000) & (ev["PATTERN"] <= 12)
        core, wing = band & (r < 100), band & (r >= 400) & (r <= 800)
        single = ev["PATTERN"] == 0
        fractions[f"core {rate}"] = single[core].mean()
        fractions[f"wing {rate}"] = single[wing].mean()
        assert tr.to_dict()["pileup"]["frame_time"] == pytest.approx(0.07336)
    # the share of events read out together with another grows with the counts per frame
    assert fractions[10.0] == pytest.approx(0.1063, abs=5e-4)
    assert fractions[40.0] == pytest.approx(0.3346, abs=5e-4)
    # singles lost in the core, not in the wings
    assert fractions["core 40.0"] == pytest.approx(0.6593, abs=5e-4)
    assert fractions["wing 40.0"] == pytest.approx(0.7236, abs=5e-4)
    assert fractions["core 10.0"] > fractions["core 40.0"]


def test_off_by_default(tmp_path):
    tr = simulate_observation(
        tmp_path, "0000000001", exposure=200.0, source_rate=40.0, mjd=55000.25, seed=4,
        flares=False, ccd_gaps=False,
    )  # fmt: skip
    assert tr.pileup is None and "pileup" not in tr.to_dict() and "nh_22" not in tr.to_dict()
