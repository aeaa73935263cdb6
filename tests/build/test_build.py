"""End-to-end builds on hand-made event files: contents, resume, conflicts, atomicity, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import catalog
from catalog.store import Store
from pipeline.build.graph import run_build
from pipeline.build.plan import plan_build
from schemas.build import load_build
from schemas.energy import equal_count_edges
from schemas.errors import ConfigError, InputFileError, StoreError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    brute_force_counts,
    edge_events,
    random_events,
    write_event_file,
)

OBSIDS = ("0123456789", "0123456790")
GTIS = {4: [(T0, T0 + 400), (T0 + 430, T0 + 1000)], 5: [(T0, T0 + 1000)]}
BUILD = """
store = "test.zarr"
time_bin = 100.0

[[observations]]
obsid = "0123456789"
events = "0123456789/ev.fits"
regions = "0123456789/ds9.reg"

[[observations]]
obsid = "0123456790"
events = "0123456790/ev.fits"
regions = "0123456790/ds9.reg"

[schemes]
1a   = { unit = "keV",  edges = [2, 10] }
8ch  = { unit = "chan", lin = [400, 2000, 8] }
4cch = { unit = "keV", equal_counts = { reference = "0123456789", n = 4, lo = 2, hi = 10 } }
"""


def _events(i: int) -> EventSet:
    return EventSet.concat([edge_events(), random_events(8000, seed=100 + i)])


@pytest.fixture
def workdir(tmp_path) -> Path:
    for i, obsid in enumerate(OBSIDS):
        (tmp_path / obsid).mkdir()
        write_event_file(tmp_path / obsid / "ev.fits", _events(i), FileSpec(ccd_gtis=GTIS))
        (tmp_path / obsid / "ds9.reg").write_text(REGION_TEXT)
    (tmp_path / "build.toml").write_text(BUILD)
    return tmp_path


def _build(path: Path, client, **kw):
    plan = plan_build(load_build(path), **kw)
    return plan, run_build(plan, client)


def _snapshot(store: Path) -> dict[str, float]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*")}


def test_build_stores_brute_force_counts(workdir, dask_client):
    _, report = _build(workdir / "build.toml", dask_client)
    assert report.ok and sorted(s.label for s in report.built) == sorted(f"{o}/PN" for o in OBSIDS)
    cat = catalog.open(workdir / "test.zarr", attrs="python")
    gti = [(T0, T0 + 400), (T0 + 430, T0 + 1000)]
    for i, obsid in enumerate(OBSIDS):
        ds = cat.lightcurves(obsid, "8ch")
        assert ds.sizes == {"band": 8, "time": 10}
        for b in range(8):
            band = (int(ds.pi_lo[b]), int(ds.pi_hi[b]))
            expected = brute_force_counts(_events(i), [(1000, 1000, 100)], band, gti, T0, 100.0, 10)
            np.testing.assert_array_equal(ds.src_counts.values[b], expected)
        np.testing.assert_allclose(ds.time.values, T0 + 100.0 * (np.arange(10) + 0.5))
        assert ds.attrs["gti"] == [list(g) for g in gti]
        assert ds.attrs["abscorr"] is False and ds.attrs["backend"] == "native"
    # bands of a scheme add up to the scheme's full range
    one = cat.lightcurves(OBSIDS[0], "1a")
    eight = cat.lightcurves(OBSIDS[0], "8ch")
    np.testing.assert_array_equal(eight.src_counts.sum("band").values, one.src_counts.values[0])
    np.testing.assert_allclose(eight.rate.sum("band").values, one.rate.values[0], rtol=1e-12)


def test_index_rows_and_equal_count_scheme(workdir, dask_client):
    _build(workdir / "build.toml", dask_client)
    cat = catalog.open(workdir / "test.zarr", attrs="python")
    idx = cat.index
    assert len(idx) == 2 * (1 + 8 + 4)
    row = idx[(idx.scheme == "8ch") & (idx.band == 0)].iloc[0]
    assert (row.e_lo, row.e_hi, row.pi_lo, row.pi_hi) == (2.0, 3.0, 2000, 3000)
    assert row["exposure"] == pytest.approx(970.0) and row["dt"] == 100.0 and row["n_bins"] == 10
    ref = cat.lightcurves(OBSIDS[0], "4cch")
    # the edges are equal-count edges of the reference's net spectrum, computed here by brute force
    ev = _events(0)
    gti = [(T0, T0 + 400), (T0 + 430, T0 + 1000)]
    ratio = ref.attrs["regions"]["area_ratio"]
    net = np.zeros(1600)
    regions = (([(1000, 1000, 100)], 1.0), ([(3000, 1000, 200), (1000, 3000, 150)], -ratio))
    for i in range(len(ev)):
        t, x, y, pi = float(ev.time[i]), float(ev.x[i]), float(ev.y[i]), int(ev.pi[i])
        if ev.pattern[i] > 4 or ev.flag[i] != 0 or not 2000 <= pi < 10000:
            continue
        if not any(a <= t < b for a, b in gti) or not T0 <= t < T0 + 1000:
            continue
        for shapes, weight in regions:
            if any((x - cx) ** 2 + (y - cy) ** 2 <= r * r for cx, cy, r in shapes):
                net[pi // 5 - 400] += weight
    edges = equal_count_edges(net, 400, 2000, 4)
    assert [5 * e for e in edges] == [*ref.pi_lo.values.tolist(), int(ref.pi_hi.values[-1])]
    np.testing.assert_array_equal(cat.lightcurves(OBSIDS[1], "4cch").pi_lo, ref.pi_lo)


def test_rebuild_skips_up_to_date_and_redoes_changed(workdir, dask_client):
    _build(workdir / "build.toml", dask_client)
    store = workdir / "test.zarr"
    first = Store(store).group_attrs(OBSIDS[0], "PN")["created"]
    eight = catalog.open(store).lightcurves(OBSIDS[1], "8ch")
    plan, _ = _build(workdir / "build.toml", dask_client)
    assert plan.todo == [] and len(plan.up_to_date) == 2
    # change the second observation's regions: only its group is redone
    (workdir / OBSIDS[1] / "ds9.reg").write_text(
        REGION_TEXT.replace("circle(1000,1000,100)", "circle(1000,1000,95)")
    )
    plan, report = _build(workdir / "build.toml", dask_client)
    assert [(s.label, s.reason) for s in plan.todo] == [(f"{OBSIDS[1]}/PN", "changed")]
    assert report.ok and Store(store).group_attrs(OBSIDS[0], "PN")["created"] == first
    (workdir / OBSIDS[1] / "ds9.reg").write_text(REGION_TEXT)
    # change the first one's: the second is redone too (its 4cch edges come from the first)
    (workdir / OBSIDS[0] / "ds9.reg").write_text(
        REGION_TEXT.replace("circle(1000,1000,100)", "circle(1000,1000,90)")
    )
    plan, report = _build(workdir / "build.toml", dask_client)
    assert [s.label for s in plan.todo] == [f"{OBSIDS[0]}/PN", f"{OBSIDS[1]}/PN"]
    assert report.ok
    again = catalog.open(store).lightcurves(OBSIDS[1], "8ch")
    for v in ("rate", "src_counts", "bkg_counts", "fracexp"):
        np.testing.assert_array_equal(again[v].values, eight[v].values)


def test_resumed_build_equals_fresh_build(workdir, dask_client):
    _build(workdir / "build.toml", dask_client)
    fresh = catalog.open(workdir / "test.zarr").lightcurves(OBSIDS[0], "8ch")
    shutil.rmtree(workdir / "test.zarr" / OBSIDS[0] / "PN")  # as if interrupted
    plan, report = _build(workdir / "build.toml", dask_client)
    assert [(s.label, s.reason) for s in plan.todo] == [(f"{OBSIDS[0]}/PN", "new")]
    resumed = catalog.open(workdir / "test.zarr").lightcurves(OBSIDS[0], "8ch")
    for v in ("rate", "error", "src_counts", "bkg_counts", "fracexp"):
        np.testing.assert_array_equal(resumed[v].values, fresh[v].values)


def test_conflicting_scheme_definition_is_refused(workdir, dask_client):
    _build(workdir / "build.toml", dask_client)
    snap = _snapshot(workdir / "test.zarr")
    (workdir / "build.toml").write_text(
        BUILD.replace("lin = [400, 2000, 8]", "lin = [400, 2000, 4]")
    )
    with pytest.raises(ConfigError, match=r"scheme '8ch'.*differs.*rename"):
        plan_build(load_build(workdir / "build.toml"))
    assert _snapshot(workdir / "test.zarr") == snap


def test_bad_input_writes_nothing(workdir):
    (workdir / OBSIDS[1] / "ev.fits").unlink()
    with pytest.raises(InputFileError, match=r"events file .*0123456790/ev.fits: not found"):
        plan_build(load_build(workdir / "build.toml"))
    assert not (workdir / "test.zarr").exists()


def test_failed_observation_does_not_stop_others(workdir, dask_client):
    plan = plan_build(load_build(workdir / "build.toml"))
    (workdir / OBSIDS[1] / "ev.fits").write_bytes(b"not a FITS file")  # broken after planning
    report = run_build(plan, dask_client)
    assert [(f.obsid, f.expid) for f in report.failed] == [(OBSIDS[1], "PN")]
    assert all("InputFileError" in f.message for f in report.failed)
    assert [s.label for s in report.built] == [f"{OBSIDS[0]}/PN"]
    assert Store(workdir / "test.zarr").groups() == [(OBSIDS[0], "PN")]
    cat = catalog.open(workdir / "test.zarr")
    assert sorted(cat.index.scheme.unique()) == ["1a", "4cch", "8ch"]


@pytest.mark.parametrize("writer", ["direct", "to_zarr"])
def test_interrupted_group_write_is_never_visible(workdir, monkeypatch, writer):
    import xarray as xr

    from catalog import zarrfiles

    store = Store.create(workdir / "s.zarr")
    if writer == "direct":  # the store's own writer fails after its first file
        ds = xr.Dataset({"rate": (("band", "time"), np.ones((1, 3)))})
        real = zarrfiles.group_files

        class DiskFull(dict):
            def items(self):
                yield next(iter(dict.items(self)))
                raise OSError("disk full")

        def failing(*a, **k):
            files = real(*a, **k)
            assert files is not None
            return zarrfiles.GroupFiles(DiskFull(files.files), files.attrs)

        monkeypatch.setattr(zarrfiles, "group_files", failing)
    else:  # a Dataset outside the group layout (an int32 variable) goes through to_zarr
        ds = xr.Dataset({"rate": (("band", "time"), np.zeros((1, 3), np.int32))})

        def boom(self, *a, **k):
            raise OSError("disk full")

        monkeypatch.setattr(xr.Dataset, "to_zarr", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_group(OBSIDS[0], "PN", ds)
    assert list(store.groups()) == [] and not store.staging.exists()


def test_store_path_that_is_not_a_store(tmp_path):
    (tmp_path / "x.zarr").mkdir()
    (tmp_path / "x.zarr" / "junk.txt").write_text("x")
    with pytest.raises(StoreError, match="not an xlcat store"):
        Store.create(tmp_path / "x.zarr")


def test_query_energy_and_time(workdir, dask_client):
    _build(workdir / "build.toml", dask_client)
    cat = catalog.open(workdir / "test.zarr")
    within = cat.lightcurves(OBSIDS[0], "8ch", energy=(2.1, 5.0))  # 8ch: 1 keV bands
    assert within.pi_lo.values.tolist() == [3000, 4000]
    assert within.band.values.tolist() == [1, 2]
    overlap = cat.lightcurves(OBSIDS[0], "8ch", energy=(2.1, 4.0), match="overlap")
    assert overlap.pi_lo.values.tolist() == [2000, 3000]
    exact = cat.lightcurves(OBSIDS[0], "8ch", energy=(3, 4))
    assert exact.pi_lo.values.tolist() == [3000] and exact.pi_hi.values.tolist() == [4000]
    t = cat.lightcurves(OBSIDS[0], "8ch", time=(T0 + 100, T0 + 300))
    np.testing.assert_allclose(t.time.values, [T0 + 150, T0 + 250])
    many = cat.query("1a", energy=(2, 10), time=(T0, T0 + 1e4))
    assert list(many) == list(OBSIDS)


def test_to_stingray_round_trips_counts_and_gtis(workdir, dask_client):
    _build(workdir / "build.toml", dask_client)
    cat = catalog.open(workdir / "test.zarr", attrs="python")
    ds = cat.lightcurves(OBSIDS[0], "8ch")
    lcs = cat.to_stingray(OBSIDS[0], "8ch")
    ratio = ds.attrs["regions"]["area_ratio"]
    assert len(lcs) == 8
    assert sorted(lcs) == list(range(8))
    for b, lc in lcs.items():
        np.testing.assert_allclose(lc.gti, np.array(ds.attrs["gti"]))
        f = ds.fracexp.values[b]
        full = f == 1.0
        net = ds.src_counts.values[b] - ratio * ds.bkg_counts.values[b]
        np.testing.assert_allclose(lc.counts[full], net[full], rtol=1e-12, atol=1e-12)
        part = (f > 0) & (f < 1)
        np.testing.assert_allclose(lc.counts[part] * f[part], net[part], rtol=1e-12)
        assert lc.dt == 100.0 and lc.mjdref == 50814.0
    strict = cat.to_stingray(OBSIDS[0], "8ch", band=0, min_fracexp=0.9)[0]
    np.testing.assert_allclose(strict.gti, [[T0, T0 + 400], [T0 + 500, T0 + 1000]])
