"""The SAS path of the pile-up check: epatplot's argument lists, its keywords, and the
procedure run through stand-in SAS tasks (they test xlcat's handling, never SAS's numbers:
the stand-in epatplot writes the ratios it is told to)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from pipeline.cli.main import main
from pipeline.extract.sas import environment
from pipeline.pileup.epatplot import epatplot_commands, read_otm
from schemas.errors import SASError

ROOT = Path(__file__).resolve().parents[2]


def test_argument_lists():
    cmds = epatplot_commands("/data/pn.fits", "((X,Y) IN annulus(100,200,60,800)) && (FLAG==0)")
    assert cmds == {
        "evselect (pile-up events)": [
            "evselect",
            "table=/data/pn.fits:EVENTS",
            "withfilteredset=yes",
            "filteredset=pileup_events.fits",
            "destruct=yes",
            "keepfilteroutput=yes",
            "expression=((X,Y) IN annulus(100,200,60,800)) && (FLAG==0)",
        ],
        "epatplot": [
            "epatplot",
            "set=pileup_events.fits",
            "plotfile=pileup_epatplot.pdf",
            "useplotfile=yes",
            "withbackgroundset=no",
            "pileupnumberenergyrange=500 2000",
        ],
    }


def test_reads_the_keywords_of_an_events_header(tmp_path):
    hdu = fits.BinTableHDU.from_columns([fits.Column("PI", "J", array=[1000])], name="EVENTS")
    for key, value in (("SNGL_OTM", 0.962), ("ESGL_OTM", 0.011), ("DBLE_OTM", 1.071)):
        hdu.header[key] = value
    hdu.header["EDBL_OTM"] = 0.018
    path = tmp_path / "filtered.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    s, d = read_otm(fits.getheader(path, "EVENTS"), str(path))
    assert (s.value, s.error, d.value, d.error) == (0.962, 0.011, 1.071, 0.018)
    assert s.deviation() == pytest.approx(-3.4545, abs=1e-4)
    del hdu.header["EDBL_OTM"]
    with pytest.raises(SASError, match=r"x.fits EVENTS header: keyword EDBL_OTM is missing"):
        read_otm(hdu.header, "x.fits")
    hdu.header["EDBL_OTM"] = "nan?"
    with pytest.raises(SASError, match=r"EDBL_OTM is 'nan\?', not a finite number"):
        read_otm(hdu.header, "x.fits")


STANDIN = """#!{python}
import json, os, sys
sys.path.insert(0, {root!r})
task, argv = {task!r}, sys.argv[1:]
a = dict(x.partition("=")[::2] for x in argv)
with open(os.environ["PILEUP_STANDIN_LOG"], "a") as fh:
    fh.write(json.dumps({{"task": task, "argv": argv}}) + "\\n")
if task == "sasversion":
    print("sasversion: stand-in 0.0")
elif task == "evselect":
    from astropy.io import fits
    from tests.helpers.sas_standin_impl import _events, _select
    cols, header = _events(a["table"])
    keep = _select(a["expression"], cols, header)
    with fits.open(a["table"].split(":")[0]) as hdul:
        ev = hdul["EVENTS"]
        out = fits.BinTableHDU(ev.data[keep], header=ev.header, name="EVENTS")
        fits.HDUList([fits.PrimaryHDU(), out]).writeto(a["filteredset"])
elif task == "epatplot":
    from astropy.io import fits
    values = json.loads(os.environ["PILEUP_STANDIN_OTM"])
    counter = os.environ["PILEUP_STANDIN_LOG"] + ".n"
    n = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(n + 1))
    with fits.open(a["set"], mode="update") as hdul:
        h = hdul["EVENTS"].header
        for key, v in zip(("SNGL_OTM", "ESGL_OTM", "DBLE_OTM", "EDBL_OTM"), values[n]):
            h[key] = v
    open(a["plotfile"], "w").write("plot")
