"""Timing analyses wired to the catalogue: segments from the store, stingray parity through
``to_stingray``, products saved and reopened, and the ``xlcat psd`` / ``xlcat lags`` CLI.

The store is built (native backend, threads) from a hand-made event file: three bands of
one red-noise driver, delayed by 0, 20 and 50 s, no background events and no live-time
keywords (fracexp = 1 inside the GTIs), so the stored errors are exactly sqrt(counts)/dt,
the Poisson noise stingray assumes.  The GTIs have one bin-aligned 500 s gap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import catalog
from catalog.timing import (
    as_segments,
    cross_spectrum,
    freq_bins,
    lag_energy,
    make_segments,
    observation_rng,
    power_spectrum,
    segment_frequencies,
)
from pipeline.cli.main import main
from schemas.errors import ConfigError, StoreError
from tests.helpers.eventfiles import REGION_TEXT, T0, EventSet, FileSpec, write_event_file

OBSID = "0123456789"
DT, SPAN, GAP = 10.0, 40000.0, (20000.0, 20500.0)
BANDS = ((2000, 3000, 12.0, 0.0), (3000, 5000, 9.0, 20.0), (5000, 10000, 6.0, 50.0))
BUILD = f"""
store = "timing.zarr"
time_bin = {DT}

[[observations]]
obsid = "{OBSID}"
events = "obs/ev.fits"
regions = "obs/ds9.reg"

