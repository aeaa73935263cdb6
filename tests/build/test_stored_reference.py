"""Equal-count schemes take a stored spectrum of the store as their reference.

The edges resolved from the stored spectrum equal those resolved from the events
(a fresh store); the scheme's ``reference`` record says where the spectrum came from;
``reference = "OBSID/EXPID"`` may name a stored exposure that the build does not list.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import catalog
from pipeline.build.plan import plan_build
from pipeline.cli.main import main
from schemas.build import load_build
from schemas.errors import ConfigError
from tests.helpers.eventfiles import REGION_TEXT, FileSpec, random_events, write_event_file

A, B = "0123456789", "0123456790"
ARGS = ["--threads", "--workers", "1", "--no-progress"]
STATIC = '3b = { unit = "keV", edges = [0.5, 2, 5, 10] }'


def _obs(obsid: str) -> str:
    return f"""
[[observations]]
obsid = "{obsid}"
events = "{obsid}/ev.fits"
regions = "{obsid}/ds9.reg"
"""


def _write(d: Path, name: str, store: str, obsids: list[str], schemes: list[str]) -> Path:
    text = f'store = "{store}"\ntime_bin = 100.0\n' + "".join(_obs(o) for o in obsids)
    text += "\n[schemes]\n" + "\n".join(schemes) + "\n"
    (d / name).write_text(text)
    return d / name


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ref")
    for obsid, seed in ((A, 5), (B, 6)):
        (d / obsid).mkdir()
        write_event_file(d / obsid / "ev.fits", random_events(20000, seed=seed), FileSpec())
        (d / obsid / "ds9.reg").write_text(REGION_TEXT)
    return d


def _ec(ref: str) -> str:
    table = f'reference = "{ref}", n = 6, lo = 0.5, hi = 10'
    return f'6ec = {{ unit = "keV", equal_counts = {{ {table} }} }}'


def test_equal_count_edges_from_the_stored_spectrum(folder):
    # fresh store: the edges come from the events
    fresh = _write(folder, "fresh.toml", "fresh.zarr", [A], [STATIC, _ec(A)])
    assert main(["build", str(fresh), *ARGS]) == 0
    rec = (
        catalog.open(folder / "fresh.zarr", attrs="python").lightcurves(A, "6ec").attrs["reference"]
    )
    assert rec["spectrum"] == "events" and rec["exposure"] == f"{A}/PN"
    edges_events = catalog.open(folder / "fresh.zarr").lightcurves(A, "6ec").attrs["pi_edges"]
    # a store holding the exposure's spectra: the scheme added later reads them
    first = _write(folder, "first.toml", "s.zarr", [A], [STATIC])
    assert main(["build", str(first), *ARGS]) == 0
    later = _write(folder, "later.toml", "s.zarr", [A], [STATIC, _ec(f"{A}/PN")])
    plan = plan_build(load_build(later))
    assert list(plan.stored_references) == [f"{A}/PN"]
    assert main(["build", str(later), *ARGS]) == 0
    lc = catalog.open(folder / "s.zarr", attrs="python").lightcurves(A, "6ec")
    assert lc.attrs["reference"]["spectrum"] == "stored"
    assert lc.attrs["reference"]["exposure"] == f"{A}/PN"
    assert lc.attrs["pi_edges"] == edges_events and len(edges_events) == 7
    # a stored exposure the build does not list: observation B binned with A's spectrum
    other = _write(folder, "other.toml", "s.zarr", [B], [STATIC, _ec(f"{A}/PN")])
    assert main(["build", str(other), *ARGS]) == 0
    lb = catalog.open(folder / "s.zarr", attrs="python").lightcurves(B, "6ec")
    assert lb.attrs["pi_edges"] == edges_events
    assert lb.attrs["reference"]["fingerprint_hash"] == lc.attrs["fingerprint_hash"]


def test_an_unknown_stored_reference_is_one_line(folder):
    shutil.rmtree(folder / "none.zarr", ignore_errors=True)
    cfg = _write(folder, "bad.toml", "none.zarr", [B], [STATIC, _ec(f"{A}/M1S001")])
    with pytest.raises(ConfigError, match=rf"exposure {A}/M1S001 is neither in the build nor"):
        plan_build(load_build(cfg))
