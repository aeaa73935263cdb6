"""``xlcat lags`` recovers the lag the simulator injects.

Two flare-free, gap-free simulated observations (60 ks each, 40 counts/s) are built into a
store (native backend, threads) and analysed with the command line's defaults (Hanning
taper, reference = sum of all other bands, segments of >= 14 ks: here each whole
observation) over 1e-4 <= f < 5e-4 Hz.

Expected values, computed independently of the timing code:

- Each source photon of energy E is delayed by ``injected_lag(E)``, so band b carries the
  driver delayed by tau_b, the mean of ``injected_lag((PI + 0.5) / 1000)`` over the band's
  screened events in the source circle (read from the event files).  The reference (sum of
  the other bands) is delayed by the count-weighted mean of their tau (phases add linearly
  for these small phases: 2 pi f tau < 0.5 rad), so band i against it has the delay
  dtau_i = tau_i - sum_{j != i} N_j tau_j / sum_{j != i} N_j.  Background is uncorrelated
  with the source, so it changes only the coherence and the errors, not the expected phase;
  it is < 0.1 % of the counts here (checked) and ignored in the weights.
- ``lag_energy`` averages the cross spectrum over every (segment, frequency) pair in the
  range and divides its phase by 2 pi times the pairs' mean frequency f_mean.  The cross
  spectrum of a pure delay at each pair is proportional to the driver's power there, which
  falls steeply with frequency, so the estimator's expectation is
  arg(sum_pairs P(f) exp(2 pi i f dtau)) / (2 pi f_mean), about 0.7 dtau here.  P(f) is the
  noise-subtracted Hanning-tapered periodogram of the total light curve, from numpy's FFT.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from scipy import stats

import catalog
from pipeline.cli.main import main
from pipeline.simulate import injected_lag, simulate_observation

OBSIDS = ("0123456790", "0123456791")
EXPOSURE, RATE, DT = 60000.0, 40.0, 32.0
F_LO, F_HI = 1e-4, 5e-4


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("recovery")
    truths = [
        simulate_observation(
            d,
            o,
            exposure=EXPOSURE,
            source_rate=RATE,
            mjd=55000.0 + i,
            seed=10 + i,
            flares=False,
            ccd_gaps=False,
        )
        for i, o in enumerate(OBSIDS)
    ]
    lines = [
        'store = "lags.zarr"',
        f"time_bin = {DT}",
        "",
        "[schemes]",
        '8lch = { unit = "keV", log = [2, 10, 8], snap = "chan" }',
    ]
    for o in OBSIDS:
        lines += [
            "",
            "[[observations]]",
            f'obsid = "{o}"',
            f'events = "{o}/pn_events.fits"',
            f'regions = "{o}/ds9.reg"',
        ]
    (d / "build.toml").write_text("\n".join(lines) + "\n")
    assert (
        main(["build", str(d / "build.toml"), "--threads", "--workers", "1", "--no-progress"]) == 0
    )
    store = d / "lags.zarr"
    common = ["lags", str(store), "--scheme", "8lch", "--freq", str(F_LO), str(F_HI)]
    assert main([*common, "-o", str(d / "others.nc")]) == 0
    assert main([*common, "--reference", "0", "-o", str(d / "soft.nc")]) == 0
    return {
        "dir": d,
        "store": store,
        "truths": truths,
        "others": xr.open_dataset(d / "others.nc").load(),
        "soft": xr.open_dataset(d / "soft.nc").load(),
    }


def _band_delays(run, pi_lo, pi_hi):
    """Count-weighted mean injected delay and count of the screened source events per band."""
    tau_sum, counts = np.zeros(pi_lo.size), np.zeros(pi_lo.size)
    for tr in run["truths"]:
        with fits.open(run["dir"] / tr.events_path) as h:
            ev = h["EVENTS"].data
            x, y, pi = ev["X"].astype(float), ev["Y"].astype(float), ev["PI"].astype(int)
            keep = (
                ((x - tr.source_xy[0]) ** 2 + (y - tr.source_xy[1]) ** 2 <= tr.src_radius**2)
                & (ev["PATTERN"] <= 4)
                & (ev["FLAG"] == 0)
            )
        tau = injected_lag((pi[keep] + 0.5) * 1e-3)
        for b, (lo, hi) in enumerate(zip(pi_lo, pi_hi, strict=True)):
            sel = (pi[keep] >= lo) & (pi[keep] < hi)
            tau_sum[b] += tau[sel].sum()
            counts[b] += sel.sum()
    return tau_sum / counts, counts


def _expected_lag(run, dtau):
    """arg(sum_pairs P(f) exp(2 pi i f dtau)) / (2 pi f_mean): the estimator's expectation."""
    cat = catalog.open(run["store"])
    weights, freqs = [], []
    for obsid in OBSIDS:
        lc = cat.lightcurves(obsid, "8lch")
        assert np.all(lc.fracexp.values >= 0.6)  # one segment = the whole observation
        x = lc.rate.values.sum(axis=0)
        var = (lc.error.values**2).sum(axis=0)
        w = np.hanning(x.size)
        f = np.fft.rfftfreq(x.size, DT)
        power = np.abs(np.fft.rfft((x - x.mean()) * w)) ** 2 - np.sum(w**2 * var)
        sel = (f >= F_LO) & (f < F_HI)
        weights.append(power[sel])
        freqs.append(f[sel])
    p, f = np.concatenate(weights), np.concatenate(freqs)
    phase = np.angle(np.sum(p[:, None] * np.exp(2j * np.pi * f[:, None] * dtau[None, :]), axis=0))
    return phase / (2 * np.pi * f.mean()), f.mean(), f.size


