"""Tests of pipeline.simulate: file contract, determinism, and the injected physics."""

from __future__ import annotations

import json
import math
import re
import tomllib

import numpy as np
import pytest
from astropy.io import fits

from pipeline.simulate import (
    PRESETS,
    ccd_rectangles,
    injected_lag,
    simulate_observation,
    simulate_preset,
)
from schemas.errors import ConfigError

# The reference study's table (obsid, MJD, rate cts/s, exposure ks), copied independently.
REFERENCE = [
    ("0013140101", 51943.034, 7.31, 13.5),
    ("0013140201", 52283.816, 12.0, 9.94),
    ("0201830201", 53197.533, 8.34, 14.8),
    ("0201830301", 53201.043, 8.02, 14.0),
    ("0201830401", 53208.674, 7.51, 13.9),
    ("0201830501", 53224.964, 11.9, 14.0),
    ("0554170101", 54834.329, 13.4, 57.7),
    ("0554170201", 54674.832, 12.1, 62.9),
    ("0761220101", 57211.684, 7.25, 88.8),
]
LIVE = 0.994


def _load(truth):
    with fits.open(truth._dir / truth.events_path) as hdul:
        ev = hdul["EVENTS"].data
        cols = {name: np.array(ev[name]) for name in ev.columns.names}
        headers = {h.name: h.header.copy() for h in hdul}
        gti_data = {n: hdul[f"STDGTI{n:02d}"].data for n in range(1, 13)}
        gtis = {n: np.column_stack([g["START"], g["STOP"]]) for n, g in gti_data.items()}
    return cols, headers, gtis


class _Sim:
    """An ObservationTruth plus its directory (attribute access goes to the truth)."""

    def __init__(self, truth, directory):
        self.truth, self._dir = truth, directory

    def __getattr__(self, name):
        return getattr(self.truth, name)


def _sim(tmp_path_factory, name, **kw):
    d = tmp_path_factory.mktemp(name)
    return _Sim(simulate_observation(d, "0000000001", mjd=55000.25, **kw), d)


@pytest.fixture(scope="module")
def long_obs(tmp_path_factory):
    """60 ks, 20 cts/s, no flares, no gaps: lag, rate, line and pattern statistics."""
    return _sim(
        tmp_path_factory,
        "long",
        exposure=60000.0,
        source_rate=20.0,
        seed=11,
        flares=False,
        ccd_gaps=False,
    )


@pytest.fixture(scope="module")
def gappy_obs(tmp_path_factory):
    """10 ks with per-CCD gaps, one long gap on all CCDs, and flares."""
    return _sim(
        tmp_path_factory,
        "gappy",
        exposure=10000.0,
        source_rate=10.0,
        seed=3,
        flares=True,
        ccd_gaps=True,
        n_flares=2,
        long_gap=True,
    )


@pytest.fixture(scope="module")
def flare_obs(tmp_path_factory):
    """12 ks, 3 flares, no gaps (so every flare is seen in full)."""
    return _sim(
        tmp_path_factory,
        "flare",
        exposure=12000.0,
        source_rate=10.0,
        seed=7,
        flares=True,
        ccd_gaps=False,
        n_flares=3,
    )


def _in_circle(cols, x, y, r):
    return (cols["X"].astype(float) - x) ** 2 + (cols["Y"].astype(float) - y) ** 2 <= r * r


def test_injected_lag_formula():
    e = np.array([0.5, 1.0, 2.0, 5.0, 10.0, 15.0, np.nan])
    ln5 = math.log(5)
    expected = [0, 0, 0, 150 * math.log(2.5) / ln5, 150, 150 * math.log(7.5) / ln5, np.nan]
    np.testing.assert_allclose(injected_lag(e), expected, rtol=1e-12, atol=1e-12)
    assert injected_lag(np.ones((2, 3)) * 4).shape == (2, 3)


def test_preset_table_matches_reference():
    rows = [(r.obsid, r.mjd, r.rate, r.exposure_ks) for r in PRESETS["ngc5506"]]
    assert rows == REFERENCE
    assert any(r.n_flares == 0 and r.exposure_ks < 15 for r in PRESETS["ngc5506"])


