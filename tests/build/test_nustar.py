"""NuSTAR FPMA and FPMB as two exposures of one observation (docs/semantics.md §20).

A simulated observation (pipeline.simulate.nustar: 100 counts/s incident per module, 2.5 ms
dead time per event, 1000 s with a 100 s GTI gap) is built through the command line; its
light curves' exposure is the injected live time, and the FPMA x FPMB cospectrum carries no
dead-time noise while each module's power spectrum sits well below Leahy's 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from catalog.query import Catalog, select
from catalog.timing.cospectrum import average_over, exposure_cospectrum
from pipeline.build.plan import plan_build
from pipeline.cli.main import main
from pipeline.simulate.nustar import dead_time_filter, live_per_row, simulate_nustar
from schemas.build import load_build
from schemas.errors import ConfigError, InputFileError

OBSID = "60001047002"
DT = 1.0 / 32.0


def _build(folder: Path, capsys: pytest.CaptureFixture[str]) -> Catalog:
    argv = ["build", str(folder / "nustar.toml"), "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert "built 2 groups, 0 up to date, 0 failed" in capsys.readouterr().out
    return Catalog(folder / "nustar.zarr")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, Catalog]:
    d = tmp_path_factory.mktemp("nustar")
    assert main(["simulate", str(d), "--mission", "nustar", "--scale", "0.5"]) == 0
    argv = ["build", str(d / "nustar.toml"), "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    truth = json.loads((d / "nustar_truth.json").read_text())
    return d, truth, Catalog(d / "nustar.zarr", attrs="python")


def test_both_modules_are_two_exposures_of_one_observation(built, capsys):
    d, _, cat = built
    capsys.readouterr()
    assert main(["ls", str(d / "nustar.zarr")]) == 0
    first, _, *rows = capsys.readouterr().out.splitlines()
    assert first.endswith("nustar.zarr: 1 observation, 2 exposures, 1 scheme, 4 bands")
    assert [r.split()[:3] for r in rows[:2]] == [[OBSID, "FPMA01", "nu2"], [OBSID, "FPMB01", "nu2"]]
    assert cat.expids(OBSID, "nu2") == ["FPMA01", "FPMB01"]
    ds = cat.lightcurves(OBSID, "nu2", expid="FPMA01")
    # keV edges 3, 10, 79 are NuSTAR channels 35, 210, 1935 (E = 1.6 + 0.04 PI)
    assert ds.pi_lo.values.tolist() == [35, 210] and ds.pi_hi.values.tolist() == [210, 1935]
    assert ds.e_lo.values.tolist() == [3.0, 10.0] and ds.e_hi.values.tolist() == [10.0, 79.0]
    assert ds.attrs["energy_scale"] == {"offset_kev": 1.6, "kev_per_pi": 0.04}
    assert ds.attrs["instrument"] == "FPMA"
    assert ds.attrs["MJDREF"] == pytest.approx(55197.00076601852, abs=1e-12)
    # the energy selection compares keV edges: 3-10 keV is band 0 only
    assert cat.lightcurves(OBSID, "nu2", expid="FPMA01", energy=(3, 10)).pi_lo.values.tolist() == [
        35
    ]
    # the default, netCDF-valid form (energy_scale as JSON text) selects the same way
    default = Catalog(d / "nustar.zarr").lightcurves(OBSID, "nu2", expid="FPMA01")
    assert json.loads(default.attrs["energy_scale"]) == ds.attrs["energy_scale"]
    assert select(default, energy=(3, 10)).pi_lo.values.tolist() == [35]
    prov = ds.attrs["provenance"]
    assert prov["screening"] == "(PATTERN<=12)&&(PI in [0:4095])"
    assert prov["ccd_gtis"]["0"]["sources"] == ["[TSTART, TSTOP]", "GTI"]
    assert "nulccorr's live-time correction" in prov["fracexp_method"]["0"]


def test_counts_are_the_events_in_the_source_circle(built):
    d, truth, cat = built
    for m in truth["modules"]:
        data = fits.getdata(d / m["events_path"], "EVENTS")
        inside = (data["X"] - 500.0) ** 2 + (data["Y"] - 500.0) ** 2 <= 40.0**2
        ds = cat.lightcurves(OBSID, "nu2", expid=m["module"] + "01")
        for band, (lo, hi) in enumerate([(35, 210), (210, 1935)]):
            want = inside & (data["PI"] >= lo) & (data["PI"] < hi)
            assert float(ds.src_counts.values[band].sum()) == want.sum()


def test_exposure_is_the_injected_live_time(built):
    """sum(fracexp dt) equals the simulator's live time inside the GTIs (the dead intervals
    summed exactly) to 1e-9 relative; it is ~20 % below the GTI time, so a curve that ignored
    the hk file's LIVETIME would fail by far."""
    _, truth, cat = built
    for m in truth["modules"]:
        ds = cat.lightcurves(OBSID, "nu2", expid=m["module"] + "01")
        for band in range(2):
            exposure = float(np.sum(ds.fracexp.values[band]) * DT)
            assert exposure == pytest.approx(m["live_time_s"], rel=1e-9)
        assert m["gti_time_s"] == 900.0
        assert 0.70 < m["live_time_s"] / m["gti_time_s"] < 0.85  # 716.37 s and 716.63 s of 900 s
        # the two modules lose different events: their live times differ
    a, b = (m["live_time_s"] for m in truth["modules"])
    assert a != b


