"""Real SAS curves imported, and compared with a native build of the same event list.

Files of observation 0001730201 (MOS1) in tests/data/real/ (README there): the filtered
event list ``M1_clean.fits`` and the folder ``lcurve_100_M1_1/`` of evselect curves
(100 s, 2.604 s) and epiclccorr's corrected curve (2.604 s) that SAS made from it.
The native build uses the same circles (``J173442-323451_region.txt``) and a screening
matching the SAS run: the list was cut to ``#XMMEA_EM && PATTERN<=12 && PI in
[500:10000]`` and the curves select only the region, so ``pattern_max = 12``, no FLAG
cut, ``pi = [500, 10000]``, one band ``[500, 10000)`` (no event of the regions has
PI 10000). Counts must then be identical bin for bin, at 100 s and 2.604 s;
fracexp is not compared here (the native exposure does not yet follow the per-CCD
filter GTIs, docs/semantics.md §17.3).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import catalog
from pipeline.build.importer import folder_files, import_folder
from pipeline.cli.main import main
from schemas.errors import ConfigError, InputFileError
from schemas.schemes import scheme_from_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "real" / "xmm_0001730201_mos1"
LC = DATA / "lcurve_100_M1_1"
OBSID = "0001730201"
TSTART = 100529502.824202
NAME = "J173442-323451"
REGIONS = """# the circles of J173442-323451_region.txt, as a ds9 file
physical
circle(24635.6,24158.8,200)
circle(23290.1,27609.7,200) # background
"""


def _build_file(folder: Path, dt: str) -> Path:
    path = folder / f"m1_{dt}.toml"
    path.write_text(
        f'store = "native_{dt}.zarr"\ntime_bin = {dt}\n'
        "[screening]\npattern_max = 12\nflag_zero = false\npi = [500, 10000]\n"
        f'[[observations]]\nobsid = "{OBSID}"\nevents = "{DATA / "M1_clean.fits"}"\n'
        'regions = "m1.reg"\n'
        '[schemes]\nbroad = { unit = "chan", edges = [100, 2000] }\n'
    )
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, tuple[Path, Path, str]]:
    """Per time bin: the native store, the imported store, and import's output."""
    folder = tmp_path_factory.mktemp("mos1")
    (folder / "m1.reg").write_text(REGIONS)
    out = {}
    for dt in ("100", "2.604"):
        build = _build_file(folder, dt)
        assert main(["build", str(build), "--workers", "1", "--threads", "--no-progress"]) == 0
        imported = folder / f"sas_{dt}.zarr"
        args = ["import", str(LC), "--layout", "folder", "--scheme", "broad"]
        args += ["--build", str(build), "--dt", dt, "--store", str(imported)]
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            assert main(args) == 0
        out[dt] = (folder / f"native_{dt}.zarr", imported, text.getvalue())
    return out


