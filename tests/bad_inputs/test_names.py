"""Issue 10 cases 5-6: obsids of ten ASCII digits matching OBS_ID; names by full-match rules."""

from __future__ import annotations

import pytest

from schemas.names import is_obsid
from tests.bad_inputs.conftest import BUILD, Workspace


@pytest.mark.parametrize(
    "obsid", ["０１２３４５６７８９", "012345678\u00b9", "012345678\u0669", "0123456789\n"]
)
def test_an_obsid_of_non_ascii_digits_is_refused(ws: Workspace, obsid: str) -> None:
    assert not is_obsid(obsid)
    ws.write_build(BUILD.format(extra="").replace('"0123456789"', repr(obsid).replace("'", '"')))
    ws.build_refused(f"build file {ws.build_file}", "is not a 10-digit XMM-Newton obsid")


def test_an_obsid_other_than_the_header_obs_id_is_refused(ws: Workspace) -> None:
    ws.write_build(BUILD.format(extra="").replace('"0123456789"', '"0123456780"'))
    ws.build_refused(
        "observation 0123456780: events file", "OBS_ID = '0123456789'", "obsid_check = false"
    )


def test_obsid_check_false_keeps_the_build_files_obsid(ws: Workspace) -> None:
    text = BUILD.format(extra="").replace('"0123456789"', '"0123456780"\nobsid_check = false')
    ws.write_build(text)
    ws.build_ok()
    assert (ws.store / "0123456780").is_dir()


@pytest.mark.parametrize(
    "name",
    [
        '"a\\n"',
        '"zarr.json"',
        '"products"',
        '"Products"',
        '".hidden"',
        '"' + "x" * 300 + '"',
        '"a/b"',
        '"é"',
    ],
)
def test_a_bad_scheme_name_is_refused(ws: Workspace, name: str) -> None:
    ws.write_build(BUILD.format(extra="").replace("2a = {", f"{name} = {{"))
    ws.build_refused(f"build file {ws.build_file}", "scheme name", "is invalid; use 1-64 ASCII")


def test_a_misspelt_key_is_named_first_with_the_closest_valid_name(ws: Workspace) -> None:
    text = BUILD.format(extra="").replace(
        "time_bin = 200.0", "time_bin = 200.0\n[flare]\ntreshold = 0.7\nbin = 100.0"
    )
    ws.write_build(text)
    err = ws.build_refused(
        f"build file {ws.build_file}: flare.treshold: unknown key; did you mean threshold?"
    )
    assert "flare.threshold: is required" not in err
    text = BUILD.format(extra="").replace("time_bin = 200.0", "timebin = 200.0\nbackend = 3")
    ws.write_build(text)
    err = ws.build_refused("timebin: unknown key; did you mean time_bin?; backend: ")
