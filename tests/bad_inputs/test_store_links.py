"""Issue 10 case 8: a symbolic link planted inside a store is refused; nothing written outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.cli.main import main
from tests.bad_inputs.conftest import Workspace, snapshot


@pytest.mark.parametrize("where", ["obsid", "group"])
def test_a_link_inside_the_store_is_refused_and_reported(ws: Workspace, where: str) -> None:
    ws.build_ok()
    outside = ws.root / "outside"
    obsid_dir = ws.store / "0123456789"
    if where == "obsid":
        os.rename(obsid_dir, outside)
        os.symlink(outside, obsid_dir)
    else:
        group = next(p for p in obsid_dir.iterdir() if p.is_dir())
        os.rename(group, outside)
        os.symlink(outside, group)
    ws.write_events(header={"OBSERVER": "changed"})  # the group must be rebuilt
    before_outside = snapshot(outside)
    ws.build_refused("is a symbolic link", "xlcat writes only inside the store")
    assert snapshot(outside) == before_outside
    ws.capsys.readouterr()
    assert main(["verify", str(ws.store)]) == 1
    out = ws.capsys.readouterr().out
    assert f"LINK    {obsid_dir if where == 'obsid' else group} -> {outside}" in out
    assert "1 symbolic links" in out


def test_the_writer_refuses_a_link_even_after_planning(ws: Workspace, tmp_path: Path) -> None:
    """Store.refuse_links guards every write (a link planted between plan and write)."""
    from catalog.store import Store
    from schemas.errors import StoreError

    ws.build_ok()
    store = Store(ws.store)
    ((obsid, expid),) = store.groups()
    ds = store.read_group(obsid, expid).load()
    outside = tmp_path / "elsewhere"
    os.rename(ws.store / obsid, outside)
    os.symlink(outside, ws.store / obsid)
    before = snapshot(outside)
    with pytest.raises(StoreError, match="is a symbolic link"):
        store.write_group(obsid, expid, ds)
    assert snapshot(outside) == before
