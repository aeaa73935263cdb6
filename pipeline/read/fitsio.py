"""Opening input files with one-line errors, gzip-compressed FITS, and hashing file content.

Event lists often come gzip-compressed (``.FTZ``, ``.fits.gz``, ``.ds.gz``). astropy
reads such a file through a decompressing stream: headers and small tables are read
without holding the file, but a table's data is decompressed whole into memory and
cannot be memory-mapped. :func:`decompressed` therefore streams the file, 1 MB at a
time, into an uncompressed copy in a temporary folder (``$TMPDIR``), which the
chunked readers memory-map, and removes it afterwards; memory stays bounded whatever
the size of the file. Compression is recognised by the gzip magic bytes, not the name.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.errors import InputFileError

if TYPE_CHECKING:  # imported when a file is opened: hashing needs no astropy
    from astropy.io import fits

__all__ = ["open_fits", "file_sha256", "is_gzip", "decompressed"]

_GZIP_MAGIC = b"\x1f\x8b"
#: Bytes copied at a time when decompressing.
COPY_BLOCK = 1 << 20


def open_fits(path: str | os.PathLike[str], what: str, *, memmap: bool = False) -> fits.HDUList:
    """Open a FITS file, or raise an InputFileError naming it.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str
        What the file is, for the message ("events file", "GTI file", ...).
    memmap : bool
        Memory-map the data (for event lists read in chunks).

    Returns
    -------
    astropy.io.fits.HDUList

    Raises
    ------
    InputFileError
        ``<what> <path>: not found`` or ``... not a readable FITS file (<reason>)``.
    """
    from astropy.io import fits

    if not os.path.exists(path):
        raise InputFileError(f"{what} {os.fspath(path)}: not found")
    try:
        return fits.open(path, memmap=memmap)
    except OSError as exc:
        raise InputFileError(
            f"{what} {os.fspath(path)}: not a readable FITS file ({exc})"
        ) from None


def file_sha256(path: str | os.PathLike[str], block: int = 1 << 22) -> str:
    """SHA-256 of a file's content, read in blocks of ``block`` bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with the gzip magic bytes (``1f 8b``), whatever its name."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == _GZIP_MAGIC
    except OSError:
        return False


@contextmanager
def decompressed(path: str | os.PathLike[str], what: str = "events file") -> Iterator[Path]:
    """A path to the uncompressed content of ``path``, for as long as the block runs.

    A file that is not gzip-compressed is given back as it is. A compressed one is
    decompressed as a stream (:data:`COPY_BLOCK` bytes at a time) into a new temporary
    folder, which is removed when the block ends, also on an error.

    Parameters
    ----------
    path : str or os.PathLike
        The file, compressed or not.
    what : str
        What the file is, for the message.

    Yields
    ------
    pathlib.Path
        ``path`` itself, or the uncompressed copy.

    Raises
    ------
    InputFileError
        ``<what> <path>: not found`` or ``... is not a valid gzip file (<reason>)``.
    """
    if not os.path.exists(path):
        raise InputFileError(f"{what} {os.fspath(path)}: not found")
    if not is_gzip(path):
        yield Path(path)
        return
    folder = tempfile.mkdtemp(prefix="xlcat-gunzip-")
    try:
        name = Path(path).name
        for suffix in (".gz", ".GZ", ".ftz", ".FTZ", ".Z"):
            name = name.removesuffix(suffix)
        out = Path(folder) / f"{name or 'events'}.fits"
        try:
            with gzip.open(path, "rb") as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, COPY_BLOCK)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise InputFileError(
                f"{what} {os.fspath(path)}: is not a valid gzip file ({exc}); "
                "decompress it with gunzip to see the problem"
            ) from None
        except OSError as exc:
            raise InputFileError(
                f"{what} {os.fspath(path)}: could not be decompressed into {folder} ({exc}); "
                "set TMPDIR to a folder with room for the uncompressed file"
            ) from None
        yield out
    finally:
        shutil.rmtree(folder, ignore_errors=True)
