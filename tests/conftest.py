"""Fixtures shared across the test suite.

Test helpers live in :mod:`tests.helpers` (hand-made event files with events on every
edge, SAS light-curve writers, stand-in SAS executables) and are imported as
``from tests.helpers.eventfiles import ...``; the repository root is on ``sys.path``
because ``tests`` is a package (pytest's default ``prepend`` import mode).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from tests.helpers.sas_standins import StandIns, install

#: Files copied into the repository for the tests (see tests/data/README.md).
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def standins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIns:
    """Stand-in evselect, epiclccorr, tabgtigen and sasversion first on PATH (not SAS)."""
    return install(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Client]:
    """A Dask distributed client on an in-process LocalCluster (one worker, two threads).

    No dashboard, and the scheduler's HTTP server on a free port: with
    ``dashboard_address=None`` it would still ask for 8787 and warn when that is taken.
    """
    with (
        LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=False,
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
