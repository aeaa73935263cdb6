"""Writing an exposure group's Zarr v3 files directly: the bytes ``xarray.Dataset.to_zarr`` writes.

:meth:`catalog.store.Store.write_group` writes a group of the fixed layout of
``schemas/store_layout.py`` (float64 and int64 arrays, one string coordinate, one chunk
per array) with this module instead of going through xarray and zarr: the same
``zarr.json`` documents and the same chunk files, byte for byte
(``tests/catalog/test_zarrfiles.py`` compares them with what ``to_zarr`` writes with the
encoding :func:`catalog.store._encoding` gives), at a fraction of the cost (no event loop,
no per-array round trips, no attribute rewrites). A Dataset outside that layout (another
dtype, an encoding or ``_FillValue`` of its own, an empty array, an array large enough
to be sharded, a coordinate no data variable refers to) is refused with None, and the
store writes it with ``to_zarr``.

What ``to_zarr`` writes, and this module too, for each variable:

- ``<name>/zarr.json``: shape, ``data_type`` (float64, int64 or string), one regular
  chunk of the whole shape, chunk keys ``v2`` with separator ``.``, ``fill_value``
  (NaN, 0, ""), the codecs ``bytes`` (little endian; ``vlen-utf8`` for strings),
  ``zstd`` (level :data:`ZSTD_LEVEL`, no checksum) and ``crc32c``, the variable's
  attributes (then ``coordinates``, the non-index coordinates on the variable's
  dimensions, sorted, for a data variable, and ``_FillValue``, base64 of NaN, for a
  float), ``dimension_names``; JSON with an indent of 2;
- one chunk file, ``0.0`` (two dimensions) or ``0``, omitted when every value equals the
  fill value (zarr's ``write_empty_chunks = False``).

The group's ``zarr.json`` holds the Dataset's attributes, with ``manifest`` (every file's
size and CRC-32) filled in, as :class:`catalog.store.Store` writes it (indent 1).
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import google_crc32c
import numpy as np
from numcodecs.vlen import VLenUTF8
from numcodecs.zstd import Zstd

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["ZSTD_LEVEL", "GroupFiles", "group_files", "write_group_files", "attr_value"]

#: zstd level of every chunk (the store's encoding uses the same).
ZSTD_LEVEL = 3

_NAN_FILL = base64.standard_b64encode(np.array(np.nan, "<f8").tobytes()).decode("ascii")
_CODEC_TAIL: list[dict[str, Any]] = [
    {"name": "zstd", "configuration": {"level": ZSTD_LEVEL, "checksum": False}},
    {"name": "crc32c"},
]
_RESERVED_ATTRS = ("_FillValue", "coordinates", "missing_value", "scale_factor", "add_offset")


def attr_value(value: Any) -> Any:
    """An attribute value as xarray stores it in Zarr: array -> list, numpy scalar -> Python."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class GroupFiles:
    """The files of one group, relative path to content (the group's own zarr.json apart).

    Attributes
    ----------
    files : dict of str to bytes
        ``<variable>/zarr.json`` and the chunk files.
    attrs : dict
        The group's attributes (JSON-able), without the manifest.
    """

    files: dict[str, bytes]
    attrs: dict[str, Any]

    def manifest(self) -> dict[str, list[int]]:
        """Every file: path -> [size, CRC-32], in the order of the store's manifest."""
        ordered = sorted(self.files, key=lambda p: PurePosixPath(p).parts)
        return {p: [len(self.files[p]), zlib.crc32(self.files[p])] for p in ordered}


def _chunk(raw: bytes) -> bytes:
    compressed = Zstd(level=ZSTD_LEVEL, checksum=False).encode(raw)
    crc = int(google_crc32c.value(bytes(compressed)))
    return bytes(compressed) + crc.to_bytes(4, "little")