[schemes]
3b = {{ unit = "keV", edges = [2, 3, 5, 10] }}
"""


def _driver(rng: np.random.Generator, n: int) -> np.ndarray:
    """Red noise (PSD bending from f^0 to f^-2 at 2 mHz) on a 1 s grid, mean 1, rms 0.3."""
    f = np.fft.rfftfreq(2 * n, 1.0)[1:]
    amp = np.sqrt(1.0 / (1 + (f / 2e-3) ** 2))
    z = (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size)) * amp
    x = np.fft.irfft(np.concatenate([[0], z]), 2 * n)[:n]
    return np.maximum(1 + 0.3 * (x - x.mean()) / x.std(), 0.0)


def _events(rng: np.random.Generator) -> EventSet:
    pad = 100
    lc = _driver(rng, int(SPAN) + pad)
    parts = []
    for lo, hi, rate, tau in BANDS:
        lam = rate * lc[pad - int(tau) : pad - int(tau) + int(SPAN)]
        n = rng.poisson(lam)
        t = T0 + np.repeat(np.arange(int(SPAN)), n) + rng.random(n.sum())
        parts.append((t, rng.integers(lo, hi, t.size)))
    t = np.concatenate([p[0] for p in parts])
    pi = np.concatenate([p[1] for p in parts])
    keep = ~((t >= T0 + GAP[0]) & (t < T0 + GAP[1]))
    t, pi = t[keep], pi[keep]
    k = t.size
    return EventSet(
        time=t,
        x=np.full(k, 1000, np.int32),
        y=np.full(k, 1000, np.int32),
        pi=pi.astype(np.int16),
        pattern=np.zeros(k, np.uint8),
        flag=np.zeros(k, np.int32),
        ccd=np.full(k, 4, np.uint8),
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("timing")
    (d / "obs").mkdir()
    gti = [(T0, T0 + GAP[0]), (T0 + GAP[1], T0 + SPAN)]
    write_event_file(
        d / "obs" / "ev.fits",
        _events(np.random.default_rng(2024)),
        FileSpec(tstart=T0, tstop=T0 + SPAN, ccd_gtis={4: gti, 5: gti}),
    )
    (d / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (d / "build.toml").write_text(BUILD)
    assert (
        main(["build", str(d / "build.toml"), "--threads", "--workers", "1", "--no-progress"]) == 0
    )
    return d / "timing.zarr"


# ----------------------------------------------------------------------------- segments


@pytest.mark.parametrize(
    ("fill_gaps", "n_filled", "lengths"), [(1000.0, 50, [4000]), (400.0, 0, [2000, 1950])]
)
def test_segments_dataset_equals_make_segments(store, fill_gaps, n_filled, lengths):
    cat = catalog.open(store)
    seg = cat.segments("3b", min_length=0.0, fill_gaps=fill_gaps, seed=3)
    lc = cat.lightcurves(OBSID, "3b")
    ref = make_segments(
        lc.time.values,
        lc.rate.values,
        lc.error.values,
        lc.fracexp.values,
        DT,
        min_length=0.0,
        fill_gaps=fill_gaps,
        rng=observation_rng(3, OBSID),
    )
    assert seg.sizes == {"segment": len(lengths), "band": 3, "time": max(lengths)}
    assert seg["n_bins"].values.tolist() == lengths
    assert seg["filled"].values.sum() == n_filled
    assert list(seg["obsid"].values) == [OBSID] * len(lengths)
    np.testing.assert_array_equal(seg["pi_lo"], [2000, 3000, 5000])
    np.testing.assert_allclose(seg["time"], DT * (np.arange(max(lengths)) + 0.5))
    back = as_segments(seg)
    for s, r, j in zip(back, ref, range(len(ref)), strict=True):
        assert s.tstart == r.tstart == float(seg["tstart"][j]) and s.start == r.start
        np.testing.assert_array_equal(s.time, r.time)
        np.testing.assert_array_equal(s.rate, r.rate)
        np.testing.assert_array_equal(s.error, r.error)
        np.testing.assert_array_equal(s.filled, r.filled)
        # padding: NaN rate/error, filled False beyond n_bins
        assert np.all(np.isnan(seg.rate.values[j, :, s.n :]))
        assert not seg.filled.values[j, s.n :].any()
    assert seg.attrs["input_hash"] == {f"{OBSID}/PN": lc.attrs["input_hash"]}
    assert seg.attrs["scheme_hash"] == lc.attrs["scheme_hash"] and seg.attrs["seed"] == 3


def test_segment_length_cuts_equal_pieces_and_errors(store):
    cat = catalog.open(store)
    seg = cat.segments("3b", min_length=0.0, fill_gaps=0.0, segment_length=5000.0)
    # 20000 s -> 4 pieces, 19500 s -> 3 pieces (remainder dropped)
    assert seg["n_bins"].values.tolist() == [500] * 7
    np.testing.assert_allclose(seg["tstart"][:5], T0 + np.array([0, 5, 10, 15, 20.5]) * 1e3)
    with pytest.raises(ConfigError, match=r"longest: 20000 s in 0123456789.*--min-length"):
        cat.segments("3b", fill_gaps=0.0, min_length=30000.0)
    with pytest.raises(ConfigError, match="not a multiple of the 10 s bin width"):
        cat.segments("3b", segment_length=1005.0)
    with pytest.raises(ConfigError, match="min_fracexp"):
        cat.segments("3b", min_fracexp=1.5)
    with pytest.raises(StoreError, match="no scheme 8lch"):
        cat.segments("8lch")


def test_dataset_input_equals_segment_list(store):
    """The spectral functions take the segments Dataset directly: same numbers as the list,
    band edges from the Dataset and its provenance in the attributes."""
    seg = catalog.open(store).segments("3b", min_length=0.0, segment_length=2000.0)
    a = lag_energy(seg, 1e-3, 5e-3, taper=True)
    b = lag_energy(
        as_segments(seg), 1e-3, 5e-3, taper=True, e_lo=seg.e_lo.values, e_hi=seg.e_hi.values
    )
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    assert a.attrs["scheme"] == "3b" and a.attrs["obsids_used"] == [OBSID]
    assert a.attrs["segment_length"] == 2000.0 and a.attrs["n_segments"] == 20


# ----------------------------------------------------------------------------- stingray


@pytest.mark.parametrize("rebin", [1, 5])
def test_stingray_parity_through_to_stingray(store, rebin):
    """Same segments (stingray's segment_size pieces of the GTIs = our segment_length pieces
    of the continuous stretches) and the same frequency bins: power, cross spectrum, lag,
    lag error and intrinsic coherence of every band against the sum of the other bands agree
    with stingray 1e-6 relative."""
    cat = catalog.open(store)
    size = 2000.0
    seg = cat.segments("3b", min_fracexp=0.6, fill_gaps=0.0, min_length=0.0, segment_length=size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba missing; "only Poisson err_dist" notice
        from stingray import AveragedCrossspectrum, AveragedPowerspectrum
        from stingray.gti import time_intervals_from_gtis

        lcs = cat.to_stingray(OBSID, "3b", min_fracexp=0.6)
    starts, _ = time_intervals_from_gtis(lcs[0].gti, size)
    np.testing.assert_allclose(seg["tstart"].values, starts, rtol=0, atol=1e-6)
    k = seg.sizes["segment"]
    nseg = int(size / DT)
    df = 1 / size
    if rebin == 1:
        bins = freq_bins(segment_frequencies(as_segments(seg)), min_per_bin=1, factor=1.0)
    else:  # stingray's linear rebin: `rebin` frequencies per bin from the first one
        bins = 0.5 * df + rebin * df * np.arange((nseg // 2 - 1) // rebin + 1)
    ours_p = power_spectrum(seg, bins=bins)
    ours = cross_spectrum(seg, bins=bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(3):
            others = [j for j in range(3) if j != b]
            ref = lcs[others[0]] + lcs[others[1]]
            ps = AveragedPowerspectrum(lcs[b], segment_size=size, norm="frac", silent=True)
            cs = AveragedCrossspectrum(
                lcs[b], ref, segment_size=size, norm="frac", power_type="all", silent=True
            )
            assert ps.m == cs.m == k
            if rebin > 1:
                ps, cs = ps.rebin(f=rebin), cs.rebin(f=rebin)
            n = cs.freq.size
            lag, lag_err = cs.time_lag()
            coh, _ = cs.intrinsic_coherence()
            np.testing.assert_allclose(ours["freq"][:n], cs.freq, rtol=1e-12)
            np.testing.assert_array_equal(ours["count"][:n], np.broadcast_to(cs.m, n))
            np.testing.assert_allclose(ours_p.power[b, :n], ps.power, rtol=1e-6)
            np.testing.assert_allclose(
                (ours.cross_re + 1j * ours.cross_im)[b, :n], cs.power, rtol=1e-6
            )
            np.testing.assert_allclose(ours.lag[b, :n], lag, rtol=1e-6)
            ok = np.isfinite(lag_err) & (lag_err * 2 * np.pi * cs.freq < np.pi)
            assert ok.sum() >= 10
            np.testing.assert_allclose(ours.lag_err.values[b, :n][ok], lag_err[ok], rtol=1e-6)
            good = np.isfinite(coh)
            assert good.sum() >= 10
            np.testing.assert_allclose(ours.coherence.values[b, :n][good], coh[good], rtol=1e-6)
    # the injected delays (0, 20, 50 s): the hard band lags the others at low frequency
    low = ours["freq"].values < 2e-3
    assert np.all(ours.lag.values[2, low] > 0) and np.all(ours.lag.values[0, low] < 0)


# ----------------------------------------------------------------------------- products


def test_products_saved_and_reopened(store, tmp_path):
    cat = catalog.open(store)
    seg = cat.segments("3b", min_length=0.0, segment_length=4000.0)
    le = lag_energy(seg, 1e-3, 4e-3, taper=True)
    psd = power_spectrum(seg, taper=True)
    cat.save_product("le_test", le)
    cat.save_product("psd_test", psd)
    cat.save_product("seg_test", seg)
    for name, ds in (("le_test", le), ("psd_test", psd), ("seg_test", seg)):
        back = cat.product(name)
        xr.testing.assert_equal(back, ds)
        for key, value in ds.attrs.items():
            assert back.attrs[key] == value, key
        assert back.attrs["product_name"] == name and back.attrs["format"] == "xlcat-product"
    assert cat.store.products() == ["le_test", "psd_test", "seg_test"]
    assert sorted(s for s in (p.name for p in store.iterdir())) == [OBSID, "products", "zarr.json"]
    assert list(cat.store.groups()) == [(OBSID, "PN")]  # products are not groups
    table = cat.products
    assert table.inputs.tolist() == ["current"] * 3
    assert table.set_index("name").loc["le_test", "product"] == "lag-energy"
    with pytest.raises(StoreError, match="exists"):
        cat.save_product("le_test", le)
    cat.save_product("le_test", psd, overwrite=True)
    assert cat.product("le_test").attrs["product"] == "power spectrum"
    with pytest.raises(StoreError, match="invalid"):
        cat.save_product("../escape", le)
    with pytest.raises(StoreError, match="no product 'nope'"):
        cat.product("nope")
    assert not (store.parent / f".{store.name}.staging").exists()


# ----------------------------------------------------------------------------- CLI


def _numeric_rows(text: str, n_fields: int) -> list[list[str]]:
    """Table rows: lines of exactly ``n_fields`` numbers ('-' for an undefined value)."""

    def number(v: str) -> bool:
        try:
            float(v)
        except ValueError:
            return v == "-"
        return True

    return [
        ln.split()
        for ln in text.splitlines()
        if len(ln.split()) == n_fields and all(number(v) for v in ln.split())
    ]


def test_cli_lags_table_file_plot_and_save(store, tmp_path, capsys):
    out, png = tmp_path / "lags.nc", tmp_path / "lags.png"
    args = [
        "lags",
        str(store),
        "--scheme",
        "3b",
        "--freq",
        "1e-3",
        "4e-3",
        "--min-length",
        "0",
        "--segment-length",
        "4000",
        "-o",
        str(out),
        "--plot",
        str(png),
        "--save",
        "cli_lags",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    nc = xr.open_dataset(out).load()
    seg = catalog.open(store).segments("3b", min_length=0.0, segment_length=4000.0)
    api = lag_energy(seg, 1e-3, 4e-3, taper=True)  # the CLI's default: Hanning
    np.testing.assert_allclose(nc.lag, api.lag, rtol=1e-12)
    np.testing.assert_allclose(nc.covariance_err, api.covariance_err, rtol=1e-12)
    assert nc.attrs["taper"] == "hanning"
    assert json.loads(nc.attrs["input_hash"]) == api.attrs["input_hash"]
    rows = _numeric_rows(text, 11)
    assert len(rows) == 3
    for b, row in enumerate(rows):
        assert float(row[1]) == float(api.e_lo[b]) and float(row[2]) == float(api.e_hi[b])
        vals = [float(v) for v in row[3:]]
        exp = [
            float(api[n][b])
            for n in (
                "lag",
                "lag_err",
                "coherence",
                "coherence_err",
                "rms",
                "rms_err",
                "covariance",
                "covariance_err",
            )
        ]
        np.testing.assert_allclose(vals, exp, rtol=1e-3)  # printed to 4 digits
    assert png.stat().st_size > 10000 and png.read_bytes()[:4] == b"\x89PNG"
    saved = catalog.open(store).product("cli_lags")
    np.testing.assert_allclose(saved.lag, api.lag, rtol=1e-12)
    assert (
        main(
            [
                "lags",
                str(store),
                "--scheme",
                "3b",
                "--freq",
                "1e-3",
                "4e-3",
                "--min-length",
                "0",
                "--no-taper",
                "--reference",
                "0",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "taper none" in text and "reference: band 0" in text
    assert main(["products", str(store)]) == 0
    assert "cli_lags" in capsys.readouterr().out


def test_cli_psd_table_and_plot(store, tmp_path, capsys):
    png, zarr_out = tmp_path / "psd.png", tmp_path / "psd.zarr"
    assert (
        main(
            [
                "psd",
                str(store),
                "--scheme",
                "3b",
                "--min-length",
                "0",
                "--segment-length",
                "4000",
                "--min-per-bin",
                "10",
                "--plot",
                str(png),
                "-o",
                str(zarr_out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    seg = catalog.open(store).segments("3b", min_length=0.0, segment_length=4000.0)
    api = power_spectrum(seg, min_per_bin=10, taper=True)
    back = xr.open_zarr(zarr_out, consolidated=False).load()
    np.testing.assert_allclose(back.power, api.power, rtol=1e-12)
    assert text.count("band ") == 3 and "mean rate" in text
    rows = _numeric_rows(text, 9)
    assert len(rows) == 3 * api.sizes["freq"]
    np.testing.assert_allclose(
        [float(v) for v in rows[0][4:6]],
        [float(api.power[0, 0]), float(api.power_err[0, 0])],
        rtol=1e-3,
    )
    assert png.stat().st_size > 10000


def test_cli_lags_reference_range_names_its_bands_and_nyquist(store, capsys):
    """--reference 2.2-5 prints the bands it used (3-5 keV only); --freq above Nyquist."""
    base = ["lags", str(store), "--scheme", "3b", "--min-length", "0"]
    assert main([*base, "--freq", "1e-3", "4e-3", "--reference", "2.2-5"]) == 0
    out = capsys.readouterr().out
    assert "reference --reference 2.2-5 keV: bands 1 (3-5 keV)\n" in out
    assert main([*base, "--freq", "1e-3", "0.2"]) == 0  # 10 s bins: Nyquist 0.05 Hz
    assert "above the Nyquist frequency 0.05 Hz of the 10 s bins" in capsys.readouterr().err
    assert main([*base, "--freq", "0.06", "0.2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "above the Nyquist frequency 0.05 Hz" in err


def test_cli_save_of_an_existing_product_fails_before_writing(store, tmp_path, capsys):
    """--save NAME of a saved product: refused before the .nc and .png, naming --overwrite."""
    base = ["lags", str(store), "--scheme", "3b", "--freq", "1e-3", "4e-3", "--min-length", "0"]
    assert main([*base, "--save", "twice"]) == 0
    capsys.readouterr()
    out, png = tmp_path / "again.nc", tmp_path / "again.png"
    assert main([*base, "--save", "twice", "-o", str(out), "--plot", str(png)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--save twice" in err and "add --overwrite" in err, err
    assert not out.exists() and not png.exists()
    assert main([*base, "--save", "twice", "--overwrite", "-o", str(out)]) == 0
    assert out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--freq", "5e-3", "1e-3"], "use 0 <= f_lo < f_hi"),
        (["--freq", "1e-3", "4e-3", "--save", "x\n"], "product name 'x\\n' is invalid"),
        (["--freq", "1e-3", "4e-3", "--save", "zarr.json"], "product name 'zarr.json'"),
        (["--freq", "1e-6", "2e-6"], "holds no Fourier frequency"),
        (["--freq", "1e-3", "4e-3", "--reference", "soft"], "--reference 'soft'"),
        (["--freq", "1e-3", "4e-3", "--reference", "7"], "band 7 does not exist"),
        (["--freq", "1e-3", "4e-3", "--overlap", "9"], "overlap = 9"),
        (
            ["--freq", "1e-3", "4e-3", "--min-length", "30000", "--fill-gaps", "0"],
            "longest: 20000 s in 0123456789",
        ),
        (["--freq", "1e-3", "4e-3", "--segment-length", "1234"], "not a multiple"),
        (["--freq", "1e-3", "4e-3", "--plot", "x.xyz"], "unknown image type"),
        (["--freq", "1e-3", "4e-3", "-o", "x.txt"], "use a .nc"),
        (["--freq", "1e-3", "4e-3", "--save", "a/b"], "product name 'a/b' is invalid"),
        (["--freq", "1e-3", "4e-3", "--obsid", "0999999999"], "no light curves for obsid"),
    ],
)
def test_cli_bad_options_one_line_exit_2(store, tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(["lags", str(store), "--scheme", "3b", "--min-length", "0", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xlcat: error: ") and message in err, err


def test_cli_psd_unknown_scheme_and_missing_store(store, tmp_path, capsys):
    assert main(["psd", str(store), "--scheme", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no scheme nope" in err
    assert main(["products", str(tmp_path / "none.zarr")]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_lags_without_plot_imports_no_matplotlib(store, tmp_path):
    """matplotlib (a second of imports) is loaded only when --plot asks for a figure."""
    root = Path(__file__).resolve().parents[2]
    code = (
        "import sys\n"
        "from pipeline.cli.main import main\n"
        f"argv = ['lags', {str(store)!r}, '--scheme', '3b', '--freq', '1e-3', '4e-3',\n"
        "        '--min-length', '0', '--segment-length', '4000',\n"
        f"        '-o', {str(tmp_path / 'l.nc')!r}]\n"
        "assert main(argv) == 0\n"
        "print('matplotlib' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "l.nc").is_file()
