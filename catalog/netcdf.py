"""NetCDF-valid attributes: the catalogue's documented JSON rule.

netCDF attributes hold only text, numbers and flat arrays of numbers; the catalogue's
attributes are richer (dicts of inputs and provenance, GTI tables, booleans, None). By
default (``catalog.open(path)``, i.e. ``attrs="netcdf"``) every Dataset the catalogue
returns (light curves, spectra, segments, saved products) and every timing result
computed from its segments (power spectra, lag-energy, lag-frequency, cross spectra) or
light curves (cospectra) follows one rule, so a plain ``ds.to_netcdf(path)`` writes it:

- an attribute whose value is a string, a number (not a boolean) or a non-empty flat
  list of numbers is kept as it is;
- any other value (dict, list of lists, of strings or of dicts, empty list, boolean,
  None) is replaced by its JSON text, and its name is added to the attribute
  ``json_attrs``: the names of the JSON-encoded attributes, separated by spaces;
- the same holds for the attributes of every variable.

:func:`decode_attrs` (or :func:`python_attrs` for a whole Dataset) inverts it, also on
a Dataset read back with ``xarray.open_dataset``. ``catalog.open(path, attrs="python")``
gives the rich Python values instead. The timing, plotting and export functions accept
either form; a timing result has the form of its input (:func:`same_form`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from numbers import Number
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "JSON_ATTRS",
    "decode_attrs",
    "encode_attrs",
    "has_python_attrs",
    "netcdf_attrs",
    "python_attrs",
    "same_form",
]

#: Name of the attribute listing the JSON-encoded attributes (space separated).
JSON_ATTRS = "json_attrs"


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python ones (for JSON)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, Number | np.number) and not isinstance(value, bool | np.bool_)


def _netcdf_valid(value: Any) -> bool:
    if isinstance(value, str) or _is_number(value):
        return True
    if isinstance(value, np.ndarray):
        items = list(value) if value.ndim == 1 else []
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return False
    return bool(items) and all(_is_number(v) for v in items)


def encode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes following the rule of the module docstring.

    Parameters
    ----------
    attrs : mapping of str to any
        Already-encoded attributes (with ``json_attrs``) are returned unchanged.

    Returns
    -------
    dict
    """
    if JSON_ATTRS in attrs:
        return dict(attrs)
    out: dict[str, Any] = {}
    encoded: list[str] = []
    for key, value in attrs.items():
        if _netcdf_valid(value):
            out[key] = value
        else:
            out[key] = json.dumps(_plain(value))
            encoded.append(str(key))
    if encoded:
        out[JSON_ATTRS] = " ".join(encoded)
    return out


def decode_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`encode_attrs` (attributes without ``json_attrs`` are unchanged).

    Parameters
    ----------
    attrs : mapping of str to any

    Returns
    -------
    dict
    """
    out = dict(attrs)
    names = out.pop(JSON_ATTRS, None)
    if not names:
        return out
    for key in str(names).split():
        if key in out:
            out[key] = json.loads(out[key])
    return out


def _map(ds: xr.Dataset, func: Any) -> xr.Dataset:
    out = ds.copy()  # shallow: new Variables with their own attrs dicts, data shared
    out.attrs = func(ds.attrs)
    for var in out.variables.values():
        var.attrs = func(var.attrs)
    return out


def netcdf_attrs(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy of ``ds`` whose attributes (its own and its variables') are netCDF-valid.

    Parameters
    ----------
    ds : xarray.Dataset

    Returns
    -------
    xarray.Dataset
    """
    return _map(ds, encode_attrs)


def python_attrs(ds: xr.Dataset) -> xr.Dataset:
    """A shallow copy of ``ds`` with JSON-encoded attributes decoded (see the module docstring).

    Parameters
    ----------
    ds : xarray.Dataset

    Returns
    -------
    xarray.Dataset
    """
    return _map(ds, decode_attrs)


def _python_form(attrs: Mapping[str, Any]) -> bool:
    return JSON_ATTRS not in attrs and not all(_netcdf_valid(v) for v in attrs.values())


def has_python_attrs(ds: xr.Dataset) -> bool:
    """Whether ``ds`` (or one of its variables) holds an attribute that is not netCDF-valid.

    Parameters
    ----------
    ds : xarray.Dataset

    Returns
    -------
    bool
        True for the rich Python form (``catalog.open(path, attrs="python")``); False for
        the netCDF form, and for a Dataset whose attributes are all plain anyway.
    """
    return _python_form(ds.attrs) or any(_python_form(v.attrs) for v in ds.variables.values())


def same_form(result: xr.Dataset, *sources: xr.Dataset) -> xr.Dataset:
    """``result`` with its attributes in the form of the Datasets it was computed from.

    Parameters
    ----------
    result : xarray.Dataset
        A result with Python-valued attributes.
    *sources : xarray.Dataset
        Its inputs (a segments Dataset, light curves).

    Returns
    -------
    xarray.Dataset
        ``result`` itself when a source has Python-form attributes
        (:func:`has_python_attrs`), else :func:`netcdf_attrs` of it.
    """
    if any(has_python_attrs(s) for s in sources):
        return result
    return netcdf_attrs(result)
