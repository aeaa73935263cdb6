"""``xlcat build`` with backend "sas", end to end, through stand-in SAS executables.

The stand-ins (tests/helpers/sas_standin_impl.py) test xlcat's handling of processes --
the graph, failures per group, the summary and exit status, retries of only what
failed, logs kept, provenance stored -- never SAS's numbers. Their evselect really
selects with the expression it is given, so the raw counts must equal the native
backend's; their epiclccorr applies the formulas of docs/semantics.md §6 with a made-up area ratio
(0.25) and absolute correction (x1.1).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import catalog
from catalog import gti as gtilib
from pipeline.build.plan import plan_build
from pipeline.cli.main import main
from pipeline.extract.sas import commands as cmd
from pipeline.extract.sas.lightcurve import TIMEPIXR_ABSENT
from pipeline.simulate import simulate_preset
from schemas.build import load_build
from schemas.energy import Band
from schemas.errors import SASError
from tests.helpers.sas_fixtures import corrected_from_counts
from tests.helpers.sas_standin_impl import C_ABS, RATIO

OBSID = "0201830201"
SCHEMES = """
[schemes]
2a  = { unit = "keV",  edges = [2, 4, 10], abscorr = true }
1ch = { unit = "chan", edges = [400, 2000], abscorr = false }
"""


def _build_file(sim: Path, backend: str, extra: str = "") -> Path:
    text = (sim / "ngc5506.toml").read_text()
    obs = text[text.index("[[observations]]") :]
    path = sim / f"{backend}.toml"
    path.write_text(
        f'store = "{backend}.zarr"\ntime_bin = 128.0\nbackend = "{backend}"\n'
        f"{extra}\n[flare]\nthreshold = 0.7\n{SCHEMES}\n{obs}"
    )
    return path


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    sim = tmp_path_factory.mktemp("sim")
    simulate_preset(sim, scale=0.02, obsids=[OBSID])
    (sim / "ccf.cif").write_text("stand-in calibration index")  # found as ../ccf.cif
    return sim


def _build(path: Path) -> int:
    return main(["build", str(path), "--workers", "1", "--threads", "--no-progress"])


def test_sas_missing_fails_before_anything_is_written(simulated, monkeypatch):
    monkeypatch.delenv("SAS_DIR", raising=False)
    config = load_build(_build_file(simulated, "sas"))
    with pytest.raises(SASError, match="SAS_DIR is not set"):
        plan_build(config)
    assert main(["build", str(config.path), "--no-progress"]) == 2
    assert not config.store.exists()


def test_build_failure_summary_retry_and_provenance(standins, simulated, capsys):
    native = _build_file(simulated, "native")
    assert _build(native) == 0
    sas = _build_file(simulated, "sas")

    # 1. band 4-10 keV of scheme 2a fails: the exposure's group fails (it is written whole)
    standins.rules({"task": "evselect", "match": "PI in [4000:10000)", "action": "fail"})
    assert _build(sas) == 1
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if "FAILED" in ln)
    logs = simulated / ".sas.zarr.sas-logs" / OBSID / "PI4000-10000_abscorr-yes"
    assert line.startswith(
        f"  FAILED {OBSID}/PN: SASError: obsid {OBSID} band 4-10 keV "
        "(PI [4000:10000)): evselect (source) exit status 3"
    )
    assert line.endswith(f"logs kept in {logs}")
    assert "told to fail" in (logs / "commands.log").read_text()
    assert "re-run the same command to retry only the failed groups" in err
    cat = catalog.open(simulated / "sas.zarr")
    assert cat.index.empty

    # 2. the re-run runs SAS only for bands that did not finish: finished ones come from the
    # task cache (a band finishes with its epiclccorr run; the failure may cancel bands not
    # yet started, which run now)
    finished = standins.calls("epiclccorr")
    first_runs = [
        c["argv"][-1] for c in standins.calls("evselect") if "lc__" in " ".join(c["argv"])
    ]
    standins.rules()
    standins.reset_calls()
    assert _build(sas) == 0
    band_runs = [c["argv"][-1] for c in standins.calls("evselect") if "lc__" in " ".join(c["argv"])]
    assert sum("(PI in [4000:10000))" in a for a in band_runs) == 2
    assert len(band_runs) == 2 * (3 - len(finished))  # 3 bands in all, 2 evselect runs each
    ran_before = {a for a in first_runs if "(PI in [4000:10000))" not in a}
    assert len(ran_before) >= 2 * len(finished)
    assert not logs.exists()

    # 3. the groups read like native ones
    nat = catalog.open(simulated / "native.zarr", attrs="python")
    cat = catalog.open(simulated / "sas.zarr", attrs="python")
    assert sorted(cat.index.columns) == sorted(nat.index.columns)
    assert set(cat.index.backend) == {"sas"}
    for scheme, abscorr in (("2a", True), ("1ch", False)):
        a, b = nat.lightcurves(OBSID, scheme), cat.lightcurves(OBSID, scheme)
        assert set(a.data_vars) == set(b.data_vars) and set(a.coords) == set(b.coords)
        assert b.attrs["abscorr"] is abscorr and a.attrs["abscorr"] is False
        np.testing.assert_array_equal(b.time.values, a.time.values)
        np.testing.assert_array_equal(b.pi_lo.values, a.pi_lo.values)
        # the stand-in evselect selected exactly the native events (expression + GTI + grid)
        np.testing.assert_array_equal(b.src_counts.values, a.src_counts.values)
        np.testing.assert_array_equal(b.bkg_counts.values, a.bkg_counts.values)
        assert b.attrs["gti"] == a.attrs["gti"]
        # what the stand-in epiclccorr wrote, read back onto the grid
        dt = b.attrs["dt"]
        edges = b.attrs["tstart"] + dt * np.arange(b.sizes["time"] + 1)
        f = gtilib.overlap_with_bins(b.attrs["gti"], edges) / dt
        np.testing.assert_allclose(b.fracexp.values[0], f.astype(np.float32), rtol=0, atol=0)
        rate, error, backv, _ = corrected_from_counts(
            b.src_counts.values,
            b.bkg_counts.values,
            dt,
            b.fracexp.values,
            RATIO,
            C_ABS if abscorr else 1.0,
        )
        np.testing.assert_allclose(b.rate.values, rate, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(b.error.values, error, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(b.backv.values, backv, rtol=1e-6, equal_nan=True)

    # 4. provenance: per band, the exact commands and logs, decoded
    prov = cat.provenance(OBSID, "2a", 1)
    rec = prov["band_record"]
    assert rec["backend"] == "sas" and rec["abscorr"] is True and rec["cache"] == "miss"
    assert rec["band"] == {"pi_lo": 4000, "pi_hi": 10000}
    names = [c["name"] for c in rec["commands"]]
    assert names == ["evselect (source)", "evselect (background)", "epiclccorr"]
    assert rec["commands"][2]["argv"][-1] == "applyabsolutecorrections=yes"
    assert "epiclccorr (stand-in): done" in rec["commands"][2]["stdout"]
    # the stand-ins write TIME at centres without TIMEPIXR, as real SAS does
    for role in ("corrected", "source", "background"):
        assert rec["outputs"][role]["timepixr"] == 0.5
        assert rec["outputs"][role]["timepixr_source"] == TIMEPIXR_ABSENT
    # band 0 of 2a: from the cache exactly when it finished in the first run
    cache = cat.provenance(OBSID, "2a", 0)["band_record"]["cache"]
    assert cache == ("miss" if any("(PI in [2000:4000))" in a for a in band_runs) else "hit")
    grid = prov["provenance"]["grid"]
    argv = rec["commands"][0]["argv"]
    assert argv[6:10] == [
        "timebinsize=128",
        "withtimeranges=yes",
        f"timemin={grid['timemin']}",
        f"timemax={grid['timemax']}",
    ]
    assert math.isclose(float(grid["timemax"]) - float(grid["timemin"]), 128.0 * grid["n_bins"])
    flare = prov["provenance"]["flare"]
    assert [c["name"] for c in flare["commands"]] == ["evselect (flare curve)", "tabgtigen"]
    assert prov["backend_info"]["sas_version"] == "sasversion:- xlcat-standin 0.0 (not SAS)"
    one = cat.provenance(OBSID, "1ch", 0)["band_record"]
    assert one["commands"][2]["argv"][-1] == "applyabsolutecorrections=no"

    # 5. compare: aligned grids, identical counts; rates differ by the stand-in's choices
    capsys.readouterr()
    assert (
        main(
            [
                "compare",
                str(simulated / "native.zarr"),
                str(simulated / "sas.zarr"),
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [(r["scheme"], r["band"]) for r in doc["bands"]] == [("1ch", 0), ("2a", 0), ("2a", 1)]
    assert all(r["aligned"] and r["phase_offset"] == 0 for r in doc["bands"])


def test_band_of_a_scheme_is_a_command_golden():
    """The argv a build stores is band_commands' (what the golden tests fix)."""
    from pipeline.extract.binning import TimeGrid
    from pipeline.select.regions import parse_regions
    from schemas.build import Screening

    r = parse_regions("physical\ncircle(1,2,3)\ncircle(4,5,6) # background\n", "r")
    got = cmd.band_commands("e.fits", r, Screening(), TimeGrid(0.0, 1.0, 2), Band(1, 2), True)
    assert list(got) == ["evselect (source)", "evselect (background)", "epiclccorr"]
