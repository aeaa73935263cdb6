"""``xlcat import`` of a reference-layout folder of SAS light curves, and ``xlcat compare``.

The folder is written here with files laid out as real epiclccorr and evselect output
(tests/helpers/sas_fixtures.py; real files are imported in test_real_mos1_import.py),
in the NGC 5506 study's layout
``<obsid>/pn/lc/<scheme>/lc_<dt:03g>__<i>.fits`` (+ ``__s``, ``__b``), i counted from 1
as aztools ``scripts/xmm_lc.py`` does (``ie + 1``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import catalog
from catalog.compare import compare_stores
from pipeline.build.importer import reference_files
from pipeline.cli.main import main
from schemas.errors import InputFileError
from schemas.schemes import load_preset, scheme_from_spec
from tests.helpers.sas_fixtures import corrected_from_counts, write_corrected, write_raw

T0, DT, N = 250000000.0, 128.0, 9
OBSIDS = ("0201830201", "0201830301")


def _write_scheme(
    root: Path,
    obsid: str,
    scheme: str,
    n_bands: int,
    *,
    dt=DT,
    token=None,
    timepixr=None,
    raw=True,
    seed=0,
    scale=1.0,
    t0=T0,
    base=1,
) -> Path:
    folder = root / obsid / "pn" / "lc" / scheme
    folder.mkdir(parents=True, exist_ok=True)
    token = token or f"{dt:03g}"
    rng = np.random.default_rng(seed)
    for i in range(base, base + n_bands):
        src = rng.integers(0, 200, N).astype(float)
        bkg = rng.integers(0, 50, N).astype(float)
        f = np.where(rng.random(N) < 0.15, 0.0, rng.uniform(0.6, 1.0, N))
        rate, error, backv, backe = corrected_from_counts(src, bkg, dt, f, 0.2, 1.07)
        write_corrected(
            folder / f"lc_{token}__{i}.fits",
            t0,
            dt,
            rate=rate * scale,
            error=error,
            backv=backv,
            backe=backe,
            fracexp=f,
            timepixr=timepixr,
            src_gtis=[[t0, t0 + 300], [t0 + 500, t0 + N * dt]],
        )
        if raw:
            write_raw(folder / f"lc_{token}__{i}__s.fits", src, t0, dt, timepixr=timepixr)
            write_raw(folder / f"lc_{token}__{i}__b.fits", bkg, t0, dt, timepixr=timepixr)
    return folder


def _file_columns(path: Path) -> dict[str, np.ndarray]:
    with fits.open(path) as hdul:
        d, h = hdul["RATE"].data, hdul["RATE"].header
        out = {
            c.lower(): np.asarray(d[c], np.float64)
            for c in ("RATE", "ERROR", "BACKV", "BACKE", "FRACEXP")
        }
        out["time"] = np.asarray(d["TIME"]) + (0.5 - h.get("TIMEPIXR", 0.5)) * h["TIMEDEL"]
    return out


@pytest.mark.parametrize("timepixr", [0.0, 0.5, None])
def test_query_output_equals_the_files(tmp_path, capsys, timepixr):
    root = tmp_path / "lc"
    for k, obsid in enumerate(OBSIDS):
        _write_scheme(root, obsid, "3a", 3, timepixr=timepixr, seed=k)
    store = tmp_path / "imported.zarr"
    assert (
        main(
            [
                "import",
                str(root),
                "--layout",
                "reference",
                "--scheme",
                "3a",
                "--preset",
                "ngc5506",
                "--store",
                str(store),
            ]
        )
        == 0
    )
    assert "imported 2 groups (0 up to date)" in capsys.readouterr().out
    assert main(["query", str(store), "--scheme", "3a", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 * 3 * N
    for obsid in OBSIDS:
        for band in range(3):
            folder = root / obsid / "pn" / "lc" / "3a"
            want = _file_columns(folder / f"lc_128__{band + 1}.fits")
            got = [r for r in rows if r["obsid"] == obsid and int(r["band"]) == band]
            for col in ("rate", "error", "backv", "backe", "fracexp"):
                np.testing.assert_array_equal([float(r[col]) for r in got], want[col])
            np.testing.assert_array_equal([float(r["time"]) for r in got], want["time"])
            with fits.open(folder / f"lc_128__{band + 1}__s.fits") as h:
                counts = np.rint(h["RATE"].data["RATE"] * DT)
            np.testing.assert_array_equal([float(r["src_counts"]) for r in got], counts)
    # the preset's 3a is 2-6-7-10 keV
    assert {(r["band"], r["e_lo"], r["e_hi"]) for r in rows} == {
        ("0", "2", "6"),
        ("1", "6", "7"),
        ("2", "7", "10"),
    }


def test_provenance_backend_and_resume(tmp_path, capsys):
    root = tmp_path / "lc"
    folder = _write_scheme(root, OBSIDS[0], "4a", 4, raw=False)
    store = tmp_path / "s.zarr"
    args = ["import", str(root), "--scheme", "4a", "--preset", "ngc5506", "--store", str(store)]
    assert main(args) == 0
    cat = catalog.open(store)
    prov = cat.provenance(OBSIDS[0], "4a", 2)
    assert prov["backend"] == "sas-import" and prov["abscorr"] is True  # the preset's option
    files = prov["band_record"]["files"]
    path = folder / "lc_128__3.fits"
    assert files["corrected"] == {
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert files["source"] is None
    assert np.isnan(cat.lightcurves(OBSIDS[0], "4a").src_counts.values).all()
    assert prov["gti"] == [[T0, T0 + 300], [T0 + 500, T0 + N * DT]]
    capsys.readouterr()
    assert main(args) == 0
    assert "imported 0 groups (1 up to date)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("dt", "token"),
    [(128.0, "128"), (128, "128"), (1.0, "001"), (0.125, "0.125"), (128.0, "128.0"), (2.5, "2.5")],
)
def test_time_bin_in_file_names(tmp_path, dt, token):
    # Python: f"{128.0:03g}" == f"{128:03g}" == "128", f"{1.0:03g}" == "001"
    if token != "128.0":
        assert f"{dt:03g}" == token
    folder = _write_scheme(tmp_path, OBSIDS[0], "1a", 1, dt=float(dt), token=token, raw=False)
    got_dt, files = reference_files(folder, 1, None)
    assert got_dt == float(dt) and files[0]["corrected"].name == f"lc_{token}__1.fits"
    assert reference_files(folder, 1, dt)[0] == float(dt)


def test_wrong_number_of_files_is_refused(tmp_path, capsys):
    _write_scheme(tmp_path / "lc", OBSIDS[0], "4a", 3)
    code = main(
        [
            "import",
            str(tmp_path / "lc"),
            "--scheme",
            "4a",
            "--preset",
            "ngc5506",
            "--store",
            str(tmp_path / "s.zarr"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "the scheme has 4 bands but there are 3 files lc_128__<i>.fits (i = 1, 2, 3)" in err
    assert not (tmp_path / "s.zarr" / OBSIDS[0]).exists()


def test_several_time_bins_need_dt(tmp_path):
    folder = _write_scheme(tmp_path, OBSIDS[0], "1a", 1)
    _write_scheme(tmp_path, OBSIDS[0], "1a", 1, dt=256.0)
    with pytest.raises(InputFileError, match="several time bins \\(128, 256 s\\); choose one"):
        reference_files(folder, 1, None)
    assert reference_files(folder, 1, 256.0)[0] == 256.0
    with pytest.raises(InputFileError, match="no light curve of time bin 64 s"):
        reference_files(folder, 1, 64.0)


def test_zero_based_indices_and_gaps(tmp_path):
    folder = _write_scheme(tmp_path, OBSIDS[0], "3a", 3, base=0)
    assert [f["corrected"].name for f in reference_files(folder, 3, None)[1]] == [
        "lc_128__0.fits",
        "lc_128__1.fits",
        "lc_128__2.fits",
    ]
    (folder / "lc_128__1.fits").rename(folder / "lc_128__7.fits")
    with pytest.raises(InputFileError, match="band indices of lc_128__<i>.fits are \\[0, 2, 7\\]"):
        reference_files(folder, 3, None)


def test_scheme_from_build_file_and_missing_scheme(tmp_path, capsys):
    _write_scheme(tmp_path / "lc", OBSIDS[0], "mine", 2)
    build = tmp_path / "b.toml"
    build.write_text(
        'store = "x.zarr"\ntime_bin = 128.0\n[[observations]]\nobsid = "0201830201"\n'
        'events = "e.fits"\nregions = "r.reg"\n[schemes]\n'
        'mine = { unit = "keV", edges = [2, 5, 10] }\n'
    )
    store = tmp_path / "s.zarr"
    assert (
        main(
            [
                "import",
                str(tmp_path / "lc"),
                "--scheme",
                "mine",
                "--build",
                str(build),
                "--store",
                str(store),
                "--obsid",
                OBSIDS[0],
            ]
        )
        == 0
    )
    ds = catalog.open(store, attrs="python").lightcurves(OBSIDS[0], "mine")
    assert ds.pi_lo.values.tolist() == [2000, 5000] and ds.attrs["abscorr"] is False
    assert (
        main(
            [
                "import",
                str(tmp_path / "lc"),
                "--scheme",
                "nope",
                "--build",
                str(build),
                "--store",
                str(store),
            ]
        )
        == 2
    )
    assert "--scheme nope: not defined in build file" in capsys.readouterr().err
    assert (
        main(
            [
                "import",
                str(tmp_path / "lc"),
                "--scheme",
                "mine",
                "--build",
                str(build),
                "--store",
                str(store),
                "--obsid",
                OBSIDS[1],
            ]
        )
        == 2
    )
    assert f"observation {OBSIDS[1]} has no folder" in capsys.readouterr().err


# -- compare ----------------------------------------------------------------------------------
def _store(tmp_path: Path, name: str, **kw) -> Path:
    root = tmp_path / f"lc-{name}"
    _write_scheme(root, OBSIDS[0], "3a", 3, **kw)
    store = tmp_path / f"{name}.zarr"
    assert (
        main(["import", str(root), "--scheme", "3a", "--preset", "ngc5506", "--store", str(store)])
        == 0
    )
    return store


def test_compare_ratio_rms_and_offsets(tmp_path, capsys):
    a = _store(tmp_path, "a", seed=1)
    b = _store(tmp_path, "b", seed=1, scale=1.1, t0=T0 + 2 * DT)  # two bins later, rates x1.1
    report = compare_stores(a, b, min_fracexp=0.5)
    ca, cb = catalog.open(a), catalog.open(b)
    for row in report.rows:
        x = ca.lightcurves(OBSIDS[0], "3a").isel(band=row.band)
        y = cb.lightcurves(OBSIDS[0], "3a").isel(band=row.band)
        # brute force: pair bins by equal bin centre (integers here), keep fracexp >= 0.5
        pairs = [
            (i, j)
            for i in range(N)
            for j in range(N)
            if x.time.values[i] == y.time.values[j]
            and x.fracexp.values[i] >= 0.5
            and y.fracexp.values[j] >= 0.5
        ]
        ra = np.array([x.rate.values[i] for i, _ in pairs])
        rb = np.array([y.rate.values[j] for _, j in pairs])
        e = np.array([np.hypot(x.error.values[i], y.error.values[j]) for i, j in pairs])
        assert row.aligned and row.start_offset == 2 * DT and row.phase_offset == 0
        assert row.n_bins == len(pairs) > 0
        assert row.rate_ratio == pytest.approx(rb.mean() / ra.mean(), rel=1e-12)
        assert row.rms_pull == pytest.approx(np.sqrt(np.mean(((rb - ra) / e) ** 2)), rel=1e-12)
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    table = capsys.readouterr().out
    assert "sas-import/sas-import" in table and "ratio_B/A" in table


def test_compare_misaligned_grids_and_missing_groups(tmp_path, capsys):
    a = _store(tmp_path, "a", seed=2)
    b = _store(tmp_path, "b", seed=2, t0=T0 + DT / 4)
    _write_scheme(tmp_path / "lc-a", OBSIDS[1], "3a", 3)
    main(
        [
            "import",
            str(tmp_path / "lc-a"),
            "--scheme",
            "3a",
            "--preset",
            "ngc5506",
            "--store",
            str(a),
        ]
    )
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["only_in_a"] == [[OBSIDS[1], "3a"]] and doc["only_in_b"] == []
    for r in doc["bands"]:
        assert r["aligned"] is False and r["phase_offset"] == pytest.approx(DT / 4)
        assert r["rms_pull"] is None and r["rate_ratio"] == pytest.approx(1.0)
        assert r["note"].startswith("grids do not align")
    capsys.readouterr()
    assert (
        main(
            ["compare", str(a), str(b), "--format", "json", "--obsid", OBSIDS[0], "--scheme", "3a"]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["only_in_a"] == [] and len(doc["bands"]) == 3


def test_preset_schemes_import(tmp_path):
    """Every static preset scheme's band count is what an import of that scheme expects."""
    for name, spec in load_preset("ngc5506").items():
        scheme = scheme_from_spec(name, spec)
        if scheme.is_resolved:
            folder = tmp_path / name
            folder.mkdir()
            for i in range(1, len(scheme.bands) + 1):
                (folder / f"lc_128__{i}.fits").touch()
            assert len(reference_files(folder, len(scheme.bands), 128.0)[1]) == len(scheme.bands)


