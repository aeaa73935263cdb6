"""Binding a job to its event file: camera defaults, macro fallback, sky regions (§1, §2, §9).

docs/semantics.md: the default screening is the camera's (pn ``PATTERN<=4 && #XMMEA_EP``,
MOS ``PATTERN<=12 && #XMMEA_EM``); flare keys the build file leaves out take the camera's
defaults; regions in a celestial system are converted with the file's X/Y WCS.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.extract.backends.native import NativeBackend, bin_observation
from pipeline.extract.binding import EventFacts, bind_job, bind_to_event_file
from pipeline.extract.jobs import ObservationJob
from pipeline.extract.observation import screening_text
from pipeline.select.regions import parse_regions
from schemas.build import DefaultScreening, FlareFilter, SchemeOptions, Screening
from schemas.energy import Band
from schemas.errors import InputFileError
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
from tests.helpers.realfiles import MOS1_CLEAN
from tests.helpers.skymaths import GOOD_WCS

GTIS = {4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]}
SRC = [(1000.0, 1000.0, 100.0)]
MASK = 0x10  # a made-up XMMEA mask: FLAG 1, 4 and 0x10000 events pass it, FLAG == 0 does not


def _job(events: Path, *, screening=None, flare=None, regions=REGION_TEXT) -> ObservationJob:
    """A job as the planner makes it: bound to its event file."""
    return bind_job(
        ObservationJob(
            obsid="0123456789",
            events=events,
            regions=parse_regions(regions, "t.reg"),
            gti_file=None,
            screening=screening if screening is not None else DefaultScreening(),
            flare=flare,
            time_bin=100.0,
        )
    )


@pytest.fixture(scope="module")
def events() -> EventSet:
    ev = EventSet.concat([edge_events(), random_events(6000, seed=21)])
    ev.flag[::7] = MASK  # some events carry a bit inside the mask
    return ev


def _file(tmp_path: Path, events: EventSet, **header: object) -> Path:
    return write_event_file(tmp_path / "ev.fits", events, FileSpec(ccd_gtis=GTIS, header=header))


def test_default_pn_screening_uses_the_header_macro(tmp_path, events):
    path = _file(tmp_path, events, XMMEA_EP=f"(FLAG & 0x{MASK:x}) == 0")
    job = _job(path)
    assert job.screening == DefaultScreening(
        instrument="PN", pattern_max=4, flag_zero=False, pi=(200, 12000), expression="#XMMEA_EP"
    )
    assert job.notes == ("screening: the PN default (docs/semantics.md §1)",)
    assert screening_text(job.screening) == "(PATTERN<=4)&&(PI in [200:12000])&&(#XMMEA_EP)"
    band = Band(200, 12001)
    src, _ = bin_observation(job).binned.band_counts((band,))
    # the reference: FLAG & MASK == 0 instead of FLAG == 0
    masked = dataclasses.replace(events, flag=events.flag & MASK)
    expected = brute_force_counts(masked, SRC, (200, 12001), [(T0, T0 + 1000)], T0, 100.0, 10)
    np.testing.assert_array_equal(src[0], expected)
    strict = brute_force_counts(events, SRC, (200, 12001), [(T0, T0 + 1000)], T0, 100.0, 10)
    assert expected.sum() > strict.sum()  # FLAG 1, 4, 0x10000 events now kept


def test_default_screening_falls_back_to_flag_zero_without_the_macro(tmp_path, events):
    path = _file(tmp_path, events)  # no XMMEA_EP keyword
    job = _job(path)
    assert job.screening.expression == "(FLAG==0)" and job.screening.pattern_max == 4
    assert job.notes[1] == (
        f"screening: #XMMEA_EP is not in the EVENTS header of {path}; used (FLAG==0) instead"
    )
    # the numbers are those of the explicit FLAG == 0 screening
    explicit = _job(path, screening=Screening())
    band = (Band(2000, 10000),)
    a = NativeBackend().extract(bin_observation(job), band, SchemeOptions())
    b = NativeBackend().extract(bin_observation(explicit), band, SchemeOptions())
    np.testing.assert_array_equal(a.src_counts, b.src_counts)
    np.testing.assert_array_equal(a.rate, b.rate)
    prov = bin_observation(job).summary.provenance
    assert prov["screening_source"] == "PN default (docs/semantics.md §1)"
    assert prov["binding_notes"] == list(job.notes)
    assert bin_observation(explicit).summary.provenance["screening_source"] == "build file"


def test_default_mos_screening(tmp_path, events):
    path = _file(
        tmp_path, events, INSTRUME="EMOS2", XMMEA_EM=f"(FLAG & 0x{MASK:x}) == 0", EXPIDSTR="S002"
    )
    job = _job(path)
    assert (job.screening.instrument, job.screening.pattern_max) == ("M2", 12)
    assert job.screening.expression == "#XMMEA_EM"
    prov = bin_observation(job).summary.provenance
    assert (prov["instrument"], prov["exposure"]) == ("M2", "M2S002")
    src, _ = bin_observation(job).binned.band_counts((Band(200, 12001),))
    masked = dataclasses.replace(events, flag=events.flag & MASK)
    expected = brute_force_counts(
        masked, SRC, (200, 12001), [(T0, T0 + 1000)], T0, 100.0, 10, pattern_max=12
    )
    np.testing.assert_array_equal(src[0], expected)


def test_flare_keys_left_out_take_the_camera_defaults():
    mos_src = "physical\ncircle(24635.6,24158.8,200)\n"
    job = _job(MOS1_CLEAN, screening=Screening(), flare=FlareFilter(), regions=mos_src)
    assert job.flare == FlareFilter(
        threshold=0.35, pi=(10001, 32767), pattern=0, bin=100.0, expression="#XMMEA_EM"
    )
    assert job.notes == (
        "flare filter: bin, expression, pattern, pi, threshold from the M1 defaults "
        "(docs/semantics.md §9)",
    )
    mine = _job(
        MOS1_CLEAN,
        screening=Screening(),
        flare=FlareFilter.model_validate({"threshold": 0.5, "bin": 50.0}),
        regions=mos_src,
    )
    assert (mine.flare.threshold, mine.flare.bin, mine.flare.pi) == (0.5, 50.0, (10001, 32767))
    assert mine.notes[0].startswith("flare filter: expression, pattern, pi from the M1 defaults")


def test_explicit_settings_read_nothing():
    """A job whose settings are all explicit never opens its event file."""
    full = FlareFilter(threshold=0.7, pi=(10000, 12000), pattern=0, bin=100.0, expression="x")
    job = _job(Path("/no/such/file.fits"), screening=Screening(), flare=full)
    assert job.notes == () and job.flare is full and job.screening == Screening()
    with pytest.raises(InputFileError, match="/no/such/file.fits: not found"):
        _job(Path("/no/such/file.fits"))  # the default screening needs the file


def test_sky_regions_are_converted_when_the_job_is_bound(tmp_path, events):
    # (200, -10) at pixel (1000, 1000), the source circle of the hand-made files
    path = _file(tmp_path, events, **{**GOOD_WCS, "TCRPX2": 1000.0, "TCRPX3": 1000.0})
    sky = 'fk5\ncircle(200,-10,5")\ncircle(200,-10.01,10") # background\n'
    job = _job(path, screening=Screening(), regions=sky)
    (s,), (b,) = job.regions.source, job.regions.background
    # 100 pixels = 5 arcsec; 0.01 degree = 720 pixels
    assert (s.x, s.y, s.r) == pytest.approx((1000.0, 1000.0, 100.0), abs=1e-6)
    assert (b.x, b.y, b.r) == pytest.approx((1000.0, 1000.0 - 720.0, 200.0), abs=2e-3)
    assert job.notes[-1].endswith(f"2 celestial shapes converted with the X/Y column WCS of {path}")
    prov = bin_observation(job).summary.provenance
    assert prov["regions"]["source"] == [s.sas] and prov["regions"]["background"] == [b.sas]
    assert [c["as_written"] for c in prov["regions"]["conversion"]["shapes"]] == [
        'circle(200,-10,5")',
        'circle(200,-10.01,10")',
    ]


def test_sky_regions_on_a_file_with_a_malformed_wcs_are_refused(tmp_path, events):
    path = _file(tmp_path, events, **{**GOOD_WCS, "TCRVL2": "0.0"})
    with pytest.raises(InputFileError) as err:
        _job(path, screening=Screening(), regions='fk5\ncircle(200,-10,5")\n')
    assert str(err.value) == (
        f"events file {path} EVENTS header: keyword TCRVL2 = '0.0' is not a number (a str); "
        "sky regions need the X/Y column WCS; give the regions in physical coordinates"
    )
    # physical regions on the same file are fine
    assert _job(path, screening=Screening()).regions.source[0].r == 100.0


def test_event_facts_bind_as_the_file_does_without_opening_it(tmp_path, events):
    """The facts the planner records give the same binding as the file (fast re-runs)."""
    from pipeline.read.events import read_event_info

    path = _file(tmp_path, events, INSTRUME="EMOS1", EXPIDSTR="S001")  # no XMMEA_EM keyword
    facts = EventFacts.from_info(read_event_info(path))
    assert facts.record() == {
        "instrument": "M1",
        "expid": "M1S001",
        "datamode": "IMAGING",
        "macros": {"XMMEA_EM": None},
    }
    recorded = EventFacts.from_record(str(path), json.loads(json.dumps(facts.record())))
    assert recorded == facts
    # a record of an older build (no mode, no macros) is not enough: the file is read again
    assert EventFacts.from_record(str(path), {"instrument": "M1", "expid": "M1S001"}) is None
    regions = parse_regions(REGION_TEXT, "t.reg")
    flare = FlareFilter.model_validate({"threshold": 0.5})
    read = bind_to_event_file(path, DefaultScreening(), flare, regions)
    # with the facts, a missing file is never opened and the result is the same
    gone = tmp_path / "moved.fits"
    from_facts = bind_to_event_file(gone, DefaultScreening(), flare, regions, recorded)
    assert from_facts == read
    assert read.screening.model_dump() == {
        "pattern_max": 12,
        "flag_zero": False,
        "pi": (200, 12000),
        "expression": "(FLAG==0)",
        "instrument": "M1",
    }
    assert (read.flare.threshold, read.flare.pi, read.flare.expression) == (
        0.5,
        (10001, 32767),
        "#XMMEA_EM",
    )
    # bound settings need nothing more: binding again returns the job itself
    job = _job(path)
    assert bind_job(job) is job
