"""The SAS backend's handling of SAS processes, tested with stand-in executables.

The stand-ins (tests/helpers/sas_standin_impl.py) are small Python scripts named evselect,
epiclccorr, tabgtigen and sasversion put first on PATH. They test xlcat's handling
of processes -- argument lists, working folders, timeouts, non-zero exits, missing
outputs, retries, logs kept, the environment check -- and never SAS's numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline.extract.backends import get_backend
from pipeline.extract.backends.native import NativeBackend
from pipeline.extract.backends.sas import SASBackend
from pipeline.extract.jobs import ObservationJob
from pipeline.extract.sas import commands as cmd
from pipeline.extract.sas.runner import run_command
from pipeline.select.regions import parse_regions
from schemas.build import FlareFilter, SchemeOptions, Screening
from schemas.energy import Band
from schemas.errors import ConfigError, SASError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    edge_events,
    random_events,
    write_event_file,
)

CCD_GTIS = {4: [(T0, T0 + 400), (T0 + 430, T0 + 1000)], 5: [(T0, T0 + 600), (T0 + 650, T0 + 1000)]}
BAND = Band(2000, 4000)


@pytest.fixture(scope="module")
def event_file(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("obs") / "0123456789" / "pn"
    d.mkdir(parents=True)
    ev = EventSet.concat([edge_events(), random_events(3000, seed=3)])
    return write_event_file(d / "pn_filtered.fits", ev, FileSpec(ccd_gtis=CCD_GTIS))


def _job(events: Path, flare=None) -> ObservationJob:
    return ObservationJob(
        obsid="0123456789",
        events=events,
        regions=parse_regions(REGION_TEXT, "t.reg"),
        gti_file=None,
        screening=Screening(),
        flare=flare,
        time_bin=100.0,
    )


@pytest.fixture
def obs(event_file, tmp_path):
    """The event file with a ccf.cif beside it (removed afterwards)."""
    ccf = event_file.parent / "ccf.cif"
    ccf.write_text("stand-in calibration index")
    yield _job(event_file)
    ccf.unlink()


def _backend(tmp_path, **options) -> SASBackend:
    return SASBackend(options).for_store(tmp_path / "cat.zarr")


# -- environment --------------------------------------------------------------------------
def test_check_reports_version_ccf_and_abscorr(standins, obs, tmp_path):
    info = get_backend("sas", {}).check([obs])
    assert info["applies_abscorr"] is True
    assert info["sas_version"] == "sasversion:- xlcat-standin 0.0 (not SAS)"
    assert info["sas_dir"] == str(standins.sas_dir)
    assert info["ccf"] == {"0123456789": str(obs.events.parent / "ccf.cif")}
    assert info["executables"]["evselect"] == str(standins.bin / "evselect")


def test_sas_missing_is_one_clear_error(standins, obs, monkeypatch):
    monkeypatch.delenv("SAS_DIR")
    with pytest.raises(SASError, match="SAS_DIR is not set; run the SAS setup first"):
        SASBackend().check([obs])
    monkeypatch.setenv("SAS_DIR", str(standins.sas_dir))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SASError, match="SAS task sasversion is not on PATH"):
        SASBackend().check([obs])


def test_failing_sasversion(standins, obs):
    standins.rules({"task": "sasversion", "action": "fail"})
    with pytest.raises(SASError, match="'sasversion' failed \\(exit status 3\\)"):
        SASBackend().check([obs])


@pytest.mark.parametrize("where", [".", "..", "../..", "../../odf"])
def test_ccf_search_order(standins, event_file, tmp_path, where):
    d = (event_file.parent / where).resolve()
    d.mkdir(exist_ok=True)
    (d / "ccf.cif").write_text("x")
    try:
        info = SASBackend().check([_job(event_file)])
        assert info["ccf"]["0123456789"] == str(d / "ccf.cif")
        assert info["ccf_found"]["0123456789"] == "found next to the event file"
    finally:
        (d / "ccf.cif").unlink()


def test_ccf_from_environment_and_option(standins, event_file, tmp_path, monkeypatch):
    with pytest.raises(
        SASError,
        match="no calibration index: SAS_CCF is not set and there is no "
        "ccf.cif in .*pn, .*0123456789, .*, .*odf; run cifbuild",
    ):
        SASBackend().check([_job(event_file)])
    env_ccf, opt_ccf = tmp_path / "env.cif", tmp_path / "opt.cif"
    env_ccf.write_text("x")
    opt_ccf.write_text("x")
    monkeypatch.setenv("SAS_CCF", str(env_ccf))
    assert SASBackend().check([_job(event_file)])["ccf"]["0123456789"] == str(env_ccf)
    info = SASBackend({"ccf": str(opt_ccf)}).check([_job(event_file)])
    assert info["ccf"]["0123456789"] == str(opt_ccf)
    with pytest.raises(SASError, match="\\[sas\\] ccf=/no/such.cif: no such file"):
        SASBackend({"ccf": "/no/such.cif"}).check([_job(event_file)])


def test_invalid_options_are_a_config_error():
    with pytest.raises(ConfigError, match="\\[sas\\] timout"):
        SASBackend({"timout": 5})


# -- running commands -------------------------------------------------------------------------
def test_timeout_kills_the_whole_process_group(standins, tmp_path):
    """A stand-in that starts a child and hangs: both die, and the call returns."""
    standins.rules({"task": "evselect", "action": "hang-child"})
    rec = run_command("evselect (source)", ["evselect", "a=1"], cwd=tmp_path, env=None, timeout=0.5)
    assert rec.timed_out and rec.returncode is None and not rec.ok
    assert rec.status_text == "timed out after 0.5 s and was killed"
    assert "called with 1 arguments" in rec.stdout


def test_cannot_start(tmp_path):
    exe = tmp_path / "evselect"
    exe.write_text("not executable")
    with pytest.raises(SASError, match="evselect: cannot start"):
        run_command("evselect", [str(exe)], cwd=tmp_path, env=None, timeout=5)


# -- prepare and extract ---------------------------------------------------------------------
def test_extract_runs_three_commands_in_a_temporary_folder(standins, obs, tmp_path):
    b = _backend(tmp_path)
    p = b.prepare(obs)
    curves = b.extract(p, (BAND,), SchemeOptions(abscorr=False))
    calls = standins.calls()
    assert [c["task"] for c in calls] == ["sasversion", "evselect", "evselect", "epiclccorr"]
    cwd = {c["cwd"] for c in calls[1:]}
    assert len(cwd) == 1 and not Path(cwd.pop()).exists()  # own folder, removed after success
    expected = cmd.band_commands(
        obs.events, obs.regions, obs.screening, p.grid, BAND, False, ccds=[4, 5]
    )
    assert [c["argv"] for c in calls[1:]] == list(expected.values())
    assert expected["evselect (source)"][-1].endswith(
        "&& ((CCDNR==4&&gti(gti.fits:GTICCD04,TIME))||(CCDNR==5&&gti(gti.fits:GTICCD05,TIME)))"
    )
    rec = curves.band_provenance[0]
    assert rec["abscorr"] is False and rec["cache"] == "miss"
    # the GTIs written for gti(gti.fits:GTICCDnn,TIME) are the native backend's, CCD by CCD
    native = NativeBackend().prepare(obs)
    np.testing.assert_array_equal(p.gti, native.summary.gti)
    assert {str(c): g.tolist() for c, g in p.ccd_gtis.items()} == {
        c: v["gti"] for c, v in native.summary.provenance["ccd_gtis"].items()
    }
    assert (p.grid.t0, p.grid.dt, p.grid.n_bins) == (T0, 100.0, 10)
    n = NativeBackend().extract(native, (BAND,), SchemeOptions())
    np.testing.assert_array_equal(curves.src_counts, n.src_counts)
    np.testing.assert_array_equal(curves.bkg_counts, n.bkg_counts)


@pytest.mark.parametrize(
    ("rule", "command", "message"),
    [
        (
            {"task": "evselect", "match": "rateset=lc__b.fits", "action": "fail"},
            "evselect (background)",
            "evselect \\(background\\) exit status 3; last output line: "
            "'\\*\\* evselect: error \\(StandinFailure\\): told to fail'; command: evselect table=",
        ),
        (
            {"task": "epiclccorr", "action": "no-output"},
            "epiclccorr",
            "epiclccorr exited with status 0 but wrote no lc.fits; command: epiclccorr srctslist=",
        ),
        (
            {"task": "evselect", "action": "off-grid"},
            "epiclccorr",
            "light-curve file .*/lc.fits: row [0-9]+ "
            "\\(bin centre 300000[0-9.]+ s, TIMEPIXR 0.5\\) "
            "is 33.3333 s off the grid's bin centres",
        ),
    ],
)
def test_failed_band_names_obsid_band_command_and_keeps_logs(
    standins, obs, tmp_path, rule, command, message
):
    standins.rules(rule)
    b = _backend(tmp_path)
    p = b.prepare(obs)
    with pytest.raises(SASError, match=message) as info:
        b.extract(p, (BAND,), SchemeOptions(abscorr=True))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("obsid 0123456789 band 2-4 keV (PI [2000:4000)): ")
    logs = tmp_path / ".cat.zarr.sas-logs" / "0123456789" / "PI2000-4000_abscorr-yes"
    assert text.endswith(f"logs kept in {logs}")
    log = (logs / "commands.log").read_text()
    assert f"=== {command}:" in log and "$ evselect table=" in log
    records = json.loads((logs / "commands.json").read_text())
    assert records[-1]["name"] == command
    assert (logs / cmd.GTI_FILE).is_file()


def test_timeout_of_a_band_is_reported(standins, obs, tmp_path):
    standins.rules({"task": "evselect", "match": "lc__s", "action": "hang"})
    b = _backend(tmp_path, timeout=0.5)
    with pytest.raises(
        SASError,
        match="evselect \\(source\\) timed out after 0.5 s and was "
        "killed; last output line: .*; command: evselect ",
    ) as info:
        b.extract(b.prepare(obs), (BAND,), SchemeOptions(abscorr=False))
    assert "PI2000-4000_abscorr-no" in str(info.value)


def test_retry_uses_the_cache_and_clears_old_logs(standins, obs, tmp_path):
    b = _backend(tmp_path)
    p = b.prepare(obs)
    bands = (BAND, Band(4000, 10000))
    standins.rules({"task": "evselect", "match": "PI in [4000:10000)", "action": "fail"})
    with pytest.raises(SASError, match="band 4-10 keV"):
        b.extract(p, bands, SchemeOptions(abscorr=True))
    logs = tmp_path / ".cat.zarr.sas-logs" / "0123456789" / "PI4000-10000_abscorr-yes"
    assert logs.is_dir()
    standins.rules()
    standins.reset_calls()
    curves = b.extract(p, bands, SchemeOptions(abscorr=True))
    ran = [c["argv"][-1] for c in standins.calls("evselect")]
    assert all("[4000:10000)" in a for a in ran) and len(ran) == 2  # band 1 only
    assert [r["cache"] for r in curves.band_provenance] == ["hit", "miss"]
    assert not logs.exists()
    # the cached band's record still has its commands and logs
    assert curves.band_provenance[0]["commands"]["encoding"] == "json+zlib+base64"


def test_keep_temp_and_no_cache(standins, obs, tmp_path):
    b = _backend(tmp_path, keep_temp=True, cache=False, tmp_dir=str(tmp_path / "tmp"))
    p = b.prepare(obs)
    rec = b.extract(p, (BAND,), SchemeOptions()).band_provenance[0]
    kept = Path(rec["kept_folder"])
    assert kept.parent == tmp_path / "tmp"
    assert {f.name for f in kept.iterdir()} >= {
        "lc.fits",
        "lc__s.fits",
        "lc__b.fits",
        "gti.fits",
        "commands.log",
    }
    assert not (tmp_path / ".cat.zarr.sas-cache").exists()


def test_flare_filter_through_evselect_and_tabgtigen(standins, obs, tmp_path):
    job = _job(obs.events, flare=FlareFilter(threshold=0.05, expression="#XMMEA_EP"))
    p = _backend(tmp_path).prepare(job)
    calls = standins.calls()
    assert [c["task"] for c in calls] == ["sasversion", "evselect", "tabgtigen"]
    # the file has no XMMEA_EP keyword: FLAG==0 is used and recorded (docs/semantics.md §8)
    assert calls[1]["argv"][-1] == "expression=(PI in [10000:12000])&&(PATTERN==0)&&((FLAG==0))"
    flare = p.summary.provenance["flare"]
    assert flare["notes"][0].startswith("#XMMEA_EP is not in the EVENTS header")
    native = NativeBackend().prepare(job)
    np.testing.assert_array_equal(flare["gti"], native.summary.provenance["flare"]["gti"])
    np.testing.assert_array_equal(p.gti, native.summary.gti)


def test_flare_failure_keeps_its_log(standins, obs, tmp_path):
    standins.rules({"task": "tabgtigen", "action": "fail"})
    job = _job(obs.events, flare=FlareFilter(threshold=0.7))
    with pytest.raises(SASError, match="obsid 0123456789 flare filter: tabgtigen exit status 3"):
        _backend(tmp_path).prepare(job)
    assert (tmp_path / ".cat.zarr.sas-logs" / "0123456789" / "flare" / "commands.log").is_file()


def test_reference_spectrum_from_evselect_spectra(standins, obs, tmp_path):
    b = _backend(tmp_path)
    p = b.prepare(obs)
    net, chan0 = b.reference_spectrum(p)
    native, nchan0 = NativeBackend().reference_spectrum(NativeBackend().prepare(obs))
    full = np.full(4096, np.nan)
    full[nchan0 : nchan0 + len(native)] = native
    assert chan0 == 0 and net.shape == (4096,)
    # channels inside the screening (PI 200..12000): channel 2400 holds only PI 12000,
    # a partial channel the native spectrum leaves out
    np.testing.assert_allclose(net[40:2400], full[40:2400], atol=1e-9)
    assert np.all(net[:40] == 0) and np.all(net[2401:] == 0)


def test_process_environment_has_sas_ccf(standins, obs, tmp_path, monkeypatch):
    b = _backend(tmp_path, sas_dir=str(standins.sas_dir))
    env = b._task(
        "t",
        __import__("pipeline.extract.sas.environment", fromlist=["discover"]).discover(b.options),
        "/x/ccf.cif",
        "0123456789",
        "t",
    ).env
    assert env["SAS_CCF"] == "/x/ccf.cif"
    assert env["SAS_DIR"] == str(standins.sas_dir)
    assert env["PATH"].split(os.pathsep)[0] == str(standins.sas_dir / "bin")
