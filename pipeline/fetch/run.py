"""Fetch the pipeline products of some observations into the layout ``xlcat init`` reads.

Every file lands in ``<folder>/<obsid>/pps/<archive file name>`` (the XSA's own tar layout),
where ``xlcat init <folder>`` finds the event lists by their headers and skips the flare time
series (light curves). Files are downloaded in parallel by a small thread pool; each one
through :func:`pipeline.fetch.http.download` (resumed, retried, size-checked) and
:func:`pipeline.fetch.verify.check_product` (gzip CRC, FITS checksums) before it is renamed
to its final name. A final name therefore means a complete file: a re-run skips it. The
XSA's answers are named by the archive only once they arrive, so a request the XSA answered
in full is remembered in a hidden ``.xsa-<camera code>-<product>.json`` beside the files.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tarfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import requests

from pipeline.fetch.archives import (
    CAMERAS,
    Product,
    base_url,
    heasarc_folder,
    parse_listing,
    pick_files,
    products,
    tar_products,
    xsa_url,
)
from pipeline.fetch.http import (
    Stopped,
    describe_failure,
    download,
    finish,
    new_session,
    part_path,
)
from pipeline.fetch.verify import check_product
from schemas.errors import ArchiveError, ConfigError

__all__ = ["FetchedFile", "FetchReport", "ProgressCallback", "fetch_observations", "obs_folder"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: Progress: called with (file label, bytes so far, total bytes or None), from worker threads.
ProgressCallback = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class FetchedFile:
    """One product file in the folder.

    Attributes
    ----------
    product : Product
        What it is.
    path : Path
        Where it is.
    size : int
        Its size, bytes.
    url : str
        Where it came from.
    downloaded : bool
        Downloaded by this call (False: it was complete already).
    """

    product: Product
    path: Path
    size: int
    url: str
    downloaded: bool


@dataclass(frozen=True)
class FetchReport:
    """What :func:`fetch_observations` did.

    Attributes
    ----------
    folder : Path
        The folder the files are in.
    archive : str
        ``xsa`` or ``heasarc``.
    files : tuple of FetchedFile
        Every product file, sorted by path.
    """

    folder: Path
    archive: str
    files: tuple[FetchedFile, ...]

    @property
    def downloaded(self) -> int:
        """Files this call downloaded."""
        return sum(f.downloaded for f in self.files)

    @property
    def bytes(self) -> int:
        """Bytes this call downloaded."""
        return sum(f.size for f in self.files if f.downloaded)


def obs_folder(folder: Path, obsid: str) -> Path:
    """The folder an observation's products go to: ``<folder>/<obsid>/pps``."""
    return folder / obsid / "pps"


@dataclass
class _Context:
    timeout: float
    retries: int
    backoff: float
    progress: ProgressCallback | None
    stop: threading.Event
    local: threading.local

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self.local, "session", None)
        if session is None:
            session = new_session()
            self.local.session = session
        return session

    def on_bytes(self, label: str) -> Callable[[int, int | None], None] | None:
        progress = self.progress
        if progress is None:
            return None

        def report(done: int, total: int | None) -> None:
            progress(label, done, total)

        return report


# -- HEASARC -------------------------------------------------------------------------------
def _listing(ctx: _Context, url: str, obsid: str) -> dict[str, str]:
    session = ctx.session()
    last = ""
    for attempt in range(ctx.retries + 1):
        if ctx.stop.is_set():
            raise Stopped(url)
        try:
            response = session.get(url, timeout=(ctx.timeout, ctx.timeout))
        except requests.RequestException as exc:
            last = describe_failure(exc)
        else:
            if response.status_code == 404:
                raise ArchiveError(
                    f"obsid {obsid}: {url} not found (HTTP 404); the observation is not (yet) "
                    "public at HEASARC, or the obsid is wrong"
                )
            if response.status_code < 400:
                return parse_listing(response.text, url)
            last = f"HTTP {response.status_code} {response.reason}"
            if response.status_code < 500:
                raise ArchiveError(f"obsid {obsid}: {url}: {last}")
        if attempt < ctx.retries:
            ctx.stop.wait(min(ctx.backoff * 2**attempt, 30.0))
    tries = ctx.retries + 1
    raise ArchiveError(
        f"obsid {obsid}: cannot read {url}: {last} ({tries} attempt{'s' if tries > 1 else ''}"
        "); check the network and the archive"
    )


