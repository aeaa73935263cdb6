"""Two builds on one Dask client never share tasks: each computes from its own inputs.

The graph's tasks are declared pure, and Dask reuses the result of any key the
scheduler still holds. Keys named only by obsid and scheme would hand a second build
(same obsids, other files or another store) the first build's results: its errors,
or "written" groups that were written into the first build's store.
"""

from __future__ import annotations

from pathlib import Path

from distributed import Client

from catalog.store import Store
from pipeline.build.graph import run_build
from pipeline.build.plan import plan_build
from schemas.build import load_build
from tests.build.test_build import BUILD, GTIS, OBSIDS, _events
from tests.helpers.eventfiles import REGION_TEXT, FileSpec, write_event_file

GROUPS = [(o, "PN") for o in OBSIDS]


def _workdir(root: Path) -> Path:
    for i, obsid in enumerate(OBSIDS):
        (root / obsid).mkdir(parents=True)
        write_event_file(root / obsid / "ev.fits", _events(i), FileSpec(ccd_gtis=GTIS))
        (root / obsid / "ds9.reg").write_text(REGION_TEXT)
    (root / "build.toml").write_text(BUILD)
    return root / "build.toml"


def test_second_build_on_the_same_client_uses_its_own_inputs(
    tmp_path: Path, dask_client: Client
) -> None:
    first = _workdir(tmp_path / "first")
    plan = plan_build(load_build(first))
    # the reference observation of the equal-count scheme breaks after planning
    (tmp_path / "first" / OBSIDS[0] / "ev.fits").write_bytes(b"not a FITS file")
    report = run_build(plan, dask_client)
    # both exposures need the equal-count scheme whose reference broke: both fail
    assert report.built == [] and sorted(f.obsid for f in report.failed) == sorted(OBSIDS)
    assert all("equal-count scheme" in f.message for f in report.failed)

    second = _workdir(tmp_path / "second")  # the same obsids, valid files, another store
    report = run_build(plan_build(load_build(second)), dask_client)
    assert report.failed == []
    assert sorted((g.obsid, g.expid) for g in report.built) == GROUPS
    assert sorted(Store(tmp_path / "second" / "test.zarr").groups()) == GROUPS
