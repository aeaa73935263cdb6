"""Assembling the xarray Dataset of one (obsid, scheme) group, and checking one read back."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import platform
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from schemas.energy import Band
from schemas.errors import StoreError
from schemas.store_layout import (
    BAND_COORDS,
    DATA_VARS,
    FORMAT_NAME,
    FORMAT_VERSION,
    REQUIRED_GROUP_ATTRS,
    TEXT_RECORD_ENCODING,
    UNITS,
)

__all__ = [
    "lightcurve_dataset",
    "check_dataset",
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


def software_versions() -> dict[str, str]:
    """Versions of xlcat and the libraries that shape its numbers."""
    out = {"python": platform.python_version()}
    for dist in ("xlcat", "numpy", "scipy", "astropy", "xarray", "zarr", "dask", "distributed"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def lightcurve_dataset(
    *,
    time: NDArray[np.float64],
    bands: Sequence[Band],
    variables: dict[str, NDArray[np.float64]],
    attrs: dict[str, Any],
) -> xr.Dataset:
    """Build the Dataset of one (obsid, scheme) group.

    Parameters
    ----------
    time : numpy.ndarray, shape (n_time,)
        Bin centres, seconds (MET).
    bands : sequence of Band
        The scheme's bands, in order.
    variables : dict
        Every name of :data:`schemas.store_layout.DATA_VARS` to an array of shape
        (n_bands, n_time).
    attrs : dict
        Group attributes; ``format``, ``format_version``, ``created``,
        ``software``, ``TIMEPIXR``, ``bands`` and ``exposure`` are filled in here.

    Returns
    -------
    xarray.Dataset
        Dims (band, time); float64 variables; JSON-able attributes.
    """
    n_band, n_time = len(bands), len(time)
    data = {}
    for name, doc in DATA_VARS.items():
        arr = np.asarray(variables[name], dtype=np.float64)
        if arr.shape != (n_band, n_time):
            raise ValueError(f"{name} has shape {arr.shape}, expected {(n_band, n_time)}")
        data[name] = (("band", "time"), arr, {"units": UNITS[name], "description": doc})
    pi_lo = np.array([b.pi_lo for b in bands], dtype=np.int64)
    pi_hi = np.array([b.pi_hi for b in bands], dtype=np.int64)
    dt = float(attrs["dt"])
    fracexp = np.asarray(variables["fracexp"], dtype=np.float64)
    exposure = (np.nansum(fracexp, axis=1) * dt).tolist()
    coords = {
        "time": (
            "time",
            np.asarray(time, dtype=np.float64),
            {"units": "s", "description": "bin centre, mission elapsed time (TIMEPIXR = 0.5)"},
        ),
        "band": ("band", np.arange(n_band, dtype=np.int64), {"description": "band index"}),
        "e_lo": ("band", pi_lo / 1000.0, {"units": "keV", "description": BAND_COORDS["e_lo"]}),
        "e_hi": ("band", pi_hi / 1000.0, {"units": "keV", "description": BAND_COORDS["e_hi"]}),
        "pi_lo": ("band", pi_lo, {"description": BAND_COORDS["pi_lo"]}),
        "pi_hi": ("band", pi_hi, {"description": BAND_COORDS["pi_hi"]}),
    }
    full = dict(attrs)
    full.update(
        format=FORMAT_NAME,
        format_version=FORMAT_VERSION,
        TIMEPIXR=0.5,
        TIMEUNIT="s",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        software=software_versions(),
        exposure=float(max(exposure)) if exposure else 0.0,
        bands=[
            {
                "band": i,
                "pi_lo": int(b.pi_lo),
                "pi_hi": int(b.pi_hi),
                "e_lo": b.pi_lo / 1000.0,
                "e_hi": b.pi_hi / 1000.0,
                "exposure": float(exposure[i]),
            }
            for i, b in enumerate(bands)
        ],
    )
    missing = [k for k in REQUIRED_GROUP_ATTRS if k not in full]
    if missing:
        raise ValueError(f"group attributes missing: {', '.join(missing)}")
    return xr.Dataset(data, coords=coords, attrs=full)


def check_dataset(ds: xr.Dataset, where: str) -> None:
    """Raise StoreError if a group read back lacks a variable, coordinate or attribute."""
    for name in DATA_VARS:
        if name not in ds:
            raise StoreError(f"{where}: variable {name} missing; rebuild the group")
    for name in (*BAND_COORDS, "time"):
        if name not in ds.coords:
            raise StoreError(f"{where}: coordinate {name} missing; rebuild the group")
    for name in REQUIRED_GROUP_ATTRS:
        if name not in ds.attrs:
            raise StoreError(f"{where}: attribute {name} missing; rebuild the group")
