"""Derived products (timing results) saved in a store: attributes, freshness, files.

A product is any xarray Dataset computed from the store's light curves, saved
as ``<store>/products/<name>/`` by :meth:`catalog.Catalog.save_product`.
Products made from :meth:`catalog.Catalog.segments` carry their inputs as
attributes (``scheme``, ``scheme_hash``, ``obsids``, ``input_hash`` per obsid,
and the segment and spectral options), so :func:`input_status` can tell whether
the light curves they came from have been rebuilt since.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from catalog.layout import software_versions
from catalog.netcdf import netcdf_attrs, python_attrs
from catalog.store import Store
from schemas.errors import ConfigError, StoreError
from schemas.store_layout import PRODUCT_FORMAT_NAME

__all__ = ["input_status", "jsonable", "prepare_product", "products_table", "write_file"]


def jsonable(value: Any) -> Any:
    """A copy of ``value`` made of JSON types: numpy scalars and arrays converted,
    tuples as lists, non-finite floats as None.

    Parameters
    ----------
    value : Any
        Attribute value (nested dicts and lists allowed).

    Returns
    -------
    Any
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.str_):
        return str(value)
    return value


def prepare_product(ds: xr.Dataset, name: str) -> xr.Dataset:
    """The Dataset as saved: JSON-able attributes plus the product's identity.

    Adds ``format`` (``xlcat-product``), ``product_name``, ``created`` (UTC)
    and ``software``; keeps every other attribute (parameters, inputs).

    Parameters
    ----------
    ds : xarray.Dataset
        A product (e.g. from :func:`catalog.timing.lag_energy`).
    name : str
        Its name in the store.

    Returns
    -------
    xarray.Dataset
        A shallow copy; ``ds`` is not modified.
    """
    out = ds.copy()
    attrs = jsonable(dict(ds.attrs))
    attrs.update(
        format=PRODUCT_FORMAT_NAME,
        product_name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        software=software_versions(),
    )
    out.attrs = attrs
    for var in out.variables.values():
        var.attrs = jsonable(dict(var.attrs))
    return out


def input_status(store: Store, attrs: dict[str, Any]) -> str:
    """Whether a product's input light curves are unchanged in the store.

    Parameters
    ----------
    store : Store
        The store holding the product.
    attrs : dict
        The product's attributes.

    Returns
    -------
    str
        ``"current"`` when every ``input_hash`` (keyed ``obsid/expid``) matches the
        stored scheme's; ``"changed: <groups>"`` or ``"missing: <groups>"`` otherwise;
        ``"unknown"`` when the product records no input hashes.
    """
    hashes = attrs.get("input_hash")
    scheme = attrs.get("scheme")
    if not isinstance(hashes, dict) or not hashes or not scheme:
        return "unknown"
    missing, changed = [], []
    for key, h in sorted(hashes.items()):
        obsid, _, expid = key.partition("/")
        try:
            rec = store.group_attrs(obsid, expid)["schemes"].get(scheme) if expid else None
        except StoreError:
            rec = None
        if rec is None:
            missing.append(key)
        elif rec.get("input_hash") != h:
            changed.append(key)
    if missing:
        return "missing: " + ",".join(missing)
    if changed:
        return "changed: " + ",".join(changed)
    return "current"


def products_table(store: Store) -> pd.DataFrame:
    """One row per saved product, from metadata only.

    Parameters
    ----------
    store : Store

    Returns
    -------
    pandas.DataFrame
        Columns: name, product, scheme, obsids (those with segments, or read),
        n_segments, created, inputs (:func:`input_status`).
    """
    rows = []
    for name in store.products():
        a = store.product_attrs(name)
        obsids = a.get("obsids_used") or a.get("obsids") or []
        rows.append(
            {
                "name": name,
                "product": a.get("product", ""),
                "scheme": a.get("scheme", ""),
                "obsids": ",".join(obsids) if len(obsids) <= 3 else f"{len(obsids)} observations",
                "n_segments": a.get("n_segments", ""),
                "created": a.get("created", ""),
                "inputs": input_status(store, a),
            }
        )
    return pd.DataFrame(
        rows, columns=["name", "product", "scheme", "obsids", "n_segments", "created", "inputs"]
    )


def write_file(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write a product to a file: Zarr v3 for ``*.zarr``, else netCDF-3 (scipy).

    netCDF attributes cannot hold dicts, lists of strings, booleans or None: the file
    follows the catalogue's JSON rule (:mod:`catalog.netcdf`: such attributes as JSON text,
    named in ``json_attrs``), so ``catalog.netcdf.python_attrs(xr.open_dataset(path))``
    gives the attributes back.

    Parameters
    ----------
    ds : xarray.Dataset
    path : str or os.PathLike
        Output path; an existing file is replaced.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        If the folder does not exist.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"output {path}: folder {path.parent} does not exist; create it first")
    ds = python_attrs(ds)
    if path.suffix == ".zarr":
        out = ds.copy()
        out.attrs = jsonable(dict(ds.attrs))
        out.to_zarr(path, mode="w", zarr_format=3, consolidated=False)
        return path
    out = netcdf_attrs(ds)
    try:
        out.to_netcdf(path, engine="scipy")
    except (OSError, ValueError, TypeError) as exc:
        raise StoreError(f"output {path}: cannot write netCDF ({exc}); use a .zarr path") from None
    return path
