"""One file over HTTP(S): resumable, retried, size-checked, never half-written under its name.

:func:`download` writes the body to a ``.part`` file, asking the server for the rest
(``Range: bytes=<part size>-``) when a part is already there; a server that ignores the
range (status 200) or answers another range gets a clean restart from byte 0. A dropped
connection, a timeout, a body shorter than its ``Content-Length`` / ``Content-Range`` or a
5xx answer is retried, at most ``retries`` times with exponential backoff, each time
resuming from what the part holds. :func:`finish` checks the part's content, fsyncs it and
renames it to its final name (and fsyncs the folder), so a final name only ever holds a
complete, checked file.
"""

from __future__ import annotations

import email.message
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from schemas.errors import ArchiveError

__all__ = [
    "PART_SUFFIX",
    "Transfer",
    "Stopped",
    "download",
    "finish",
    "part_path",
    "new_session",
    "describe_failure",
]

#: Suffix of a file being downloaded, beside its final name.
PART_SUFFIX = ".part"
#: Bytes read from the socket at a time.
CHUNK = 1 << 16
#: Longest wait between two attempts, s.
MAX_BACKOFF = 30.0

#: Called with (bytes of the file so far, total bytes or None) as the body arrives.
ByteCallback = Callable[[int, "int | None"], None]

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Transfer:
    """What one completed download gave.

    Attributes
    ----------
    url : str
        The URL asked.
    size : int
        Bytes in the part file.
    total : int or None
        The size the server announced (``Content-Length`` or ``Content-Range``), None if
        it announced none.
    filename : str or None
        The ``Content-Disposition`` file name, if the server sent one.
    content_type : str
        The ``Content-Type`` (empty if none).
    attempts : int
        Requests made.
    resumed_from : tuple of int
        The ``Range`` start of every request that asked for one.
    """

    url: str
    size: int
    total: int | None
    filename: str | None
    content_type: str
    attempts: int
    resumed_from: tuple[int, ...]


class Stopped(Exception):
    """The download was asked to stop (another file failed, or Ctrl-C); its part is kept."""


class _Retry(Exception):
    """A failure worth another attempt (the message says what happened)."""


def part_path(final: Path) -> Path:
    """The ``.part`` file beside ``final``."""
    return final.with_name(final.name + PART_SUFFIX)


def new_session() -> requests.Session:
    """A requests session asking for the bytes as stored (no transfer compression)."""
    session = requests.Session()
    session.headers.update({"Accept-Encoding": "identity", "User-Agent": "xlcat-fetch"})
    return session


def describe_failure(exc: BaseException) -> str:
    """A requests exception in a few words on one line (the URL is named by the caller)."""
    text = " ".join(str(exc).split())
    for key in ("Connection refused", "Name or service not known", "Read timed out", "timed out"):
        if key.lower() in text.lower():
            return key.lower()
    return f"{type(exc).__name__}: {text[:160]}"


def _filename(disposition: str | None) -> str | None:
    if not disposition:
        return None
    msg = email.message.Message()
    msg["content-disposition"] = disposition
    name = msg.get_filename()
    return os.path.basename(name) if name else None


