"""EPIC cameras and modes from INSTRUME / DATAMODE / EXPIDSTR (docs/semantics.md §1, §17).

Real headers (tests/data/real) and hand-made ones; every refusal is one line naming the
file and the keyword.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.read.events import epic_identity, exposure_key, read_event_info
from schemas.errors import InputFileError
from tests.helpers.eventfiles import EventSet, FileSpec, edge_events, write_event_file
from tests.helpers.realfiles import MOS1_CLEAN, NUSTAR_EVENTS, PN


def test_real_mos1_list():
    info = read_event_info(MOS1_CLEAN)
    assert (info.instrument, info.datamode) == ("M1", "IMAGING")
    assert (info.exp_id, info.expidstr, info.exposure) == ("0001730201001", "S001", "M1S001")
    assert info.identity_notes == ()
    assert info.macro("XMMEA_EM") == "(FLAG & 0x766ba000) == 0" and info.macro("XMMEA_EP") is None
    assert sorted(info.ccd_gtis) == [1, 2, 3, 4, 5, 6, 7]


def test_real_pn_list_gzip():
    info = read_event_info(PN)
    assert (info.instrument, info.datamode, info.exposure) == ("PN", "IMAGING", "PNS003")
    assert info.exp_id == "0201160101003" and info.n_rows == 33712
    assert info.macro("XMMEA_EP") == "(FLAG & 0xfa0000) == 0"


def test_real_nustar_list_reads_as_one_unit_with_its_gti():
    """The real FPMA list (mode 06): module FPMA, exposure key FPMA06 from the file name, its
    one GTI extension as unit 0's GTI, MJDREFI + MJDREFF, LIVETIME/ONTIME as live fraction."""
    info = read_event_info(NUSTAR_EVENTS)
    assert (info.instrument, info.exposure, info.is_nustar) == ("FPMA", "FPMA06", True)
    assert info.obs_id == "90410111001" and info.n_rows == 9442
    assert info.mjdref == pytest.approx(55197.00076601852, abs=1e-12)
    assert list(info.ccd_gtis) == [0] and info.gti_names == {0: "GTI"}
    assert info.ccd_gtis[0].tolist() == [[275856515.0, pytest.approx(275856616.0, abs=1e-6)]]
    assert info.live_fraction[0] == pytest.approx(70.0321908915824 / 100.9999999403954)
    assert info.live_keywords == {0: "LIVETIME/ONTIME"} and info.exposures == {}


def test_nustar_module_letter_must_match_instrume(tmp_path):
    path = tmp_path / "nu90410111001B06_cl.evt"
    path.write_bytes(NUSTAR_EVENTS.read_bytes())
    with pytest.raises(InputFileError) as err:
        read_event_info(path)
    assert str(err.value) == (
        f"events file {path} EVENTS header: INSTRUME = 'FPMA' but the file name says FPMB; "
        "rename the file or check that it is the list you meant"
    )


def test_hk_file_is_refused_for_an_epic_list():
    with pytest.raises(InputFileError) as err:
        read_event_info(MOS1_CLEAN, hk=NUSTAR_EVENTS)
    assert str(err.value) == (
        f"events file {MOS1_CLEAN}: hk = {NUSTAR_EVENTS} is given but the list is not "
        "NuSTAR's (TELESCOP is not 'NuSTAR'); remove hk from this observation"
    )


def _file(tmp_path: Path, **header: object) -> Path:
    ev: EventSet = edge_events()
    return write_event_file(tmp_path / "ev.fits", ev, FileSpec(header=dict(header)))


def _drop(path: Path, *keys: str) -> Path:
    with fits.open(path, mode="update") as hdul:
        for k in keys:
            del hdul["EVENTS"].header[k]
    return path


@pytest.mark.parametrize(
    ("instrume", "expected"), [("EPN", "PN"), ("EMOS1", "M1"), ("EMOS2", "M2"), ("emos2 ", "M2")]
)
def test_cameras(tmp_path, instrume, expected):
    info = read_event_info(_file(tmp_path, INSTRUME=instrume, DATAMODE="IMAGING"))
    assert info.instrument == expected and info.exposure == expected
    assert any("no EXPIDSTR" in n for n in info.identity_notes)


@pytest.mark.parametrize("mode", ["TIMING", "BURST", "COMPRESSED_TIMING", "RESERVED"])
def test_other_modes_are_refused(tmp_path, mode):
    path = _file(tmp_path, DATAMODE=mode)
    with pytest.raises(InputFileError) as err:
        read_event_info(path)
    assert str(err.value) == (
        f"events file {path} EVENTS header: DATAMODE = '{mode}' is not supported; "
        "give an imaging-mode event list (DATAMODE = 'IMAGING')"
    )


@pytest.mark.parametrize("instrume", ["RGS1", "OM", "ACIS", "XRT"])
def test_other_instruments_are_refused(tmp_path, instrume):
    path = _file(tmp_path, INSTRUME=instrume)
    with pytest.raises(InputFileError, match=f"INSTRUME = '{instrume}' is not an XMM-Newton EPIC"):
        read_event_info(path)


def test_missing_instrume_and_datamode_read_as_pn_imaging_with_notes(tmp_path):
    info = read_event_info(_drop(_file(tmp_path), "INSTRUME"))
    assert (info.instrument, info.datamode, info.exposure) == ("PN", "IMAGING", "PN")
    assert info.identity_notes[:2] == (
        "INSTRUME absent: read as EPN (EPIC-pn)",
        "DATAMODE absent: read as IMAGING",
    )


def test_exposure_key_from_expidstr_only(tmp_path):
    with_str = read_event_info(_file(tmp_path, EXP_ID="0123456789002", EXPIDSTR="U002"))
    assert with_str.exposure == "PNU002" and with_str.exp_id == "0123456789002"
    # EXP_ID alone holds the exposure number but not the scheduled/unscheduled letter
    only_id = read_event_info(_file(tmp_path, INSTRUME="EMOS2", EXP_ID="0123456789002"))
    assert only_id.exposure == "M2" and only_id.expidstr is None
    assert only_id.identity_notes[-1].startswith("no EXPIDSTR: exposure key 'M2'")
    odd = read_event_info(_file(tmp_path, EXPIDSTR="S1"))
    assert odd.exposure == "PN"
    assert "EXPIDSTR = 'S1' is not S/U/X + 3 digits: not used" in odd.identity_notes


def test_one_exposure_key_for_event_lists_and_imported_curves():
    """epic_identity names an exposure as EventFileInfo does; imports accept other modes."""
    where = "light-curve file x.lc RATE header"
    keys = {"INSTRUME": "EMOS2", "EXPIDSTR": "U002", "DATAMODE": "TIMING"}
    with pytest.raises(InputFileError, match=f"^{where}: DATAMODE = 'TIMING' is not supported"):
        epic_identity(keys, where)
    ident = epic_identity(keys, where, imaging_only=False)
    assert (ident.instrument, ident.datamode, ident.expid) == ("M2", "TIMING", "M2U002")
    assert ident.expid == exposure_key("M2", "U002") and exposure_key("PN", None) == "PN"
    with pytest.raises(InputFileError, match="INSTRUME = 'RGS1' is not an XMM-Newton EPIC"):
        epic_identity({"INSTRUME": "RGS1"}, where, imaging_only=False)
