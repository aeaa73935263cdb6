"""Issue 10 cases 1-5: bad event files refused at plan time with one line."""

from __future__ import annotations

import pytest
from astropy.io import fits

from tests.bad_inputs.conftest import Workspace


@pytest.mark.parametrize("extension", ["EVENTS", "STDGTI05"])
def test_a_truncated_event_file_is_refused(ws: Workspace, extension: str) -> None:
    with fits.open(ws.events) as hdul:
        cut = hdul[extension].fileinfo()["datLoc"] + 10
    ws.events.write_bytes(ws.events.read_bytes()[:cut])
    ws.build_refused(f"events file {ws.events}: truncated: extension {extension} needs")


@pytest.mark.parametrize("key", ["MJDREF", "LIVETI04", "ONTIME04", "FRMTIME", "TSTART", "TSTOP"])
def test_a_non_numeric_header_keyword_is_refused(ws: Workspace, key: str) -> None:
    header: dict[str, object] = {key: "abc"}
    ws.write_events(header=header)
    ws.build_refused(f"events file {ws.events} EVENTS header", f"{key}='abc' is not a finite")


def test_an_infinite_tstop_is_refused(ws: Workspace) -> None:
    ws.write_events(header={"TSTOP": "inf"})
    ws.build_refused("TSTOP='inf' is not a finite number")