def test_header_keywords(gappy_obs):
    cols, hdr, gtis = _load(gappy_obs)
    assert list(hdr) == ["PRIMARY", "EVENTS"] + [f"STDGTI{n:02d}" for n in range(1, 13)]
    h = hdr["EVENTS"]
    fixed = {
        "TELESCOP": "XMM",
        "INSTRUME": "EPN",
        "OBS_ID": "0000000001",
        "OBJECT": "NGC 5506 (simulated)",
        "DATAMODE": "IMAGING",
        "SUBMODE": "PrimeFullWindow",
        "FRMTIME": 73.36,
        "MJDREF": 50814.0,
        "TIMESYS": "TT",
        "TIMEREF": "LOCAL",
        "TIMEUNIT": "s",
        "TIMEZERO": 0.0,
        "CREATOR": "xlcat simulate",
        "TTYPE4": "PI",
        "TLMIN4": 0,
        "TLMAX4": 20479,
    }
    assert {k: h[k] for k in fixed} == fixed
    assert "DATE" not in h and "DATE" not in hdr["PRIMARY"]
    assert h["TSTART"] == round((55000.25 - 50814.0) * 86400, 3) == gappy_obs.tstart
    assert h["TSTOP"] == gappy_obs.tstop == gappy_obs.tstart + 10000.0
    assert re.fullmatch(r"\(FLAG & 0x[0-9a-f]{8}\) == 0", h["XMMEA_EP"])
    assert any("made-up" in str(c) for c in h["COMMENT"])
    columns = fits.getdata(gappy_obs._dir / gappy_obs.events_path, "EVENTS").columns
    assert {c.name: c.format for c in columns} == {
        "TIME": "D",
        "X": "J",
        "Y": "J",
        "PI": "I",
        "PATTERN": "B",
        "FLAG": "J",
        "CCDNR": "B",
    }
    for n in range(1, 13):
        ontime = float(np.sum(gtis[n][:, 1] - gtis[n][:, 0]))
        assert h[f"ONTIME{n:02d}"] == pytest.approx(ontime, abs=1e-6)
        assert h[f"LIVETI{n:02d}"] == pytest.approx(LIVE * ontime, rel=1e-12)
        assert hdr[f"STDGTI{n:02d}"]["CCDID"] == n
        np.testing.assert_array_equal(gtis[n], np.array(gappy_obs.gtis_per_ccd[n]))


def test_gtis_shape(gappy_obs):
    _, _, gtis = _load(gappy_obs)
    t0, t1 = gappy_obs.tstart, gappy_obs.tstop
    for g in gtis.values():
        assert g[0, 0] >= t0 and g[-1, 1] <= t1
        assert np.all(g[:, 1] > g[:, 0]) and np.all(g[1:, 0] > g[:-1, 1])
    assert len({tuple(map(tuple, g)) for g in gtis.values()}) > 1  # gaps differ per CCD
    # a gap of >= 1000 s common to all CCDs: some 1 s grid point range uncovered by every CCD
    grid = np.arange(t0, t1, 1.0)
    covered = np.zeros(grid.size, bool)
    for g in gtis.values():
        i = np.searchsorted(g[:, 0], grid, side="right") - 1
        covered |= (i >= 0) & (grid < g[np.maximum(i, 0), 1])
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[1], covered.astype(int), [1]]))))[::2]
    assert runs.max() >= 1000


@pytest.mark.parametrize("which", ["gappy_obs", "flare_obs", "long_obs"])
def test_events_inside_gtis_ccds_and_sorted(which, request):
    truth = request.getfixturevalue(which)
    cols, _, gtis = _load(truth)
    t = cols["TIME"]
    assert cols["TIME"].size == truth.n_events > 0
    assert np.all(np.diff(t) >= 0)
    assert t.min() >= truth.tstart and t.max() < truth.tstop
    rects = ccd_rectangles()
    for n in range(1, 13):
        sel = cols["CCDNR"] == n
        xlo, xhi, ylo, yhi = rects[n]
        assert np.all((cols["X"][sel] >= xlo) & (cols["X"][sel] < xhi))
        assert np.all((cols["Y"][sel] >= ylo) & (cols["Y"][sel] < yhi))
        i = np.searchsorted(gtis[n][:, 0], t[sel], side="right") - 1  # last GTI starting <= t
        assert np.all(i >= 0) and np.all(t[sel] < gtis[n][i, 1])
    assert set(np.unique(cols["CCDNR"])) == set(range(1, 13))


