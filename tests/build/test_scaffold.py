"""A build file and regions for a folder of event lists (pipeline.build.scaffold, ``xlcat init``).

On the real lists of tests/data/real (symbolic links in a temporary folder, with the GTI and
rate files and the NuSTAR list beside them), on a timing-mode list and on simulated files.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs.utils import skycoord_to_pixel
from pydantic import ValidationError

import catalog
from pipeline.build.graph import run_build
from pipeline.build.plan import plan_build
from pipeline.build.scaffold import scaffold_build
from pipeline.read.wcs import read_sky_wcs
from pipeline.select.regions import read_regions
from pipeline.simulate import simulate_preset
from schemas.build import BuildFile, DefaultScreening, load_build
from schemas.errors import ConfigError, InputFileError
from tests.helpers.eventfiles import FileSpec, random_events, write_event_file
from tests.helpers.realfiles import MOS1_CLEAN, NUSTAR_EVENTS, REAL, mos1_circles

MOS1_DIR = REAL / "xmm_0001730201_mos1"
#: The pn list cut to RX J0146.9+6121 (tests/data/real/README.md).
PN_EVENTS = REAL / "xmm_0201160101_pn" / "rxj_pnevtlist_0310kev_baryc.ds.gz"
PPS_LIST = MOS1_DIR / "P0001730201M1S002MIEVLI.FTZ"
ARCSEC_PER_PIXEL = 0.05


def _link_real_files(folder: Path) -> None:
    """The real files, linked into ``folder`` as the shared copy lays them out."""
    for src in (MOS1_CLEAN, PPS_LIST, MOS1_DIR / "M1_gti.fits", MOS1_DIR / "M1_rate.fits"):
        (folder / "mos1").mkdir(exist_ok=True)
        (folder / "mos1" / src.name).symlink_to(src)
    (folder / "pn").mkdir()
    (folder / "pn" / PN_EVENTS.name).symlink_to(PN_EVENTS)
    (folder / "nustar").mkdir()
    (folder / "nustar" / NUSTAR_EVENTS.name).symlink_to(NUSTAR_EVENTS)
    (folder / "mos1" / "notes.txt").write_text("not a FITS file\n")


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    d = tmp_path_factory.mktemp("init")
    (d / "data").mkdir()
    _link_real_files(d / "data")
    scaffold = scaffold_build(d / "data", d / "build.toml")
    scaffold.write()
    return d, scaffold


def _entry(scaffold, name):
    return next(e for e in scaffold.entries if e.path.name == name)


def _physical(events: Path, regions: Path):
    return read_regions(regions).resolve(read_sky_wcs(events).wcs)


def test_event_lists_found_and_other_files_skipped_with_reasons(real):
    _, scaffold = real
    assert [(e.obsid, e.info.exposure, e.path.name, e.active) for e in scaffold.entries] == [
        ("0001730201", "M1S001", MOS1_CLEAN.name, True),
        ("0001730201", "M1S001", PPS_LIST.name, False),
        ("0201160101", "PNS003", PN_EVENTS.name, True),
        ("90410111001", "FPMA06", NUSTAR_EVENTS.name, True),
    ]
    reasons = {s.path.name: s.reason for s in scaffold.skipped}
    assert set(reasons) == {"M1_gti.fits", "M1_rate.fits"}
    assert reasons["M1_gti.fits"] == "no EVENTS table (extensions: STDGTI): a GTI table"
    assert reasons["M1_rate.fits"].endswith(": a light curve")
    assert scaffold.ignored == 1  # notes.txt


def test_the_nustar_list_gets_physical_regions_and_no_hk(real):
    """Its X/Y WCS is malformed (TCRVL13 = '0.0'): physical circles in NuSTAR pixels; no hk
    file lies beside it, which the build file says."""
    d, scaffold = real
    entry = _entry(scaffold, NUSTAR_EVENTS.name)
    assert entry.plan.frame == "physical" and entry.hk is None
    assert entry.plan.source.r == pytest.approx(60.0 / 2.46, rel=1e-9)
    text = (d / "regions" / "90410111001_FPMA06.reg").read_text()
    assert "keyword TCRVL13 = '0.0' is not a number" in text and "\nphysical\n" in text
    build = (d / "build.toml").read_text()
    assert "# no housekeeping file nu<obsid><A|B>_fpm.hk found beside it" in build
    assert 'nustar = { unit = "keV", edges = [3, 10, 79], instruments = ["FPMA", "FPMB"] }' in build


def test_one_list_per_exposure_and_the_header_wins_over_the_name(real):
    d, scaffold = real
    pps = _entry(scaffold, PPS_LIST.name)
    assert pps.regions == d / "regions" / "0001730201_M1S001_2.reg"
    assert any("the file name says M1S002, the header M1S001" in r for r in pps.remarks)
    assert any(r.startswith("commented out: the same exposure") for r in pps.remarks)
    text = (d / "build.toml").read_text()
    assert '# events = "data/mos1/P0001730201M1S002MIEVLI.FTZ"' in text
    assert '\nevents = "data/mos1/M1_clean.fits"' in text


def test_the_build_file_loads_as_written(real):
    d, _ = real
    config = load_build(d / "build.toml")
    assert config.store == d / "build.zarr"
    assert config.time_bin == 128.0
    assert [(o.obsid, o.events, o.regions) for o in config.observations] == [
        ("0001730201", d / "data/mos1/M1_clean.fits", d / "regions/0001730201_M1S001.reg"),
        ("0201160101", d / "data/pn" / PN_EVENTS.name, d / "regions/0201160101_PNS003.reg"),
        (
            "90410111001",
            d / "data/nustar" / NUSTAR_EVENTS.name,
            d / "regions/90410111001_FPMA06.reg",
        ),
    ]
    for obs in config.observations:  # no screening table: the camera's default, bound later
        assert isinstance(obs.screening, DefaultScreening) and obs.screening.instrument is None
        assert obs.flare is None
    assert list(config.schemes) == ["soft_hard", "nustar"]
    assert config.schemes["soft_hard"].pi_edges == (500, 2000, 10000)
    assert config.scheme_options["soft_hard"].instruments == ("PN", "M1", "M2")
    assert config.scheme_options["nustar"].instruments == ("FPMA", "FPMB")
    text = (d / "build.toml").read_text()
    assert "\n# [flare]\n" in text
    assert "threshold = 0.4 " in text and "threshold = 0.35" in text


def test_mos1_source_circle_on_the_source(real):
    d, scaffold = real
    regions = _physical(MOS1_CLEAN, d / "regions" / "0001730201_M1S001.reg")
    (src,) = regions.source
    assert src.r == pytest.approx(15.0 / ARCSEC_PER_PIXEL, rel=1e-6)
    ref_x, ref_y, ref_r = mos1_circles()["source"]
    # the circle the EXOD project used lies 8.0" away; its own radius is 10"
    offset = math.hypot(src.x - ref_x, src.y - ref_y) * ARCSEC_PER_PIXEL
    assert offset == pytest.approx(7.96, abs=0.1)
    assert offset < ref_r * ARCSEC_PER_PIXEL
    # the events' peak in 2" cells, read here with astropy: the circle sits within 1" of it
    data = fits.getdata(MOS1_CLEAN, "EVENTS")
    x, y = data["X"].astype(float), data["Y"].astype(float)
    edges = np.arange(ref_x - 2000, ref_x + 2001, 40.0), np.arange(ref_y - 2000, ref_y + 2001, 40.0)
    counts, xe, ye = np.histogram2d(x, y, bins=edges)
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    peak = (xe[i] + 20.0, ye[j] + 20.0)
    assert math.hypot(src.x - peak[0], src.y - peak[1]) * ARCSEC_PER_PIXEL < 1.0
    # RA_OBJ/DEC_OBJ is 6.7" from it: the circle was moved onto the events' centroid
    plan = _entry(scaffold, MOS1_CLEAN.name).plan
    target = SkyCoord(plan.target[0], plan.target[1], unit="deg", frame="fk5")
    tx, ty = skycoord_to_pixel(target, read_sky_wcs(MOS1_CLEAN).wcs, origin=1)
    assert math.hypot(src.x - tx, src.y - ty) * ARCSEC_PER_PIXEL == pytest.approx(6.7, abs=0.1)
    assert plan.target[2] == "RA_OBJ/DEC_OBJ" and plan.ccd == 1
    text = (d / "regions" / "0001730201_M1S001.reg").read_text()
    assert (
        '# check: source circle at the target position RA_OBJ/DEC_OBJ, moved 6.7" onto the '
        "events' centroid; centre it on the source and set the radius" in text
    )
    assert "\nfk5\n" in text


def test_mos1_background_circle_holds_events_of_the_source_ccd_only(real):
    d, _ = real
    regions = _physical(MOS1_CLEAN, d / "regions" / "0001730201_M1S001.reg")
    (src,), (bkg,) = regions.source, regions.background
    data = fits.getdata(MOS1_CLEAN, "EVENTS")
    inside = bkg.contains(data["X"], data["Y"])
    ccds, counts = np.unique(data["CCDNR"][inside], return_counts=True)
    assert ccds.tolist() == [1] and counts[0] > 150  # 187 screened, 195 in the file
    assert bkg.r * ARCSEC_PER_PIXEL == pytest.approx(60.0, rel=1e-5)  # TAN, 3' off axis
    distance = math.hypot(bkg.x - src.x, bkg.y - src.y) * ARCSEC_PER_PIXEL
    assert 90.0 - 1e-6 <= distance <= 180.0 + 1e-6
    assert distance - 60.0 - 15.0 >= 15.0  # clear of the source circle by one source radius
    # and wholly inside CCD 1's part of the field: CCD 1 events all round it
    ring = (np.hypot(data["X"] - bkg.x, data["Y"] - bkg.y) - bkg.r) < 200
    assert set(np.unique(data["CCDNR"][ring])) == {1}
    text = (d / "regions" / "0001730201_M1S001.reg").read_text()
    assert (
        "# check: background circle on the same CCD (CCD 1), free of sources; move it if needed"
        in text
    )
    assert text.rstrip().endswith("# background color=red")


def test_pn_list_cut_to_its_source_gets_source_only_regions(real):
    d, scaffold = real
    plan = _entry(scaffold, PN_EVENTS.name).plan
    regions = _physical(PN_EVENTS, d / "regions" / "0201160101_PNS003.reg")
    assert regions.background == ()
    assert plan.background is None and plan.ccd == 10
    (src,) = regions.source
    # RA_OBJ/DEC_OBJ (the NGC 663 field) is 9.3' from the only events: the circle goes to them
    data = fits.getdata(PN_EVENTS, "EVENTS")
    inside = src.contains(data["X"], data["Y"])
    assert inside.sum() == 33_689  # of 33,712 events inside the 20"x10" ellipse
    text = (d / "regions" / "0201160101_PNS003.reg").read_text()
    assert "9.3' from the target position RA_OBJ/DEC_OBJ" in text
    assert "the light curves are source-only" in text


def test_the_written_build_file_builds(real, dask_client):
    d, _ = real
    plan = plan_build(load_build(d / "build.toml"))
    report = run_build(plan, dask_client)
    assert report.ok, report.failed
    assert {g.obsid for g in report.built} == {"0001730201", "0201160101", "90410111001"}
    cat = catalog.open(d / "build.zarr")
    # MOS1: every event of the source circle in the scheme's PI range is counted once
    regions = _physical(MOS1_CLEAN, d / "regions" / "0001730201_M1S001.reg")
    data = fits.getdata(MOS1_CLEAN, "EVENTS")
    pi, pattern = data["PI"], data["PATTERN"]
    selected = (pattern <= 12) & (pi >= 500) & (pi < 10000)
    mos = cat.lightcurves(obsid="0001730201", scheme="soft_hard")
    src = regions.source[0].contains(data["X"], data["Y"]) & selected
    bkg = regions.background[0].contains(data["X"], data["Y"]) & selected
    assert float(mos.src_counts.sum()) == src.sum()
    assert float(mos.bkg_counts.sum()) == bkg.sum()
    # pn: source-only; the list holds FLAG == 0 events only, so #XMMEA_EP keeps them all. It was
    # barycentred but its TSTART/TSTOP were not: 439 events lie before TSTART, off the grid
    regions = _physical(PN_EVENTS, d / "regions" / "0201160101_PNS003.reg")
    data, header = fits.getdata(PN_EVENTS, "EVENTS", header=True)
    selected = (data["PATTERN"] <= 4) & (data["PI"] >= 500) & (data["PI"] < 10000)
    selected &= (data["TIME"] >= header["TSTART"]) & (data["TIME"] < header["TSTOP"])
    src = regions.source[0].contains(data["X"], data["Y"]) & selected
    pn = cat.lightcurves(obsid="0201160101", scheme="soft_hard")
    assert np.isnan(pn.bkg_counts.values).all()
    assert float(pn.src_counts.sum()) == src.sum()


def test_at_target_keeps_the_circle_at_ra_obj(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / MOS1_CLEAN.name).symlink_to(MOS1_CLEAN)
    scaffold = scaffold_build(tmp_path / "in", tmp_path / "b.toml", recentre_source=False)
    (entry,) = scaffold.entries
    wcs = read_sky_wcs(MOS1_CLEAN).wcs
    target = SkyCoord(entry.plan.target[0], entry.plan.target[1], unit="deg", frame="fk5")
    tx, ty = skycoord_to_pixel(target, wcs, origin=1)
    assert entry.plan.source.x == pytest.approx(float(tx), abs=1e-6)
    assert entry.plan.source.y == pytest.approx(float(ty), abs=1e-6)
    assert "# check: source circle at the target position RA_OBJ/DEC_OBJ; centre it" in (
        entry.plan.text
    )


def test_existing_files_are_kept_unless_forced(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / PN_EVENTS.name).symlink_to(PN_EVENTS)
    scaffold = scaffold_build(tmp_path / "in", tmp_path / "b.toml")
    regions = tmp_path / "regions" / "0201160101_PNS003.reg"
    regions.parent.mkdir()
    regions.write_text("# edited\n")
    with pytest.raises(ConfigError, match=r"regions file .*0201160101_PNS003.reg exists"):
        scaffold.write()
    assert not (tmp_path / "b.toml").exists()  # nothing written
    assert regions.read_text() == "# edited\n"
    scaffold.write(force=True)
    assert regions.read_text() == scaffold.regions[regions]
    with pytest.raises(ConfigError, match=r"build file .*b.toml exists"):
        scaffold_build(tmp_path / "in", tmp_path / "b.toml").write()


def test_empty_folder_and_a_folder_without_event_lists(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match=r"folder .*empty: empty; put event lists in it"):
        scaffold_build(tmp_path / "empty")
    (tmp_path / "gti").mkdir()
    shutil.copy(MOS1_DIR / "M1_gti.fits", tmp_path / "gti")
    (tmp_path / "gti" / "a.reg").write_text("physical\n")
    with pytest.raises(InputFileError) as err:
        scaffold_build(tmp_path / "gti")
    assert str(err.value) == (
        f"folder {tmp_path / 'gti'}: no event lists found: 1 FITS files, none an EPIC imaging "
        "event list (M1_gti.fits: no EVENTS table (extensions: STDGTI): a GTI table)"
    )
    (tmp_path / "gti" / "M1_gti.fits").unlink()
    with pytest.raises(InputFileError, match="no FITS file among its 1 files"):
        scaffold_build(tmp_path / "gti")


def test_timing_mode_list_is_skipped(tmp_path):
    (tmp_path / "in").mkdir()
    spec = FileSpec(ccd_gtis={4: [(0.0, 1e9)]}, header={"DATAMODE": "TIMING"})
    write_event_file(tmp_path / "in" / "pn_timing.evt", random_events(100, seed=1), spec)
    with pytest.raises(InputFileError, match="DATAMODE = 'TIMING': a timing-mode list"):
        scaffold_build(tmp_path / "in")
    (tmp_path / "in" / PN_EVENTS.name).symlink_to(PN_EVENTS)
    scaffold = scaffold_build(tmp_path / "in")
    assert [e.path.name for e in scaffold.entries] == [PN_EVENTS.name]
    assert [(s.path.name, s.reason) for s in scaffold.skipped] == [
        (
            "pn_timing.evt",
            "DATAMODE = 'TIMING': a timing-mode list; xlcat reads imaging-mode lists only",
        )
    ]
    assert "#   pn_timing.evt: DATAMODE = 'TIMING'" in scaffold.text  # beside the build file


def test_simulated_files_without_exp_id_or_wcs(tmp_path, dask_client):
    simulate_preset(tmp_path / "sim", scale=0.02, obsids=["0201830201", "0761220101"])
    truth = {
        o["obsid"]: o for o in json.loads((tmp_path / "sim/truth.json").read_text())["observations"]
    }
    scaffold = scaffold_build(tmp_path / "sim", tmp_path / "sim.toml")
    scaffold.write()
    assert [(e.obsid, e.info.exposure, e.info.exp_id) for e in scaffold.entries] == [
        ("0201830201", "PN", None),
        ("0761220101", "PN", None),
    ]
    for entry in scaffold.entries:
        t = truth[entry.obsid]
        assert entry.plan.frame == "physical"
        regions = read_regions(entry.regions)
        (src,), (bkg,) = regions.physical("source"), regions.physical("background")
        assert math.hypot(src.x - t["source_xy"][0], src.y - t["source_xy"][1]) < 20.0  # 1"
        assert src.r == 400.0 and bkg.r == 1200.0
        data = fits.getdata(entry.path, "EVENTS")
        assert set(np.unique(data["CCDNR"][bkg.contains(data["X"], data["Y"])])) == {
            t["source_ccd"]
        }
    plan = plan_build(load_build(tmp_path / "sim.toml"))
    report = run_build(plan, dask_client)
    assert report.ok and len(report.built) == 2


def test_exposures_of_one_obsid_follow_the_build_file_schema(tmp_path):
    """A pn and a MOS1 list of one obsid: both listed where the schema takes several per obsid."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / MOS1_CLEAN.name).symlink_to(MOS1_CLEAN)
    header = {"OBS_ID": "0001730201", "INSTRUME": "EPN", "DATAMODE": "IMAGING", "EXPIDSTR": "S003"}
    spec = FileSpec(ccd_gtis={4: [(0.0, 1e9)], 5: [(0.0, 1e9)]}, header=header)
    write_event_file(tmp_path / "in" / "pn.fits", random_events(3000, seed=2), spec)
    scaffold = scaffold_build(tmp_path / "in", tmp_path / "b.toml")
    scaffold.write()
    assert [(e.info.exposure, e.plan.frame) for e in scaffold.entries] == [
        ("PNS003", "physical"),  # pn first; a hand-made list without a WCS
        ("M1S001", "fk5"),
    ]
    try:
        BuildFile.model_validate(
            {
                "store": "s.zarr",
                "time_bin": 1.0,
                "observations": [
                    {"obsid": "0001730201", "events": e, "regions": "r.reg"} for e in "ab"
                ],
            }
        )
        several = True
    except ValidationError:  # store format 1: one group per (obsid, scheme)
        several = False
    assert [e.active for e in scaffold.entries] == [True, several]
    if not several:
        assert (
            scaffold.entries[1]
            .remarks[-1]
            .startswith(
                "commented out: obsid 0001730201 is listed already (PNS003), and this build file "
                "takes one event list per obsid"
            )
        )
    config = load_build(tmp_path / "b.toml")
    assert len(config.observations) == (2 if several else 1)