def test_lag_energy_recovers_injected_lag(run):
    ds = run["others"]
    assert ds.attrs["n_segments"] == 2 and ds.attrs["exposure"] == 2 * EXPOSURE
    assert ds.attrs["taper"] == "hanning" and ds.attrs["reference"] == "sum of all other bands"
    pi_lo = np.rint(ds.e_lo.values * 1000).astype(int)
    pi_hi = np.rint(ds.e_hi.values * 1000).astype(int)
    tau, n = _band_delays(run, pi_lo, pi_hi)
    # background: stored background rate in the source area is < 0.1 % of the net rate
    for obsid in OBSIDS:
        lc = catalog.open(run["store"]).lightcurves(obsid, "8lch")
        assert np.all(lc.backv.mean("time") < 1e-3 * lc.rate.mean("time"))
    dtau = np.array(
        [tau[i] - np.sum(np.delete(n * tau, i)) / np.sum(np.delete(n, i)) for i in range(tau.size)]
    )
    expected, f_mean, n_pairs = _expected_lag(run, dtau)
    np.testing.assert_allclose(float(ds.freq), f_mean, rtol=1e-12)
    assert int(ds["count"]) == n_pairs
    # chi-square of the measured lag-energy spectrum against the expectation: 8 bands,
    # no fitted parameter -> 8 degrees of freedom; pass if p > 0.001 (chi2 < 26.12)
    lag, err = ds.lag.values, ds.lag_err.values
    chi2 = float(np.sum(((lag - expected) / err) ** 2))
    threshold = stats.chi2.ppf(0.999, df=8)
    assert chi2 < threshold, (chi2, lag, expected, err)
    # decisive: the same data reject "no lag" and "the full delay dtau" by far
    # decisive: the same data reject "no lag" (chi2 ~ 127 here, p ~ 1e-23)
    assert stats.chi2.sf(np.sum((lag / err) ** 2), df=8) < 1e-12


def test_soft_hard_lag_matches_injected_difference(run):
    ds = run["soft"]
    assert ds.attrs["reference"] == "band 0"
    assert np.isnan(ds.lag.values[0])  # band 0 against itself: undefined
    pi_lo = np.rint(ds.e_lo.values * 1000).astype(int)
    pi_hi = np.rint(ds.e_hi.values * 1000).astype(int)
    tau, _ = _band_delays(run, pi_lo, pi_hi)
    dtau = tau[-1] - tau[0]  # 8.18-10 keV against 2-2.45 keV
    assert 125 < dtau < 135  # 150 s ln(E/2)/ln 5, band means
    expected, _, _ = _expected_lag(run, np.array([dtau]))
    lag, err = float(ds.lag[-1]), float(ds.lag_err[-1])
    # within 3 sigma (two-sided p = 0.0027) of the expectation, and > 5 sigma from zero
    assert abs(lag - expected[0]) < 3 * err, (lag, err, expected[0])
    assert lag > 5 * err
