"""The native backend against SAS on a real MOS1 exposure (0001730201), bin for bin.

What SAS did (tests/data/real/README.md): a 100 s flare curve of the pipeline list
(``#XMMEA_EM && (PI>10000) && (PATTERN==0)``), tabgtigen ``RATE<=0.4`` -> ``M1_gti.fits``,
evselect filtering -> ``M1_clean.fits`` (``#XMMEA_EM && gti(M1_gti.fits,TIME) &&
PATTERN<=12 && PI in [500:10000]``), evselect source and background curves of two circles
at 100 s and 2.604 s, and epiclccorr at 2.604 s. The native backend reproduces them from
the filtered list and from the compressed pipeline list through its own flare filter and
screening. SAS curves are matched to the native grid by their bin centres (TIME).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from pipeline.extract.backends.native import NativeBackend, NativePrepared, bin_observation
from pipeline.extract.jobs import ObservationJob
from pipeline.read.events import read_event_info
from pipeline.select.regions import parse_regions
from schemas.build import FlareFilter, Screening
from schemas.energy import Band
from tests.helpers.realfiles import (
    MOS1_CLEAN,
    MOS1_GTI,
    MOS1_RATE,
    MOS1_RAW,
    PN,
    evselect_counts,
    mos1_curve,
    mos1_regions_ds9,
)

OBSID = "0001730201"
#: xlcat's screening for the SAS filtering: #XMMEA_EM && PATTERN<=12 && PI in [500:10000]
SCREENING = Screening(pattern_max=12, flag_zero=False, pi=(500, 10000), expression="#XMMEA_EM")
BAND = Band(500, 10001)  # the whole screened range


def flare(comparison: str = "<=") -> FlareFilter:
    """The EXOD flare filter: 100 s, #XMMEA_EM && (PI>10000) && (PATTERN==0), RATE<=0.4."""
    return FlareFilter(
        threshold=0.4,
        comparison=comparison,  # type: ignore[arg-type]
        pi=(10001, 32767),
        pattern=0,
        bin=100.0,
        expression="#XMMEA_EM",
    )


def _job(tmp: Path, events: Path, dt: float, fl: FlareFilter | None, screening=SCREENING):
    reg = tmp / "m1.reg"
    reg.write_text(mos1_regions_ds9())
    return ObservationJob(
        obsid=OBSID,
        events=events,
        regions=parse_regions(reg.read_text(), str(reg)),
        gti_file=None,
        screening=screening,
        flare=fl,
        time_bin=dt,
    )