def test_compare_counts_separately_from_rates(tmp_path, capsys):
    a = _store(tmp_path, "a", seed=3)
    same = _store(tmp_path, "same", seed=3, scale=1.1)  # rates x1.1, the same counts
    other = _store(tmp_path, "other", seed=4)
    capsys.readouterr()
    assert main(["compare", str(a), str(same), "--expect-equal-counts"]) == 0
    assert "cnt_differ" in capsys.readouterr().out
    rows = compare_stores(a, other).rows
    ca, cb = catalog.open(a), catalog.open(other)
    for row in rows:
        x = ca.lightcurves(OBSIDS[0], "3a").isel(band=row.band)
        y = cb.lightcurves(OBSIDS[0], "3a").isel(band=row.band)
        assert row.count_bins == N and not row.counts_equal
        assert row.src_counts_a == x.src_counts.values.sum()
        assert row.bkg_counts_b == y.bkg_counts.values.sum()
        assert row.src_counts_differ == np.sum(x.src_counts.values != y.src_counts.values) > 0
        assert row.fracexp_max_diff == np.max(np.abs(x.fracexp.values - y.fracexp.values))
    capsys.readouterr()
    assert main(["compare", str(a), str(other), "--expect-equal-counts"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert err[0].startswith(f"xlcat: counts: {OBSIDS[0]}/3a band 0: source counts differ in ")
    assert err[0].endswith(f"of {N} bins")


def test_raw_curve_off_the_grid_loses_only_its_counts(tmp_path):
    folder = _write_scheme(tmp_path / "lc", OBSIDS[0], "1a", 1, seed=5)
    write_raw(folder / "lc_128__1__s.fits", np.ones(N), T0 + DT / 3, DT)  # not on the grid
    store = tmp_path / "s.zarr"
    args = ["import", str(tmp_path / "lc"), "--scheme", "1a", "--preset", "ngc5506"]
    assert main([*args, "--store", str(store)]) == 0
    cat = catalog.open(store)
    ds = cat.lightcurves(OBSIDS[0], "1a")
    assert np.isnan(ds.src_counts.values).all() and np.isfinite(ds.bkg_counts.values).all()
    assert ds.attrs["tstart"] == T0 and np.isfinite(ds.rate.values).any()
    how = cat.provenance(OBSIDS[0], "1a", 0)["band_record"]["counts"]
    assert "source: raw curve not on the grid" in how