def _fetch_one(ctx: _Context, product: Product, url: str, final: Path) -> list[FetchedFile]:
    if final.is_file():
        return [FetchedFile(product, final, final.stat().st_size, url, downloaded=False)]
    part = part_path(final)
    download(
        ctx.session(),
        url,
        part,
        timeout=ctx.timeout,
        retries=ctx.retries,
        backoff=ctx.backoff,
        on_bytes=ctx.on_bytes(final.name),
        stop=ctx.stop,
    )
    finish(part, final, lambda p: check_product(p, final.name))
    return [FetchedFile(product, final, final.stat().st_size, url, downloaded=True)]


# -- XSA -----------------------------------------------------------------------------------
def _marker(dest: Path, product: Product) -> Path:
    return dest / f".xsa-{product.inst}-{product.name}.json"


def _remembered(dest: Path, product: Product, url: str) -> list[FetchedFile] | None:
    marker = _marker(dest, product)
    try:
        files = json.loads(marker.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    out = []
    for name, size in sorted(files.items()):
        path = dest / name
        if not path.is_file() or path.stat().st_size != size:
            return None
        out.append(FetchedFile(product, path, size, url, downloaded=False))
    return out or None


def _remember(dest: Path, product: Product, url: str, files: Sequence[FetchedFile]) -> None:
    marker = _marker(dest, product)
    tmp = part_path(marker)
    tmp.write_text(json.dumps({"url": url, "files": {f.path.name: f.size for f in files}}))
    finish(tmp, marker)


def _unpack(part: Path, dest: Path, product: Product, url: str) -> list[FetchedFile]:
    """Move the product's files out of an AIO tar archive, each checked and renamed."""
    out = []
    members = tar_products(part, product)
    with tarfile.open(part, "r:*") as tar:
        for member in members:
            name = Path(member.name).name
            final = dest / name
            tmp = part_path(final)
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - tar_products keeps regular files only
                continue
            with source, open(tmp, "wb") as f:
                shutil.copyfileobj(source, f)
            finish(tmp, final, functools.partial(check_product, name=name))
            out.append(FetchedFile(product, final, final.stat().st_size, url, downloaded=True))
    part.unlink()
    return out


def _fetch_xsa(ctx: _Context, product: Product, url: str, dest: Path) -> list[FetchedFile]:
    known = _remembered(dest, product, url)
    if known is not None:
        return known
    part = part_path(dest / f".xsa-{product.inst}-{product.name}")
    transfer = download(
        ctx.session(),
        url,
        part,
        timeout=ctx.timeout,
        retries=ctx.retries,
        backoff=ctx.backoff,
        refuse_text=True,
        on_bytes=ctx.on_bytes(product.label),
        stop=ctx.stop,
    )
    if tarfile.is_tarfile(part):
        files = _unpack(part, dest, product, url)
    else:
        name = transfer.filename
        if name is None or not product.matches(name):
            part.unlink()
            raise ArchiveError(
                f"{url}: the archive sent {name or 'a file without a name'}, not a "
                f"{product.name} file of obsid {product.obsid} {product.camera}"
            )
        final = dest / name
        finish(part, final, lambda p: check_product(p, name))
        files = [FetchedFile(product, final, final.stat().st_size, url, downloaded=True)]
    _remember(dest, product, url, files)
    return files


# -- both ------------------------------------------------------------------------------------
def _stopping_others(ctx: _Context, job: Callable[..., _T]) -> Callable[..., _T]:
    """``job``, which on failure stops the other jobs at once (before the next one starts)."""

    def run(*args: object) -> _T:
        try:
            return job(*args)
        except Stopped:
            raise
        except BaseException:
            ctx.stop.set()
            raise

    return run


def _gather(stop: threading.Event, futures: Sequence[Future[_T]]) -> list[_T]:
    """The jobs' results in order; on the first failure the others stop and it is raised."""
    out: list[_T] = []
    errors: list[Exception] = []
    for future in futures:
        try:
            out.append(future.result())
        except Stopped:
            continue
        except Exception as exc:  # collected: the first is raised below, the rest counted
            stop.set()
            errors.append(exc)
    if errors:
        first = errors[0]
        if isinstance(first, ArchiveError) and len(errors) > 1:
            raise ArchiveError(f"{first} (and {len(errors) - 1} more failures)") from None
        raise first
    return out


def fetch_observations(
    obsids: Sequence[str],
    folder: str | os.PathLike[str],
    *,
    cameras: Sequence[str] = tuple(CAMERAS),
    archive: str = "xsa",
    base: str | None = None,
    flare_series: bool = True,
    jobs: int = 4,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: ProgressCallback | None = None,
) -> FetchReport:
    """Download the event lists (and flare time series) of observations into ``folder``.

    Parameters
    ----------
    obsids : sequence of str
        10-digit XMM-Newton obsids.
    folder : str or os.PathLike
        Where the files go (``<folder>/<obsid>/pps/``); created if missing.
    cameras : sequence of str
        Any of ``pn``, ``mos1``, ``mos2``.
    archive : {"xsa", "heasarc"}
        The XMM-Newton Science Archive's AIO interface, or HEASARC's HTTPS tree.
    base : str, optional
        The archive's base URL (default: the environment's ``XLCAT_XSA_URL`` /
        ``XLCAT_HEASARC_URL``, else the archive's own).
    flare_series : bool
        Fetch the flare background time series (``FBKTSR``) too.
    jobs : int
        Files downloaded at the same time.
    retries : int
        Attempts after the first, per file, on a dropped connection, timeout or 5xx.
    timeout : float
        Seconds to wait for a connection or a read.
    backoff : float
        Seconds before the first retry (doubled per retry).
    progress : callable, optional
        Called with (file label, bytes so far, total or None) as bytes arrive.

    Returns
    -------
    FetchReport

    Raises
    ------
    ConfigError
        A bad obsid, camera, archive, base URL or number.
    ArchiveError
        The archive cannot be reached, lacks a product, or sends a file that fails its checks
        (one line naming the URL or obsid; files already complete keep their names, partial
        ones stay ``.part`` for the next run to resume).
    """
    if jobs < 1 or retries < 0 or not timeout > 0 or backoff < 0:
        raise ConfigError(
            f"--jobs {jobs} / --retries {retries} / --timeout {timeout}: give jobs >= 1, "
            "retries >= 0 and a positive timeout"
        )
    wanted = products(list(obsids), list(cameras), flare_series=flare_series)
    url = base_url(archive, base)
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"folder {root}: is a file; give a folder to download into")
    stop = threading.Event()
    ctx = _Context(timeout, retries, backoff, progress, stop, threading.local())
    for obsid in dict.fromkeys(p.obsid for p in wanted):
        obs_folder(root, obsid).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="xlcat-fetch") as pool:
        try:
            groups: list[Future[list[FetchedFile]]] = []
            if archive == "xsa":
                for p in wanted:
                    dest = obs_folder(root, p.obsid)
                    groups.append(
                        pool.submit(
                            _stopping_others(ctx, _fetch_xsa), ctx, p, xsa_url(url, p), dest
                        )
                    )
            else:
                obs = list(dict.fromkeys(p.obsid for p in wanted))
                folders = {obsid: heasarc_folder(url, obsid) for obsid in obs}
                listed = _gather(
                    stop,
                    [pool.submit(_stopping_others(ctx, _listing), ctx, folders[o], o) for o in obs],
                )
                listings = dict(zip(obs, listed, strict=True))
                for p in wanted:
                    picked = pick_files(listings[p.obsid], p, folders[p.obsid])
                    for name, file_url in picked.items():
                        final = obs_folder(root, p.obsid) / name
                        groups.append(
                            pool.submit(_stopping_others(ctx, _fetch_one), ctx, p, file_url, final)
                        )
            files = [f for group in _gather(stop, groups) for f in group]
        except BaseException:
            stop.set()
            raise
    log.info("fetched %d files into %s", len(files), root)
    return FetchReport(root, archive, tuple(sorted(files, key=lambda f: f.path)))
