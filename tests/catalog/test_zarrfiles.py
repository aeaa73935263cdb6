"""The store's direct group writer (catalog.zarrfiles) writes what xarray's to_zarr writes.

Each group is written twice into a store: by ``Store.write_group`` (the direct writer)
and through ``to_zarr`` (the store's other path); every file must be the same, byte for
byte, and the group must read back equal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from catalog.layout import SchemePart, SpectrumPart, exposure_dataset
from catalog.store import _MAX_CHUNK_BYTES, Store
from catalog.zarrfiles import group_files
from schemas.energy import Band
from schemas.spectra import channel_grid
from schemas.store_layout import DATA_VARS

OBSID = "0123456789"


def _part(name: str, edges: list[int], n_time: int, seed: int, nan_rows: int = 0) -> SchemePart:
    rng = np.random.default_rng(seed)
    bands = tuple(Band(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True))
    shape = (len(bands), n_time)
    variables = {v: rng.normal(size=shape) for v in DATA_VARS}
    variables["src_counts"] = rng.poisson(3.0, size=shape).astype(np.float64)
    variables["bkg_counts"] = np.zeros(shape)
    variables["fracexp"] = np.broadcast_to(rng.uniform(size=n_time), shape).copy()
    for v in ("rate", "error"):
        variables[v][:nan_rows] = np.nan
    attrs = {"scheme_hash": f"h{seed}", "pi_edges": edges, "n": seed}
    return SchemePart(name, bands, variables, attrs)


def _attrs(n_time: int) -> dict[str, object]:
    return {
        "obsid": OBSID,
        "expid": "PN",
        "instrument": "PN",
        "dt": 10.0,
        "tstart": 1.0e8,
        "tstop": 1.0e8 + 10.0 * n_time,
        "MJDREF": 50814.0,
        "TIMESYS": "TT",
        "TIMEREF": "LOCAL",
        "inputs": {"events": "é/ev.fits", "list": [1, 2.5, None, True], "nan": float("nan")},
        "fingerprint_hash": "f" * 64,
        "regions": {"text": "physical\ncircle(1,2,3)\n"},
        "backends": {"native": {"gti": [[1.0e8, 1.0e8 + 5.0]], "big": np.float64(1e300)}},
        "warnings": [],
        "array": np.array([1.5, 2.0]),  # numpy values at the top level become JSON values
        "count": np.int64(3),
    }


def _spectrum(instrument: str, seed: int, background: bool) -> SpectrumPart:
    grid = channel_grid(instrument)
    rng = np.random.default_rng(seed)
    src = rng.poisson(0.5, grid.n_channels).astype(np.int64)
    bkg = rng.poisson(0.2, grid.n_channels).astype(np.int64) if background else None
    attrs = {
        "exposure": 1234.5,
        "exposure_rule": "r",
        "src_backscal": 1000.0,
        "bkg_backscal": 4000.0 if background else None,
        "backend": "native",
        "counts_rule": "c",
    }
    return SpectrumPart(grid, src, bkg, attrs)


def _dataset(
    parts: list[SchemePart], n_time: int, spectrum: SpectrumPart | None = None
) -> xr.Dataset:
    time = 1.0e8 + 10.0 * (np.arange(n_time) + 0.5)
    return exposure_dataset(time, parts, _attrs(n_time), spectrum)


def _files(group: Path) -> dict[str, bytes]:
    return {
        p.relative_to(group).as_posix(): p.read_bytes() for p in group.rglob("*") if p.is_file()
    }


CASES = {
    "two schemes": lambda: _dataset(
        [_part("b", [500, 2000, 4000, 10000], 37, 1, nan_rows=1), _part("a", [300, 700], 37, 2)],
        37,
    ),
    # one band: scheme_band is all zeros (zarr writes no chunk equal to the fill value);
    # rate and error all NaN
    "one band, empty chunks": lambda: _dataset([_part("one", [400, 900], 5, 3, nan_rows=1)], 5),
    # format 3: the spectra on the channel dimension (pn with background, MOS source-only)
    "pn spectra": lambda: _dataset(
        [_part("a", [300, 700], 11, 4)], 11, _spectrum("PN", 5, background=True)
    ),
    "mos spectra, source only": lambda: _dataset(
        [_part("a", [300, 700], 11, 4)], 11, _spectrum("M1", 6, background=False)
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_direct_writer_writes_the_files_to_zarr_writes(tmp_path: Path, case: str) -> None:
    ds = CASES[case]()
    assert group_files(ds, _MAX_CHUNK_BYTES) is not None  # the direct path is taken
    store = Store.create(tmp_path / "s.zarr")
    direct = store.write_group(OBSID, "PN", ds)
    via_xarray = store._replace(ds, store.path / OBSID / "XA", "xa", parent_attrs={})
    mine, theirs = _files(direct), _files(via_xarray)
    assert sorted(mine) == sorted(theirs)
    for rel in sorted(theirs):
        assert mine[rel] == theirs[rel], rel
    if case == "one band, empty chunks":
        assert "scheme_band/0" not in mine and "rate/0.0" not in mine
    assert json.loads(mine["zarr.json"])["attributes"]["manifest"]
    back = store.read_group(OBSID, "PN")
    xr.testing.assert_identical(back, store.read_group(OBSID, "XA"))
    np.testing.assert_array_equal(back["src_counts"].values, ds["src_counts"].values)
    assert list(back["scheme"].values) == list(ds["scheme"].values)
    assert store.state(OBSID, "PN", deep=True).ok
    if "spectra" in case:
        np.testing.assert_array_equal(back["spec_src"].values, ds["spec_src"].values)
        assert back["spec_src"].dtype == np.int64
        assert back.attrs["spectrum"]["src_total"] == int(ds["spec_src"].sum())
        assert ("spec_bkg" in back) == ("source only" not in case)
        n = 2400 if "mos" in case else 4096
        assert back.sizes["channel"] == n and back["chan_pi_hi"].values[-1] == 5 * n
        assert back["chan_e_hi"].values[-1] == pytest.approx(5 * n / 1000)


def test_outside_the_layout_goes_through_to_zarr(tmp_path: Path) -> None:
    ds = CASES["two schemes"]()
    ds["extra"] = (("band",), np.arange(ds.sizes["band"], dtype=np.int32))
    assert group_files(ds, _MAX_CHUNK_BYTES) is None
    assert group_files(CASES["two schemes"](), 8) is None  # would be sharded
    store = Store.create(tmp_path / "s.zarr")
    store.write_group(OBSID, "PN", ds)
    back = store.read_group(OBSID, "PN")
    assert back["extra"].dtype == np.int32 and store.state(OBSID, "PN", deep=True).ok
