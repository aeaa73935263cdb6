"""The Dataset of one exposure group: assembling it, and one scheme's view of it read back."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import platform
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from schemas.energy import XMM_SCALE, Band, EnergyScale, scale_from_record
from schemas.errors import StoreError
from schemas.spectra import ChannelGrid
from schemas.store_layout import (
    BAND_COORDS,
    CHANNEL_COORDS,
    DATA_VARS,
    FORMAT_NAME,
    FORMAT_VERSION,
    GROUP_COORDS,
    REQUIRED_GROUP_ATTRS,
    SPECTRUM_ATTRS,
    SPECTRUM_VARS,
    TEXT_RECORD_ENCODING,
    UNITS,
)

__all__ = [
    "SchemePart",
    "SpectrumPart",
    "spectrum_part",
    "spectrum_view",
    "exposure_dataset",
    "scheme_parts",
    "scheme_view",
    "software_versions",
    "encode_text_record",
    "decode_text_records",
]


def encode_text_record(obj: Any) -> dict[str, Any]:
    """Compress a JSON-able object (command lines and logs) for a group attribute.

    Parameters
    ----------
    obj : JSON-able
        E.g. the list of SAS commands of one band, with their stdout and stderr.

    Returns
    -------
    dict
        ``{"encoding": "json+zlib+base64", "data": <text>}`` (see
        :data:`schemas.store_layout.TEXT_RECORD_ENCODING`).
    """
    raw = json.dumps(obj, separators=(",", ":")).encode()
    data = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    return {"encoding": TEXT_RECORD_ENCODING, "data": data}


def decode_text_records(obj: Any) -> Any:
    """A copy of ``obj`` with every compressed record (:func:`encode_text_record`) decoded."""
    if isinstance(obj, dict):
        if obj.get("encoding") == TEXT_RECORD_ENCODING and isinstance(obj.get("data"), str):
            return json.loads(zlib.decompress(base64.b64decode(obj["data"])))
        return {k: decode_text_records(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_text_records(v) for v in obj]
    return obj


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for dist in ("xlcat", "numpy", "scipy", "astropy", "xarray", "zarr", "dask", "distributed"):
        try:
            out.append((dist, importlib.metadata.version(dist)))
        except importlib.metadata.PackageNotFoundError:
            out.append((dist, "not installed"))
    return tuple(out)


def software_versions() -> dict[str, str]:
    """Versions of xlcat and the libraries that shape its numbers (looked up once per process)."""
    return dict(_versions())


@dataclass(frozen=True)
class SchemePart:
    """One energy scheme's bands of an exposure, as stored in its group.

    Attributes
    ----------
    name : str
        Scheme name.
    bands : tuple of Band
        The scheme's bands, in energy order.
    variables : dict
        Every name of :data:`schemas.store_layout.DATA_VARS` to an array of shape
        (n_bands, n_time).
    attrs : dict
        The scheme's record (:data:`schemas.store_layout.SCHEME_ATTRS`); ``exposure``,
        ``bands`` and ``created`` are filled in by :func:`exposure_dataset` when absent.
    """

    name: str
    bands: tuple[Band, ...]
    variables: dict[str, NDArray[np.float64]]
    attrs: dict[str, Any]


@dataclass(frozen=True)
class SpectrumPart:
    """The source and background PI spectra of an exposure, as stored in its group.

    Attributes
    ----------
    channels : ChannelGrid
        The channel grid (PI per channel, number of channels, energy scale).
    src : numpy.ndarray of int64, shape (n_channels,)
        Source-region events per channel inside the GTIs.
    bkg : numpy.ndarray of int64 or None
        Background-region events per channel; None for a source-only exposure.
    attrs : dict
        The group's ``spectrum`` record (:data:`schemas.store_layout.SPECTRUM_ATTRS`):
        ``exposure`` (s), ``src_backscal``, ``bkg_backscal`` (sky pixels²),
        ``areascal``, ``backend``, the rules...; ``channels``, ``src_total``,
        ``bkg_total``, ``backscal_ratio`` and ``created`` are filled in when absent.
    """

    channels: ChannelGrid
    src: NDArray[np.int64]
    bkg: NDArray[np.int64] | None
    attrs: dict[str, Any]


def _spectrum_record(spec: SpectrumPart, now: str) -> dict[str, Any]:
    n = spec.channels.n_channels
    for name, arr in (("src", spec.src), ("bkg", spec.bkg)):
        if arr is not None and np.shape(arr) != (n,):
            raise ValueError(f"spectrum {name} has shape {np.shape(arr)}, expected ({n},)")
    record = dict(spec.attrs)
    src_a, bkg_a = record.get("src_backscal"), record.get("bkg_backscal")
    record.setdefault("channels", spec.channels.describe())
    record.setdefault("areascal", 1.0)
    record.setdefault("src_total", int(np.sum(spec.src)))
    record.setdefault("bkg_total", None if spec.bkg is None else int(np.sum(spec.bkg)))
    record.setdefault("backscal_ratio", float(src_a) / float(bkg_a) if src_a and bkg_a else None)
    record.setdefault("source_only", spec.bkg is None)
    record.setdefault("responses", None)
    record.setdefault("filter", None)
    record.setdefault("created", now)
    missing = [k for k in SPECTRUM_ATTRS if k not in record]
    if missing:
        raise ValueError(f"spectrum record missing: {', '.join(missing)}")
    return record


def _spectrum_arrays(spec: SpectrumPart) -> tuple[dict[str, Any], dict[str, Any]]:
    """Data variables and coordinates of the channel dimension."""
    g = spec.channels
    data: dict[str, Any] = {
        "spec_src": (
            "channel",
            np.asarray(spec.src, dtype=np.int64),
            {"units": "count", "description": SPECTRUM_VARS["spec_src"]},
        )
    }
    if spec.bkg is not None:
        data["spec_bkg"] = (
            "channel",
            np.asarray(spec.bkg, dtype=np.int64),
            {"units": "count", "description": SPECTRUM_VARS["spec_bkg"]},
        )
    coords: dict[str, Any] = {
        "channel": (
            "channel",
            np.arange(g.n_channels, dtype=np.int64),
            {"description": CHANNEL_COORDS["channel"]},
        ),
        "chan_pi_lo": ("channel", g.pi_lo, {"description": CHANNEL_COORDS["chan_pi_lo"]}),
        "chan_pi_hi": ("channel", g.pi_hi, {"description": CHANNEL_COORDS["chan_pi_hi"]}),
        "chan_e_lo": (
            "channel",
            g.e_lo,
            {"units": "keV", "description": CHANNEL_COORDS["chan_e_lo"]},
        ),
        "chan_e_hi": (
            "channel",
            g.e_hi,
            {"units": "keV", "description": CHANNEL_COORDS["chan_e_hi"]},
        ),
    }
    return data, coords


def spectrum_part(ds: xr.Dataset) -> SpectrumPart | None:
    """The spectra of a stored exposure group (to store again), or None when it has none."""
    record = ds.attrs.get("spectrum")
    if not record or "spec_src" not in ds:
        return None
    ch = record["channels"]
    grid = ChannelGrid(
        str(ch["instrument"]),
        int(ch["pi_per_channel"]),
        int(ch["n_channels"]),
        float(ch["offset_kev"]),
        float(ch["kev_per_pi"]),
    )
    bkg = np.asarray(ds["spec_bkg"].values, np.int64) if "spec_bkg" in ds else None
    return SpectrumPart(grid, np.asarray(ds["spec_src"].values, np.int64), bkg, dict(record))


def _band_records(
    bands: Sequence[Band],
    fracexp: NDArray[np.float64],
    dt: float,
    scale: EnergyScale = XMM_SCALE,
) -> list[Any]:
    exposure = np.nansum(fracexp, axis=1) * dt if len(bands) else np.zeros(0)
    return [
        {
            "band": i,
            "pi_lo": int(b.pi_lo),
            "pi_hi": int(b.pi_hi),
            "e_lo": scale.kev(b.pi_lo),
            "e_hi": scale.kev(b.pi_hi),
            "exposure": float(exposure[i]),
        }
        for i, b in enumerate(bands)
    ]


def exposure_dataset(
    time: NDArray[np.float64],
    parts: Sequence[SchemePart],
    attrs: dict[str, Any],
    spectrum: SpectrumPart | None = None,
) -> xr.Dataset:
    """Build the Dataset of one exposure group: every scheme along one band axis.

    Parameters
    ----------
    time : numpy.ndarray
        Bin centres, MET seconds.
    parts : sequence of SchemePart
        The schemes; stored in name order.
    attrs : dict
        Exposure attributes (obsid, expid, instrument, the grid, inputs, regions,
        backends...); ``format``, ``format_version``, ``TIMEPIXR``, ``TIMEUNIT``,
        ``created``, ``software``, ``schemes`` and ``spectrum`` are filled in here.
    spectrum : SpectrumPart, optional
        The exposure's source and background spectra (dimension ``channel``); the
        group's ``spectrum`` attribute is null without them.

    Returns
    -------
    xarray.Dataset
        Dims (band, time) with float64 variables, and (channel) with int64 spectra;
        JSON-able attributes.
    """
    n_time = len(time)
    dt = float(attrs["dt"])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ordered = sorted(parts, key=lambda p: p.name)
    names = [p.name for p in ordered]
    if len(set(names)) != len(names):
        raise ValueError(f"scheme listed twice: {names}")
    data: dict[str, Any] = {}
    schemes: dict[str, Any] = {}
    for name, doc in DATA_VARS.items():
        blocks = []
        for p in ordered:
            arr = np.asarray(p.variables[name], dtype=np.float64)
            if arr.shape != (len(p.bands), n_time):
                raise ValueError(
                    f"scheme {p.name}: {name} has shape {arr.shape}, "
                    f"expected {(len(p.bands), n_time)}"
                )
            blocks.append(arr)
        stacked = np.concatenate(blocks, axis=0) if blocks else np.zeros((0, n_time))
        data[name] = (("band", "time"), stacked, {"units": UNITS[name], "description": doc})
    for p in ordered:
        record = dict(p.attrs)
        fracexp = np.asarray(p.variables["fracexp"], dtype=np.float64)
        scale = scale_from_record(attrs.get("energy_scale"))
        record.setdefault("bands", _band_records(p.bands, fracexp, dt, scale))
        record.setdefault("exposure", max((b["exposure"] for b in record["bands"]), default=0.0))
        record.setdefault("created", now)
        schemes[p.name] = record
    all_bands = [b for p in ordered for b in p.bands]
    coords = {
        "time": (
            "time",
            np.asarray(time, dtype=np.float64),
            {"units": "s", "description": GROUP_COORDS["time"]},
        ),
        "scheme": (
            "band",
            np.array([p.name for p in ordered for _ in p.bands], dtype=object),
            {"description": GROUP_COORDS["scheme"]},
        ),
        "scheme_band": (
            "band",
            np.concatenate([np.arange(len(p.bands)) for p in ordered]).astype(np.int64)
            if ordered
            else np.zeros(0, np.int64),
            {"description": GROUP_COORDS["scheme_band"]},
        ),
        "pi_lo": (
            "band",
            np.array([b.pi_lo for b in all_bands], dtype=np.int64),
            {"description": GROUP_COORDS["pi_lo"]},
        ),
        "pi_hi": (
            "band",
            np.array([b.pi_hi for b in all_bands], dtype=np.int64),
            {"description": GROUP_COORDS["pi_hi"]},
        ),
    }
    spectrum_record = None
    if spectrum is not None:
        spectrum_record = _spectrum_record(spectrum, now)
        spec_data, spec_coords = _spectrum_arrays(spectrum)
        data.update(spec_data)
        coords.update(spec_coords)
    full = dict(attrs)
    full.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        TIMEPIXR=0.5,
        TIMEUNIT="s",
        created=now,
        software=software_versions(),
        schemes=schemes,
        spectrum=spectrum_record,
    )
    full.setdefault("manifest", {})  # filled in by the store when the group is written
    missing = [k for k in REQUIRED_GROUP_ATTRS if k not in full]
    if missing:
        raise ValueError(f"group attributes missing: {', '.join(missing)}")
    return xr.Dataset(data, coords=coords, attrs=full)


def _scheme_rows(ds: xr.Dataset, scheme: str) -> NDArray[np.intp]:
    names = np.array(ds["scheme"].values.tolist(), dtype=object)
    return np.flatnonzero(names == scheme)


def scheme_parts(ds: xr.Dataset) -> list[SchemePart]:
    """The schemes of a stored exposure group, as parts to store again (carried over)."""
    parts = []
    for name, record in ds.attrs["schemes"].items():
        rows = _scheme_rows(ds, name)
        bands = tuple(
            Band(int(lo), int(hi))
            for lo, hi in zip(ds["pi_lo"].values[rows], ds["pi_hi"].values[rows], strict=True)
        )
        variables = {v: np.asarray(ds[v].values[rows], dtype=np.float64) for v in DATA_VARS}
        parts.append(SchemePart(name, bands, variables, dict(record)))
    return parts


#: Exposure attributes a scheme's view leaves out (the others are copied).
_GROUP_ONLY = ("schemes", "backends", "manifest", "spectrum")


def scheme_view(ds: xr.Dataset, scheme: str, where: str) -> xr.Dataset:
    """One scheme of an exposure group, as a Dataset of its own.

    Dims (band, time) with ``band`` = 0..n-1; coordinates time, e_lo, e_hi (keV),
    pi_lo, pi_hi. Attributes: the exposure's (obsid, expid, instrument, grid, inputs,
    regions...) plus the scheme's record flattened (scheme, scheme_hash,
    scheme_definition, input_hash, backend, abscorr, exposure in s, bands...) and its
    backend's ``gti``, ``provenance`` and ``backend_info``.

    Raises
    ------
    StoreError
        If the group lacks the scheme, a variable or a coordinate.
    """
    for name in DATA_VARS:
        if name not in ds:
            raise StoreError(f"{where}: variable {name} missing; rebuild it with xlcat build")
    for name in GROUP_COORDS:
        if name not in ds.coords:
            raise StoreError(f"{where}: coordinate {name} missing; rebuild it with xlcat build")
    record = ds.attrs.get("schemes", {}).get(scheme)
    if record is None:
        have = ", ".join(sorted(ds.attrs.get("schemes", {}))) or "none"
        raise StoreError(f"{where}: no scheme {scheme} (schemes: {have})")
    rows = _scheme_rows(ds, scheme)
    # derived from stored variables (never built from new arrays, which would make xarray
    # import dask.array just to check the type): band = the index within the scheme
    view = ds.drop_dims("channel", errors="ignore").isel(band=rows).drop_vars("scheme")
    # keV from the group's PI scale (energy_scale; EPIC's eV when absent, docs/semantics.md §20)
    scale = scale_from_record(ds.attrs.get("energy_scale"))
    e_lo = scale.kev_array(view["pi_lo"]).assign_attrs(units="keV", description=BAND_COORDS["e_lo"])
    e_hi = scale.kev_array(view["pi_hi"]).assign_attrs(units="keV", description=BAND_COORDS["e_hi"])
    view = view.drop_vars("scheme_band").assign_coords(
        band=view["scheme_band"].assign_attrs(description="band index"), e_lo=e_lo, e_hi=e_hi
    )
    attrs = {k: v for k, v in ds.attrs.items() if k not in _GROUP_ONLY}
    backend = record.get("backend")
    facts = ds.attrs.get("backends", {}).get(backend, {})
    attrs.update(record)
    attrs.update(
        scheme=scheme,
        backend_info=facts.get("info"),
        gti=facts.get("gti", []),
        provenance=facts.get("provenance", {}),
    )
    view.attrs = attrs
    return view


def spectrum_view(ds: xr.Dataset, where: str) -> xr.Dataset:
    """The spectra of an exposure group, as a Dataset of their own.

    Dims (channel,); variables ``src`` and ``bkg`` (counts; ``bkg`` all NaN for a
    source-only exposure), ``net_rate`` (count/s/keV: ``(src - backscal_ratio bkg) /
    (exposure dE)``; the source rate alone without a background); coordinates
    ``channel``, ``chan_pi_lo``, ``chan_pi_hi``, ``chan_e_lo``, ``chan_e_hi`` (keV).
    Attributes: the exposure's address and grid (obsid, expid, instrument...) and the
    ``spectrum`` record flattened (``exposure``, ``src_backscal``, ``bkg_backscal``,
    ``backscal_ratio``, ``areascal``, ``channels``, ``responses``...).

    Raises
    ------
    StoreError
        If the group holds no spectra.
    """
    part = spectrum_part(ds)
    if part is None:
        raise StoreError(
            f"{where}: no spectra (attribute spectrum is null); rebuild it with xlcat build "
            "(the native backend stores the spectra of every exposure)"
        )
    record = part.attrs
    keep = [c for c in CHANNEL_COORDS if c in ds.coords]
    spec = ds[["spec_src", *(["spec_bkg"] if part.bkg is not None else [])]]
    spec = spec.drop_vars([c for c in spec.coords if c not in keep])
    src = spec["spec_src"].astype(np.float64)
    if part.bkg is not None:
        bkg = spec["spec_bkg"].astype(np.float64)
        ratio = float(record["backscal_ratio"]) if record.get("backscal_ratio") else 0.0
    else:
        bkg = xr.full_like(src, np.nan)
        ratio = 0.0
    exposure = float(record["exposure"])
    width = spec["chan_e_hi"] - spec["chan_e_lo"]
    net = (src - ratio * bkg.fillna(0.0)) / (exposure * width) if exposure > 0 else src * np.nan
    out = xr.Dataset(
        {
            "src": src.assign_attrs(units="count", description=SPECTRUM_VARS["spec_src"]),
            "bkg": bkg.assign_attrs(units="count", description=SPECTRUM_VARS["spec_bkg"]),
            "net_rate": net.assign_attrs(
                units="count/s/keV",
                description="(src - backscal_ratio * bkg) / (exposure * channel width)",
            ),
        }
    )
    attrs = {
        k: ds.attrs[k]
        for k in (
            "obsid",
            "expid",
            "instrument",
            "dt",
            "tstart",
            "tstop",
            "MJDREF",
            "TIMESYS",
            "TIMEREF",
        )
        if k in ds.attrs
    }
    attrs.update(record)
    out.attrs = attrs
    return out
