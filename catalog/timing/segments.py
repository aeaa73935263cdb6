"""Continuous, gap-filled light-curve segments for Fourier timing analysis.

The catalogue hands over one observation of one energy scheme as arrays on an
even time grid: ``time`` (n_time,) bin centres in MET seconds, and ``rate``,
``error``, ``fracexp`` (n_band, n_time) net count rates, their 1-sigma errors
and fractional exposures.  :func:`make_segments` turns them into a list of
:class:`Segment` objects, continuous stretches that are aligned across all bands
and free of NaN, ready for :mod:`catalog.timing.fourier`.

Rules (the reference workflow's ``read_pn_lc(min_exp=0.6, interp=True)`` plus
``create_segments(min_seg_length=14 ks)``):

1. A time bin is *good* when ``fracexp >= min_fracexp`` and ``rate`` and
   ``error`` are finite in **every** band, so segments are aligned across bands.
2. A run of bad bins is *filled* when it has good bins on both sides and its
   length ``n_bad * dt <= fill_gaps``.  The filled rate is the straight line
   between the two neighbouring good bins plus Gaussian noise; the noise sigma
   (also the filled error) is, per band, the mean error of the good bins within
   ``n_bad`` bins on either side of the gap (a window as wide as the gap; the two
   neighbours at least).  Every band of a filled bin is replaced, and the bin is
   flagged ``filled``.  Longer gaps, and bad runs at either end, are never filled.
3. The continuous stretches of good or filled bins shorter than ``min_length``
   seconds are dropped (``n * dt >= min_length`` is kept).
4. With ``segment_length`` set, every stretch is cut into as many consecutive
   pieces of exactly ``segment_length`` seconds as fit, starting at its first
   bin; the remainder is dropped (stingray's equal segments).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from schemas.errors import ConfigError

__all__ = ["Segment", "good_bins", "make_segments"]

_REL_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Segment:
    """One continuous stretch of a multi-band light curve.

    Attributes
    ----------
    time : NDArray[float64]
        (n,) bin centres, MET seconds, step ``dt``.
    rate : NDArray[float64]
        (n_band, n) net count rates, counts/s; finite everywhere.
    error : NDArray[float64]
        (n_band, n) 1-sigma errors on ``rate``, counts/s.
    filled : NDArray[bool_]
        (n,) True where the bin was interpolated over a short gap (all bands).
    dt : float
        Bin width, s.
    start : int
        Index of the segment's first bin in the input ``time`` array.
    """

    time: NDArray[np.float64]
    rate: NDArray[np.float64]
    error: NDArray[np.float64]
    filled: NDArray[np.bool_]
    dt: float
    start: int

    @property
    def n(self) -> int:
        """Number of time bins."""
        return int(self.time.size)

    @property
    def n_band(self) -> int:
        """Number of energy bands."""
        return int(self.rate.shape[0])

    @property
    def length(self) -> float:
        """Duration ``n * dt``, s."""
        return self.n * self.dt

    @property
    def tstart(self) -> float:
        """Start of the first bin, MET s."""
        return float(self.time[0] - 0.5 * self.dt)

    @property
    def tstop(self) -> float:
        """End of the last bin, MET s."""
        return float(self.time[-1] + 0.5 * self.dt)

    @property
    def n_filled(self) -> int:
        """Number of gap-filled bins."""
        return int(np.count_nonzero(self.filled))


def _runs(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Return (n_run, 2) [start, stop) index pairs of the True runs of ``mask``."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return edges.reshape(-1, 2)


def _as_bands(name: str, value: ArrayLike, n_time: int, n_band: int) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[np.newaxis, :]
    if arr.ndim != 2 or arr.shape[1] != n_time or arr.shape[0] not in (1, n_band):
        raise ValueError(
            f"{name} has shape {np.shape(value)}; expected (n_band, n_time) = ({n_band}, {n_time})"
        )
    return np.broadcast_to(arr, (n_band, n_time))


def good_bins(
    rate: ArrayLike, error: ArrayLike, fracexp: ArrayLike, *, min_fracexp: float = 0.6
) -> NDArray[np.bool_]:
    """Flag the time bins usable in every band.

    Parameters
    ----------
    rate, error : array_like
        (n_band, n_time) net count rates and errors, counts/s.
    fracexp : array_like
        (n_band, n_time) or (n_time,) fractional exposure.
    min_fracexp : float
        Smallest accepted fractional exposure (inclusive).

    Returns
    -------
    NDArray[bool_]
        (n_time,) True where ``fracexp >= min_fracexp`` and ``rate``, ``error``
        are finite in all bands.
    """
    rate = np.atleast_2d(np.asarray(rate, dtype=np.float64))
    n_band, n_time = rate.shape
    error = _as_bands("error", error, n_time, n_band)
    fracexp = _as_bands("fracexp", fracexp, n_time, n_band)
    with np.errstate(invalid="ignore"):
        ok = (fracexp >= min_fracexp) & np.isfinite(rate) & np.isfinite(error)
    good: NDArray[np.bool_] = np.all(ok, axis=0)
    return good


def make_segments(
    time: ArrayLike,
    rate: ArrayLike,
    error: ArrayLike,
    fracexp: ArrayLike,
    dt: float,
    *,
    min_fracexp: float = 0.6,
    fill_gaps: float = 1000.0,
    min_length: float = 14000.0,
    segment_length: float | None = None,
    rng: np.random.Generator | int = 0,
) -> list[Segment]:
    """Split a multi-band light curve into continuous, gap-filled segments.

    See the module docstring for the full rules (good bins, gap filling, minimum
    length, equal-length cutting).

    Parameters
    ----------
    time : array_like
        (n_time,) bin centres, MET s, on an even grid of step ``dt``.
    rate, error : array_like
        (n_band, n_time) net count rates and 1-sigma errors, counts/s; NaN where
        there is no exposure.  A 1-D array is taken as one band.
    fracexp : array_like
        (n_band, n_time), or (n_time,) shared by all bands, fractional exposure.
    dt : float
        Bin width, s.
    min_fracexp : float, default 0.6
        A bin is good only if ``fracexp >= min_fracexp`` in every band
        (the reference workflow's ``min_exp``).
    fill_gaps : float, default 1000.0
        Longest gap, s (``n_bad * dt``, inclusive), that is interpolated.
        0 disables filling.
    min_length : float, default 14000.0
        Shortest continuous stretch kept, s (inclusive).
    segment_length : float or None, default None
        If set, cut every stretch into consecutive segments of exactly this
        length, s (a multiple of ``dt``); the remainder of each stretch is dropped.
    rng : numpy.random.Generator or int, default 0
        Generator (or seed for :func:`numpy.random.default_rng`) of the gap-fill
        noise.  Gaps are filled in time order, each drawing (n_band, n_gap)
        standard normals, so a seed gives identical segments every time.

    Returns
    -------
    list of Segment
        In time order.  Arrays are copies; the inputs are not modified.

    Raises
    ------
    ConfigError
        If ``min_fracexp``, ``fill_gaps``, ``min_length`` are negative, ``dt``
        is not positive, or ``segment_length`` is not a positive multiple of ``dt``.
    ValueError
        If the array shapes disagree or ``time`` is not an even grid of step ``dt``.
    """
    if not (np.isfinite(dt) and dt > 0):
        raise ConfigError(f"timing segments: dt = {dt!r} s; use a positive bin width")
    for name, val in (
        ("min_fracexp", min_fracexp),
        ("fill_gaps", fill_gaps),
        ("min_length", min_length),
    ):
        if not (np.isfinite(val) and val >= 0):
            raise ConfigError(f"timing segments: {name} = {val!r}; use a value >= 0")
    n_per_seg = None
    if segment_length is not None:
        ratio = segment_length / dt
        n_per_seg = int(round(ratio))
        if n_per_seg < 1 or abs(ratio - n_per_seg) > 1e-6 * max(1.0, ratio):
            raise ConfigError(
                f"timing segments: segment_length = {segment_length!r} s is not a positive "
                f"multiple of dt = {dt!r} s; choose a multiple of the bin width"
            )

    time = np.asarray(time, dtype=np.float64)
    if time.ndim != 1:
        raise ValueError(f"time has shape {time.shape}; expected (n_time,)")
    n_time = time.size
    rate = np.array(np.atleast_2d(np.asarray(rate, dtype=np.float64)), copy=True)
    if rate.ndim != 2 or rate.shape[1] != n_time:
        raise ValueError(f"rate has shape {rate.shape}; expected (n_band, {n_time})")
    n_band = rate.shape[0]
    error = np.array(_as_bands("error", error, n_time, n_band), copy=True)
    fracexp = _as_bands("fracexp", fracexp, n_time, n_band)
    if n_time > 1 and not np.allclose(np.diff(time), dt, rtol=0.0, atol=1e-6 * dt):
        raise ValueError(f"time is not an even grid of step dt = {dt} s")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)

    good = good_bins(rate, error, fracexp, min_fracexp=min_fracexp)
    usable = good.copy()
    filled = np.zeros(n_time, dtype=bool)
    max_fill = int(np.floor(fill_gaps / dt * (1 + _REL_TOL)))

    for start, stop in _runs(~good):
        n_gap = stop - start
        if start == 0 or stop == n_time or n_gap > max_fill:
            continue
        left, right = start - 1, stop
        frac = (np.arange(start, stop) - left) / (right - left)
        line = rate[:, [left]] + (rate[:, [right]] - rate[:, [left]]) * frac
        lo, hi = max(0, start - n_gap), min(n_time, stop + n_gap)
        window = np.concatenate((np.arange(lo, start), np.arange(stop, hi)))
        window = window[good[window]]
        sigma = error[:, window].mean(axis=1)
        rate[:, start:stop] = line + rng.standard_normal((n_band, n_gap)) * sigma[:, None]
        error[:, start:stop] = sigma[:, None]
        filled[start:stop] = True
        usable[start:stop] = True

    segments: list[Segment] = []
    for start, stop in _runs(usable):
        if (stop - start) * dt < min_length * (1 - _REL_TOL):
            continue
        if n_per_seg is None:
            pieces = [(start, stop)]
        else:
            n_pieces = (stop - start) // n_per_seg
            pieces = [(start + j * n_per_seg, start + (j + 1) * n_per_seg) for j in range(n_pieces)]
        for a, b in pieces:
            segments.append(
                Segment(
                    time=time[a:b].copy(),
                    rate=rate[:, a:b].copy(),
                    error=error[:, a:b].copy(),
                    filled=filled[a:b].copy(),
                    dt=float(dt),
                    start=int(a),
                )
            )
    return segments