def _attempt(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    timeout: float,
    refuse_text: bool,
    on_bytes: ByteCallback | None,
    stop: threading.Event | None,
    ranges: list[int],
    attempt: int,
) -> Transfer:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    if offset:
        ranges.append(offset)
    try:
        response = session.get(url, headers=headers, stream=True, timeout=(timeout, timeout))
    except requests.RequestException as exc:
        raise _Retry(describe_failure(exc)) from exc
    with response:
        status = response.status_code
        ctype = response.headers.get("Content-Type", "")
        if status == 416:  # the part already holds everything (or more than there is)
            m = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == offset:
                return Transfer(url, offset, offset, None, ctype, attempt, tuple(ranges))
            part.unlink(missing_ok=True)
            raise _Retry(f"the server refused the range from byte {offset}; restarting")
        if status == 404:
            raise ArchiveError(f"{url}: not found (HTTP 404); check the obsid and the archive")
        if status in (401, 403):
            raise ArchiveError(
                f"{url}: access refused (HTTP {status}); proprietary data need the archive's "
                "own tools"
            )
        if status >= 500 or status == 429:
            raise _Retry(f"HTTP {status} {response.reason}")
        if status not in (200, 206):
            raise ArchiveError(f"{url}: unexpected answer HTTP {status} {response.reason}")
        if refuse_text and ctype.lower().startswith("text/"):
            first = " ".join(response.text.split())[:160]
            raise ArchiveError(f"{url}: the archive answered with text, not a file: {first!r}")
        total: int | None
        if status == 206:
            m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != offset:
                part.unlink(missing_ok=True)
                raise _Retry(
                    f"the server answered the range from byte {offset} with Content-Range "
                    f"{response.headers.get('Content-Range')!r}; restarting"
                )
            total = None if m.group(3) == "*" else int(m.group(3))
            mode = "ab"
        else:  # 200: the whole file (a server ignoring Range restarts the part cleanly)
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
            offset, mode = 0, "wb"
        size = offset
        with open(part, mode) as f:
            try:
                for chunk in response.iter_content(CHUNK):
                    if stop is not None and stop.is_set():
                        raise Stopped(url)
                    f.write(chunk)
                    size += len(chunk)
                    if on_bytes is not None:
                        on_bytes(size, total)
            except requests.RequestException as exc:
                raise _Retry(
                    f"connection dropped after {size:,} bytes ({describe_failure(exc)})"
                ) from exc
            finally:
                f.flush()
                os.fsync(f.fileno())
    size = part.stat().st_size
    if total is not None and size != total:
        if size > total:
            part.unlink(missing_ok=True)
        raise _Retry(f"got {size:,} of {total:,} bytes")
    return Transfer(
        url,
        size,
        total,
        _filename(response.headers.get("Content-Disposition")),
        ctype,
        attempt,
        tuple(ranges),
    )


def download(
    session: requests.Session,
    url: str,
    part: Path,
    *,
    timeout: float = 60.0,
    retries: int = 5,
    backoff: float = 1.0,
    refuse_text: bool = False,
    on_bytes: ByteCallback | None = None,
    stop: threading.Event | None = None,
) -> Transfer:
    """Download ``url`` into ``part``, resuming what ``part`` holds.

    Parameters
    ----------
    session : requests.Session
        The HTTP session (one per thread).
    url : str
        The file.
    part : Path
        The ``.part`` file to write; its folder must exist. Left in place on failure, so that
        a later call resumes it.
    timeout : float
        Seconds to wait for the connection and for each read.
    retries : int
        Further attempts after a dropped connection, a timeout, a short body or a 5xx.
    backoff : float
        Seconds before the first retry; doubled each time (at most :data:`MAX_BACKOFF`).
    refuse_text : bool
        Treat a ``text/*`` answer as the archive's error message, not as the file.
    on_bytes : callable, optional
        Progress: called with (bytes so far, total or None).
    stop : threading.Event, optional
        When set, the download stops between chunks (:class:`Stopped`).

    Returns
    -------
    Transfer

    Raises
    ------
    ArchiveError
        HTTP 404 or another refusal, or the retries are spent (the message names the URL and
        the last failure).
    Stopped
        ``stop`` was set.
    """
    ranges: list[int] = []
    failures = 0
    while True:
        if stop is not None and stop.is_set():
            raise Stopped(url)
        try:
            return _attempt(
                session,
                url,
                part,
                timeout=timeout,
                refuse_text=refuse_text,
                on_bytes=on_bytes,
                stop=stop,
                ranges=ranges,
                attempt=failures + 1,
            )
        except _Retry as exc:
            if failures >= retries:
                tries = failures + 1
                raise ArchiveError(
                    f"{url}: {exc} ({tries} attempt{'s' if tries > 1 else ''}); check the "
                    f"network and the archive, then re-run to resume"
                ) from None
            time.sleep(min(backoff * 2**failures, MAX_BACKOFF))
            failures += 1


def finish(part: Path, final: Path, check: Callable[[Path], None] | None = None) -> None:
    """Check a complete part file and give it its final name, durably.

    Parameters
    ----------
    part : Path
        The downloaded file.
    final : Path
        Its name once checked (replaced if it exists).
    check : callable, optional
        Raises :class:`~schemas.errors.ArchiveError` when the content is bad; the part is
        then removed (a resumed download would keep the bad bytes).
    """
    if check is not None:
        try:
            check(part)
        except ArchiveError:
            part.unlink(missing_ok=True)
            raise
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, final)
    _fsync_dir(final.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
