"""The Zarr v3 store: writing exposure groups atomically and checksummed, reading them back.

Layout (format 3, ``schemas/STORE_FORMAT.md``): one group per exposure,
``<store>/<obsid>/<exposure>/``, holding every energy scheme's bands along one
``band`` dimension.

Atomicity: a group is written in full to a staging folder beside the store
(``.<store name>.staging/``, same filesystem) and then moved into place with one
``rename``. A reader therefore sees either no group or a complete one, never a
half-written one; a crash leaves at most junk in the staging folder, never in
the store, and the next writer (holding the store's lock) removes it. Replacing
a group renames the old one aside first, so the only window is a moment where
the group is absent. This relies on POSIX rename semantics: a local disk, or a
shared cluster filesystem (NFS, Lustre, GPFS).

Integrity: every chunk carries a CRC32C checksum (the Zarr v3 ``crc32c`` codec),
so corrupted bytes are an error naming the group and the variable, never data;
the group attribute ``manifest`` lists every file of the group with its size and
CRC-32, so a deleted chunk or array metadata makes the group *damaged* (a build
rebuilds it, ``xlcat verify`` reports it) instead of reading as fill values.

Writers (builds, imports, saved products) take the store's lock, a ``flock`` on
``.<store name>.lock`` beside the store, released by the kernel if the process dies.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import socket
import uuid
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import StoreError
from schemas.names import EXPOSURE_NAME, NAME_RULE, PRODUCT_NAME, is_name, is_obsid
from schemas.store_layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PRODUCTS_GROUP,
    REQUIRED_GROUP_ATTRS,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["PRODUCTS_DIR", "GroupState", "Store", "store_lock"]

log = logging.getLogger(__name__)

_GROUP_META = {"zarr_format": 3, "node_type": "group", "attributes": {}}


#: Folder of the derived products inside a store.
PRODUCTS_DIR = PRODUCTS_GROUP

#: Largest chunk, in bytes, before an array is split into time chunks inside one shard.
_MAX_CHUNK_BYTES = 64 * 1024 * 1024

#: Locks this process holds, by lock path (the lock is re-entrant within a process).
_HELD: dict[str, int] = {}


def _is_obsid(name: str) -> bool:
    return is_obsid(name)


def _write_json_atomic(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def _manifest(folder: Path) -> dict[str, list[int]]:
    """Every file under ``folder`` except the group's own ``zarr.json``: path to [size, CRC-32]."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p != folder / "zarr.json":
            out[p.relative_to(folder).as_posix()] = [p.stat().st_size, _crc32(p)]
    return out