"""


@pytest.fixture
def sas(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for task in ("sasversion", "evselect", "epatplot"):
        exe = bin_dir / task
        exe.write_text(STANDIN.format(python=sys.executable, root=str(ROOT), task=task))
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "sas").mkdir()
    (tmp_path / "ccf.cif").write_text("stand-in calibration index")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SAS_DIR", str(tmp_path / "sas"))
    monkeypatch.setenv("SAS_CCF", str(tmp_path / "ccf.cif"))
    monkeypatch.setenv("PILEUP_STANDIN_LOG", str(tmp_path / "calls.jsonl"))
    environment._VERSIONS.clear()
    return tmp_path


def _calls(tmp_path):
    return [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_procedure_through_sas(sas, tmp_path, monkeypatch, capsys):
    """With SAS set up, auto takes epatplot's ratios: piled at 0", clean at 3"."""
    from pipeline.simulate import simulate_observation

    simulate_observation(
        tmp_path, "0000000001", exposure=300.0, source_rate=5.0, mjd=55000.25, seed=1,
        flares=False, ccd_gaps=False, nh_22=0.1,
    )  # fmt: skip
    (tmp_path / "b.toml").write_text(
        'store = "s.zarr"\ntime_bin = 100.0\n[[observations]]\nobsid = "0000000001"\n'
        'events = "0000000001/pn_events.fits"\nregions = "0000000001/ds9.reg"\n'
        '[schemes]\nhard = { unit = "keV", edges = [2, 10] }\n'
    )
    values = [[0.95, 0.01, 1.04, 0.02], [0.99, 0.01, 1.05, 0.02]]
    monkeypatch.setenv("PILEUP_STANDIN_OTM", json.dumps(values))
    assert main(["pileup", str(tmp_path / "b.toml"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "SAS sasversion: stand-in 0.0: expected fractions from epatplot" in out
    assert '-> clean: clean with the core excised: annulus r_in = 3"' in out
    calls = _calls(tmp_path)
    assert [c["task"] for c in calls] == ["sasversion"] + ["evselect", "epatplot"] * 2
    region = [c["argv"][-1] for c in calls if c["task"] == "evselect"]
    source = json.loads((tmp_path / "r.json").read_text())[0]["source"]
    x, y = int(source["x"]), int(source["y"])
    # the pn default screening's #XMMEA_EP goes to SAS as written (SAS reads the header)
    assert region == [
        f"expression=((X,Y) IN circle({x},{y},800)) && (#XMMEA_EP)",
        f"expression=((X,Y) IN annulus({x},{y},60,800)) && (#XMMEA_EP)",
    ]
    assert calls[2]["argv"] == epatplot_commands("x", "y")["epatplot"][1:]
    steps = json.loads((tmp_path / "r.json").read_text())[0]["steps"]
    assert [s["s"]["value"] for s in steps] == [0.95, 0.99]
    assert [s["r_in_px"] for s in steps] == [0.0, 60.0]
    assert [s["piled_sas_rule"] for s in steps] == [True, False]  # s < 1 - 3 sigma at 0"
    assert [s["piled_reference_workflow_rule"] for s in steps] == [False, False]
    assert json.loads((tmp_path / "r.json").read_text())[0]["method"] == "sas"


def test_native_when_sas_is_not_set_up(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SAS_DIR", raising=False)
    build = tmp_path / "b.toml"
    build.write_text("x")
    from pipeline.cli.pileup import _sas_setup
    from schemas.build import parse_build

    config = parse_build(
        'store = "s.zarr"\ntime_bin = 1.0\n[[observations]]\nobsid = "0000000001"\n'
        'events = "e.fits"\nregions = "r.reg"\n[schemes]\nh = { unit = "keV", edges = [2, 10] }\n',
        build,
    )
    assert _sas_setup(config, "auto") == ("native", None)
    assert "SAS not available (SAS is not set up: SAS_DIR is not set" in capsys.readouterr().out
    with pytest.raises(SASError, match="SAS_DIR is not set"):
        _sas_setup(config, "sas")
