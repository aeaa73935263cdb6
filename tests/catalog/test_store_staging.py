"""Concurrent writers share one staging folder beside the store.

A writer removes the staging folder when it finds it empty after its rename, so
another writer's ``mkdir`` of that folder and of its own folder inside it can
lose the race: the staging folder vanishes in between. The writer must try
again, never fail the group.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from catalog.store import Store


def _dataset(value: float) -> xr.Dataset:
    return xr.Dataset({"rate": ("time", np.full(4, value))})


def test_staging_folder_vanishing_during_mkdir_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``staging.mkdir(exist_ok=True)`` raises FileExistsError when the folder exists at
    ``os.mkdir`` but is gone when pathlib checks ``is_dir``: another writer removed it."""
    store = Store.create(tmp_path / "s.zarr")
    original = Path.mkdir
    raced: list[Path] = []

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == store.staging and not raced:
            raced.append(self)
            raise FileExistsError(17, "File exists", str(self))  # what pathlib raises then
        original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    target = store.path / "obs" / "g"
    assert store._replace(_dataset(1.5), target, "obs-g", {}) == target
    assert raced == [store.staging]
    got = xr.open_zarr(target, consolidated=False)["rate"].values
    np.testing.assert_array_equal(got, [1.5] * 4)
    assert not store.staging.exists()


def test_many_threads_write_groups_into_one_store(tmp_path: Path) -> None:
    store = Store.create(tmp_path / "s.zarr")
    errors: list[str] = []

    def work(i: int) -> None:
        for k in range(20):
            try:
                store._replace(
                    _dataset(i + k / 100), store.path / f"o{i}" / f"g{k}", f"{i}-{k}", {}
                )
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i in range(6):
        for k in range(20):
            got = xr.open_zarr(store.path / f"o{i}" / f"g{k}", consolidated=False)["rate"].values
            np.testing.assert_array_equal(got, [i + k / 100] * 4)
    assert not store.staging.exists()
