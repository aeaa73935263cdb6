"""The cross spectrum of two exposures of one observation (NuSTAR FPMA x FPMB), and its real part.

NuSTAR's two focal plane modules see the same source through independent detectors, each
with its own dead time (about 2.5 ms per event). Dead time distorts each module's power
spectrum: its Poisson noise level falls below 2 (Leahy) and is shaped in frequency. The two
modules' counting noises are independent, so the cross spectrum of the two light curves has
no noise term: its real part, the cospectrum, averages to 0 wherever the source does not
vary, whatever the dead time (Bachetti et al. 2015, ApJ 800, 109). docs/semantics.md §20.

:func:`exposure_cospectrum` takes one band of two exposures (scheme views of one
observation, :meth:`catalog.Catalog.lightcurves`), keeps the time bins both have, cuts them
into equal segments (:func:`catalog.timing.segments.make_segments`, no gap filling by
default), and averages the periodograms and the cross spectrum with
:func:`catalog.timing.fourier.average_cross_spectra`: the cross spectrum is
``C = conj(X_a) X_b``, normalised per segment and frequency as in that module.

Quantities
    ``counts`` (default): the source region's detected counts per second, ``src_counts / dt``
    (no live-time correction, no background subtraction): Leahy's normalisation, where
    Poisson noise without dead time is 2, is defined for these. ``rate``: the catalogue's net
    rate (live-time corrected, background subtracted) with its errors.
Normalisations
    ``leahy``: powers divided by the module's mean, the cross spectrum by the geometric mean of
    the two means (so an undistorted Poisson PSD is 2 and the cospectrum's noise level 0);
    ``rms``: divided by the mean squared (by the product of the means); ``abs``: (counts/s)^2/Hz.
Errors
    Power: ``P / sqrt(n_eff)``. Cospectrum: ``sqrt((P_a P_b + Co^2 - Qu^2) / (2 n_eff))``,
    the variance of the real part of an averaged cross spectrum of Gaussian Fourier amplitudes
    (Ingram 2019, MNRAS 489, 3927, with the powers including noise); the same with
    ``Qu^2 - Co^2`` for the quadrature spectrum.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from catalog.netcdf import same_form
from catalog.timing.fourier import average_cross_spectra, freq_bins, segment_frequencies
from catalog.timing.segments import make_segments
from schemas.errors import ConfigError

__all__ = ["exposure_cospectrum", "average_over", "Quantity", "Norm"]

Quantity = Literal["counts", "rate"]
Norm = Literal["leahy", "rms", "abs"]


def _series(ds: xr.Dataset, band: int, quantity: Quantity, where: str) -> tuple[Any, Any, Any]:
    """(value, error, fracexp) of one band of a scheme view, per time bin."""
    if not 0 <= band < ds.sizes["band"]:
        raise ConfigError(
            f"{where}: band {band} does not exist; the scheme has bands 0-{ds.sizes['band'] - 1}"
        )
    dt = float(ds.attrs["dt"])
    b = ds.isel(band=band)
    frac = np.asarray(b["fracexp"].values, np.float64)
    if quantity == "counts":
        counts = np.asarray(b["src_counts"].values, np.float64)
        value = np.where(frac > 0, counts / dt, np.nan)
        error = np.where(frac > 0, np.sqrt(np.maximum(counts, 1.0)) / dt, np.nan)
    elif quantity == "rate":
        value = np.asarray(b["rate"].values, np.float64)
        error = np.asarray(b["error"].values, np.float64)
    else:
        raise ConfigError(f"{where}: quantity {quantity!r}; use counts or rate")
    return value, error, frac


def exposure_cospectrum(
    ds_a: xr.Dataset,
    ds_b: xr.Dataset,
    band: int,
    *,
    segment_length: float,
    quantity: Quantity = "counts",
    norm: Norm = "leahy",
    min_fracexp: float = 0.5,
    fill_gaps: float = 0.0,
    min_per_bin: int = 20,
    factor: float = 1.1,
    taper: bool = False,
) -> xr.Dataset:
    """Cospectrum (and both power spectra) of one band of two exposures of one observation.

    Parameters
    ----------
    ds_a, ds_b : xarray.Dataset
        Scheme views of the two exposures (same obsid, scheme and bin width; grids that
        share bins: their starts differ by a whole number of bins).
    band : int
        Band index within the scheme (the same band of both).
    segment_length : float
        Segment length, s (a multiple of ``dt``).
    quantity : {"counts", "rate"}
        What is transformed (module docstring).
    norm : {"leahy", "rms", "abs"}
    min_fracexp : float
        A bin counts only when both exposures have at least this fractional exposure.
    fill_gaps : float
        Longest gap interpolated, s (0: none; interpolated bins carry independent noise in
        the two exposures, which adds nothing to the cospectrum on average).
    min_per_bin, factor : int, float
        Logarithmic frequency binning (:func:`catalog.timing.fourier.freq_bins`).
    taper : bool
        Hanning taper of each segment (default off: the white-noise level stays flat).

    Returns
    -------
    xarray.Dataset
        Dim ``freq``; coords freq (mean member frequency), f_lo, f_hi, count, n_eff;
        variables cospectrum, cospectrum_err, quadspectrum, quadspectrum_err, power_a,
        power_a_err, power_b, power_b_err (in ``norm``), noise_a, noise_b (the Poisson noise
        level the bin errors predict without dead time, same normalisation). Attributes:
        obsid, scheme, band, e_lo, e_hi, exposures, quantity, norm, segment_length,
        n_segments, mean_a, mean_b, dt, taper, min_fracexp; netCDF-valid
        (:mod:`catalog.netcdf`: exposures and taper as JSON text) unless ``ds_a`` or
        ``ds_b`` has rich Python attributes (``catalog.open(path, attrs="python")``).

    Raises
    ------
    ConfigError
        One line: different obsids, schemes or bin widths; grids that do not share bins;
        no segment long enough.
    """
    a_id = f"{ds_a.attrs.get('obsid')}/{ds_a.attrs.get('expid')}"
    b_id = f"{ds_b.attrs.get('obsid')}/{ds_b.attrs.get('expid')}"
    where = f"cospectrum of {a_id} x {b_id}"
    for key in ("obsid", "scheme"):
        if ds_a.attrs.get(key) != ds_b.attrs.get(key):
            raise ConfigError(
                f"{where}: {key} {ds_a.attrs.get(key)!r} differs from {ds_b.attrs.get(key)!r}; "
                "give two exposures of one observation and one scheme"
            )
    dt = float(ds_a.attrs["dt"])
    if not np.isclose(float(ds_b.attrs["dt"]), dt, rtol=1e-9, atol=0):
        raise ConfigError(f"{where}: bin widths {dt} and {ds_b.attrs['dt']} s differ")
    ta = np.asarray(ds_a["time"].values, np.float64)
    tb = np.asarray(ds_b["time"].values, np.float64)
    offset = (tb[0] - ta[0]) / dt
    if abs(offset - round(offset)) > 1e-6:
        raise ConfigError(
            f"{where}: the grids start {tb[0] - ta[0]:.9g} s apart, not a whole number of "
            f"{dt:g} s bins; the two exposures' light curves share no bins"
        )
    ka = np.rint((ta - ta[0]) / dt).astype(np.int64)
    kb = np.rint((tb - ta[0]) / dt).astype(np.int64)
    common, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    if common.size == 0:
        raise ConfigError(f"{where}: the two exposures do not overlap in time")
    va, ea, fa = _series(ds_a, band, quantity, where)
    vb, eb, fb = _series(ds_b, band, quantity, where)
    time = ta[0] + common * dt
    rate = np.stack([va[ia], vb[ib]])
    error = np.stack([ea[ia], eb[ib]])
    frac = np.stack([fa[ia], fb[ib]])
    segments = make_segments(
        time,
        rate,
        error,
        frac,
        dt,
        min_fracexp=min_fracexp,
        fill_gaps=fill_gaps,
        min_length=segment_length,
        segment_length=segment_length,
    )
    if not segments:
        raise ConfigError(
            f"{where}: no continuous stretch of {segment_length:g} s with fracexp >= "
            f"{min_fracexp:g} in both exposures; use a shorter segment_length"
        )
    bins = freq_bins(segment_frequencies(segments), min_per_bin=min_per_bin, factor=factor)
    avg = average_cross_spectra(segments, [[1.0, 0.0]], [[0.0, 1.0]], bins, taper=taper)
    assert avg.cross is not None and avg.ref_power is not None and avg.ref_noise is not None
    assert avg.ref_mean_rate is not None
    ma, mb = float(avg.mean_rate[0]), float(avg.ref_mean_rate[0])
    if norm == "leahy":
        na, nb, nc = ma, mb, float(np.sqrt(ma * mb))
    elif norm == "rms":
        na, nb, nc = ma**2, mb**2, ma * mb
    elif norm == "abs":
        na = nb = nc = 1.0
    else:
        raise ConfigError(f"{where}: norm {norm!r}; use leahy, rms or abs")
    pa, pb = avg.power[0] / na, avg.ref_power[0] / nb
    cross = avg.cross[0] / nc
    co, qu = cross.real, cross.imag
    n_eff = avg.n_eff
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(n_eff > 0, 1.0 / n_eff, np.nan)
        co_err = np.sqrt(np.maximum(pa * pb + co**2 - qu**2, 0.0) * inv / 2.0)
        qu_err = np.sqrt(np.maximum(pa * pb + qu**2 - co**2, 0.0) * inv / 2.0)
        pa_err, pb_err = pa * np.sqrt(inv), pb * np.sqrt(inv)
    fb_ = avg.bins
    band_row = ds_a.isel(band=band)

    def var(x: NDArray[Any], what: str) -> tuple[str, NDArray[Any], dict[str, str]]:
        return ("freq", np.asarray(x, np.float64), {"description": what, "norm": norm})

    out = xr.Dataset(
        {
            "cospectrum": var(co, "real part of conj(X_a) X_b, segment and bin averaged"),
            "cospectrum_err": var(co_err, "1-sigma error of the cospectrum"),
            "quadspectrum": var(qu, "imaginary part of conj(X_a) X_b (positive: b lags a)"),
            "quadspectrum_err": var(qu_err, "1-sigma error of the quadrature spectrum"),
            "power_a": var(pa, "periodogram of exposure a"),
            "power_a_err": var(pa_err, "1-sigma error of power_a"),
            "power_b": var(pb, "periodogram of exposure b"),
            "power_b_err": var(pb_err, "1-sigma error of power_b"),
            "noise_a": var(avg.noise[0] / na, "Poisson noise level of a from its bin errors"),
            "noise_b": var(avg.ref_noise[0] / nb, "Poisson noise level of b from its bin errors"),
        },
        coords={
            "freq": ("freq", fb_.centre, {"units": "Hz"}),
            "f_lo": ("freq", fb_.f_lo, {"units": "Hz"}),
            "f_hi": ("freq", fb_.f_hi, {"units": "Hz"}),
            "count": ("freq", fb_.count),
            "n_eff": ("freq", n_eff),
        },
        attrs={
            "product": "cospectrum",
            "obsid": str(ds_a.attrs.get("obsid")),
            "scheme": str(ds_a.attrs.get("scheme")),
            "band": int(band),
            "e_lo": float(band_row["e_lo"].values),
            "e_hi": float(band_row["e_hi"].values),
            "exposures": [str(ds_a.attrs.get("expid")), str(ds_b.attrs.get("expid"))],
            "quantity": quantity,
            "norm": norm,
            "segment_length": float(segment_length),
            "n_segments": int(avg.n_segments),
            "mean_a": ma,
            "mean_b": mb,
            "dt": dt,
            "taper": bool(taper),
            "min_fracexp": float(min_fracexp),
        },
    )
    return same_form(out, ds_a, ds_b)  # netCDF-valid attributes unless the inputs' are rich


def average_over(
    ds: xr.Dataset, name: str, f_min: float, f_max: float | None = None
) -> tuple[float, float]:
    """The ``n_eff``-weighted mean of a variable over the bins with f_min <= freq < f_max.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`exposure_cospectrum`.
    name : str
        ``cospectrum``, ``power_a``, ``power_b`` or ``quadspectrum``.
    f_min, f_max : float
        Frequency range, Hz (f_max None: up to the highest bin).

    Returns
    -------
    (float, float)
        Mean and its 1-sigma error (from the bins' errors, combined as independent).

    Raises
    ------
    ConfigError
        If no bin lies in the range.
    """
    f = ds["freq"].values
    keep = (f >= f_min) & (f < (np.inf if f_max is None else f_max)) & (ds["n_eff"].values > 0)
    if not keep.any():
        raise ConfigError(
            f"{ds.attrs.get('product', 'spectrum')}: no frequency bin in [{f_min:g}, "
            f"{'inf' if f_max is None else f'{f_max:g}'}) Hz"
        )
    w = ds["n_eff"].values[keep]
    x = ds[name].values[keep]
    err = ds[f"{name}_err"].values[keep]
    mean = float(np.sum(w * x) / np.sum(w))
    sigma = float(np.sqrt(np.sum((w * err) ** 2)) / np.sum(w))
    return mean, sigma