def _encoding(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    """Checksummed, compressed, one file per array (a shard of time chunks when large)."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    from catalog.zarrfiles import ZSTD_LEVEL

    enc: dict[str, dict[str, Any]] = {}
    for name, var in ds.variables.items():
        shape = tuple(int(n) for n in var.shape)
        entry: dict[str, Any] = {
            "compressors": (ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()),
            "chunk_key_encoding": {"name": "v2", "separator": "."},
        }
        if shape and min(shape) > 0:
            itemsize = max(int(var.dtype.itemsize), 8)
            rows = 1
            for n in shape[:-1]:
                rows *= n
            if rows * shape[-1] * itemsize > _MAX_CHUNK_BYTES:
                step = max(1, _MAX_CHUNK_BYTES // (rows * itemsize))
                entry["chunks"] = (*shape[:-1], step)
                entry["shards"] = (*shape[:-1], -(-shape[-1] // step) * step)
            else:
                entry["chunks"] = shape
        enc[str(name)] = entry
    return enc


@contextmanager
def store_lock(path: str | os.PathLike[str], *, wait: bool = True) -> Iterator[None]:
    """Hold the writer lock of the store at ``path`` (re-entrant within a process).

    The lock is a ``flock`` on ``.<store name>.lock`` beside the store (so it can be
    taken before the store exists); the kernel releases it when the process dies.

    Parameters
    ----------
    path : str or os.PathLike
        The store folder.
    wait : bool
        Wait for another writer to finish; with False, raise at once.

    Raises
    ------
    StoreError
        If another writer holds it and ``wait`` is False, or the lock file cannot
        be created.
    """
    store = Path(path)
    lock_path = store.parent / f".{store.name}.lock"
    key = str(lock_path.absolute())
    if key in _HELD:
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(
            f"store {store}: cannot create the lock file {lock_path} "
            f"({exc.strerror}); check that the store's folder is writable"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown"
            if not wait:
                raise StoreError(
                    f"store {store}: another writer holds its lock ({holder}); "
                    "wait for it to finish"
                ) from None
            log.warning("store %s: waiting for another writer (%s)", store, holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(
            fd,
            f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{datetime.now(UTC).isoformat(timespec='seconds')}\n".encode(),
            0,
        )
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class GroupState:
    """Whether an exposure group can be read.

    Attributes
    ----------
    obsid, exposure : str
    problem : str or None
        None for a complete group; else what is wrong (unreadable metadata, a missing
        or truncated file, a checksum mismatch), in one line.
    """

    obsid: str
    exposure: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True for a complete group."""
        return self.problem is None


class Store:
    """An xlcat store on a filesystem.

    Parameters
    ----------
    path : str or os.PathLike
        The store folder (``*.zarr``).

    Raises
    ------
    StoreError
        If the folder does not exist, is not an xlcat store (use :meth:`create`), or
        is in another format version.
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
        except (OSError, ValueError, AttributeError) as exc:
            raise StoreError(f"store {self.path}: unreadable zarr.json ({exc})") from None
        if attrs.get("format") != FORMAT_NAME:
            raise StoreError(
                f"store {self.path}: a Zarr hierarchy but not an xlcat store "
                f"(root attribute format={attrs.get('format')!r}); choose another store path"
            )
        version = attrs.get("format_version")
        if version != FORMAT_VERSION:
            if not isinstance(version, int) or isinstance(version, bool):
                raise StoreError(
                    f"store {self.path}: root attribute format_version = {version!r} is not "
                    f"an integer (this xlcat writes {FORMAT_VERSION}); the store's zarr.json "
                    "was edited or not written by xlcat: rebuild the store from its build file"
                )
            if version < FORMAT_VERSION:
                raise StoreError(
                    f"store {self.path}: format_version {version}, this xlcat reads format "
                    f"{FORMAT_VERSION}; rebuild it from its build file (move it aside, then "
                    "xlcat build BUILD_FILE)"
                )
            raise StoreError(
                f"store {self.path}: format_version {version!r} is not one this xlcat "
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
                "description": "xlcat light-curve catalogue: one group per (obsid, exposure), "
                "every energy scheme along its band dimension",
            }
            _write_json_atomic(p / "zarr.json", meta)
        return cls(p)

    # -- layout -----------------------------------------------------------------
    def group_path(self, obsid: str, exposure: str) -> Path:
        """Folder of the (obsid, exposure) group."""
        if not _is_obsid(obsid) or not is_name(exposure, EXPOSURE_NAME):
            raise StoreError(f"store {self.path}: no group {obsid}/{exposure} (invalid name)")
        return self.path / obsid / exposure

    def links(self) -> list[Path]:
        """Every symbolic link inside the store (not followed), and its staging folder if one."""
        out = [self.staging] if self.staging.is_symlink() else []
        for root, dirs, files in os.walk(self.path):
            out += [Path(root) / n for n in dirs + files if (Path(root) / n).is_symlink()]
        return sorted(out)

    def refuse_links(self, target: Path) -> None:
        """Refuse to write ``target`` when it, a folder on the way to it, or staging is a link.

        A write follows no symbolic link planted inside the store, so it never writes outside.

        Raises
        ------
        StoreError
            Naming the link and where it points.
        """
        rel = target.relative_to(self.path)
        paths = [self.staging] + [
            self.path.joinpath(*rel.parts[: i + 1]) for i in range(len(rel.parts))
        ]
        for p in paths:
            if p.is_symlink():
                raise StoreError(
                    f"store {self.path}: {p} is a symbolic link (to {os.readlink(p)}); xlcat "
                    "writes only inside the store: remove the link (xlcat verify lists them)"
                )

    @property
    def staging(self) -> Path:
        """Staging folder beside the store (same filesystem, so rename is atomic)."""
        return self.path.parent / f".{self.path.name}.staging"

    @property
    def lock_path(self) -> Path:
        """The writers' lock file beside the store."""
        return self.path.parent / f".{self.path.name}.lock"

    def groups(self) -> list[tuple[str, str]]:
        """(obsid, exposure) of every group folder that has a ``zarr.json``, sorted.

        Damaged groups are listed too; :meth:`state` says which can be read.
        """
        out = []
        for obs_dir in sorted(p for p in self.path.iterdir() if p.is_dir() and _is_obsid(p.name)):
            for grp in sorted(p for p in obs_dir.iterdir() if p.is_dir()):
                if (grp / "zarr.json").is_file() and is_name(grp.name, EXPOSURE_NAME):
                    out.append((obs_dir.name, grp.name))
        return out

    def group_attrs(self, obsid: str, exposure: str) -> dict[str, Any]:
        """Attributes of a group, read from its metadata only (no arrays).

        Raises
        ------
        StoreError
            If the group is absent, or its ``zarr.json`` is unreadable or not a format-2
            exposure group (one line; ``xlcat build`` replaces such a group).
        """
        meta = self.group_path(obsid, exposure) / "zarr.json"
        where = f"store {self.path}: group {obsid}/{exposure}"
        try:
            doc = json.loads(meta.read_text())
        except FileNotFoundError:
            raise StoreError(f"{where}: not found; see xlcat ls {self.path}") from None
        except (OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(
                f"{where}: unreadable zarr.json ({reason}); rebuild it with xlcat build"
            ) from None
        attrs = doc.get("attributes") if isinstance(doc, dict) else None
        if not isinstance(attrs, dict):
            raise StoreError(f"{where}: zarr.json has no attributes; rebuild it with xlcat build")
        missing = [k for k in REQUIRED_GROUP_ATTRS if k not in attrs]
        if missing:
            raise StoreError(
                f"{where}: attribute {missing[0]} missing from zarr.json; rebuild it with "
                "xlcat build"
            )
        return attrs

    def has_group(self, obsid: str, exposure: str) -> bool:
        """Whether the (obsid, exposure) group folder exists (complete or damaged)."""
        return (self.group_path(obsid, exposure) / "zarr.json").is_file()

    def state(self, obsid: str, exposure: str, *, deep: bool = False) -> GroupState:
        """Whether a group is complete.

        Parameters
        ----------
        obsid, exposure : str
        deep : bool
            Also compare every file's CRC-32 with the manifest (reads every byte);
            the default compares only the sizes (a ``stat`` per file).

        Returns
        -------
        GroupState
        """
        try:
            attrs = self.group_attrs(obsid, exposure)
        except StoreError as exc:
            return GroupState(obsid, exposure, str(exc).split(": ", 2)[-1])
        folder = self.group_path(obsid, exposure)
        manifest = attrs.get("manifest")
        if not isinstance(manifest, dict) or not manifest:
            return GroupState(obsid, exposure, "no manifest of its files")
        for rel, entry in manifest.items():
            p = folder / rel
            try:
                size = p.stat().st_size
            except OSError:
                return GroupState(obsid, exposure, f"file {rel} is missing")
            if size != entry[0]:
                return GroupState(obsid, exposure, f"file {rel} has {size} bytes, not {entry[0]}")
            if deep and _crc32(p) != entry[1]:
                return GroupState(obsid, exposure, f"file {rel} fails its CRC-32 check")
        return GroupState(obsid, exposure)

    # -- reading and writing ----------------------------------------------------------
    def read_group(self, obsid: str, exposure: str) -> xr.Dataset:
        """The (obsid, exposure) Dataset, loaded into memory (without dask).

        Raises
        ------
        StoreError
            If the group is absent or damaged, or a chunk fails its checksum: one line
            naming the group and the variable.
        """
        import xarray as xr

        where = f"store {self.path}: group {obsid}/{exposure}"
        state = self.state(obsid, exposure)
        if not state.ok:
            raise StoreError(f"{where} is damaged: {state.problem}; rebuild it with xlcat build")
        try:
            ds = xr.open_zarr(
                self.path,
                group=f"{obsid}/{exposure}",
                consolidated=False,
                zarr_format=3,
                chunks=None,
            )
        except Exception as exc:  # noqa: BLE001 - any reader failure is a damaged group
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(
                f"{where}: unreadable ({reason}); rebuild it with xlcat build"
            ) from None
        with ds:
            for name, var in ds.variables.items():
                try:
                    var.load()
                except Exception as exc:  # noqa: BLE001 - zarr's checksum error types vary
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise StoreError(
                        f"{where}: variable {name} is corrupt ({reason}); rebuild it with "
                        "xlcat build"
                    ) from None
            loaded: xr.Dataset = ds.load()
            return loaded

    def write_group(self, obsid: str, exposure: str, ds: xr.Dataset) -> Path:
        """Write a group atomically (checksummed, with its manifest), replacing any previous one.

        Parameters
        ----------
        obsid, exposure : str
            Group address.
        ds : xarray.Dataset
            The complete group.

        Returns
        -------
        pathlib.Path
            The group folder.
        """
        return self._replace(
            ds,
            self.group_path(obsid, exposure),
            f"{obsid}-{exposure}",
            parent_attrs={},
            direct=True,
        )

    # -- the writers' lock and the staging folder -----------------------------------------
    def lock(self, *, wait: bool = True) -> AbstractContextManager[None]:
        """Hold the store's writer lock (see :func:`store_lock`)."""
        return store_lock(self.path, wait=wait)

    def clean_staging(self) -> int:
        """Remove what killed writers left in the staging folder (call holding the lock).

        Returns
        -------
        int
            Entries removed.
        """
        if not self.staging.is_dir():
            return 0
        n = 0
        for p in list(self.staging.iterdir()):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            n += 1
        try:
            self.staging.rmdir()
        except OSError:
            pass
        if n:
            log.info("store %s: removed %d leftovers of an interrupted write", self.path, n)
        return n

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
        self,
        ds: xr.Dataset,
        target: Path,
        label: str,
        parent_attrs: dict[str, Any],
        *,
        manifest: bool = True,
        direct: bool = False,
    ) -> Path:
        """Write ``ds`` whole into the staging folder, then rename it onto ``target``.

        The parent group (``target.parent``) is created with ``parent_attrs`` if missing.
        With ``direct`` (and ``manifest``), a Dataset of the exposure-group layout is
        written by :mod:`catalog.zarrfiles`, the same files ``to_zarr`` writes.
        """
        from catalog.zarrfiles import group_files, write_group_files

        self.refuse_links(target)
        tmp = self._staging_folder(label)
        try:
            files = group_files(ds, _MAX_CHUNK_BYTES) if direct and manifest else None
            if files is not None:
                write_group_files(tmp, files, {"manifest": files.manifest()})
            else:
                ds.to_zarr(
                    tmp, mode="w-", zarr_format=3, consolidated=False, encoding=_encoding(ds)
                )
            if manifest and files is None:
                meta = json.loads((tmp / "zarr.json").read_text())
                meta.setdefault("attributes", {})["manifest"] = _manifest(tmp)
                (tmp / "zarr.json").write_text(json.dumps(meta, indent=1))
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
        if not is_name(name, PRODUCT_NAME):
            raise StoreError(
                f"store {self.path}: product name {name!r} is invalid; "
                + NAME_RULE.format(n=100, chars="_ . -")
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
        import xarray as xr

        with xr.open_zarr(
            self.path,
            group=f"{PRODUCTS_DIR}/{name}",
            consolidated=False,
            zarr_format=3,
            chunks=None,
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
        with self.lock():
            if target.exists() and not overwrite:
                raise StoreError(
                    f"store {self.path}: product {name!r} exists; choose another name or "
                    "replace it (overwrite=True; xlcat: --overwrite)"
                )
            return self._replace(
                ds,
                target,
                f"product-{name}",
                parent_attrs={"description": "xlcat derived products, one group each"},
            )