def test_spectrum_is_on_nustar_channels_and_sums_to_the_bands(built):
    """The stored spectrum has NuSTAR's 4096 PI channels of 40 eV from 1.6 keV, and each band
    of the scheme is the sum of its channels (3-10 keV = PI 35-210, 10-79 keV = PI 210-1935)."""
    _, _, cat = built
    spec = cat.spectrum(OBSID, "FPMA01")
    assert spec.sizes["channel"] == 4096
    assert float(spec["chan_e_lo"][35]) == pytest.approx(3.0)
    assert float(spec["chan_e_hi"][35]) == pytest.approx(3.04)
    ds = cat.lightcurves(OBSID, "nu2", expid="FPMA01")
    assert list(ds.pi_lo.values) == [35, 210] and list(ds.pi_hi.values) == [210, 1935]
    src = spec["src"].values
    for band, (lo, hi) in enumerate(zip(ds.pi_lo.values, ds.pi_hi.values, strict=True)):
        assert src[lo:hi].sum() == np.nansum(ds.src_counts.values[band])
    assert spec.attrs["exposure"] == pytest.approx(
        float(np.sum(ds.fracexp.values[0]) * DT), rel=1e-12
    )


def test_exported_pha_names_nustar(built, tmp_path):
    d, _, _ = built
    assert main(["export", "pha", str(d / "nustar.zarr"), "--obsid", OBSID, "--expid",
                 "FPMB01", "-o", str(tmp_path)]) == 0  # fmt: skip
    h = fits.getheader(tmp_path / f"{OBSID}_FPMB01_src.pha", "SPECTRUM")
    assert (h["TELESCOP"], h["INSTRUME"], h["DETCHANS"]) == ("NuSTAR", "FPMB", 4096)