CASES = {
    "clean-100": (MOS1_CLEAN, 100.0, None),
    "clean-2.604": (MOS1_CLEAN, 2.604, None),
    "raw-100": (MOS1_RAW, 100.0, "<="),
    "raw-2.604": (MOS1_RAW, 2.604, "<="),
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> dict[str, NativePrepared]:
    tmp = tmp_path_factory.mktemp("mos1")
    return {
        name: bin_observation(_job(tmp, ev, dt, flare(cmp) if cmp else None))
        for name, (ev, dt, cmp) in CASES.items()
    }


def _on_grid(prep: NativePrepared, path: Path) -> np.ndarray:
    """SAS counts per native bin, rows placed by bin centre (TIME), never by row number."""
    counts, tstart, timedel = evselect_counts(path)
    with fits.open(path) as hdul:
        centre = np.asarray(hdul["RATE"].data["TIME"], dtype=np.float64)
    g = prep.binned.grid
    assert timedel == pytest.approx(g.dt, rel=1e-12) and tstart == g.t0
    k = (centre - g.t0) / g.dt - 0.5
    assert np.abs(k - np.rint(k)).max() < 1e-6  # SAS TIME is the bin centre
    out = np.full(g.n_bins, -1, dtype=np.int64)
    out[np.rint(k).astype(np.int64)] = counts
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_counts_equal_evselect_bin_for_bin(prepared, case):
    prep = prepared[case]
    tag = "100" if case.endswith("-100") else "2.604"
    src, bkg = prep.binned.band_counts((BAND,))
    sas_src = _on_grid(prep, mos1_curve(f"lc_{tag}_src"))
    sas_bkg = _on_grid(prep, mos1_curve(f"lc_{tag}_bgd"))
    assert prep.binned.grid.n_bins == (260 if tag == "100" else 9949)
    np.testing.assert_array_equal(src[0], sas_src)
    np.testing.assert_array_equal(bkg[0], sas_bkg)
    assert (int(src.sum()), int(bkg.sum())) == (2456, 57)
    assert prep.summary.provenance["warnings"] == []


@pytest.mark.parametrize("case", ["clean-2.604", "raw-2.604"])
def test_fracexp_equals_epiclccorr(prepared, case):
    """epiclccorr's FRACEXP in all 9,949 bins (>= 99.9% required within 1e-5; all within 4e-8,
    its real32 precision), from the filtered list and from the raw list + the flare GTI."""
    prep = prepared[case]
    with fits.open(mos1_curve("lccorr_2.604")) as hdul:
        table = hdul["RATE"].data
        centre = np.asarray(table["TIME"], dtype=np.float64)
        sas = np.asarray(table["FRACEXP"], dtype=np.float64)
    g = prep.binned.grid
    k = np.rint((centre - g.t0) / g.dt - 0.5).astype(np.int64)
    assert np.array_equal(k, np.arange(g.n_bins))
    diff = np.abs(prep.binned.fracexp[k] - sas)
    assert (diff < 1e-5).mean() >= 0.999
    assert diff.max() < 4e-8
    # inside the GTI it changes from frame to frame: not one constant live fraction
    inside = sas > 0.9
    assert inside.sum() > 4000 and 0.989 < np.median(sas[inside]) < 0.994
    assert np.unique(sas[inside]).size > 1000
    prov = prep.summary.provenance
    assert prov["fracexp_weights"] == {"1": 1.0}
    assert prov["fracexp_method"]["1"].startswith("EXPOSU01: FRACEXP of the exposure steps")


def test_ccd_gti_of_the_filtered_list_is_its_subspace_filter(prepared):
    prov = prepared["clean-2.604"].summary.provenance
    ccd1 = prov["ccd_gtis"]["1"]
    assert ccd1["sources"] == ["[TSTART, TSTOP]", "STDGTI01", "GTI00004 (data subspace)"]
    with fits.open(MOS1_CLEAN) as hdul:
        table = hdul["GTI00004"].data
        filt = np.column_stack([table["START"], table["STOP"]])
    np.testing.assert_array_equal(np.array(ccd1["gti"]), filt)
    np.testing.assert_array_equal(prepared["clean-2.604"].summary.gti, filt)
    assert prov["data_subspace"][0]["TIME"] == "TABLE :GTI00004"
    # the raw list + xlcat's flare filter arrive at the same CCD 1 GTI
    raw = prepared["raw-2.604"].summary.provenance["ccd_gtis"]["1"]
    assert raw["sources"][-1] == "flare GTI"
    np.testing.assert_array_equal(np.array(raw["gti"]), filt)


def test_flare_gti_equals_tabgtigen(prepared):
    with fits.open(MOS1_GTI) as hdul:
        assert hdul[1].name == "STDGTI"
        sas = np.column_stack([hdul[1].data["START"], hdul[1].data["STOP"]])
    for case in ("raw-100", "raw-2.604"):
        fl = prepared[case].summary.provenance["flare"]
        np.testing.assert_array_equal(np.array(fl["gti"]), sas)
        assert fl["expression"] == "RATE<=0.4" and fl["comparison"] == "<="
        assert fl["selection"] == (
            "(PI in [10001:32767])&&(PATTERN==0)&&(((FLAG & 0x766ba000) == 0))"
        )


def test_flare_curve_equals_evselect(tmp_path):
    """xlcat's flare curve of the raw list is M1_rate.fits, count for count."""
    from pipeline.extract.binning import ObservationBinner, TimeGrid
    from pipeline.read.events import iter_event_chunks

    counts, tstart, dt = evselect_counts(MOS1_RATE)
    info = read_event_info(MOS1_RAW)
    grid = TimeGrid.for_exposure(info.tstart, info.tstop, 100.0)
    assert (tstart, dt, len(counts)) == (grid.t0, 100.0, grid.n_bins)
    binner = ObservationBinner(grid, [], [0, 1], flare_edges=grid.edges)
    mask = 0x766BA000
    for c in iter_event_chunks(MOS1_RAW, ["TIME", "PI", "PATTERN", "FLAG", "CCDNR"], 50_000):
        sel = ((c["FLAG"] & mask) == 0) & (c["PI"] > 10000) & (c["PATTERN"] == 0)
        none = np.zeros(len(sel), bool)
        binner.add(c["TIME"], c["PI"], c["CCDNR"], none, none, sel)
    np.testing.assert_array_equal(binner.flare_counts, counts)


def test_strict_comparison_splits_one_flare_interval(tmp_path):
    """With RATE<0.4 the bin at exactly 0.4 counts/s (the 10th) is cut: one more interval,
    100 s less good time, and the source and background curves lose that bin's events."""
    prep = bin_observation(_job(tmp_path, MOS1_RAW, 100.0, flare("<")))
    gti = np.array(prep.summary.provenance["flare"]["gti"])
    t0 = prep.binned.grid.t0
    assert len(gti) == 11 and [900.0, 1000.0] not in (gti - t0).tolist()
    src, bkg = prep.binned.band_counts((BAND,))
    sas = _on_grid(prep, mos1_curve("lc_100_src"))
    differ = np.flatnonzero(src[0] != sas)
    assert differ.tolist() == [9] and src[0][9] == 0 and sas[9] > 0
    np.testing.assert_array_equal(bkg[0][:9], _on_grid(prep, mos1_curve("lc_100_bgd"))[:9])


def test_build_asking_more_than_the_file_holds_warns_once(tmp_path):
    """M1_clean.fits was cut to PI 500:10000, PATTERN <= 12 and two FLAG masks; a screening of
    PI 200:12000, PATTERN <= 12 and no FLAG cut asks for more: one warning per column."""
    wide = Screening(pattern_max=12, flag_zero=False, pi=(200, 12000))
    prep = bin_observation(_job(tmp_path, MOS1_CLEAN, 100.0, None, screening=wide))
    warnings = prep.summary.provenance["warnings"]
    assert len(warnings) == 2
    assert "PI [500:10000]" in warnings[0] and "asks PI [200:12000]" in warnings[0]
    assert "FLAG bits 0x766ba000 set are not in the file" in warnings[1]
    # the file's own cuts (and #XMMEA_EM, whose mask covers both of the file's) ask nothing more
    ok = Screening(pattern_max=4, flag_zero=False, pi=(500, 10000), expression="#XMMEA_EM")
    assert (
        bin_observation(_job(tmp_path, MOS1_CLEAN, 100.0, None, ok)).summary.provenance["warnings"]
        == []
    )


def test_barycentred_pn_list_falls_back_to_live_time(tmp_path):
    """EXPOSU10 of the pn list is in TT while its events are barycentred (TDB): fracexp comes
    from LIVETI10/ONTIME10 and CCD 10's GTI; the PI cut (300:10000) and the 444 events before
    TSTART are reported."""
    reg = tmp_path / "pn.reg"
    reg.write_text(
        "physical\nellipse(22001.65,37288.64,400,200,33)\ncircle(21000,36000,300) # background\n"
    )
    job = ObservationJob(
        obsid="0201160101",
        events=PN,
        regions=parse_regions(reg.read_text(), str(reg)),
        gti_file=None,
        screening=Screening(),
        flare=None,
        time_bin=128.0,
    )
    prep = bin_observation(job)
    prov = prep.summary.provenance
    assert prov["events_compressed"] is True and prov["ccds"] == [10]
    method = prov["fracexp_method"]["10"]
    assert "LIVETI10/ONTIME10 = 0.904115692" in method and "TT/LOCAL" in method
    live = 3.51674138895150e4 / 3.88970285591781e4
    assert prep.binned.fracexp.max() == pytest.approx(live, rel=1e-12)
    assert prep.summary.timesys == "TDB"
    w = prov["warnings"]
    assert len(w) == 2 and "PI [300:10000]" in w[0]
    assert w[1].startswith("444 source and 0 background events")


@pytest.mark.parametrize("case", ["clean-100", "raw-2.604"])
def test_spectra_hold_the_events_evselect_counted(prepared, case, tmp_path):
    """MOS spectra (2400 channels of 5 eV, specchannelmax=11999): their totals are the
    events SAS's evselect curves counted in the regions and GTIs (2456 and 57), whatever the
    time bin; per channel they equal a plain histogram of those events' PI // 5."""
    b = prepared[case].binned
    assert b.channels is not None and b.channels.n_channels == 2400
    assert b.channels.pi_max == 11999
    assert b.spec_src is not None and b.spec_bkg is not None
    assert (int(b.spec_src.sum()), int(b.spec_bkg.sum())) == (2456, 57)
    assert b.spec_src[:100].sum() == 0 and b.spec_src[2001:].sum() == 0  # PI in [500:10000]
    assert b.exposure == pytest.approx(float(b.fracexp.sum()) * b.grid.dt, rel=1e-12)
    part = NativeBackend().spectrum(prepared[case])
    assert part is not None and part.attrs["filter"] == "Thick"
    assert part.attrs["exposure"] == b.exposure and part.attrs["bkg_backscal"] > 0
    if case != "clean-100":
        return
    # independent histogram: the filtered list's events in the circles and in CCD 1's GTI
    job = _job(tmp_path, MOS1_CLEAN, 100.0, None)
    with fits.open(MOS1_CLEAN) as hdul:
        ev = hdul["EVENTS"].data
        t, x, y = (np.asarray(ev[c], np.float64) for c in ("TIME", "X", "Y"))
        pi = np.asarray(ev["PI"], np.int64)
        g = hdul["GTI00004"].data
        starts, stops = np.asarray(g["START"]), np.asarray(g["STOP"])
    in_gti = np.zeros(t.size, bool)
    for a, z in zip(starts, stops, strict=True):
        in_gti |= (t >= a) & (t < z)
    for region, spec in (("in_source", b.spec_src), ("in_background", b.spec_bkg)):
        sel = getattr(job.regions, region)(x, y) & in_gti & (pi >= 500) & (pi <= 10000)
        ref = np.bincount(pi[sel] // 5, minlength=2400)[:2400]
        np.testing.assert_array_equal(spec, ref)
