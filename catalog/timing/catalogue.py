"""Analysis-ready segments from catalogue light curves, as one xarray Dataset and back.

:func:`segments_dataset` applies :func:`catalog.timing.segments.make_segments`
to every observation of one energy scheme (the reference workflow:
``fracexp >= 0.6``, gaps of up to 1 ks filled by interpolation with noise,
continuous stretches of at least 14 ks) and packs the result into a Dataset with
dims ``(segment, band, time)``:

- ``rate``, ``error`` (segment, band, time), counts/s: the net rates and their
  errors; ``filled`` (segment, time), bool: bins interpolated over a short gap
  (all bands of such a bin are filled).
- Coordinates ``obsid``, ``tstart`` (MET s, start of the first bin), ``n_bins``,
  ``start_bin`` (index of the first bin in the observation's grid) on
  ``segment``; ``band``, ``e_lo``, ``e_hi`` (keV), ``pi_lo``, ``pi_hi`` on
  ``band``; ``time`` = bin centre minus the segment's ``tstart``, s.
- Segments differ in length: each is stored in its first ``n_bins`` time bins
  and **padded with NaN** (``filled`` False) up to the longest.
- Attributes: the scheme, its hash, ``dt``, the segment options, ``obsids`` (the
  groups read) with each group's ``input_hash``, ``obsids_with_segments``.

:func:`as_segments` turns the Dataset back into the list of
:class:`~catalog.timing.segments.Segment` the spectral functions take (they also
accept the Dataset itself), and :func:`provenance_attrs` extracts the
attributes every product derived from it carries.

Gap-fill noise: observation ``obsid`` uses the generator
``numpy.random.default_rng([seed, int(obsid)])`` (:func:`observation_rng`), so a
segment's filled bins do not depend on which other observations are selected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr

from catalog.netcdf import same_form
from catalog.timing.segments import Segment, make_segments
from schemas.errors import ConfigError, StoreError

__all__ = [
    "PROVENANCE_KEYS",
    "as_segments",
    "length_seconds",
    "observation_rng",
    "provenance_attrs",
    "segments_dataset",
]

#: Attributes of a segments Dataset copied into every product computed from it.
PROVENANCE_KEYS: tuple[str, ...] = (
    "store",
    "scheme",
    "scheme_hash",
    "obsids",
    "input_hash",
    "obsids_with_segments",
    "min_fracexp",
    "fill_gaps",
    "min_length",
    "min_length_bins",
    "segment_length",
    "seed",
)

_PADDING = (
    "segments shorter than the longest are padded with NaN (rate, error) and "
    "filled=False beyond their n_bins time bins"
)


def observation_rng(seed: int, obsid: str) -> np.random.Generator:
    """Gap-fill generator of one observation: ``default_rng([seed, int(obsid)])``.

    Parameters
    ----------
    seed : int
        Non-negative user seed.
    obsid : str
        10-digit observation id (any string works: non-digits are hashed by bytes).

    Returns
    -------
    numpy.random.Generator
    """
    key = int(obsid) if obsid.isdigit() else int.from_bytes(obsid.encode()[:16], "little")
    return np.random.default_rng([int(seed), key])


def _check_options(
    min_fracexp: float, fill_gaps: float, min_length: float, segment_length: float | None, seed: int
) -> None:
    for name, val in (
        ("min_fracexp", min_fracexp),
        ("fill_gaps", fill_gaps),
        ("min_length", min_length),
    ):
        if not (np.isfinite(val) and val >= 0):
            raise ConfigError(f"segments: {name} = {val!r}; use a value >= 0")
    if min_fracexp > 1:
        raise ConfigError(f"segments: min_fracexp = {min_fracexp!r}; use a value in 0..1")
    if segment_length is not None and not (np.isfinite(segment_length) and segment_length > 0):
        raise ConfigError(f"segments: segment_length = {segment_length!r} s; use seconds > 0")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"segments: seed = {seed!r}; use a non-negative integer")


_BINS = re.compile(r"^\s*(\d+)\s*b(ins?)?\s*$", re.IGNORECASE)
_SECONDS = re.compile(r"^\s*([0-9.eE+-]+)\s*s?\s*$")


def length_seconds(value: float | str, dt: float, name: str = "min_length") -> float:
    """A segment length given in seconds or in bins, in seconds.

    Parameters
    ----------
    value : float or str
        Seconds (``14000``, ``"14000"``, ``"14000s"``) or a whole number of bins
        (``"109b"``, ``"109 bins"``: 109 x ``dt``, the reference workflow's
        ``int(14e3 / 128)`` at 128 s bins).
    dt : float
        Bin width, s.
    name : str
        The option's name, for the error message.

    Returns
    -------
    float
        Seconds.

    Raises
    ------
    ConfigError
        If the text is neither.
    """
    if isinstance(value, str):
        m = _BINS.match(value)
        if m:
            return int(m.group(1)) * float(dt)
        m = _SECONDS.match(value)
        if m:
            try:
                return float(m.group(1))
            except ValueError:
                pass
        raise ConfigError(f"segments: {name} = {value!r}; give seconds (14000) or bins (109b)")
    return float(value)


def _longest(per_obs: Mapping[str, list[Segment]]) -> tuple[float, str]:
    best, where = 0.0, ""
    for obsid, segs in per_obs.items():
        for s in segs:
            if s.length > best:
                best, where = s.length, obsid
    return best, where


def segments_dataset(
    groups: Mapping[str, xr.Dataset],
    *,
    min_fracexp: float = 0.6,
    fill_gaps: float = 1000.0,
    min_length: float | str = 14000.0,
    segment_length: float | None = None,
    seed: int = 0,
    store: str | None = None,
) -> xr.Dataset:
    """Continuous, gap-filled segments of every band of one scheme, over observations.

    Parameters
    ----------
    groups : mapping of str to xarray.Dataset
        obsid -> (obsid, scheme) group as read by :meth:`catalog.Catalog.query`
        (one scheme; same bin width and band edges everywhere).
    min_fracexp : float, default 0.6
        A bin is good when its fractional exposure is at least this in every band.
    fill_gaps : float, default 1000.0
        Longest run of bad bins, s, filled by linear interpolation plus noise;
        longer gaps split segments (nothing is filled across them).
    min_length : float or str, default 14000.0
        Shortest segment kept: seconds, or bins as ``"109b"`` (see
        :func:`length_seconds`; the attributes record both).
    segment_length : float, optional
        Cut every stretch into consecutive pieces of exactly this length, s (a
        multiple of the bin width); the remainder is dropped.
    seed : int, default 0
        Seed of the gap-fill noise (see :func:`observation_rng`).
    store : str, optional
        Store path, recorded in the attributes.

    Returns
    -------
    xarray.Dataset
        Layout in the module docstring; segments in obsid, then time order. Its
        attributes are netCDF-valid (:mod:`catalog.netcdf`) unless a group's are rich
        Python values (``catalog.open(path, attrs="python")``).

    Raises
    ------
    ConfigError
        For invalid options, or when no observation has a segment of at least
        ``min_length`` (the message gives the longest continuous stretch).
    StoreError
        If there are no groups, or they differ in scheme, bin width or band edges.
    """
    if not groups:
        raise StoreError(
            "segments: no light curves selected; check the scheme and obsids (xlcat ls STORE)"
        )
    obsids = sorted(groups)
    first = groups[obsids[0]]
    scheme, dt = first.attrs["scheme"], float(first.attrs["dt"])
    min_length_bins = (
        int(round(length_seconds(min_length, dt) / dt))
        if isinstance(min_length, str) and _BINS.match(min_length)
        else None
    )
    min_length = length_seconds(min_length, dt)
    _check_options(min_fracexp, fill_gaps, min_length, segment_length, seed)
    pi_lo, pi_hi = first["pi_lo"].values, first["pi_hi"].values
    for obsid in obsids[1:]:
        ds = groups[obsid]
        if ds.attrs["scheme"] != scheme or not np.isclose(float(ds.attrs["dt"]), dt):
            raise StoreError(
                f"segments: {obsid} has scheme {ds.attrs['scheme']} / dt "
                f"{ds.attrs['dt']} s, {obsids[0]} has {scheme} / {dt} s; select "
                "observations built with one scheme and one time bin"
            )
        if not (
            np.array_equal(ds["pi_lo"].values, pi_lo) and np.array_equal(ds["pi_hi"].values, pi_hi)
        ):
            raise StoreError(
                f"segments: scheme {scheme} has different band edges in {obsid} "
                f"and {obsids[0]}; rebuild them from one build file"
            )
    if segment_length is not None:
        ratio = segment_length / dt
        if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio) or round(ratio) < 1:
            raise ConfigError(
                f"segments: segment_length = {segment_length!r} s is not a "
                f"multiple of the {dt:g} s bin width of scheme {scheme}; choose "
                f"a multiple, e.g. {max(1, round(ratio)) * dt:g}"
            )

    per_obs: dict[str, list[Segment]] = {}
    for obsid in obsids:
        ds = groups[obsid]
        per_obs[obsid] = make_segments(
            ds["time"].values,
            ds["rate"].values,
            ds["error"].values,
            ds["fracexp"].values,
            dt,
            min_fracexp=min_fracexp,
            fill_gaps=fill_gaps,
            min_length=min_length,
            segment_length=segment_length,
            rng=observation_rng(seed, obsid),
        )
    if not any(per_obs.values()):
        stretches = {
            o: make_segments(
                groups[o]["time"].values,
                groups[o]["rate"].values,
                groups[o]["error"].values,
                groups[o]["fracexp"].values,
                dt,
                min_fracexp=min_fracexp,
                fill_gaps=fill_gaps,
                min_length=0.0,
                rng=observation_rng(seed, o),
            )
            for o in obsids
        }
        longest, where = _longest(stretches)
        what = (
            f"{longest:g} s in {where}"
            if longest > 0
            else f"none: no bin has fracexp >= {min_fracexp:g} in every band"
        )
        need = (
            f"segment_length {segment_length:g} s"
            if segment_length is not None and segment_length > min_length
            else f"min_length {min_length:g} s"
        )
        raise ConfigError(
            f"segments: scheme {scheme}, {len(obsids)} observation(s): no "
            f"continuous stretch reaches the {need} after filling gaps <= "
            f"{fill_gaps:g} s (longest: {what}); lower --min-length "
            "(or --segment-length) or raise --fill-gaps"
        )

    flat = [(o, s) for o in obsids for s in per_obs[o]]
    n_seg, n_band = len(flat), len(pi_lo)
    n_max = max(s.n for _, s in flat)
    rate = np.full((n_seg, n_band, n_max), np.nan)
    error = np.full((n_seg, n_band, n_max), np.nan)
    filled = np.zeros((n_seg, n_max), dtype=bool)
    for j, (_, s) in enumerate(flat):
        rate[j, :, : s.n], error[j, :, : s.n], filled[j, : s.n] = s.rate, s.error, s.filled
    attrs: dict[str, Any] = {
        "product": "segments",
        "store": store or "",
        "scheme": scheme,
        "scheme_hash": first.attrs.get("scheme_hash", ""),
        "dt": dt,
        "obsids": obsids,
        "input_hash": {
            f"{groups[o].attrs.get('obsid', o)}/{groups[o].attrs.get('expid', '')}": groups[
                o
            ].attrs.get("input_hash", "")
            for o in obsids
        },
        "obsids_with_segments": [o for o in obsids if per_obs[o]],
        "min_fracexp": float(min_fracexp),
        "fill_gaps": float(fill_gaps),
        "min_length": float(min_length),
        "segment_length": None if segment_length is None else float(segment_length),
        "seed": int(seed),
        "gap_fill": "linear interpolation plus Gaussian noise (catalog.timing.segments); "
        "noise generator numpy.random.default_rng([seed, int(obsid)])",
        "padding": _PADDING,
    }
    if min_length_bins is not None:
        attrs["min_length_bins"] = min_length_bins
    coords = {
        "segment": ("segment", np.arange(n_seg)),
        "obsid": ("segment", np.array([o for o, _ in flat], dtype=object)),
        "tstart": (
            "segment",
            np.array([s.tstart for _, s in flat]),
            {"units": "s", "description": "start of the first bin, MET"},
        ),
        "n_bins": ("segment", np.array([s.n for _, s in flat], dtype=np.int64)),
        "start_bin": (
            "segment",
            np.array([s.start for _, s in flat], dtype=np.int64),
            {"description": "index of the first bin in the observation's time grid"},
        ),
        "band": ("band", first["band"].values),
        "e_lo": ("band", first["e_lo"].values, {"units": "keV"}),
        "e_hi": ("band", first["e_hi"].values, {"units": "keV"}),
        "pi_lo": ("band", pi_lo),
        "pi_hi": ("band", pi_hi),
        "time": (
            "time",
            dt * (np.arange(n_max) + 0.5),
            {"units": "s", "description": "bin centre minus the segment's tstart"},
        ),
    }
    data = {
        "rate": (
            ("segment", "band", "time"),
            rate,
            {"units": "counts/s", "description": "net count rate; NaN = padding"},
        ),
        "error": (
            ("segment", "band", "time"),
            error,
            {"units": "counts/s", "description": "1-sigma error of rate; NaN = padding"},
        ),
        "filled": (
            ("segment", "time"),
            filled,
            {"description": "bin interpolated over a gap of <= fill_gaps s (all bands)"},
        ),
    }
    # netCDF-valid attributes (catalog.netcdf) unless the light curves' are rich
    return same_form(xr.Dataset(data, coords=coords, attrs=attrs), *groups.values())


def as_segments(ds: xr.Dataset) -> list[Segment]:
    """The :class:`Segment` list of a segments Dataset (padding removed).

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`segments_dataset` / :meth:`catalog.Catalog.segments`
        (possibly a selection along ``segment`` or ``band``).

    Returns
    -------
    list of Segment
        One per ``segment``: ``time`` = ``tstart`` + the offsets (MET bin
        centres), ``rate``/``error`` (n_band, n_bins), ``filled``, ``dt``, ``start``.

    Raises
    ------
    ConfigError
        If ``ds`` is not a segments Dataset.
    """
    missing = [k for k in ("rate", "error", "filled", "n_bins", "tstart") if k not in ds]
    if missing or "dt" not in ds.attrs:
        raise ConfigError(
            f"not a segments Dataset (missing {', '.join(missing) or 'attr dt'}); "
            "make it with Catalog.segments(...)"
        )
    dt = float(ds.attrs["dt"])
    rate = ds["rate"].transpose("segment", "band", "time").values
    error = ds["error"].transpose("segment", "band", "time").values
    filled = ds["filled"].transpose("segment", "time").values
    offsets = ds["time"].values
    starts = ds["start_bin"].values if "start_bin" in ds else np.zeros(ds.sizes["segment"], int)
    out = []
    for j in range(ds.sizes["segment"]):
        n = int(ds["n_bins"].values[j])
        out.append(
            Segment(
                time=float(ds["tstart"].values[j]) + offsets[:n],
                rate=rate[j, :, :n].copy(),
                error=error[j, :, :n].copy(),
                filled=filled[j, :n].copy(),
                dt=dt,
                start=int(starts[j]),
            )
        )
    return out


def provenance_attrs(ds: xr.Dataset) -> dict[str, Any]:
    """The attributes of a segments Dataset that products computed from it carry.

    Parameters
    ----------
    ds : xarray.Dataset
        A segments Dataset.

    Returns
    -------
    dict
        :data:`PROVENANCE_KEYS` present in ``ds.attrs``, plus ``obsids_used``
        (the obsids of the segments actually in ``ds``).
    """
    out = {k: ds.attrs[k] for k in PROVENANCE_KEYS if k in ds.attrs}
    if "obsid" in ds.coords:
        out["obsids_used"] = sorted({str(o) for o in ds["obsid"].values})
    return out