def test_ccd_layout():
    rects = ccd_rectangles()
    assert sorted(rects) == list(range(1, 13))
    assert {(r[1] - r[0], r[3] - r[2]) for r in rects.values()} == {(5248, 16400)}
    boxes = list(rects.values())
    for i, a in enumerate(boxes):  # disjoint
        for b in boxes[i + 1 :]:
            assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]


def test_region_file(gappy_obs):
    text = (gappy_obs._dir / gappy_obs.regions_path).read_text().splitlines()
    assert text[0] == "# Region file format: DS9 version 4.1"
    assert text[1].startswith("global color=green") and text[2] == "physical"
    num = r"(-?\d+(?:\.\d+)?)"
    src = re.fullmatch(rf"circle\({num},{num},{num}\)", text[3])
    bkg = [re.fullmatch(rf"circle\({num},{num},{num}\) # background", line) for line in text[4:]]
    assert src and len(bkg) == 2 and all(bkg)
    circles = [tuple(float(v) for v in m.groups()) for m in [src, *bkg]]
    assert circles[0] == (*gappy_obs.source_xy, 800.0)
    assert [c[2] for c in circles[1:]] == [1000.0, 700.0]
    xlo, xhi, ylo, yhi = ccd_rectangles()[4]
    for x, y, r in circles:  # well inside CCD 4
        assert xlo + 200 <= x - r and x + r <= xhi - 200
        assert ylo + 200 <= y - r and y + r <= yhi - 200
    for i, a in enumerate(circles):  # disjoint, backgrounds far from the source
        for b in circles[i + 1 :]:
            assert math.hypot(a[0] - b[0], a[1] - b[1]) > a[2] + b[2] + 1000


@pytest.mark.parametrize("which", ["long_obs", "gappy_obs"])
def test_source_rate(which, request):
    truth = request.getfixturevalue(which)
    cols, hdr, _ = _load(truth)
    # flares and particles are uniform: the background circles subtract them
    n_src = np.sum(_in_circle(cols, *truth.source_xy, 800))
    n_bkg = sum(np.sum(_in_circle(cols, x, y, r)) for x, y, r in truth.background_circles)
    ratio = 800.0**2 / sum(r * r for _, _, r in truth.background_circles)
    livetime = hdr["EVENTS"]["LIVETI04"]  # the rate is per live second of CCD 4
    rate = (n_src - ratio * n_bkg) / livetime
    sigma = math.sqrt(n_src + ratio**2 * n_bkg) / livetime
    assert abs(rate - truth.source_rate) < 4 * sigma


def test_fe_line(long_obs):
    cols, _, _ = _load(long_obs)
    pi = cols["PI"][_in_circle(cols, *long_obs.source_xy, 800)]
    centres = np.arange(5825, 7000, 50)
    counts = np.histogram(pi, np.arange(5800, 7001, 50))[0]
    keep = (centres < 6200) | (centres > 6600)  # sidebands 5.8-6.2 and 6.6-7.0 keV
    slope, icpt = np.polyfit(centres[keep], counts[keep] / 50.0, 1)  # continuum, counts per eV
    n_line = np.sum((pi >= 6300) & (pi < 6500))
    continuum = 200 * (slope * 6400 + icpt)
    excess = n_line - continuum
    assert excess > 10 * math.sqrt(n_line)
    # equivalent width: excess / continuum density / fraction of a 60 eV Gaussian within +-100 eV
    ew = excess / (slope * 6400 + icpt) / math.erf(100 / (60 * math.sqrt(2)))
    assert 85 < ew < 115


