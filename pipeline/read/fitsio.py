"""Opening input files with one-line errors, and hashing their content."""

from __future__ import annotations

import hashlib
import os

from astropy.io import fits

from schemas.errors import InputFileError

__all__ = ["open_fits", "file_sha256"]


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