@pytest.mark.parametrize(("dt", "n_bins"), [("100", 260), ("2.604", 9949)])
def test_compare_shows_identical_counts(stores, capsys, dt, n_bins):
    native, imported, _ = stores[dt]
    capsys.readouterr()
    code = main(
        ["compare", str(native), str(imported), "--format", "json", "--expect-equal-counts"]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    (row,) = doc["bands"]
    assert (row["backend_a"], row["backend_b"]) == ("native", "sas-import")
    assert row["aligned"] and row["start_offset"] == 0 and row["phase_offset"] == 0
    assert row["count_bins"] == n_bins
    assert (row["src_counts_a"], row["src_counts_b"]) == (2456, 2456)
    assert (row["bkg_counts_a"], row["bkg_counts_b"]) == (57, 57)
    assert row["src_counts_differ"] == row["bkg_counts_differ"] == 0
    assert row["counts_equal"] is True
    # fracexp is reported, not compared: none imported at 100 s (no corrected curve)
    assert (row["fracexp_max_diff"] is None) == (dt == "100")
    # the grids are the same, bin for bin: TSTART of the event list + (k + 1/2) dt
    a = catalog.open(native, attrs="python").lightcurves(OBSID, "broad")
    b = catalog.open(imported, attrs="python").lightcurves(OBSID, "broad")
    np.testing.assert_array_equal(a.time.values, b.time.values)
    np.testing.assert_array_equal(b.time.values, TSTART + (np.arange(n_bins) + 0.5) * float(dt))
    np.testing.assert_array_equal(a.src_counts.values, b.src_counts.values)
    np.testing.assert_array_equal(a.bkg_counts.values, b.bkg_counts.values)


def test_what_the_import_stored(stores):
    ds = catalog.open(stores["2.604"][1], attrs="python").lightcurves(OBSID, "broad")
    assert ds.attrs["backend"] == "sas-import" and ds.attrs["tstart"] == TSTART
    assert ds.attrs["dt"] == 2.604  # evselect's TIMEDEL, not epiclccorr's 2.60399999999948
    prov = ds.attrs["provenance"]
    assert prov["grid"]["rule"].startswith("TSTART of the files")
    assert prov["layout"].startswith("folder: source {name}_lc_{dt}_src.lc")
    assert prov["notes"] == [
        "the curves select PI [500, 10001) (SLCTEXPR: PI in [500:10000]; data subspace: "
        "PI in 500:10000); the scheme's band is [500, 10000): PI 10000 only in the curves' "
        "selection (a closed SAS range against a half-open band)"
    ]
    with fits.open(LC / f"{NAME}_lccorr_2.604.lc") as hdul:
        fracexp = np.array(hdul["RATE"].data["FRACEXP"], dtype=np.float64)
        src_gtis = np.array(hdul["SRC_GTIS"].data.tolist())
    assert ds.attrs["gti"] == src_gtis.tolist() and len(src_gtis) == 11
    regions = ds.attrs["regions"]
    assert regions["path"] == str(LC / f"{NAME}_region.txt")
    assert regions["source_selection"] == "(X,Y) in CIRCLE(24635.6,24158.8,200)"
    assert regions["area_ratio"] == 1.0 and regions["src_area"] == pytest.approx(np.pi * 4e4)
    files = {f["role"]: Path(f["path"]).name for f in ds.attrs["inputs"]["files"]}
    assert files == {
        "corrected": f"{NAME}_lccorr_2.604.lc",
        "source": f"{NAME}_lc_2.604_src.lc",
        "background": f"{NAME}_lc_2.604_bgd.lc",
        "regions": f"{NAME}_region.txt",
    }
    # rate and fracexp from epiclccorr, as written (float32 values)
    np.testing.assert_array_equal(ds.fracexp.values[0], fracexp)
    assert np.isnan(ds.rate.values[0]).sum() == 5351
    # at 100 s there is no corrected curve: counts only
    out100 = stores["100"][2]
    assert f"note: no corrected curve ({NAME}_lccorr_100.lc): counts only" in out100
    ds100 = catalog.open(stores["100"][1]).lightcurves(OBSID, "broad")
    assert np.isnan(ds100.rate.values).all() and np.isnan(ds100.fracexp.values).all()
    assert np.nansum(ds100.src_counts.values) == 2456


def test_folder_files_and_patterns(tmp_path):
    with pytest.raises(InputFileError, match=r"several time bins \(2.604, 100 s\); choose one"):
        folder_files(LC)
    ff = folder_files(LC, dt=100)
    assert (ff.name, ff.dt, ff.token) == (NAME, 100.0, "100")
    assert ff.curves["corrected"] is None and ff.regions == LC / f"{NAME}_region.txt"
    # other names, other patterns
    for p in LC.glob("*2.604*"):
        shutil.copy(
            p,
            tmp_path
            / p.name.replace(f"{NAME}_lc_2.604_", "raw-")
            .replace(f"{NAME}_lccorr_2.604", "corr")
            .replace(".lc", "-2.604.fits"),
        )
    got = sorted(p.name for p in tmp_path.iterdir())
    assert got == ["corr-2.604.fits", "raw-bgd-2.604.fits", "raw-src-2.604.fits"]
    pats = {
        "source": "raw-src-{dt}.fits",
        "background": "raw-bgd-{dt}.fits",
        "corrected": "corr-{dt}.fits",
    }
    ff = folder_files(tmp_path, pats)
    assert ff.dt == 2.604 and ff.regions is None and ff.curves["source"].name == got[2]
    with pytest.raises(ConfigError, match=r"--src-pattern 'src.lc': must hold \{dt\}"):
        folder_files(tmp_path, {"source": "src.lc"})
    with pytest.raises(InputFileError, match="no file named like"):
        folder_files(tmp_path)


def test_band_obsid_and_scheme_checks(tmp_path):
    store = tmp_path / "s.zarr"
    # no scheme given: a one-band scheme from the curves' PI selection
    r = import_folder(LC, store, "pi", dt=2.604)
    assert r.status == "written" and r.obsid == OBSID
    ds = catalog.open(store).lightcurves(OBSID, "pi")
    assert (int(ds.pi_lo[0]), int(ds.pi_hi[0])) == (500, 10001)
    assert import_folder(LC, store, "pi", dt=2.604).status == "up to date"
    two = scheme_from_spec("two", {"unit": "keV", "edges": [0.5, 2, 10]})
    with pytest.raises(ConfigError, match="has 2 bands but the folder holds the curves of one"):
        import_folder(LC, store, "two", scheme=two, dt=2.604)
    hard = scheme_from_spec("hard", {"unit": "keV", "edges": [2, 10]})
    with pytest.raises(InputFileError, match=r"selects PI \[500, 10001\) .* band \[2000, 10000\)"):
        import_folder(LC, store, "hard", scheme=hard, dt=100)
    with pytest.raises(InputFileError, match="OBS_ID is 0001730201 but --obsid is 0123456789"):
        import_folder(LC, store, "pi", obsid="0123456789", dt=100)


def test_cli_errors(tmp_path, capsys):
    base = ["import", str(LC), "--scheme", "x", "--store", str(tmp_path / "s.zarr")]
    assert main([*base, "--layout", "reference"]) == 2
    assert "--layout reference: give the schemes' bands with --build" in capsys.readouterr().err
    assert main([*base, "--src-pattern", "a_{dt}.lc"]) == 2
    assert "--src-pattern: only with --layout folder" in capsys.readouterr().err
    assert main([*base, "--layout", "folder", "--scheme", "y", "--dt", "100"]) == 2
    assert "the folder layout holds one band; give one scheme (got 2)" in capsys.readouterr().err
