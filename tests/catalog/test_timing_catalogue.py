"""Timing analyses wired to the catalogue: segments from the store, stingray parity through
``to_stingray``, products saved and reopened, and the ``xlcat psd`` / ``xlcat lags`` CLI.

The store is built (native backend, threads) from a hand-made event file: three bands of
one red-noise driver, delayed by 0, 20 and 50 s, no background events and no live-time
keywords (fracexp = 1 inside the GTIs), so the stored errors are exactly sqrt(counts)/dt,
the Poisson noise stingray assumes.  The GTIs have one bin-aligned 500 s gap.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import catalog
from catalog.netcdf import decode_attrs, encode_attrs, python_attrs
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
from tests.helpers.processes import run_python

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


def _events(rng: np.random.Generator, gap: tuple[float, float] = GAP) -> EventSet:
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
    keep = ~((t >= T0 + gap[0]) & (t < T0 + gap[1]))
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


def _build_store(d: Path, gap: tuple[float, float]) -> Path:
    (d / "obs").mkdir()
    gti = [(T0, T0 + gap[0]), (T0 + gap[1], T0 + SPAN)]
    write_event_file(
        d / "obs" / "ev.fits",
        _events(np.random.default_rng(2024), gap),
        FileSpec(tstart=T0, tstop=T0 + SPAN, ccd_gtis={4: gti, 5: gti}),
    )
    (d / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (d / "build.toml").write_text(BUILD)
    assert (
        main(["build", str(d / "build.toml"), "--threads", "--workers", "1", "--no-progress"]) == 0
    )
    return d / "timing.zarr"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _build_store(tmp_path_factory.mktemp("timing"), GAP)


#: GTI edges inside 10 s bins: the bins [19990, 20000) and [20500, 20510) s after T0 are
#: exposed 7 s of 10 (fracexp 0.7, kept at min_fracexp=0.6).
ODD_GAP = (19997.0, 20503.0)


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    return _build_store(tmp_path_factory.mktemp("timing_odd"), ODD_GAP)


# ----------------------------------------------------------------------------- segments


@pytest.mark.parametrize(
    ("fill_gaps", "n_filled", "lengths"), [(1000.0, 50, [4000]), (400.0, 0, [2000, 1950])]
)
def test_segments_dataset_equals_make_segments(store, fill_gaps, n_filled, lengths):
    cat = catalog.open(store, attrs="python")
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
    a_attrs = decode_attrs(a.attrs)  # the catalogue's default: netCDF-valid attributes
    assert a_attrs["scheme"] == "3b" and a_attrs["obsids_used"] == [OBSID]
    assert a_attrs["segment_length"] == 2000.0 and a_attrs["n_segments"] == 20


# ----------------------------------------------------------------------------- stingray


@pytest.mark.parametrize(("which", "rebin"), [("even", 1), ("even", 5), ("odd", 1), ("odd", 5)])
def test_stingray_parity_through_to_stingray(store, odd_store, which, rebin):
    """Same segments (stingray's segment_size pieces of the GTIs = our segment_length pieces
    of the continuous stretches) and the same frequency bins: power, cross spectrum, lag,
    lag error and intrinsic coherence of every band against the sum of the other bands agree
    with stingray 1e-6 relative.  "odd": the GTIs start and stop inside bins (fracexp 0.7),
    which xlcat keeps at min_fracexp=0.6 and so must stingray.  Their noise level differs:
    stingray's is Poisson from the mean counts, xlcat's the mean stored error^2, larger in
    the two partly exposed bins; lag error and coherence, which use it, then agree to 5e-3."""
    rtol_noise = 1e-6 if which == "even" else 5e-3
    cat = catalog.open(store if which == "even" else odd_store)
    size = 2000.0
    seg = cat.segments("3b", min_fracexp=0.6, fill_gaps=0.0, min_length=0.0, segment_length=size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # to_stingray itself warns about nothing
        lcs = cat.to_stingray(OBSID, "3b", min_fracexp=0.6)
    assert sorted(lcs) == [0, 1, 2]
    from stingray import AveragedCrossspectrum, AveragedPowerspectrum
    from stingray.gti import time_intervals_from_gtis

    starts, _ = time_intervals_from_gtis(lcs[0].gti, size)
    np.testing.assert_allclose(seg["tstart"].values, starts, rtol=0, atol=1e-6)
    k = seg.sizes["segment"]
    assert k == 19  # 10 pieces before the gap (its partial last bin kept), 9 after
    if which == "odd":
        f = cat.lightcurves(OBSID, "3b").fracexp.values[0]
        t0 = cat.lightcurves(OBSID, "3b").time.values[0] - DT / 2
        np.testing.assert_allclose(f[[1999, 2050]], 0.7)
        np.testing.assert_allclose(lcs[0].gti, t0 + np.array([[0, 2e4], [20500, 4e4]]))
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
            np.testing.assert_allclose(ours.lag_err.values[b, :n][ok], lag_err[ok], rtol=rtol_noise)
            # ours is quoted only > 10 sigma above the noise (stingray: 3)
            good = np.isfinite(coh) & np.isfinite(ours.coherence.values[b, :n])
            assert good.sum() >= 5
            np.testing.assert_allclose(
                ours.coherence.values[b, :n][good], coh[good], rtol=rtol_noise
            )
    # the injected delays (0, 20, 50 s): the hard band lags the others at low frequency
    low = ours["freq"].values < 2e-3
    assert np.all(ours.lag.values[2, low] > 0) and np.all(ours.lag.values[0, low] < 0)


# ----------------------------------------------------------------------------- products


def test_products_saved_and_reopened(store, tmp_path):
    cat = catalog.open(store, attrs="python")
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
    assert json.loads(nc.attrs["input_hash"]) == decode_attrs(api.attrs)["input_hash"]
    # the file follows the catalogue's JSON rule: decode_attrs gives every attribute back
    assert set(nc.attrs["json_attrs"].split()) >= {"input_hash", "obsids"}
    assert decode_attrs(nc.attrs)["obsids"] == decode_attrs(api.attrs)["obsids"]
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
    code = (
        "import sys\n"
        "from pipeline.cli.main import main\n"
        f"argv = ['lags', {str(store)!r}, '--scheme', '3b', '--freq', '1e-3', '4e-3',\n"
        "        '--min-length', '0', '--segment-length', '4000',\n"
        f"        '-o', {str(tmp_path / 'l.nc')!r}]\n"
        "assert main(argv) == 0\n"
        "print('matplotlib' in sys.modules)\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "l.nc").is_file()


# ----------------------------------------------------------------------------- issue 9


def test_cli_lagfreq_table_file_and_plot(store, tmp_path, capsys):
    """5-10 keV (delayed 50 s) against 2-3 keV (not delayed): the table, the file and the
    API agree, and the lag at low frequency is the injected 50 s within its errors."""
    from catalog.timing import lag_frequency

    out, png = tmp_path / "lf.nc", tmp_path / "lf.png"
    common = ["--scheme", "3b", "--min-length", "0", "--segment-length", "2000"]
    argv = ["lagfreq", str(store), *common, "--subject", "5-10", "--reference", "2-3"]
    assert main([*argv, "-o", str(out), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    seg = catalog.open(store).segments("3b", min_length=0.0, segment_length=2000.0)
    api = lag_frequency(seg, [2], [0], taper=True)
    nc = xr.open_dataset(out).load()
    np.testing.assert_allclose(nc.lag, api.lag, rtol=1e-12)
    np.testing.assert_allclose(nc.coherence_err, api.coherence_err, rtol=1e-12)
    assert float(nc.e_lo) == 5.0 and float(nc.ref_e_hi) == 3.0
    rows = _numeric_rows(text, 8)
    assert len(rows) == api.sizes["freq"] >= 8
    for k, row in enumerate(rows):
        assert int(row[3]) == int(api["count"][k])
        np.testing.assert_allclose(
            [np.nan if v == "-" else float(v) for v in row[4:]],
            [float(api[n][k]) for n in ("lag", "lag_err", "coherence", "coherence_err")],
            rtol=1e-3,
        )
    # a coherence left out ('-') is explained in a footnote and flagged in the file
    undefined = nc.coherence_undefined.values
    np.testing.assert_array_equal(undefined, np.isnan(api.coherence.values))
    assert ("outside the high-power regime" in text) == bool(undefined.any())
    low = api.freq.values < 1e-3
    w = 1 / api.lag_err.values[low] ** 2
    mean = float(np.sum(w * api.lag.values[low]) / w.sum())
    assert abs(mean - 50.0) < 3 / np.sqrt(w.sum()), mean
    assert png.read_bytes()[:4] == b"\x89PNG"
    # band indices are the same selection
    assert main(["lagfreq", str(store), *common, "--subject", "2", "--reference", "0"]) == 0
    assert _numeric_rows(capsys.readouterr().out, 8) == rows
    for bad in (["--subject", "1-2", "--reference", "2-3"], ["--subject", "0", "--reference", "0"]):
        assert main(["lagfreq", str(store), *common, *bad]) == 2
    assert "no band" in capsys.readouterr().err


def test_cli_lags_several_frequency_ranges(store, tmp_path, capsys):
    """--freq with five edges: four ranges, each the single-range result; one plot column
    per range and a row per requested panel."""
    from catalog.timing import lag_energy_ranges
    from catalog.timing.plots import plot_lag_energy

    edges = ["5e-4", "1e-3", "2e-3", "3e-3", "4e-3"]
    out, png = tmp_path / "le.nc", tmp_path / "le.png"
    argv = ["lags", str(store), "--scheme", "3b", "--min-length", "0", "--segment-length", "2000"]
    extra = ["--panels", "lag,coherence,covariance", "-o", str(out), "--plot", str(png)]
    assert main([*argv, "--freq", *edges, *extra]) == 0
    text = capsys.readouterr().out
    assert text.count("lag-energy, scheme 3b") == 4
    seg = catalog.open(store).segments("3b", min_length=0.0, segment_length=2000.0)
    nc = xr.open_dataset(out).load()
    assert nc.sizes == {"freq_range": 4, "band": 3}
    np.testing.assert_allclose(nc.f_lo, [5e-4, 1e-3, 2e-3, 3e-3])
    np.testing.assert_allclose(nc.f_hi, [1e-3, 2e-3, 3e-3, 4e-3])
    for i in range(4):
        one = lag_energy(seg, float(edges[i]), float(edges[i + 1]), taper=True)
        np.testing.assert_allclose(nc.lag[i], one.lag, rtol=1e-12)
        np.testing.assert_allclose(nc.coherence[i], one.coherence, rtol=1e-12)
        assert int(nc["count"][i]) == int(one["count"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    ds = lag_energy_ranges(seg, [float(e) for e in edges], taper=True)
    fig = plot_lag_energy(ds, panels=("lag", "coherence"), expected=[0.0, 20.0, 50.0])
    assert len(fig.axes) == 8
    # the expected-lag step is drawn in every lag panel
    assert all(len(a.lines) >= 2 for a in fig.axes[:4])
    with pytest.raises(ConfigError, match="edges"):
        lag_energy_ranges(seg, [1e-3, 1e-3, 2e-3])
    assert main([*argv, "--freq", "1e-3"]) == 2
    assert main([*argv, "--freq", "1e-3", "2e-3", "--panels", "phase"]) == 2


def test_plots_return_figures_and_draw_into_given_axes(store):
    from matplotlib.figure import Figure

    from catalog.plot import plot_lightcurves, robust_scaled
    from catalog.timing.plots import plot_lag_frequency, plot_power_spectrum

    cat = catalog.open(store)
    seg = cat.segments("3b", min_length=0.0, segment_length=2000.0)
    psd = power_spectrum(seg, taper=True)
    fig = plot_power_spectrum(psd, bands=[0, 2])
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) >= 2
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "2-3 keV",
        "5-10 keV",
    ]
    panels = plot_power_spectrum(psd, panels=True)
    assert sum(a.get_visible() for a in panels.axes) == 3
    host = Figure()
    axes = host.subplots(1, 3)
    assert plot_power_spectrum(psd, ax=axes, panels=True) is host
    assert all(a.has_data() for a in axes)
    two = Figure().subplots(2, 1)
    from catalog.timing import lag_frequency

    lag_frequency_ds = lag_frequency(seg, 2, 0)
    lf = plot_lag_frequency(lag_frequency_ds, axes=two)
    assert lf is two[0].get_figure() and two[1].has_data()
    lc = cat.lightcurves(OBSID, "3b")
    one = Figure().subplots(3, 1)
    assert plot_lightcurves(lc, ax=one) is one[0].get_figure()
    # robust scaling: a band with zero mean is scaled by its scatter, not divided by its mean
    rng = np.random.default_rng(5)
    rate = np.vstack([10 + rng.standard_normal(1000), rng.standard_normal(1000) * 1e-3])
    rate[1, 0] = np.nan
    scaled, limit = robust_scaled(rate)
    assert np.isnan(scaled[1, 0]) and np.all(np.isfinite(scaled[:, 1:]))
    np.testing.assert_allclose(np.nanstd(scaled, axis=1), 1.0, atol=0.1)
    assert 2.0 < limit < 3.0
    with pytest.raises(ConfigError, match="axes"):
        plot_lag_frequency(lag_frequency_ds, axes=Figure().subplots(1, 3))


def test_min_length_in_bins(store, capsys):
    """The 19500 s stretch is 1950 bins: '1950b' keeps it, '1951b' drops it (as 19501 s)."""
    cat = catalog.open(store)
    kw = {"fill_gaps": 400.0}
    both = cat.segments("3b", min_length="1950b", **kw)
    assert both["n_bins"].values.tolist() == [2000, 1950]
    assert both.attrs["min_length"] == 19500.0 and both.attrs["min_length_bins"] == 1950
    xr.testing.assert_identical(
        both.drop_attrs(), cat.segments("3b", min_length=19500.0, **kw).drop_attrs()
    )
    assert cat.segments("3b", min_length="1951b", **kw)["n_bins"].values.tolist() == [2000]
    assert cat.segments("3b", min_length="19501s", **kw)["n_bins"].values.tolist() == [2000]
    with pytest.raises(ConfigError, match="bins"):
        cat.segments("3b", min_length="14 ks")
    args = ["psd", str(store), "--scheme", "3b", "--fill-gaps", "400"]
    assert main([*args, "--min-bins", "1951"]) == 0
    assert "1 segments (20.0 ks" in capsys.readouterr().out
    assert main([*args, "--min-length", "1950b"]) == 0
    assert "2 segments (39.5 ks" in capsys.readouterr().out


def test_netcdf_attrs_plain_to_netcdf_round_trip(store, tmp_path):
    """By default (catalog.open(path)) light curves, spectra, segments, products and the
    timing results computed from them save with a plain ``to_netcdf`` and read back
    (decoded by the documented rule, catalog.netcdf) to the data and attributes that
    ``attrs="python"`` gives; the timing layer takes either form and gives the same
    numbers, each result in the form of its input."""
    from catalog.products import jsonable
    from catalog.timing import lag_energy_ranges, lag_frequency
    from catalog.timing.cospectrum import exposure_cospectrum

    py = catalog.open(store, attrs="python")
    nc = catalog.open(store)  # the default: netCDF-valid attributes
    assert nc.attrs_mode == "netcdf" == catalog.open(store, attrs="netcdf").attrs_mode
    lc_py, lc_nc = py.lightcurves(OBSID, "3b"), nc.lightcurves(OBSID, "3b")
    assert isinstance(lc_nc.attrs["gti"], str) and "gti" in lc_nc.attrs["json_attrs"].split()
    assert lc_nc.attrs["dt"] == DT  # numbers stay numbers
    assert lc_py.attrs["gti"] == json.loads(lc_nc.attrs["gti"]) and len(lc_py.attrs["gti"]) == 2
    assert lc_nc.attrs["abscorr"] == "false" and lc_py.attrs["abscorr"] is False
    kw = {"min_length": 0.0, "segment_length": 2000.0}
    seg_py, seg_nc = py.segments("3b", **kw), nc.segments("3b", **kw)
    le = lag_energy(seg_nc, 1e-3, 4e-3, taper=True)
    le_py = lag_energy(seg_py, 1e-3, 4e-3, taper=True)
    assert le_py.attrs["obsids_used"] == [OBSID] and le.attrs["obsids_used"] == f'["{OBSID}"]'
    xr.testing.assert_identical(python_attrs(le), le_py)
    nc.save_product("nc_test", le)  # either form is saved the same way
    py.save_product("py_test", le_py)
    prod_py, prod_nc = py.product("nc_test"), nc.product("nc_test")
    other = py.product("py_test")
    xr.testing.assert_identical(prod_py.drop_attrs(), other.drop_attrs())
    skip = ("product_name", "created")
    assert {k: v for k, v in prod_py.attrs.items() if k not in skip} == {
        k: v for k, v in other.attrs.items() if k not in skip
    }
    # every timing result from the default segments (and light curves) writes too
    results = {
        "le": (le, le_py),
        "ranges": (
            lag_energy_ranges(seg_nc, [1e-3, 2e-3, 4e-3]),
            lag_energy_ranges(seg_py, [1e-3, 2e-3, 4e-3]),
        ),
        "lagfreq": (lag_frequency(seg_nc, 2, 0), lag_frequency(seg_py, 2, 0)),
        "psd": (power_spectrum(seg_nc, taper=True), power_spectrum(seg_py, taper=True)),
        "cross": (cross_spectrum(seg_nc), cross_spectrum(seg_py)),
        "cospec": (
            exposure_cospectrum(lc_nc, lc_nc, 0, segment_length=2000.0),
            exposure_cospectrum(lc_py, lc_py, 0, segment_length=2000.0),
        ),
    }
    spec_py, spec_nc = py.spectrum(OBSID), nc.spectrum(OBSID)
    assert spec_nc.sizes["channel"] == 4096 and "json_attrs" in spec_nc.attrs
    pairs = {
        "lc": (lc_nc, lc_py),
        "spec": (spec_nc, spec_py),
        "seg": (seg_nc, seg_py),
        "prod": (prod_nc, prod_py),
        **results,
    }
    n_json = {}
    for name, (b, a) in pairs.items():
        path = tmp_path / f"{name}.nc"
        b.to_netcdf(path)  # plain xarray
        with xr.open_dataset(path) as f:
            back = python_attrs(f.load())
        xr.testing.assert_allclose(back.drop_attrs(), a.drop_attrs())
        assert jsonable(dict(back.attrs)) == jsonable(dict(a.attrs)), name
        for v in a.variables:
            assert jsonable(dict(back[v].attrs)) == jsonable(dict(a[v].attrs)), (name, v)
        n_json[name] = len(b.attrs["json_attrs"].split())
    assert min(n_json.values()) >= 1  # each had attributes netCDF cannot hold
    assert json.loads(results["cospec"][0].attrs["exposures"]) == ["PN", "PN"]
    for name, a in (("lc", lc_py), ("seg", seg_py), ("le", le_py), ("spec", spec_py)):
        with pytest.raises(TypeError):
            a.to_netcdf(tmp_path / f"python_{name}.nc")  # why the rule exists
    # to_stingray from the netCDF form: the same GTIs
    np.testing.assert_array_equal(
        nc.to_stingray(OBSID, "3b")[0].gti, py.to_stingray(OBSID, "3b")[0].gti
    )
    attrs = {"a": True, "b": None, "c": [1, 2], "d": ["x"], "e": {"k": [1]}, "f": 2.5, "g": []}
    enc = encode_attrs(attrs)
    assert enc["c"] == [1, 2] and enc["f"] == 2.5 and enc["json_attrs"] == "a b d e g"
    assert decode_attrs(enc) == attrs and encode_attrs(enc) == enc
    with pytest.raises(ConfigError, match="attrs"):
        catalog.open(store, attrs="json")


def test_compare_and_select_read_either_form(store):
    """Internal readers decode the default form: compare_groups (abscorr "false" is not
    True), select on energy (energy_scale) and the spectra JSON writer (source_only)."""
    import io

    from catalog.compare import compare_groups
    from catalog.query import select
    from catalog.timing.catalogue import segments_dataset
    from pipeline.cli.spectra import _write_json

    py, nc = catalog.open(store, attrs="python"), catalog.open(store)
    rows = compare_groups(nc.lightcurves(OBSID, "3b"), py.lightcurves(OBSID, "3b"))
    assert len(rows) == 3 and all(r.abscorr_a is False is r.abscorr_b for r in rows)
    assert [r.rms_pull for r in rows] == [0.0, 0.0, 0.0]
    lc = nc.lightcurves(OBSID, "3b")
    assert select(lc, energy=(3.0, 10.0)).pi_lo.values.tolist() == [3000, 5000]
    # segments_dataset straight from the default light curves: netCDF-valid as well
    seg_nc = segments_dataset(nc.query("3b"), min_length=0.0)
    seg_py = segments_dataset(py.query("3b"), min_length=0.0)
    assert "input_hash" in seg_nc.attrs["json_attrs"].split()
    xr.testing.assert_identical(python_attrs(seg_nc), seg_py)
    docs = []
    for cat in (py, nc):
        out = io.StringIO()
        _write_json([cat.spectrum(OBSID)], out)
        docs.append(json.loads(out.getvalue()))
    assert docs[0] == docs[1] and docs[0][0]["bkg"] is not None


def test_export_ogip_lightcurves_read_by_stingray(odd_store, tmp_path, capsys):
    """xlcat export lc: one OGIP light curve per band; stingray's Lightcurve.read(fmt="ogip")
    reads it unchanged: times, bin width, MJDREF, GTIs, and the counts of fully exposed
    bins (stingray divides RATE by FRACEXP again and zeroes bins below its 0.9 limit, so
    the two bins exposed 0.7 come back as 0)."""
    from astropy.io import fits
    from stingray import Lightcurve

    with pytest.raises(SystemExit):  # -o is required
        main(["export", "lc", str(odd_store), "--obsid", OBSID, "--scheme", "3b"])
    args = ["export", "lc", str(odd_store), "--obsid", OBSID, "--scheme", "3b", "-o"]
    assert main([*args, str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.lc"))
    assert [f.name for f in files] == [
        f"{OBSID}_PN_3b_b0_2-3keV.lc",
        f"{OBSID}_PN_3b_b1_3-5keV.lc",
        f"{OBSID}_PN_3b_b2_5-10keV.lc",
    ]
    assert main([*args, str(tmp_path)]) == 2  # exists; --overwrite replaces
    assert "file exists" in capsys.readouterr().err
    # a folder -o names is made (its parent must exist); a file or a missing parent is refused
    assert main([*args, str(tmp_path / "new")]) == 0
    assert len(list((tmp_path / "new").glob("*.lc"))) == 3
    assert main([*args, str(tmp_path / "missing" / "new")]) == 2
    assert main([*args, str(files[0])]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-2].endswith("does not exist; create it first") and "a file, not a folder" in err[-1]
    ds = catalog.open(odd_store, attrs="python").lightcurves(OBSID, "3b")
    gti = np.array(ds.attrs["gti"])
    for b, path in enumerate(files):
        with fits.open(path) as h:
            assert [x.name for x in h] == ["PRIMARY", "RATE", "GTI"]
            hd, d = h["RATE"].header, h["RATE"].data
            assert (hd["TIMEDEL"], hd["TIMEPIXR"], hd["MJDREF"], hd["TIMEUNIT"]) == (
                DT,
                0.5,
                50814.0,
                "s",
            )
            assert hd["HDUCLAS1"] == "LIGHTCURVE" and hd["E_MIN"] == float(ds.e_lo[b])
            for col, var in (("RATE", "rate"), ("ERROR", "error"), ("FRACEXP", "fracexp")):
                np.testing.assert_array_equal(d[col], ds[var].values[b])
            np.testing.assert_array_equal(d["BACKV"], ds.backv.values[b])
            np.testing.assert_array_equal(d["TIME"], ds.time.values)
            np.testing.assert_array_equal(
                np.column_stack([h["GTI"].data["START"], h["GTI"].data["STOP"]]), gti
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # stingray: "FITS light curve handling ..."
            lc = Lightcurve.read(str(path), fmt="ogip")
        assert lc.dt == DT and lc.mjdref == 50814.0
        np.testing.assert_array_equal(lc.time, ds.time.values)
        np.testing.assert_array_equal(lc.gti, gti)
        f = ds.fracexp.values[b]
        full = f == 1.0
        assert full.sum() == 4000 - 50 - 2
        np.testing.assert_allclose(lc.counts[full], ds.rate.values[b][full] * DT, rtol=1e-12)
        np.testing.assert_allclose(lc.counts_err[full], ds.error.values[b][full] * DT)
        np.testing.assert_array_equal(lc.counts[(f > 0) & (f < 0.9)], 0.0)


def test_export_spectra_as_pha_read_and_fitted_with_gammapy(store, tmp_path, capsys):
    """PHA + RMF read back by gammapy (an independent OGIP reader): exact values, errors
    and band edges; a known spectrum written through them is fitted back (chi2, through
    the RMF gammapy reads) within its errors."""
    from astropy.io import fits
    from gammapy.irf import EDispKernel
    from gammapy.maps import RegionNDMap

    from catalog.export import write_ogip_spectrum

    def read(pha, rmf):
        with fits.open(pha) as h:
            v, e, q = (
                RegionNDMap.from_hdulist(h, format="ogip", ogip_column=c)
                for c in ("RATE", "STAT_ERR", "QUALITY")
            )
        kernel = EDispKernel.read(rmf)
        return v, e, q, kernel

    # the CLI on a saved several-range product
    argv = ["lags", str(store), "--scheme", "3b", "--min-length", "0", "--segment-length", "2000"]
    assert main([*argv, "--freq", "1e-3", "2e-3", "4e-3", "--save", "le_export"]) == 0
    exp = ["export", "spectrum", str(store), "--product", "le_export", "-o"]
    assert main([*exp, str(tmp_path / "lag.pha")]) == 2
    assert "choose one" in capsys.readouterr().err
    for q in ("lag", "covariance"):
        pha = tmp_path / f"{q}.pha"
        assert main([*exp, str(pha), "--quantity", q, "--freq-range", "1"]) == 0
        v, e, good, kernel = read(pha, pha.with_suffix(".rmf"))
        le = catalog.open(store).product("le_export").isel(freq_range=1)
        np.testing.assert_array_equal(v.data.ravel(), le[q].values)
        np.testing.assert_array_equal(e.data.ravel(), le[f"{q}_err"].values)
        assert good.data.all()
        np.testing.assert_allclose(v.geom.axes["energy"].edges.to_value("keV"), [2, 3, 5, 10])
        np.testing.assert_allclose(kernel.pdf_matrix, np.eye(3))
    # a known spectrum: model m(E) = a + b ln(E) per keV, integrated over 12 bands, noise
    edges = np.geomspace(0.5, 10.0, 13)
    lo, hi = edges[:-1], edges[1:]

    def integral(e):
        return np.column_stack([e, e * np.log(e) - e])  # antiderivatives of 1 and ln E

    design = integral(hi) - integral(lo)
    truth = np.array([30.0, -12.0])
    sigma = 0.5 + 0.1 * np.arange(12)
    rng = np.random.default_rng(9)
    synth = xr.Dataset(
        {
            "lag": ("band", design @ truth + rng.normal(0, sigma)),
            "lag_err": ("band", sigma),
        },
        coords={"band": np.arange(12), "e_lo": ("band", lo), "e_hi": ("band", hi)},
        attrs={"scheme": "synthetic", "instrument": "PN"},
    )
    pha, rmf = write_ogip_spectrum(synth, "lag", tmp_path / "synth.pha")
    v, e, _, kernel = read(pha, rmf)
    t_edges = kernel.axes["energy_true"].edges.to_value("keV")
    folded = kernel.pdf_matrix.T @ (integral(t_edges[1:]) - integral(t_edges[:-1]))
    y, s = v.data.ravel(), e.data.ravel()
    fit, *_ = np.linalg.lstsq(folded / s[:, None], y / s, rcond=None)
    cov = np.linalg.inv((folded / s[:, None]).T @ (folded / s[:, None]))
    pull = (fit - truth) / np.sqrt(np.diag(cov))
    assert np.all(np.abs(pull) < 3), pull
    assert np.all(np.sqrt(np.diag(cov)) < 0.1 * np.abs(truth))