def test_pileup_check_skips_nustar_lists(built, capsys):
    d, _, _ = built
    assert main(["pileup", str(d / "nustar.toml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no EPIC (pn, MOS) exposure to check for pile-up" in err[0]


def test_cospectrum_has_no_dead_time_noise(built):
    """Above 4 Hz the source (a 64 s sine) has no power: each module's Leahy power is its
    dead-time-distorted noise level, 1.5 (well below 2, by > 20 sigma), while the cospectrum
    averages to 0 within 3 sigma."""
    _, _, cat = built
    a = cat.lightcurves(OBSID, "nu2", expid="FPMA01")
    b = cat.lightcurves(OBSID, "nu2", expid="FPMB01")
    ds = exposure_cospectrum(a, b, 0, segment_length=64.0)
    assert ds.attrs["n_segments"] == 13 and ds.attrs["exposures"] == ["FPMA01", "FPMB01"]
    co, co_err = average_over(ds, "cospectrum", 4.0)
    assert abs(co) < 3 * co_err and co_err < 0.02
    for name in ("power_a", "power_b"):
        p, p_err = average_over(ds, name, 4.0)
        assert 1.3 < p < 1.7 and (2.0 - p) > 20 * p_err
    # the source's variability is in both: the cospectrum at its 1/64 Hz is far above 0
    low = ds.sel(freq=ds.freq[0])
    assert float(low.cospectrum) > 4 * float(low.cospectrum_err)  # 21.5 +- 4.3


def test_without_dead_time_the_power_is_two(tmp_path, capsys):
    """The control: tau = 0 gives Leahy power 2 within 3 sigma, through the same pipeline."""
    truth = simulate_nustar(tmp_path, duration=800.0, tau=0.0, seed=7)
    assert all(m["n_recorded"] == m["n_incident"] for m in truth.to_dict()["modules"])
    cat = _build(tmp_path, capsys)
    a = cat.lightcurves(OBSID, "nu2", expid="FPMA01")
    b = cat.lightcurves(OBSID, "nu2", expid="FPMB01")
    ds = exposure_cospectrum(a, b, 0, segment_length=64.0)
    for name in ("power_a", "power_b"):
        p, p_err = average_over(ds, name, 4.0)
        assert abs(p - 2.0) < 3 * p_err
    co, co_err = average_over(ds, "cospectrum", 4.0)
    assert abs(co) < 3 * co_err


def test_cospectrum_command(built, capsys):
    d, _, _ = built
    capsys.readouterr()
    argv = ["cospectrum", str(d / "nustar.zarr"), "--obsid", OBSID, "--scheme", "nu2"]
    argv += ["--band", "0", "--exposures", "FPMA", "FPMB", "--high-f", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"cospectrum {OBSID} FPMA01 x FPMB01, scheme nu2 band 0 (3-10 keV)")
    assert out[-1].startswith("mean over f >= 4 Hz: cospectrum ")
    assert main(argv[:8] + ["--exposures", "FPM", "FPMB"]) == 2
    assert "--exposures FPM: several exposures of 60001047002" in capsys.readouterr().err


def test_dead_time_filter_and_live_time_per_row():
    t = np.array([0.0, 0.001, 0.0025, 0.003, 0.9995, 1.5])
    keep = dead_time_filter(t, 0.0025)
    assert keep.tolist() == [True, False, True, False, True, True]
    live = live_per_row(t[keep], 0.0025, np.array([0.0, 1.0]), 1.0)
    # row 0: 0-0.0025, 0.0025-0.005, 0.9995-1.0; row 1: 1.0-1.002, 1.5-1.5025
    assert live.tolist() == pytest.approx([1.0 - 0.0055, 1.0 - 0.0045], abs=1e-12)


# -- the build file: what NuSTAR observations may and may not say -----------------------------
@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("nusim")
    simulate_nustar(d, duration=800.0, seed=3)
    return d


def _with(sim: Path, old: str, new: str, count: int = 1) -> Path:
    text = (sim / "nustar.toml").read_text()
    assert old in text
    path = sim / "variant.toml"
    path.write_text(text.replace(old, new, count))
    return path


def test_own_screening_of_a_nustar_observation_is_refused(sim):
    path = _with(
        sim,
        'regions = "60001047002/src_bkg.reg"',
        'regions = "60001047002/src_bkg.reg"\nscreening = { pattern_max = 4 }',
    )
    with pytest.raises(ConfigError) as err:
        plan_build(load_build(path))
    events = sim / "60001047002/event_cl/nu60001047002A01_cl.evt"
    assert str(err.value) == (
        f"observation {OBSID} ({events}, NuSTAR FPMA): screening is for XMM-Newton EPIC lists; "
        "a NuSTAR cleaned list is screened by nupipeline already: remove this observation's "
        "screening table"
    )


def test_build_wide_flare_is_not_applied_to_nustar(sim):
    path = _with(sim, "[schemes]", "[flare]\nthreshold = 0.4\n\n[schemes]")
    plan = plan_build(load_build(path))
    job = plan.jobs[f"{OBSID}/FPMA01"]
    assert job.flare is None and job.hk_file is not None
    assert "the build-wide flare table (for EPIC lists) is not applied" in job.notes
    assert job.pi_edges == (0, 35, 210, 1935, 4096)


def test_scheme_edges_nustar_cannot_take_are_refused(sim):
    path = _with(sim, "edges = [3, 10, 79]", "edges = [1, 10, 79]")
    with pytest.raises(ConfigError) as err:
        plan_build(load_build(path))
    assert str(err.value) == (
        f"build file {path}: scheme 'nu2' on FPMA: edge 1 keV is below NuSTAR's lowest energy "
        "1.6 keV (PI 0); start the scheme at or above it, or limit the scheme to other "
        "instruments with instruments = [...]"
    )
    path = _with(sim, 'instruments = ["FPMA", "FPMB"]', 'instruments = ["PN"]')
    with pytest.raises(ConfigError, match="edges: PI edges 3000..79000 leave the pn range"):
        load_build(path)
    path = _with(sim, 'instruments = ["FPMA", "FPMB"]', 'instruments = ["FPMC"]')
    with pytest.raises(ConfigError, match="'FPMC' is not an instrument; use PN, M1, M2, FPMA"):
        load_build(path)


def test_the_sas_backend_is_refused_for_nustar(sim):
    path = _with(
        sim, 'instruments = ["FPMA", "FPMB"]', 'instruments = ["FPMA", "FPMB"], backend = "sas"'
    )
    with pytest.raises(ConfigError, match="scheme 'nu2' uses the sas backend, which reads EPIC"):
        plan_build(load_build(path))


def test_a_missing_hk_file_is_refused_and_without_hk_the_keywords_serve(sim):
    path = _with(sim, "A_fpm.hk", "A_fpm.hkx")
    with pytest.raises(InputFileError, match=r"hk file .*nu60001047002A_fpm.hkx does not exist"):
        plan_build(load_build(path))
    path = _with(sim, 'hk = "', '# hk = "', 2)
    plan = plan_build(load_build(path))
    job = plan.jobs[f"{OBSID}/FPMB01"]
    assert job.hk_file is None
    assert any(n.startswith("no hk file: live time from the LIVETIME/ONTIME") for n in job.notes)


def test_init_finds_the_hk_files_beside_the_lists(sim, tmp_path):
    """``xlcat init`` on the simulated folder: both modules listed with their hk files (in
    ``../hk`` of ``event_cl/``), source circles at RA_OBJ/DEC_OBJ, the NuSTAR example scheme."""
    from pipeline.build.scaffold import scaffold_build

    scaffold = scaffold_build(sim / OBSID, tmp_path / "b.toml")
    assert [(e.obsid, e.info.exposure, e.hk) for e in scaffold.entries] == [
        (OBSID, "FPMA01", sim / OBSID / "hk" / f"nu{OBSID}A_fpm.hk"),
        (OBSID, "FPMB01", sim / OBSID / "hk" / f"nu{OBSID}B_fpm.hk"),
    ]
    scaffold.write()
    config = load_build(tmp_path / "b.toml")
    assert [o.hk.resolve() for o in config.observations] == [e.hk for e in scaffold.entries]
    assert config.scheme_options["nustar"].instruments == ("FPMA", "FPMB")
    for e in scaffold.entries:
        assert e.plan.frame == "fk5" and e.plan.source_arcsec == 60.0
        assert e.plan.source_how.startswith("source circle at the target position RA_OBJ/DEC_OBJ")
