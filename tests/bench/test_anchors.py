"""The benchmark anchors do the build's work: their counts equal what xlcat stores.

One small simulated observation (CCD GTI gaps and a flare the flare filter cuts out) is
built with three schemes; the numpy anchor's band counts, its GTI, and the stingray loop's
counts for a few bands must equal the stored ones exactly. The anchors read the region file,
GTIs and flare expression with their own code (bench/anchors.py), so this checks them and
xlcat against each other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import catalog
from bench.anchors import numpy_anchor, scheme_bands, select_events, stingray_loop, union_edges
from pipeline.build.graph import run_build
from pipeline.build.plan import plan_build
from pipeline.simulate import simulate_observation
from schemas.build import load_build

OBSID = "0123456789"
BUILD = f"""
store = "s.zarr"
time_bin = 128.0

[flare]
threshold = 0.7

[[observations]]
obsid = "{OBSID}"
events = "{OBSID}/pn_events.fits"
regions = "{OBSID}/ds9.reg"

[schemes]
1a   = {{ unit = "keV", edges = [2, 10] }}
8lch = {{ unit = "keV", log = [2, 10, 8], snap = "chan" }}
24ch = {{ unit = "chan", lin = [400, 2000, 24] }}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dask_client) -> Path:
    d = tmp_path_factory.mktemp("anchors")
    simulate_observation(
        d, OBSID, exposure=4000.0, source_rate=10.0, mjd=57000.0, seed=3, flares=True, n_flares=1
    )
    (d / "build.toml").write_text(BUILD)
    report = run_build(plan_build(load_build(d / "build.toml")), dask_client)
    assert report.ok and [s.label for s in report.built] == [f"{OBSID}/PN"]
    return d


def test_numpy_anchor_counts_equal_the_store(built: Path) -> None:
    config = load_build(built / "build.toml")
    run = numpy_anchor(config)
    cat = catalog.open(built / "s.zarr", attrs="python")
    assert run.n_events > 100_000
    assert run.n_columns == len(union_edges(scheme_bands(config))) - 1 == 31
    for scheme in ("1a", "8lch", "24ch"):
        ds = cat.lightcurves(obsid=OBSID, scheme=scheme)
        src, bkg = run.counts[OBSID][scheme]
        np.testing.assert_array_equal(src, ds.src_counts.values)
        np.testing.assert_array_equal(bkg, ds.bkg_counts.values)
    src, bkg = run.counts[OBSID]["1a"]
    assert src.sum() > 15_000 and bkg.sum() > 5
    # the GTI the anchor applied is the stored one, and it cuts the flare and a CCD gap
    sel = select_events(config.observation(OBSID), config.time_bin)
    gti = np.asarray(ds.attrs["gti"])
    np.testing.assert_array_equal(sel.gti, gti)
    assert len(gti) == 3 and (gti[:, 1] - gti[:, 0]).sum() < 4000.0 - 1500.0


def test_stingray_loop_counts_equal_the_store(built: Path) -> None:
    config = load_build(built / "build.toml")
    run = stingray_loop(config, sample_per_observation=3)
    assert (run.bands_sampled, run.bands_total, run.sample_per_observation) == (3, 33, 3)
    assert run.cpu_s > run.cpu_selection_s > 0
    cat = catalog.open(built / "s.zarr")
    got = run.counts[OBSID]
    # spread evenly over the 33 bands in build order (1a, 8lch, 24ch): bands 0, 16 and 32
    assert [(name, i) for name, i, _, _ in got] == [("1a", 0), ("24ch", 7), ("24ch", 23)]
    for name, i, src, bkg in got:
        ds = cat.lightcurves(obsid=OBSID, scheme=name)
        np.testing.assert_array_equal(src, ds.src_counts.values[i])
        np.testing.assert_array_equal(bkg, ds.bkg_counts.values[i])
        assert src.sum() > 0
