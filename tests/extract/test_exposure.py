"""Fractional exposure from exposure steps, per CCD and over CCDs, and data-subspace filters.

Checked against literal loops and hand-made event files whose every number is known; the
real-file checks against epiclccorr are in tests/extract/test_real_mos1.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from pipeline.extract.backends.native import bin_observation
from pipeline.extract.exposure import region_fracexp, step_exposure
from pipeline.extract.jobs import ObservationJob
from pipeline.select.regions import parse_regions
from schemas.build import Screening
from schemas.energy import Band
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    brute_force_counts,
    in_gti,
    random_events,
    write_event_file,
)


def _loop(centre, start, stop, frac, gti, edges):
    """sum over steps with centre in the GTI of frac x |step ∩ bin ∩ GTI|, by loops."""
    out = np.zeros(len(edges) - 1)
    for c, a, b, f in zip(centre, start, stop, frac, strict=True):
        if not in_gti(c, gti):
            continue
        for k in range(len(edges) - 1):
            for s, e in gti:
                lo, hi = max(a, s, edges[k]), min(b, e, edges[k + 1])
                out[k] += f * max(0.0, hi - lo)
    return out


def test_step_exposure_equals_a_literal_loop():
    rng = np.random.default_rng(4)
    start = np.sort(rng.random(300) * 1000.0)
    length = rng.random(300) * 7.0
    stop = start + length
    centre = start + 0.5 * length
    frac = 0.9 + 0.1 * rng.random(300)
    gti = [(3.3, 120.0), (121.0, 500.0), (640.25, 990.0)]
    edges = np.linspace(0.0, 1000.0, 38)
    order = rng.permutation(300)  # chunks in any order
    chunks = [
        tuple(a[order[i : i + 70]] for a in (centre, start, stop, frac)) for i in range(0, 300, 70)
    ]
    got = step_exposure(chunks, gti, edges)
    np.testing.assert_allclose(got, _loop(centre, start, stop, frac, gti, edges), atol=1e-9)


def test_only_steps_centred_in_the_gti_count_and_only_inside_it():
    # step [8, 12) centred at 10 in GTI [10, 20): counts 2 s; step [18, 24) centred at 21: no
    steps = [(np.array([10.0, 21.0]), np.array([8.0, 18.0]), np.array([12.0, 24.0]), np.ones(2))]
    got = step_exposure(steps, [(10.0, 20.0)], [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(got, [0.0, 2.0, 0.0])
    assert step_exposure(steps, np.empty((0, 2)), [0.0, 10.0]).tolist() == [0.0]


def test_region_fracexp_weights():
    f, used = region_fracexp({4: np.array([1.0, 0.5]), 5: np.array([0.0, 1.0])}, {4: 3, 5: 1})
    np.testing.assert_allclose(f, [0.75, 0.625])
    assert used == {4: 0.75, 5: 0.25}
    f, used = region_fracexp({4: np.array([1.0]), 5: np.array([0.5])}, {})
    assert used == {4: 0.5, 5: 0.5} and f.tolist() == [0.75]
    with pytest.raises(ValueError):
        region_fracexp({}, {})


def _table(name: str, columns: dict[str, tuple[str, np.ndarray]], **keys) -> fits.BinTableHDU:
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column(k, fmt, array=v) for k, (fmt, v) in columns.items()], name=name
    )
    for k, v in keys.items():
        hdu.header[k] = v
    return hdu


def _gti_table(name: str, rows, ccd: int) -> fits.BinTableHDU:
    a = np.array(rows, dtype=float).reshape(-1, 2)
    return _table(name, {"START": ("D", a[:, 0]), "STOP": ("D", a[:, 1])}, CCDID=ccd)


FILTER = {4: [(T0 + 100, T0 + 300), (T0 + 350, T0 + 800)], 5: [(T0 + 0, T0 + 900)]}
STD = {4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]}
#: Frames of 10 s every 10 s on CCD 4, with FRACEXP 0.9 + 0.01 (k mod 5); CCD 5 has none.
FRAMES = T0 + 5.0 + 10.0 * np.arange(100)
FRAC = 0.9 + 0.01 * (np.arange(100) % 5)


def _filtered_file(tmp_path, exposu_timesys: str = "TT"):
    header = {
        "DSTYP1": "CCDNR",
        "DSVAL1": "4",
        "DSTYP2": "PI",
        "DSVAL2": "500:10000",
        "DSTYP3": "TIME",
        "DSVAL3": "TABLE",
        "DSREF3": ":GTI00004",
        "2DSVAL1": "5",
        "2DSREF3": ":GTI00104",
        "LIVETI05": 810.0,
        "ONTIME05": 900.0,
    }
    exposu = _table(
        "EXPOSU04",
        {
            "TIME": ("D", FRAMES),
            "TIMEDEL": ("E", np.full(100, 10.0)),
            "FRACEXP": ("E", FRAC),
        },
        TIMESYS=exposu_timesys,
        TIMEREF="LOCAL",
    )
    spec = FileSpec(
        ccd_gtis=STD,
        header=header,
        extensions=[
            _gti_table("GTI00004", FILTER[4], 4),
            _gti_table("GTI00104", FILTER[5], 5),
            exposu,
        ],
    )
    ev = random_events(5000, seed=8)
    ev.pi[:] = np.clip(ev.pi, 500, 10000)
    return write_event_file(tmp_path / "filtered.fits", ev, spec), ev


def _job(path, screening=None):
    return ObservationJob(
        obsid="0123456789",
        events=path,
        regions=parse_regions(REGION_TEXT, "test.reg"),
        gti_file=None,
        screening=screening or Screening(pi=(500, 10000)),
        flare=None,
        time_bin=100.0,
    )


def test_filtered_file_each_ccd_with_its_subspace_gti_and_exposure_steps(tmp_path):
    path, ev = _filtered_file(tmp_path)
    prep = bin_observation(_job(path))
    b = prep.binned
    src, bkg = b.band_counts((Band(500, 10001),))
    shapes_src = [(1000.0, 1000.0, 100.0)]
    shapes_bkg = [(3000.0, 1000.0, 200.0), (1000.0, 3000.0, 150.0)]
    np.testing.assert_array_equal(
        src[0],
        brute_force_counts(ev, shapes_src, (500, 10001), FILTER, T0, 100.0, 10, 4, (500, 10000)),
    )
    np.testing.assert_array_equal(
        bkg[0],
        brute_force_counts(ev, shapes_bkg, (500, 10001), FILTER, T0, 100.0, 10, 4, (500, 10000)),
    )
    # fracexp: CCD 4's frames (10 s, centred on 5 + 10 k) inside GTI00004, by a loop
    expected = _loop(FRAMES, FRAMES - 5, FRAMES + 5, FRAC, FILTER[4], T0 + 100.0 * np.arange(11))
    np.testing.assert_allclose(b.fracexp, expected / 100.0, rtol=1e-6)
    assert b.fracexp[0] == 0.0 and b.fracexp[1] == pytest.approx(0.92, rel=1e-6)
    prov = prep.summary.provenance
    assert prov["ccd_gtis"]["4"]["sources"][-1] == "GTI00004 (data subspace)"
    assert prov["ccd_gtis"]["5"]["gti"] == [list(r) for r in FILTER[5]]
    assert prov["fracexp_method"]["4"].startswith("EXPOSU04")
    assert prov["warnings"][0].startswith(
        "background events lie on CCD 5, whose GTI differs from the source CCDs' ([4])"
    )
    assert len(prov["warnings"]) == 1  # the screening asks PI 500:10000, as the file holds


def test_exposure_steps_in_another_time_system_are_not_used(tmp_path):
    path, _ = _filtered_file(tmp_path, exposu_timesys="TDB")
    prep = bin_observation(_job(path))
    method = prep.summary.provenance["fracexp_method"]["4"]
    assert "EXPOSU04 is in TDB/LOCAL while the events are in TT/LOCAL" in method
    assert "no LIVETI04/ONTIME04" in method
    edges = T0 + 100.0 * np.arange(11)
    overlap = [
        sum(max(0.0, min(b, e) - max(a, s)) for s, e in FILTER[4])
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    np.testing.assert_allclose(prep.binned.fracexp, np.array(overlap) / 100.0)


def test_screening_wider_than_the_subspace_warns_once(tmp_path):
    path, _ = _filtered_file(tmp_path)
    prep = bin_observation(_job(path, Screening(pi=(200, 12000))))
    pi = [w for w in prep.summary.provenance["warnings"] if "PI" in w]
    assert len(pi) == 1 and "cut to PI [500:10000]" in pi[0] and "asks PI [200:12000]" in pi[0]


def test_missing_subspace_table_is_reported_and_skipped(tmp_path):
    spec = FileSpec(
        ccd_gtis={4: [(T0, T0 + 1000)]},
        header={"DSTYP1": "TIME", "DSVAL1": "TABLE", "DSREF1": ":GTI00004"},
    )
    ev = EventSet.from_rows([(5.0, 1000, 1000, 3000, 0, 0, 4), (5.0, 3000, 1000, 3000, 0, 0, 4)])
    prep = bin_observation(_job(write_event_file(tmp_path / "m.fits", ev, spec), Screening()))
    (w,) = prep.summary.provenance["warnings"]
    assert "GTI00004" in w and "not an extension of the file" in w
    np.testing.assert_array_equal(prep.binned.gti, [[T0, T0 + 1000]])
