"""A content-addressed cache of successful SAS band tasks, beside the store.

A band task's key is the SHA-256 of everything that determines its outputs: the
event file's content hash, the GTI it applies, the exact argument lists, the SAS
version and the calibration index (path and content hash). An entry is a folder
``<cache>/<key>/`` holding the task's output files and ``record.json`` (its
provenance record, with the commands and their logs). Entries are written to a
staging folder and renamed into place, so a reader sees a complete entry or none.
A build whose group failed in one band therefore re-runs only that band: the
others come from the cache. Deleting the cache folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["task_key", "BandCache"]

#: Bump when the meaning of a cached entry changes.
CACHE_VERSION = 1


def task_key(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a JSON-able description of a task's inputs (sorted keys)."""
    text = json.dumps(
        {"cache_version": CACHE_VERSION, **payload},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class BandCache:
    """The cache folder.

    Parameters
    ----------
    root : Path
        Folder of the entries (created on the first put).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def get(self, key: str, files: tuple[str, ...]) -> tuple[Path, dict[str, Any]] | None:
        """The entry's folder and record, or None when absent or incomplete."""
        entry = self.root / key
        record = entry / "record.json"
        if not record.is_file() or not all((entry / f).is_file() for f in files):
            return None
        try:
            return entry, json.loads(record.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def put(
        self, key: str, folder: Path, files: tuple[str, ...], record: Mapping[str, Any]
    ) -> Path:
        """Copy ``files`` from ``folder`` and the record into the entry ``key`` (atomic)."""
        self.root.mkdir(parents=True, exist_ok=True)
        entry = self.root / key
        staging = self.root / f".{key}.{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for f in files:
                shutil.copy2(folder / f, staging / f)
            (staging / "record.json").write_text(json.dumps(record))
            try:
                os.rename(staging, entry)
            except OSError:  # another task stored the same entry first
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return entry
