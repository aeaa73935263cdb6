"""Lag errors against the scatter of simulated realisations, down to the smallest count the
command line accepts (``MIN_N_EFF`` effective pairs per frequency bin).

Each realisation: K periodic segments of 64 bins of 10 s of two light curves of one red-noise
driver (flat power spectrum up to 0.02 Hz, so one expected cross spectrum per bin), the
subject delayed by 5 s (0.15-0.5 rad in the bins used: little change of phase across a
bin), Poisson counts, analysed with the command line's Hanning taper through
:func:`average_cross_spectra` and :func:`catalog.timing.products.phase_lag` with ``n_eff``.
The realisations are packed as band pairs of one call (subject = band 2r, reference =
band 2r + 1), so 600 of them take about a second.  Compared: the standard deviation of
the phase over realisations against the rms of the quoted errors; with 600 realisations
the standard deviation has its own uncertainty of ~3 % (estimated from the sample
kurtosis), which widens the 10 % tolerance by twice that.
"""

from __future__ import annotations

import numpy as np
import pytest

from catalog.timing import average_cross_spectra
from catalog.timing import products as pr
from catalog.timing.segments import Segment
from pipeline.cli.main import main
from tests.catalog.test_timing_catalogue import store  # noqa: F401  (module fixture)

DT, NSEG, FINE, TAU, N_REAL = 10.0, 64, 8, 5.0, 600


def _realisations(rng, k, m, rate):
    """Averaged cross spectra of N_REAL realisations: K segments, bins k = 3 .. 2 + m."""
    ff = np.fft.rfftfreq(NSEG * FINE, DT / FINE)
    amp = np.where(ff > 0, np.sqrt(1 / (1 + (ff / 0.02) ** 4)), 0.0)
    z = rng.standard_normal((N_REAL, k, ff.size)) + 1j * rng.standard_normal((N_REAL, k, ff.size))
    z *= amp
    ref = np.fft.irfft(z, NSEG * FINE, axis=-1)
    sub = np.fft.irfft(z * np.exp(-2j * np.pi * ff * TAU), NSEG * FINE, axis=-1)
    scale = 0.2 / ref.std()
    ref = (ref * scale).reshape(N_REAL, k, NSEG, FINE).mean(-1)
    sub = (sub * scale).reshape(N_REAL, k, NSEG, FINE).mean(-1)
    counts = np.empty((k, 2 * N_REAL, NSEG))
    counts[:, 0::2] = rng.poisson(rate * np.maximum(1 + sub, 0.0) * DT).transpose(1, 0, 2)
    counts[:, 1::2] = rng.poisson(1.5 * rate * np.maximum(1 + ref, 0.0) * DT).transpose(1, 0, 2)
    segs = [
        Segment(
            time=DT * (np.arange(NSEG) + 0.5 + j * NSEG),
            rate=counts[j] / DT,
            error=np.sqrt(np.maximum(counts[j], 1.0)) / DT,
            filled=np.zeros(NSEG, bool),
            dt=DT,
            start=j * NSEG,
        )
        for j in range(k)
    ]
    w_sub = np.zeros((N_REAL, 2 * N_REAL))
    w_ref = np.zeros_like(w_sub)
    w_sub[np.arange(N_REAL), 2 * np.arange(N_REAL)] = 1.0
    w_ref[np.arange(N_REAL), 2 * np.arange(N_REAL) + 1] = 1.0
    edges = (2.5 + np.array([0.0, m])) / (NSEG * DT)
    return average_cross_spectra(segs, w_sub, w_ref, edges, taper=True)


@pytest.mark.parametrize(
    ("k", "m", "rate", "seed"),
    [
        (8, 1, 8.0, 1),  # n_eff = 8 = MIN_N_EFF, raw coherence ~0.8
        (8, 1, 40.0, 2),  # n_eff = 8, raw coherence ~0.95
        (2, 8, 8.0, 3),  # n_eff = 8.7: 8 adjacent tapered frequencies of 2 segments
        (5, 4, 8.0, 4),  # n_eff = 11.7
        (8, 4, 8.0, 5),  # n_eff = 18.7
    ],
)
def test_phase_error_matches_realisation_scatter(k, m, rate, seed):
    avg = _realisations(np.random.default_rng(seed), k, m, rate)
    n_eff = float(avg.n_eff[0])
    assert n_eff >= pr.MIN_N_EFF
    g2 = pr.raw_coherence(avg.cross, avg.power, avg.ref_power, avg.noise, avg.ref_noise, n_eff)
    assert np.median(g2) > 0.75
    phase, phase_err = pr.phase_lag(
        avg.cross, avg.power, avg.ref_power, avg.noise, avg.ref_noise, n_eff
    )
    phase, phase_err = phase[:, 0], phase_err[:, 0]
    dev = phase - phase.mean()
    scatter = dev.std()
    kurt = np.mean(dev**4) / scatter**4
    sampling = np.sqrt((kurt - 1) / (4 * N_REAL))  # relative uncertainty of the std
    assert sampling < 0.04
    ratio = scatter / np.sqrt(np.mean(phase_err**2))
    print(f"n_eff {n_eff:.2f} scatter/quoted {ratio:.3f} +- {sampling * ratio:.3f}")
    assert abs(ratio - 1) < 0.10 + 2 * sampling, (n_eff, ratio, sampling)
    # the mean phase is the injected delay's, averaged over the bin's (equal-power) members
    f = (3 + np.arange(m)) / (NSEG * DT)
    expected = np.angle(np.sum(np.exp(2j * np.pi * f * TAU)))
    assert abs(phase.mean() - expected) < 4 * scatter / np.sqrt(N_REAL)
    if m > 1:  # the taper's correlations matter: K x M instead of n_eff is > 15 % too small
        _, naive = pr.phase_lag(
            avg.cross, avg.power, avg.ref_power, avg.noise, avg.ref_noise, avg.bins.count
        )
        assert scatter / np.sqrt(np.mean(naive[:, 0] ** 2)) > 1.15


def test_cli_refuses_bins_below_min_n_eff(store, capsys):  # noqa: F811
    """The test store's 40 ks, cut in 2 ks segments, gives 19 segments: the range holding
    only each segment's first frequency (5e-4 Hz) has 19 pairs, n_eff 19 -> accepted with all
    segments, refused (one line naming the options) with segments of 4 ks kept < 8."""
    base = ["lags", str(store), "--scheme", "3b", "--min-length", "0"]
    assert main([*base, "--segment-length", "2000", "--freq", "4e-4", "6e-4"]) == 0
    capsys.readouterr()
    assert main([*base, "--segment-length", "6000", "--freq", "1.5e-4", "2e-4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "n_eff" in err and "--freq" in err and f">= {pr.MIN_N_EFF:g}" in err
    lf = ["lagfreq", str(store), "--scheme", "3b", "--min-length", "0", "--subject", "2"]
    assert main([*lf, "--reference", "0", "--min-per-bin", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--min-per-bin" in err, err
    assert main([*lf, "--reference", "0", "--min-per-bin", "20"]) == 0
