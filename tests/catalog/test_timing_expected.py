"""The simulator's expected lag-energy spectrum, and ``xlcat lags --expected`` drawing it."""

from __future__ import annotations

import numpy as np
import xarray as xr

import catalog
from catalog.timing import band_selection, fourier_frequencies
from catalog.timing.plots import plot_lag_energy
from pipeline.cli.main import main
from pipeline.simulate import expected_lag_energy, injected_lag
from pipeline.simulate.model import spectra
from tests.catalog.test_timing_catalogue import store  # noqa: F401  (module fixture)


def test_single_channel_bands_give_the_delay_difference():
    """One PI per band: a pure delay difference; at one frequency the lag is that delay."""
    pi_lo, pi_hi = np.array([2500, 9000]), np.array([2501, 9001])
    sub, ref = np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0, 1]])
    f = np.array([1e-4, 1e-4, 2e-4, 4.5e-4])
    lag = expected_lag_energy(pi_lo, pi_hi, sub, ref, f, 128.0)
    tau = injected_lag((np.array([9000, 2500]) + 0.5) * 1e-3)
    dtau = tau[0] - tau[1]
    # the pairs' cross spectra P(f) exp(2 pi i f dtau), P the driver's bending power law
    # (f^-1 below 3e-4 Hz, f^-2.5 above) times sinc^2(f dt), summed; phase / (2 pi f_mean)
    power = f**-1.0 / (1 + (f / 3e-4) ** 1.5) * np.sinc(f * 128.0) ** 2
    want = np.angle(np.sum(power * np.exp(2j * np.pi * f * dtau))) / (2 * np.pi * f.mean())
    np.testing.assert_allclose(lag, [want, -want], rtol=1e-12)
    assert 0.5 * dtau < want < 0.7 * dtau  # low frequencies dominate: below the delay
    one = expected_lag_energy(pi_lo, pi_hi, sub, ref, [3e-4], 128.0)
    np.testing.assert_allclose(one, [tau[0] - tau[1], tau[1] - tau[0]], rtol=1e-12)


def test_low_frequency_limit_is_the_count_weighted_delay_difference():
    pi_lo, pi_hi = np.array([2000, 4000, 7000]), np.array([4000, 7000, 10000])
    sub, ref = band_selection(3)  # each band against the sum of the other two
    lag = expected_lag_energy(pi_lo, pi_hi, sub, ref, [1e-7], 1.0)
    pi = np.arange(2000, 10000)
    p = spectra()["src_p"][pi - 200]
    tau = injected_lag((pi + 0.5) * 1e-3)
    band = np.searchsorted(pi_hi, pi, side="right")
    n = np.array([p[band == b].sum() for b in range(3)])
    t = np.array([(p * tau)[band == b].sum() for b in range(3)]) / n
    want = [t[b] - np.sum(np.delete(n * t, b)) / np.sum(np.delete(n, b)) for b in range(3)]
    np.testing.assert_allclose(lag, want, rtol=1e-4)
    assert np.isnan(expected_lag_energy(pi_lo, pi_hi, sub, 0 * ref, [1e-4], 1.0)).all()


def test_cli_expected_lag_is_the_model_and_is_drawn(store, tmp_path, capsys):  # noqa: F811
    out, png = tmp_path / "le.nc", tmp_path / "le.png"
    argv = ["lags", str(store), "--scheme", "3b", "--min-length", "0", "--segment-length", "2000"]
    edges = [4e-4, 1.2e-3, 3e-3]
    assert main([*argv, "--freq", *map(str, edges), "--expected", "-o", str(out)]) == 0
    assert main([*argv, "--freq", *map(str, edges), "--expected", "--plot", str(png)]) == 0
    assert png.stat().st_size > 0 and "expected lag" in capsys.readouterr().out
    ds = xr.open_dataset(out).load()
    seg = catalog.open(store).segments("3b", min_length=0.0, segment_length=2000.0)
    pooled = np.concatenate([fourier_frequencies(int(n), 10.0) for n in seg.n_bins.values])
    sub, ref = band_selection(3)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        f = pooled[(pooled >= lo) & (pooled < hi)]
        assert f.size == int(ds["count"][i])
        want = expected_lag_energy(seg.pi_lo.values, seg.pi_hi.values, sub, ref, f, 10.0)
        np.testing.assert_allclose(ds.lag_expected.values[i], want, rtol=1e-12)
    fig = plot_lag_energy(ds, expected=ds.lag_expected.values)
    for i, ax in enumerate(fig.axes):
        (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "expected"]
        np.testing.assert_allclose(line.get_ydata()[:-1], ds.lag_expected.values[i], rtol=1e-12)
        np.testing.assert_allclose(line.get_xdata(), [2.0, 3.0, 5.0, 10.0])
