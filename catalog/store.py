"""The Zarr v3 store: creating it, writing (obsid, scheme) groups atomically, reading them back.

Atomicity: a group is written in full to a staging folder beside the store
(``.<store name>.staging/``, same filesystem) and then moved into place with one
``rename``. A reader therefore sees either no group or a complete one, never a
half-written one; a crash leaves at most junk in the staging folder, never in
the store. Replacing a group renames the old one aside first, so the only
window is a moment where the group is absent. Derived products (timing results)
live in ``<store>/products/<name>/`` and are written the same way
(:meth:`Store.write_product`). This relies on POSIX rename
semantics: a local disk, or a shared cluster filesystem (NFS, Lustre, GPFS).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xarray as xr

from schemas.errors import StoreError
from schemas.store_layout import FORMAT_NAME, FORMAT_VERSION, PRODUCTS_GROUP

__all__ = ["PRODUCTS_DIR", "Store"]

_GROUP_META = {"zarr_format": 3, "node_type": "group", "attributes": {}}


_PRODUCT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

#: Folder of the derived products inside a store.
PRODUCTS_DIR = PRODUCTS_GROUP


def _is_obsid(name: str) -> bool:
    return len(name) == 10 and name.isdigit()


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


class Store:
    """An xlcat store on a filesystem.

    Parameters
    ----------
    path : str or os.PathLike
        The store folder (``*.zarr``).

    Raises
    ------
    StoreError
        If the folder does not exist or is not an xlcat store (use :meth:`create`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        meta = self.path / "zarr.json"
        if not meta.is_file():
            raise StoreError(
                f"store {self.path}: not found (no zarr.json); build it with xlcat build"
            )
        try:
            attrs = json.loads(meta.read_text()).get("attributes", {})
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"store {self.path}: unreadable zarr.json ({exc})") from None
        if attrs.get("format") != FORMAT_NAME:
            raise StoreError(
                f"store {self.path}: a Zarr hierarchy but not an xlcat store "
                f"(root attribute format={attrs.get('format')!r}); choose another store path"
            )
        version = attrs.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreError(
                f"store {self.path}: format_version {version!r} is newer than this xlcat "
                f"understands ({FORMAT_VERSION}); upgrade xlcat"
            )
        self.attrs = attrs

    @classmethod
    def create(cls, path: str | os.PathLike[str]) -> Store:
        """Open the store at ``path``, creating an empty one if nothing is there.

        Raises
        ------
        StoreError
            If ``path`` exists but is not an xlcat store.
        """
        p = Path(path)
        if p.exists() and not (p / "zarr.json").exists():
            if not p.is_dir() or any(p.iterdir()):
                raise StoreError(
                    f"store {p}: exists and is not an xlcat store; choose another store path"
                )
        if not (p / "zarr.json").exists():
            p.mkdir(parents=True, exist_ok=True)
            meta = dict(_GROUP_META)
            meta["attributes"] = {
                "format": FORMAT_NAME,
                "format_version": FORMAT_VERSION,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "description": "xlcat light-curve catalogue: one group per (obsid, energy scheme)",
            }
            _write_json_atomic(p / "zarr.json", meta)
        return cls(p)

    # -- layout -----------------------------------------------------------------
    def group_path(self, obsid: str, scheme: str) -> Path:
        """Folder of the (obsid, scheme) group."""
        return self.path / obsid / scheme

    @property
    def staging(self) -> Path:
        """Staging folder beside the store (same filesystem, so rename is atomic)."""
        return self.path.parent / f".{self.path.name}.staging"

    def groups(self) -> Iterator[tuple[str, str]]:
        """(obsid, scheme) of every complete group, sorted."""
        for obs_dir in sorted(p for p in self.path.iterdir() if p.is_dir() and _is_obsid(p.name)):
            for grp in sorted(p for p in obs_dir.iterdir() if p.is_dir()):
                if (grp / "zarr.json").is_file():
                    yield obs_dir.name, grp.name

    def group_attrs(self, obsid: str, scheme: str) -> dict[str, Any]:
        """Attributes of a group, read from its metadata only (no arrays)."""
        meta = self.group_path(obsid, scheme) / "zarr.json"
        try:
            attrs: dict[str, Any] = json.loads(meta.read_text())["attributes"]
            return attrs
        except FileNotFoundError:
            raise StoreError(
                f"store {self.path}: no group {obsid}/{scheme}; see xlcat ls {self.path}"
            ) from None

    def has_group(self, obsid: str, scheme: str) -> bool:
        """Whether the (obsid, scheme) group exists."""
        return (self.group_path(obsid, scheme) / "zarr.json").is_file()

    # -- reading and writing ----------------------------------------------------------
    def read_group(self, obsid: str, scheme: str) -> xr.Dataset:
        """The (obsid, scheme) Dataset, loaded into memory."""
        if not self.has_group(obsid, scheme):
            raise StoreError(
                f"store {self.path}: no group {obsid}/{scheme}; see xlcat ls {self.path}"
            )
        with xr.open_zarr(
            self.path, group=f"{obsid}/{scheme}", consolidated=False, zarr_format=3
        ) as ds:
            loaded: xr.Dataset = ds.load()
            return loaded

    def write_group(self, obsid: str, scheme: str, ds: xr.Dataset) -> Path:
        """Write a group atomically, replacing any previous one.

        Parameters
        ----------
        obsid, scheme : str
            Group address.
        ds : xarray.Dataset
            The complete group.

        Returns
        -------
        pathlib.Path
            The group folder.
        """
        return self._replace(
            ds, self.group_path(obsid, scheme), f"{obsid}-{scheme}", parent_attrs={}
        )

    def _staging_folder(self, label: str) -> Path:
        """A new, empty folder of this writer's own inside the staging folder.

        Another writer removes the shared staging folder when it finds it empty, so
        creating the staging folder and then a folder inside it can race with that
        removal (``mkdir(exist_ok=True)`` itself raises when the folder vanishes
        between its two checks). Once this writer's folder exists, the staging folder
        is not empty and stays; a lost race is simply tried again.
        """
        for _ in range(100):
            tmp = self.staging / f"{label}-{uuid.uuid4().hex}"
            try:
                self.staging.mkdir(exist_ok=True)
                tmp.mkdir()
            except (FileExistsError, FileNotFoundError):
                continue
            return tmp
        raise StoreError(
            f"store {self.path}: could not create a staging folder in {self.staging}; "
            "check that the store's folder is writable"
        )

    def _replace(
        self, ds: xr.Dataset, target: Path, label: str, parent_attrs: dict[str, Any]
    ) -> Path:
        """Write ``ds`` whole into the staging folder, then rename it onto ``target``.

        The parent group (``target.parent``) is created with ``parent_attrs`` if missing.
        """
        tmp = self._staging_folder(label)
        try:
            ds.to_zarr(tmp, mode="w-", zarr_format=3, consolidated=False)
            target.parent.mkdir(exist_ok=True)
            if not (target.parent / "zarr.json").exists():
                _write_json_atomic(
                    target.parent / "zarr.json", {**_GROUP_META, "attributes": parent_attrs}
                )
            old = None
            if target.exists():
                old = self.staging / f"old-{label}-{uuid.uuid4().hex}"
                os.rename(target, old)
            os.rename(tmp, target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
            try:
                self.staging.rmdir()
            except OSError:
                pass
        return target

    # -- products ----------------------------------------------------------------------
    def product_path(self, name: str) -> Path:
        """Folder of the product ``name`` (``<store>/products/<name>``)."""
        if not isinstance(name, str) or not _PRODUCT_NAME.match(name):
            raise StoreError(
                f"store {self.path}: product name {name!r} is invalid; use 1-100 letters, "
                "digits, '_', '-' or '.', starting with a letter or digit"
            )
        return self.path / PRODUCTS_DIR / name

    def products(self) -> list[str]:
        """Names of the complete products in the store, sorted."""
        folder = self.path / PRODUCTS_DIR
        if not folder.is_dir():
            return []
        return sorted(
            p.name for p in folder.iterdir() if p.is_dir() and (p / "zarr.json").is_file()
        )

    def has_product(self, name: str) -> bool:
        """Whether the product ``name`` exists."""
        return (self.product_path(name) / "zarr.json").is_file()

    def product_attrs(self, name: str) -> dict[str, Any]:
        """Attributes of a product, read from its metadata only (no arrays)."""
        meta = self.product_path(name) / "zarr.json"
        try:
            attrs: dict[str, Any] = json.loads(meta.read_text())["attributes"]
            return attrs
        except FileNotFoundError:
            raise StoreError(
                f"store {self.path}: no product {name!r}; see xlcat products {self.path}"
            ) from None

    def read_product(self, name: str) -> xr.Dataset:
        """The product ``name`` as a Dataset, loaded into memory.

        Raises
        ------
        StoreError
            If there is no such product.
        """
        if not self.has_product(name):
            have = ", ".join(self.products()) or "none"
            raise StoreError(f"store {self.path}: no product {name!r} (products: {have})")
        with xr.open_zarr(
            self.path, group=f"{PRODUCTS_DIR}/{name}", consolidated=False, zarr_format=3
        ) as ds:
            loaded: xr.Dataset = ds.load()
            return loaded

    def write_product(self, name: str, ds: xr.Dataset, *, overwrite: bool = False) -> Path:
        """Write a product atomically into ``<store>/products/<name>``.

        Same scheme as :meth:`write_group`: the Dataset is written whole into the
        staging folder beside the store and renamed into place.

        Parameters
        ----------
        name : str
            Product name (letters, digits, ``_``, ``-``, ``.``).
        ds : xarray.Dataset
            The product; its attributes must be JSON-able.
        overwrite : bool, default False
            Replace an existing product of that name.

        Returns
        -------
        pathlib.Path
            The product folder.

        Raises
        ------
        StoreError
            For an invalid name, or an existing product without ``overwrite``.
        """
        target = self.product_path(name)
        if target.exists() and not overwrite:
            raise StoreError(
                f"store {self.path}: product {name!r} exists; choose another name or overwrite it"
            )
        return self._replace(
            ds,
            target,
            f"product-{name}",
            parent_attrs={"description": "xlcat derived products, one group each"},
        )
