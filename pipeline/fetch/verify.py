"""The checks a downloaded product passes before it gets its final name.

The archives publish no checksum lists for the pipeline products, but the files carry their
own: a gzip-compressed product (``.FTZ``, ``.gz``) ends with the CRC-32 and length of its
content, and a FITS file written by the pipeline carries ``CHECKSUM`` / ``DATASUM`` keywords
per HDU (FITS standard 4.0, appendix J). :func:`check_product` reads the whole file through
both: a truncated or garbled gzip stream, a file that is not FITS (an HTML error page saved
under a product's name), or an HDU whose checksum fails is refused.
"""

from __future__ import annotations

import gzip
import warnings
import zlib
from pathlib import Path

from astropy.io import fits

from schemas.errors import ArchiveError

__all__ = ["GZIP_SUFFIXES", "check_product"]

#: File names (case-insensitive) read as gzip streams.
GZIP_SUFFIXES: tuple[str, ...] = (".ftz", ".gz")
_GZIP_MAGIC = b"\x1f\x8b"


def _check_gzip(path: Path, name: str) -> None:
    with open(path, "rb") as f:
        if f.read(2) != _GZIP_MAGIC:
            raise ArchiveError(
                f"{name}: not a gzip file although named like one (corrupt download)"
            )
    try:
        with gzip.open(path, "rb") as g:
            while g.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(
            f"{name}: the gzip stream fails its check ({' '.join(str(exc).split())}); "
            "the download is corrupt, re-run to fetch it again"
        ) from None


def _check_fits(path: Path, name: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, checksum=True, memmap=False) as hdul:
                hdul.readall()
                n = len(hdul)
        except (OSError, ValueError) as exc:
            raise ArchiveError(
                f"{name}: not a readable FITS file ({' '.join(str(exc).split())[:160]})"
            ) from None
    failed = [" ".join(str(w.message).split()).rstrip(".") for w in caught]
    failed = [m for m in failed if "verification failed" in m.lower()]
    hdus = sorted({m.split(" for HDU ", 1)[-1] for m in failed})
    if failed:
        raise ArchiveError(
            f"{name}: FITS checksum fails ({failed[0]}; {len(hdus)} of the {n} HDUs fail); "
            "the download is corrupt, re-run to fetch it again"
        )


def check_product(path: Path, name: str | None = None) -> None:
    """Refuse a downloaded product whose gzip CRC or FITS checksums fail.

    Parameters
    ----------
    path : Path
        The file (a ``.part`` file: ``name`` says what it is).
    name : str, optional
        The product's file name (default ``path.name``): decides gzip from its suffix, and
        names the file in errors.

    Raises
    ------
    ArchiveError
        The gzip stream is truncated or fails its CRC, the file is not FITS, or an HDU's
        ``CHECKSUM`` / ``DATASUM`` does not match its bytes.
    """
    label = name or path.name
    if label.lower().endswith(GZIP_SUFFIXES):
        _check_gzip(path, label)
    _check_fits(path, label)