def test_patterns_and_flags(long_obs):
    cols, hdr, _ = _load(long_obs)
    m = _in_circle(cols, *long_obs.source_xy, 800) & (cols["PI"] >= 2000) & (cols["PI"] < 10000)
    pat, e = cols["PATTERN"][m], cols["PI"][m] / 1000.0
    n = pat.size
    p_single = np.mean(0.75 - 0.025 * e)  # documented model: 0.75 - 0.025 E/keV
    assert abs(np.mean(pat == 0) - p_single) < 4 * math.sqrt(p_single * (1 - p_single) / n)
    multi = pat[pat > 0]
    doubles = np.mean(multi <= 4)
    assert abs(doubles - 0.77) < 4 * math.sqrt(0.77 * 0.23 / multi.size)
    assert set(np.unique(pat)) == set(range(13))
    allpat = cols["PATTERN"][_in_circle(cols, *long_obs.source_xy, 800)]
    assert 0.60 < np.mean(allpat == 0) < 0.70
    assert 0.22 < np.mean((allpat >= 1) & (allpat <= 4)) < 0.32
    flag = cols["FLAG"]
    mask = int(re.search(r"0x([0-9a-f]+)", hdr["EVENTS"]["XMMEA_EP"]).group(1), 16)
    for frac, expected in (
        (np.mean(flag == 0), 0.95),
        (np.mean((flag & mask) != 0), 0.025),
        (np.mean((flag != 0) & ((flag & mask) == 0)), 0.025),
    ):
        assert abs(frac - expected) < 4 * math.sqrt(expected * (1 - expected) / flag.size)


def test_particle_patterns(tmp_path_factory):
    truth = _sim(
        tmp_path_factory,
        "particle",
        exposure=4000.0,
        source_rate=0.0,
        seed=5,
        flares=True,
        ccd_gaps=False,
        n_flares=1,
    )
    cols, _, _ = _load(truth)
    pat, e = cols["PATTERN"], cols["PI"] / 1000.0
    p_single = np.mean(0.65 - 0.025 * e)  # particles: 0.10 fewer singles
    assert abs(np.mean(pat == 0) - p_single) < 4 * math.sqrt(p_single * (1 - p_single) / pat.size)


