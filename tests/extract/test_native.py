"""Native extraction checked bin by bin against a brute-force selection of events.

The event files are hand-made (tests/helpers/eventfiles.py): events sit exactly on
region borders, band edges, bin edges and GTI edges, plus seeded random events.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.extract.backends import native
from pipeline.extract.backends.native import NativeBackend, bin_observation
from pipeline.extract.jobs import ObservationJob
from pipeline.select.regions import parse_regions
from schemas.build import FlareFilter, SchemeOptions, Screening
from schemas.energy import Band
from schemas.errors import InputFileError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    brute_force_counts,
    edge_events,
    in_gti,
    random_events,
    write_event_file,
)

SRC = [(1000.0, 1000.0, 100.0)]
BKG = [(3000.0, 1000.0, 200.0), (1000.0, 3000.0, 150.0)]
CCD_GTIS = {
    4: [(T0, T0 + 400), (T0 + 430, T0 + 1000)],
    5: [(T0, T0 + 600), (T0 + 650, T0 + 1000)],
    6: [(T0, T0 + 10)],  # a CCD the regions do not touch: its GTI must not apply
}
#: Each event is judged by its own CCD's GTI (docs/semantics.md §4); within [TSTART, TSTOP].
EXPECTED_GTIS = {4: CCD_GTIS[4], 5: CCD_GTIS[5]}
#: The source lies on CCD 4 only: the stored GTI and fracexp are CCD 4's.
EXPECTED_GTI = CCD_GTIS[4]
BANDS = (Band(2000, 2400), Band(2400, 10000), Band(200, 12001), Band(1999, 2001), Band(9999, 10001))


@pytest.fixture(scope="module")
def events() -> EventSet:
    return EventSet.concat([edge_events(), random_events(20000, seed=11)])


def _job(path, screening=None, flare=None, gti_file=None, dt=100.0) -> ObservationJob:
    return ObservationJob(
        obsid="0123456789",
        events=path,
        regions=parse_regions(REGION_TEXT, "test.reg"),
        gti_file=gti_file,
        screening=screening or Screening(),
        flare=flare,
        time_bin=dt,
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, events):
    path = write_event_file(
        tmp_path_factory.mktemp("ev") / "ev.fits", events, FileSpec(ccd_gtis=CCD_GTIS)
    )
    return bin_observation(_job(path))


def _overlap(gtis, t0, dt, n):
    """Seconds of each bin inside the GTIs, by a double loop."""
    out = np.zeros(n)
    for k in range(n):
        a, b = t0 + k * dt, t0 + (k + 1) * dt
        for s, e in gtis:
            out[k] += max(0.0, min(b, e) - max(a, s))
    return out


@pytest.mark.parametrize("band", BANDS, ids=lambda b: f"{b.pi_lo}-{b.pi_hi}")
def test_counts_match_brute_force(prepared, events, band):
    src, bkg = prepared.binned.band_counts((band,))
    n = prepared.binned.grid.n_bins
    np.testing.assert_array_equal(
        src[0],
        brute_force_counts(events, SRC, (band.pi_lo, band.pi_hi), EXPECTED_GTIS, T0, 100.0, n),
    )
    np.testing.assert_array_equal(
        bkg[0],
        brute_force_counts(events, BKG, (band.pi_lo, band.pi_hi), EXPECTED_GTIS, T0, 100.0, n),
    )


def test_edge_events_counted_by_the_rules(tmp_path):
    """Only the edge events: each rule decides one event, so the totals are exact numbers."""
    ev = edge_events()
    path = write_event_file(tmp_path / "edges.fits", ev, FileSpec(ccd_gtis=CCD_GTIS))
    b = bin_observation(_job(path)).binned
    src, bkg = b.band_counts((Band(200, 12001),))
    # source: 6 of 8 geometry events (101,0) and (71,71) are outside (71^2+71^2 > 100^2);
    # PI: 200..12000 kept (9 of 11: 199 and 12001 dropped); times: 0, 100, 200, 99.999999,
    # 999.9999 kept, 1000 (= TSTOP, end of last bin) and -0.001 (before TSTART) dropped;
    # GTI edges, all on CCD 4 (gap [400, 430)); CCD 5's gap [600, 650) does not apply to
    # them: 399.9999, 430, 600, 649.9999 and 650 kept, 400 and 429.9999 dropped -> 5;
    # screening: PATTERN 4 kept; PATTERN 5 and 12, FLAG 1 and FLAG 0x10000 dropped -> 1.
    assert int(src.sum()) == 6 + 9 + 5 + 5 + 1
    # background: (200,0),(120,160) on circle 1 and (0,150),(90,120) on circle 2 kept;
    # (201,0) and (0,151) not
    assert int(bkg.sum()) == 4
    assert b.grid.n_bins == 10


def test_each_ccd_is_judged_by_its_own_gti(prepared):
    prov = prepared.summary.provenance
    assert prov["ccds"] == [4, 5]
    for ccd, gti in EXPECTED_GTIS.items():
        assert prov["ccd_gtis"][str(ccd)]["gti"] == [list(r) for r in gti]
        assert prov["ccd_gtis"][str(ccd)]["sources"] == ["[TSTART, TSTOP]", f"STDGTI{ccd:02d}"]
    # the stored GTI is that of the CCD holding the source
    np.testing.assert_array_equal(prepared.binned.gti, np.array(EXPECTED_GTI))
    assert prov["fracexp_weights"] == {"4": 1.0}
    # the background circle on CCD 5 has another GTI: said once, in the provenance
    assert any("CCD 5" in w and "differs" in w for w in prov["warnings"])


def test_fracexp_equals_gti_overlap(prepared):
    b = prepared.binned
    np.testing.assert_allclose(
        b.fracexp, _overlap(EXPECTED_GTI, T0, 100.0, 10) / 100.0, rtol=0, atol=1e-12
    )
    assert b.fracexp[4] == pytest.approx(0.7) and b.fracexp[6] == pytest.approx(1.0)
    method = prepared.summary.provenance["fracexp_method"]["4"]
    assert "GTI overlap only" in method and "no EXPOSU04" in method


def test_net_rate_formulas(prepared):
    b = prepared.binned
    curves = NativeBackend().extract(prepared, (Band(2400, 10000),), SchemeOptions())
    src, bkg = b.band_counts((Band(2400, 10000),))
    ratio = (np.pi * 100**2) / (np.pi * 200**2 + np.pi * 150**2)
    f = _overlap(EXPECTED_GTI, T0, 100.0, 10) / 100.0
    s, g = src[0].astype(float), bkg[0].astype(float)
    np.testing.assert_allclose(curves.rate[0], s / (100 * f) - ratio * g / (100 * f), rtol=1e-12)
    np.testing.assert_allclose(curves.error[0], np.sqrt(s + ratio**2 * g) / (100 * f), rtol=1e-12)
    np.testing.assert_allclose(curves.backv[0], ratio * g / (100 * f), rtol=1e-12)
    np.testing.assert_allclose(curves.backe[0], ratio * np.sqrt(g) / (100 * f), rtol=1e-12)
    np.testing.assert_array_equal(curves.src_counts[0], s)


def test_nan_only_where_no_exposure_and_negative_rates_kept(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    bkg_heavy = EventSet(  # many background events, few source events: net rate negative
        time=T0 + rng.random(n) * 500,
        x=np.full(n, 3000, np.int32),
        y=np.full(n, 1000, np.int32),
        pi=np.full(n, 3000, np.int16),
        pattern=np.zeros(n, np.uint8),
        flag=np.zeros(n, np.int32),
        ccd=np.full(n, 4, np.uint8),
    )
    one_src = EventSet(
        np.array([T0 + 1.0]),
        np.array([1000], np.int32),
        np.array([1000], np.int32),
        np.array([3000], np.int16),
        np.zeros(1, np.uint8),
        np.zeros(1, np.int32),
        np.array([4], np.uint8),
    )
    spec = FileSpec(ccd_gtis={4: [(T0, T0 + 500), (T0 + 700, T0 + 1000)]})
    path = write_event_file(tmp_path / "neg.fits", EventSet.concat([bkg_heavy, one_src]), spec)
    prep = bin_observation(_job(path))
    c = NativeBackend().extract(prep, (Band(2000, 4000),), SchemeOptions())
    assert np.isnan(c.rate[0][5:7]).all() and np.isnan(c.error[0][5:7]).all()
    assert np.isfinite(c.rate[0][:5]).all() and (c.rate[0][:5] < 0).all()
    assert np.isfinite(c.rate[0][7:]).all()
    np.testing.assert_array_equal(c.error[0][7:], 0.0)  # empty exposed bins: error 0, not NaN


def test_chunked_reading_gives_identical_counts(tmp_path, events, monkeypatch):
    path = write_event_file(tmp_path / "ev.fits", events, FileSpec(ccd_gtis=CCD_GTIS))
    whole = bin_observation(_job(path)).binned
    monkeypatch.setattr(native, "CHUNK_ROWS", 997)
    chunked = bin_observation(_job(path)).binned
    assert (whole.src != chunked.src).nnz == 0 and (whole.bkg != chunked.bkg).nnz == 0


def test_live_fraction_from_header(tmp_path, events):
    spec = FileSpec(
        ccd_gtis=CCD_GTIS,
        header={"LIVETI04": 980.0, "ONTIME04": 1000.0, "LIVETI05": 900.0, "ONTIME05": 1000.0},
    )
    path = write_event_file(tmp_path / "ev.fits", events, spec)
    prep = bin_observation(_job(path))
    np.testing.assert_allclose(
        prep.binned.fracexp, 0.98 * _overlap(EXPECTED_GTI, T0, 100.0, 10) / 100.0, rtol=1e-12
    )
    assert "LIVETI04/ONTIME04 = 0.98" in prep.summary.provenance["fracexp_method"]["4"]


def test_source_on_two_ccds_weights_their_fracexp_by_counts(tmp_path):
    """A source split over CCDs 4 and 5: each CCD's events meet its own GTI, and fracexp is
    the mean of the CCDs' fracexp weighted by the source events in each CCD's GTI."""
    rng = np.random.default_rng(17)
    n4, n5 = 300, 100
    t4 = T0 + rng.random(n4) * 1000
    t5 = T0 + rng.random(n5) * 1000
    ev = EventSet(
        np.concatenate([t4, t5]),
        np.full(n4 + n5, 1000, np.int32),
        np.full(n4 + n5, 1000, np.int32),
        np.full(n4 + n5, 3000, np.int16),
        np.zeros(n4 + n5, np.uint8),
        np.zeros(n4 + n5, np.int32),
        np.concatenate([np.full(n4, 4), np.full(n5, 5)]).astype(np.uint8),
    )
    bkg = EventSet.from_rows([(5.0, 3000, 1000, 3000, 0, 0, 4)])
    spec = FileSpec(
        ccd_gtis=CCD_GTIS,
        header={"LIVETI04": 980.0, "ONTIME04": 1000.0, "LIVETI05": 900.0, "ONTIME05": 1000.0},
    )
    path = write_event_file(tmp_path / "two.fits", EventSet.concat([ev, bkg]), spec)
    prep = bin_observation(_job(path))
    good4 = sum(in_gti(t, CCD_GTIS[4]) for t in t4)
    good5 = sum(in_gti(t, CCD_GTIS[5]) for t in t5)
    w4, w5 = good4 / (good4 + good5), good5 / (good4 + good5)
    f4 = 0.98 * _overlap(CCD_GTIS[4], T0, 100.0, 10) / 100.0
    f5 = 0.9 * _overlap(CCD_GTIS[5], T0, 100.0, 10) / 100.0
    np.testing.assert_allclose(prep.binned.fracexp, w4 * f4 + w5 * f5, rtol=1e-12)
    assert prep.summary.provenance["fracexp_weights"] == {"4": w4, "5": w5}
    # the stored GTI is the union of the two CCDs' GTIs: [400, 430) is good on CCD 5
    np.testing.assert_array_equal(prep.binned.gti, [[T0, T0 + 1000]])
    src, _ = prep.binned.band_counts((Band(2000, 4000),))
    assert int(src.sum()) == good4 + good5


def test_user_gti_intersected(tmp_path, events):
    from astropy.io import fits

    gti_path = tmp_path / "user_gti.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [
                    fits.Column("START", "D", array=[T0 + 50.0]),
                    fits.Column("STOP", "D", array=[T0 + 820.5]),
                ],
                name="GTI",
            ),
        ]
    ).writeto(gti_path)
    path = write_event_file(tmp_path / "ev.fits", events, FileSpec(ccd_gtis=CCD_GTIS))
    b = bin_observation(_job(path, gti_file=gti_path)).binned
    gtis = {
        4: [(T0 + 50, T0 + 400), (T0 + 430, T0 + 820.5)],
        5: [(T0 + 50, T0 + 600), (T0 + 650, T0 + 820.5)],
    }
    src, bkg = b.band_counts((Band(200, 12001),))
    np.testing.assert_array_equal(
        src[0], brute_force_counts(events, SRC, (200, 12001), gtis, T0, 100.0, 10)
    )
    np.testing.assert_array_equal(
        bkg[0], brute_force_counts(events, BKG, (200, 12001), gtis, T0, 100.0, 10)
    )
    np.testing.assert_allclose(b.fracexp, _overlap(gtis[4], T0, 100.0, 10) / 100.0, atol=1e-12)


def _flare_events(seed: int) -> EventSet:
    """Quiet 10-12 keV events everywhere, a flare in [T0+300, T0+400), and XMMEA-flagged events."""
    rng = np.random.default_rng(seed)
    quiet_t = T0 + rng.random(40) * 1000
    flare_t = T0 + 300 + rng.random(120) * 100
    t = np.concatenate([quiet_t, flare_t])
    n = len(t)
    return EventSet(
        t,
        rng.integers(0, 5000, n).astype(np.int32),
        rng.integers(0, 5000, n).astype(np.int32),
        rng.integers(10000, 12001, n).astype(np.int16),
        np.zeros(n, np.uint8),
        np.zeros(n, np.int32),
        np.full(n, 4, np.uint8),
    )


def test_flare_filter_tabgtigen_semantics(tmp_path):
    flagged = _flare_events(5)
    # In [T0+700, T0+800) add 100 flare-like events whose FLAG is excluded by the XMMEA_EP mask
    rng = np.random.default_rng(9)
    k = 100
    masked = EventSet(
        T0 + 700 + rng.random(k) * 100,
        np.full(k, 50, np.int32),
        np.full(k, 50, np.int32),
        np.full(k, 11000, np.int16),
        np.zeros(k, np.uint8),
        np.full(k, 0x4, np.int32),
        np.full(k, 4, np.uint8),
    )
    src = EventSet(
        T0 + np.arange(5, 1000, 10.0),
        np.full(100, 1000, np.int32),
        np.full(100, 1000, np.int32),
        np.full(100, 3000, np.int16),
        np.zeros(100, np.uint8),
        np.zeros(100, np.int32),
        np.full(100, 4, np.uint8),
    )
    ev = EventSet.concat([flagged, masked, src])
    spec = FileSpec(
        ccd_gtis={4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]},
        header={"XMMEA_EP": "(FLAG & 0x6) == 0"},
    )
    path = write_event_file(tmp_path / "fl.fits", ev, spec)
    flare = FlareFilter(threshold=0.7)
    prep = bin_observation(_job(path, flare=flare))
    # brute force flare curve: counts per 100 s bin of PI in [10000,12000], PATTERN == 0, mask ok
    sel = (ev.pi >= 10000) & (ev.pi <= 12000) & (ev.pattern == 0) & ((ev.flag & 0x6) == 0)
    counts = np.histogram(ev.time[sel], bins=T0 + 100.0 * np.arange(11))[0]
    good = counts / 100.0 < 0.7
    assert not good[3] and good[7]  # the flare bin is cut; the masked burst is not counted
    expected = [(T0 + 100 * i, T0 + 100 * (i + 1)) for i in range(10) if good[i]]
    fl = np.array(prep.summary.provenance["flare"]["gti"])
    merged = np.array(expected)
    from catalog.gti import normalize

    np.testing.assert_allclose(fl, normalize(merged))
    assert prep.summary.provenance["flare"]["notes"] == []
    s, _ = prep.binned.band_counts((Band(2000, 4000),))
    assert s[0][3] == 0 and s[0][2] == 10


def test_flare_macro_missing_falls_back_to_flag_zero(tmp_path):
    ev = EventSet.concat(
        [
            _flare_events(5),
            EventSet(
                np.array([T0 + 1.0]),
                np.array([1000], np.int32),
                np.array([1000], np.int32),
                np.array([3000], np.int16),
                np.zeros(1, np.uint8),
                np.zeros(1, np.int32),
                np.array([4], np.uint8),
            ),
        ]
    )
    path = write_event_file(tmp_path / "fl.fits", ev, FileSpec(ccd_gtis={4: [(T0, T0 + 1000)]}))
    prep = bin_observation(_job(path, flare=FlareFilter(threshold=0.7)))
    notes = prep.summary.provenance["flare"]["notes"]
    assert len(notes) == 1 and "XMMEA_EP" in notes[0] and "FLAG==0" in notes[0]
    assert "(FLAG==0)" in prep.summary.provenance["flare"]["selection"]


def test_no_source_events_is_a_clear_error(tmp_path):
    n = 10
    far = EventSet(
        T0 + np.arange(n, dtype=float),
        np.full(n, 9000, np.int32),
        np.full(n, 9000, np.int32),
        np.full(n, 3000, np.int16),
        np.zeros(n, np.uint8),
        np.zeros(n, np.int32),
        np.full(n, 4, np.uint8),
    )
    path = write_event_file(tmp_path / "far.fits", far, FileSpec(ccd_gtis={4: [(T0, T0 + 1000)]}))
    with pytest.raises(InputFileError, match=r"test.reg.*no screened event.*physical"):
        bin_observation(_job(path))


def test_grid_covers_tstop_and_centres(tmp_path, events):
    spec = FileSpec(tstop=T0 + 950.0, ccd_gtis=CCD_GTIS)
    path = write_event_file(tmp_path / "ev.fits", events, spec)
    prep = bin_observation(_job(path, dt=128.0))
    g = prep.binned.grid
    assert g.n_bins == 8  # ceil(950 / 128)
    np.testing.assert_allclose(prep.summary.time, T0 + 128.0 * (np.arange(8) + 0.5))
    # the last bin reaches past TSTOP; its exposure stops at TSTOP (the CCD GTIs end at 1000 s)
    assert prep.binned.fracexp[-1] == pytest.approx((950 - 7 * 128) / 128.0)


def test_reading_memory_does_not_grow_with_the_file(tmp_path):
    """Heap peak while streaming a 400k-row file in 10k-row chunks stays near one chunk.

    A table of 400k rows is 9.6 MB on disk; holding it (or letting astropy copy it when
    the memory-mapped file closes) would exceed the bound.
    """
    import tracemalloc

    from pipeline.read.events import iter_event_chunks

    ev = random_events(400_000, seed=2)
    path = write_event_file(tmp_path / "big.fits", ev, FileSpec(ccd_gtis=CCD_GTIS))
    tracemalloc.start()
    n = 0
    for chunk in iter_event_chunks(
        path, ["TIME", "X", "Y", "PI", "PATTERN", "FLAG", "CCDNR"], 10_000
    ):
        n += len(chunk["TIME"])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 400_000
    assert peak < 2_000_000


def test_sparse_cubes_give_the_same_counts(tmp_path, events, prepared, monkeypatch):
    """Cubes over DENSE_CELLS (very fine time bins) are summed as sparse matrices: same numbers."""
    from pipeline.extract import binning

    monkeypatch.setattr(binning, "DENSE_CELLS", 0)
    path = write_event_file(tmp_path / "ev.fits", events, FileSpec(ccd_gtis=CCD_GTIS))
    sparse_prep = bin_observation(_job(path))
    assert sparse_prep.binned._cumulative is None  # the sparse path was taken
    got = sparse_prep.binned.band_counts(BANDS)
    want = prepared.binned.band_counts(BANDS)
    n = prepared.binned.grid.n_bins
    for band, src in zip(BANDS, got[0], strict=True):
        brute = brute_force_counts(events, SRC, (band.pi_lo, band.pi_hi), EXPECTED_GTIS, T0, 100, n)
        np.testing.assert_array_equal(src, brute)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].sum() > 1000
