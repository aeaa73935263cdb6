"""Shared pieces of the timing products' Datasets (internal to :mod:`catalog.timing`).

The product functions of :mod:`catalog.timing.spectra` (power and cross spectra) and
:mod:`catalog.timing.lags` (lag-frequency, lag-energy) build their results from the
same parts: the frequency bins, the derived cross-spectral quantities with their
errors (formulas of :mod:`catalog.timing.products`), units, coordinates and the
attributes that record normalisation, taper and binning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from catalog.timing import products as pr
from catalog.timing.fourier import (
    CrossAverages,
    FrequencyBins,
    freq_bins,
    segment_frequencies,
)
from catalog.timing.segments import Segment

__all__ = [
    "COHERENCE_UNDEFINED",
    "LAG_ERR_UNCALIBRATED",
    "LAG_SIGN",
    "NORM",
    "UNITS",
    "cross_quantities",
    "describe_obsids",
    "freq_coords",
    "frequency_bins",
    "result_attrs",
    "result_dataset",
]


def describe_obsids(obsids: Sequence[str], limit: int = 4) -> str:
    """``"a, b, c"`` for up to ``limit`` obsids, else ``"n observations (first ... last)"``."""
    obsids = list(obsids)
    if len(obsids) <= limit:
        return ", ".join(obsids)
    return f"{len(obsids)} observations ({obsids[0]} ... {obsids[-1]})"


LAG_SIGN = "positive: the band lags (arrives after) the reference"
NORM = (
    "rms (Miyamoto et al. 1991): segment- and bin-averaged absolute power divided by "
    "the pooled mean rate squared"
)


def frequency_bins(
    segments: Sequence[Segment],
    bins: FrequencyBins | ArrayLike | None,
    min_per_bin: int,
    factor: float,
) -> FrequencyBins:
    """``bins`` as given, or edges made into bins, or log bins by :func:`freq_bins`."""
    if isinstance(bins, FrequencyBins):
        return bins
    return freq_bins(
        segment_frequencies(segments), min_per_bin=min_per_bin, factor=factor, edges=bins
    )


def result_attrs(
    avg: CrossAverages,
    segments: Sequence[Segment],
    binning: tuple[FrequencyBins | ArrayLike | None, int, float],
    **extra: object,
) -> dict[str, object]:
    """Attributes of a product: normalisation, taper, segments, binning and ``extra``."""
    bins, min_per_bin, factor = binning
    if bins is None:
        extra.update(min_per_bin=int(min_per_bin), factor=float(factor))
    attrs: dict[str, object] = {
        "norm": NORM,
        "taper": "hanning" if avg.taper else "none",
        "n_segments": int(avg.n_segments),
        "dt": float(avg.dt),
        "exposure": float(sum(s.length for s in segments)),
        "frequencies": "positive Fourier frequencies, 0 and Nyquist excluded",
    }
    attrs.update({k: v for k, v in extra.items() if v is not None})
    return attrs


def cross_quantities(avg: CrossAverages, keep: NDArray[np.bool_]) -> dict[str, NDArray[Any]]:
    """Derived cross-spectral quantities; rows with an empty reference are NaN.

    ``coherence_undefined`` (bool) marks bins with pairs whose coherence is NaN: outside
    the 'high power' regime of Vaughan & Nowak (1997) (see
    :func:`catalog.timing.products.intrinsic_coherence`).
    """
    fb = avg.bins
    m, width = avg.n_eff[None, :], fb.width[None, :]
    ps, ns, prf, nr, c = avg.power, avg.noise, avg.ref_power, avg.ref_noise, avg.cross
    mu_ref = avg.ref_mean_rate
    # the callers average with a reference, which sets every reference product
    assert prf is not None and nr is not None and c is not None and mu_ref is not None
    phase, phase_err = pr.phase_lag(c, ps, prf, ns, nr, m)
    lag, lag_err = pr.time_lag(phase, phase_err, fb.centre[None, :])
    coh, coh_err = pr.intrinsic_coherence(c, ps, prf, ns, nr, m)
    rms, rms_err = pr.rms_amplitude(ps, ns, width, m)
    cov, cov_err = pr.covariance(c, ps, prf, ns, nr, width, m)
    mu_s, mu_r = avg.mean_rate[:, None], mu_ref[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "power": ps / mu_s**2,
            "power_err": pr.power_error(ps, m) / mu_s**2,
            "noise": ns / mu_s**2,
            "ref_power": prf / mu_r**2,
            "ref_noise": nr / mu_r**2,
            "cross_re": c.real / (mu_s * mu_r),
            "cross_im": c.imag / (mu_s * mu_r),
            "phase": phase,
            "phase_err": phase_err,
            "lag": lag,
            "lag_err": lag_err,
            "coherence": coh,
            "coherence_err": coh_err,
            "rms": rms,
            "rms_err": rms_err,
            "covariance": cov,
            "covariance_err": cov_err,
        }
    for key, val in out.items():
        out[key] = np.where(keep[:, None], val, np.nan)
    # bins with pairs and a reference but no coherence quoted: outside the high-power regime
    out["coherence_undefined"] = keep[:, None] & (m > 0) & ~np.isfinite(out["coherence"])
    # lag errors outside the range the calibration covers (low coherence at few pairs)
    raw = pr.raw_coherence(c, ps, prf, ns, nr, m)
    out["lag_err_uncalibrated"] = (
        keep[:, None] & (m > 0) & np.isfinite(out["lag"]) & ~pr.lag_error_calibrated(raw, m)
    )
    return out


#: Meaning of the ``coherence_undefined`` flag of lag products.
COHERENCE_UNDEFINED = (
    "True: coherence and its error not quoted (NaN): a band's signal power P - N is below "
    f"{pr.HIGH_POWER_SIGMA:g} N/sqrt(n_eff) (or n_eff <= 2), outside the high-power regime "
    "of Vaughan & Nowak (1997)"
)

#: Meaning of the ``lag_err_uncalibrated`` flag of lag products.
LAG_ERR_UNCALIBRATED = (
    "True: the lag error is outside the calibrated range: raw coherence below "
    f"{pr.LOW_COHERENCE:g} with fewer than {pr.MIN_N_EFF_LOW_COHERENCE:g} independent pairs "
    "(n_eff), where the Bendat & Piersol error misses the realisation scatter by 12-25 %"
)

UNITS = {
    **dict.fromkeys(
        ("power", "power_err", "noise", "ref_power", "ref_noise", "cross_re", "cross_im"),
        "(rms/mean)^2/Hz",
    ),
    **dict.fromkeys(("phase", "phase_err"), "rad"),
    **dict.fromkeys(("lag", "lag_err"), "s"),
    **dict.fromkeys(("coherence", "coherence_err"), "1"),
    **dict.fromkeys(
        ("rms", "rms_err", "covariance", "covariance_err", "mean_rate", "ref_mean_rate"), "counts/s"
    ),
}


def result_dataset(
    data: dict[str, NDArray[Any]],
    dims: tuple[str, ...],
    coords: dict[str, Any],
    attrs: dict[str, object],
) -> xr.Dataset:
    """A product Dataset over ``dims`` (1-d variables take the first dim), with units."""
    ds = xr.Dataset(
        {k: (dims if np.ndim(v) == len(dims) else dims[:1], v) for k, v in data.items()},
        coords=coords,
        attrs=attrs,
    )
    for k in ds.data_vars:
        if k in UNITS:
            ds[k].attrs["units"] = UNITS[str(k)]
    if "coherence_undefined" in ds:
        ds["coherence_undefined"].attrs["description"] = COHERENCE_UNDEFINED
    if "lag_err_uncalibrated" in ds:
        ds["lag_err_uncalibrated"].attrs["description"] = LAG_ERR_UNCALIBRATED
    return ds


def freq_coords(avg: CrossAverages) -> dict[str, Any]:
    """Frequency coordinates: bin centre and edges, pairs per bin and effective pairs."""
    fb = avg.bins
    return {
        "freq": ("freq", fb.centre),
        "f_lo": ("freq", fb.f_lo),
        "f_hi": ("freq", fb.f_hi),
        "count": ("freq", fb.count),
        "n_eff": ("freq", avg.n_eff),
    }