def test_flares_trip_the_standard_filter(flare_obs):
    cols, _, _ = _load(flare_obs)
    sel = (cols["PI"] >= 10000) & (cols["PI"] < 12000) & (cols["PATTERN"] == 0)
    n_bins = int((flare_obs.tstop - flare_obs.tstart) // 100)
    edges = flare_obs.tstart + 100.0 * np.arange(n_bins + 1)
    rate = np.histogram(cols["TIME"][sel], edges)[0] / 100.0
    lo, hi = edges[:-1], edges[1:]
    assert len(flare_obs.flares) == 3
    in_any = np.zeros(lo.size, bool)
    for a, b, peak in flare_obs.flares:
        assert 300 <= b - a <= 2500 and peak > 1.4
        mid, half = (a + b) / 2, (b - a) / 6  # middle third: sin^2 >= 0.75
        core = (lo >= mid - half) & (hi <= mid + half)
        peak_bin = (lo <= mid) & (mid < hi)
        assert np.all(rate[core] > 0.7) and rate[peak_bin][0] > 0.7
        assert rate[peak_bin][0] < 1.3 * peak + 0.5
        in_any |= (hi > a) & (lo < b)
    assert np.all(rate[~in_any] < 0.7) and np.mean(rate[~in_any]) < 0.3


def test_lag_visible_in_cross_correlation(long_obs):
    cols, _, _ = _load(long_obs)
    m = _in_circle(cols, *long_obs.source_xy, 800)
    t, pi = cols["TIME"][m], cols["PI"][m]
    soft, hard = (pi >= 2000) & (pi < 3000), (pi >= 6000) & (pi < 10000)
    edges = np.arange(long_obs.tstart, long_obs.tstop + 1e-6, 10.0)
    cs_all, ch_all = (np.histogram(t[b], edges)[0].astype(float) for b in (soft, hard))
    lags = np.arange(-60, 61)
    ccf = []
    segments = zip(np.array_split(cs_all, 6), np.array_split(ch_all, 6), strict=True)  # 10 ks each
    for cs, ch in segments:
        cs, ch, n = cs - cs.mean(), ch - ch.mean(), cs.size
        ccf.append(
            [np.mean(cs[max(0, -k) : n - max(0, k)] * ch[max(0, k) : n - max(0, -k)]) for k in lags]
        )
    ccf = np.mean(ccf, axis=0)  # hard(t + k dt) vs soft(t)
    j = int(np.argmax(ccf))
    a, b, _ = np.polyfit(lags[j - 10 : j + 11], ccf[j - 10 : j + 11], 2)
    peak = -b / (2 * a) * 10.0
    expected = injected_lag(pi[hard] / 1000).mean() - injected_lag(pi[soft] / 1000).mean()
    assert 90 < expected < 110
    assert abs(peak - expected) < 30


def test_preset_is_deterministic(tmp_path):
    obsids = ["0761220101", "0013140201"]
    paths = [
        simulate_preset(tmp_path / name, scale=0.02, seed=seed, obsids=obsids)
        for name, seed in (("a", 5506), ("b", 5506), ("c", 1))
    ]
    files = [
        "ngc5506.toml",
        "truth.json",
        "0761220101/pn_events.fits",
        "0761220101/ds9.reg",
        "0013140201/pn_events.fits",
    ]
    for f in files:
        assert (paths[0].parent / f).read_bytes() == (paths[1].parent / f).read_bytes()
    ev = [
        fits.getdata(p.parent / "0761220101/pn_events.fits", "EVENTS") for p in (paths[0], paths[2])
    ]
    assert ev[0].size != ev[1].size or not np.array_equal(ev[0]["TIME"], ev[1]["TIME"])
    truth = json.loads((paths[0].parent / "truth.json").read_text())
    assert truth["seed"] == 5506 and truth["scale"] == 0.02
    seeds = [o["seed"] for o in truth["observations"]]
    assert len(set(seeds)) == 2


def test_preset_build_file_and_truth(tmp_path):
    build = simulate_preset(tmp_path, scale=0.02, seed=42)
    text = build.read_text()
    assert build == tmp_path / "ngc5506.toml"
    assert text.splitlines()[0] == (
        "# Written by xlcat simulate (preset ngc5506, scale 0.02, seed 42). "
        "Simulated data, not real observations."
    )
    cfg = tomllib.loads(text)
    assert cfg["store"] == "ngc5506.zarr" and cfg["time_bin"] == 128.0
    assert cfg["presets"] == ["ngc5506"]
    assert cfg["flare"] == {"threshold": 0.7}
    assert [o["obsid"] for o in cfg["observations"]] == [r[0] for r in REFERENCE]
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["lag_model"]["tau_max_s"] == 150.0 and truth["psd"]["f_break_hz"] == 3e-4
    for obs, ref, tr in zip(cfg["observations"], REFERENCE, truth["observations"], strict=True):
        assert obs == {
            "obsid": ref[0],
            "events": f"{ref[0]}/pn_events.fits",
            "regions": f"{ref[0]}/ds9.reg",
        }
        assert (tmp_path / obs["regions"]).is_file()
        h = fits.getheader(tmp_path / obs["events"], "EVENTS")
        assert h["TSTOP"] - h["TSTART"] == pytest.approx(ref[3] * 1000 * 0.02, abs=1e-6)
        assert h["TSTART"] == tr["tstart"] == round((ref[1] - 50814.0) * 86400, 3)
        assert (tr["mjd"], tr["source_rate"]) == (ref[1], ref[2])
        assert sorted(map(int, tr["gtis_per_ccd"])) == list(range(1, 13))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "ngc4151"}, "preset"),
        ({"scale": 0.0}, "scale"),
        ({"scale": -1.0}, "scale"),
        ({"seed": -3}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"obsids": ["0123456789"]}, "0123456789"),
        ({"time_bin": 0.0}, "time_bin"),
    ],
)
def test_preset_errors(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        simulate_preset(tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("obsid", "kwargs", "match"),
    [
        ("0000000001", {"exposure": 0.0}, "exposure"),
        ("0000000001", {"exposure": float("nan")}, "exposure"),
        ("0000000001", {"source_rate": -1.0}, "source_rate"),
        ("0000000001", {"seed": -1}, "seed"),
        ("../evil", {}, "obsid"),
    ],
)
def test_observation_errors(tmp_path, obsid, kwargs, match):
    args = {"exposure": 1000.0, "source_rate": 5.0, "mjd": 55000.0, "seed": 1} | kwargs
    with pytest.raises(ConfigError, match=match):
        simulate_observation(tmp_path, obsid, **args)