def _array(
    shape: tuple[int, ...],
    data_type: str,
    fill: Any,
    first_codec: dict[str, Any],
    attrs: dict[str, Any],
    dims: tuple[str, ...],
) -> bytes:
    meta = {
        "shape": list(shape),
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shape)}},
        "chunk_key_encoding": {"name": "v2", "configuration": {"separator": "."}},
        "fill_value": fill,
        "codecs": [first_codec, *_CODEC_TAIL],
        "attributes": attrs,
        "dimension_names": list(dims),
        "zarr_format": 3,
        "node_type": "array",
        "storage_transformers": [],
    }
    return json.dumps(meta, allow_nan=True, indent=2).encode()


def group_files(ds: xr.Dataset, max_chunk_bytes: int) -> GroupFiles | None:
    """The files ``to_zarr`` would write for ``ds``, or None when ``ds`` is outside the layout.

    Parameters
    ----------
    ds : xarray.Dataset
        An exposure group (:func:`catalog.layout.exposure_dataset`).
    max_chunk_bytes : int
        Arrays larger than this (counted at 8 bytes an item) are sharded by the store:
        None is returned for them.

    Returns
    -------
    GroupFiles or None
    """
    files: dict[str, bytes] = {}
    index_names = set(ds.dims)
    coords = {str(n): v for n, v in ds.coords.items() if n not in index_names}
    attached: set[str] = set()
    for name, var in ds.variables.items():
        name = str(name)
        shape = tuple(int(n) for n in var.shape)
        if not shape or min(shape) == 0 or int(np.prod(shape)) * 8 > max_chunk_bytes:
            return None
        if var.encoding or any(k in var.attrs for k in _RESERVED_ATTRS):
            return None
        attrs = {str(k): attr_value(v) for k, v in var.attrs.items()}
        dims = tuple(str(d) for d in var.dims)
        if name not in ds.coords:
            mine = sorted(c for c, v in coords.items() if set(v.dims) <= set(dims))
            attached.update(mine)
            if mine:
                attrs["coordinates"] = " ".join(mine)
        values = var.values
        key = ".".join("0" for _ in shape)
        if values.dtype == np.float64:
            attrs["_FillValue"] = _NAN_FILL
            meta = _array(shape, "float64", "NaN", _bytes_codec(), attrs, dims)
            empty = bool(np.isnan(values).all())
            raw = None if empty else np.ascontiguousarray(values, "<f8").tobytes()
        elif values.dtype == np.int64:
            meta = _array(shape, "int64", 0, _bytes_codec(), attrs, dims)
            empty = not values.any()
            raw = None if empty else np.ascontiguousarray(values, "<i8").tobytes()
        elif values.dtype == object and all(isinstance(v, str) for v in values.flat):
            codec = {"name": "vlen-utf8", "configuration": {}}
            meta = _array(shape, "string", "", codec, attrs, dims)
            flat = np.ascontiguousarray(values).ravel()
            empty = all(v == "" for v in flat)
            raw = None if empty else bytes(VLenUTF8().encode(flat))
        else:
            return None
        files[f"{name}/zarr.json"] = meta
        if raw is not None:
            files[f"{name}/{key}"] = _chunk(raw)
    if set(coords) - attached:
        return None  # xarray would record them in a global "coordinates" attribute
    attrs = {str(k): attr_value(v) for k, v in ds.attrs.items()}
    return GroupFiles(files, attrs)


def _bytes_codec() -> dict[str, Any]:
    return {"name": "bytes", "configuration": {"endian": "little"}}


def write_group_files(folder: Path, group: GroupFiles, extra_attrs: Mapping[str, Any]) -> None:
    """Write the files of ``group`` into the empty folder ``folder``, then its ``zarr.json``.

    ``extra_attrs`` (the manifest) are set in the group's attributes, in place of an
    existing key of that name or after the others.
    """
    for rel, content in group.files.items():
        path = folder / rel
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    attrs = dict(group.attrs)
    attrs.update(extra_attrs)
    meta = {"attributes": attrs, "zarr_format": 3, "node_type": "group"}
    (folder / "zarr.json").write_text(json.dumps(meta, indent=1))
