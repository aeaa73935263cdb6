"""``xlcat fetch``: the pipeline products of some obsids, into the layout ``xlcat init`` reads."""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.fetch import ARCHIVES, BASE_URL_ENV, CAMERAS, DEFAULT_BASE_URL

if TYPE_CHECKING:
    from pipeline.fetch.run import ProgressCallback

__all__ = ["register"]


@contextlib.contextmanager
def _progress_display(*, enabled: bool) -> Iterator[ProgressCallback | None]:
    """Rich progress bars (on stderr), one per file, fed from the download threads.

    The bars appear with the first bytes: a command that fails before any download (a bad
    argument, an unreachable archive) prints its one error line only.
    """
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskID,
        TextColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}
    lock = threading.Lock()

    def update(label: str, done: int, total: int | None) -> None:
        with lock:
            if not tasks:
                bar.start()
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
        bar.update(tasks[label], completed=done, total=total)

    try:
        yield update
    finally:
        with lock:
            if tasks:
                bar.stop()


def _cmd_fetch(args: argparse.Namespace) -> int:
    from pipeline.fetch.run import fetch_observations

    with _progress_display(enabled=not args.no_progress) as progress:
        report = fetch_observations(
            args.obsid,
            args.directory,
            cameras=args.instrument,
            archive=args.archive,
            base=args.base_url,
            flare_series=not args.no_flare_series,
            jobs=args.jobs,
            retries=args.retries,
            timeout=args.timeout,
            progress=progress,
        )
    present = len(report.files) - report.downloaded
    print(
        f"{os.path.relpath(report.folder)}: {len(report.files)} files from {report.archive} "
        f"({report.downloaded} downloaded, {report.bytes / 1e6:.1f} MB; {present} already there)"
    )
    for f in report.files:
        state = "downloaded" if f.downloaded else "present"
        print(
            f"  {f.product.obsid} {f.product.camera:4s} {f.product.name} {f.size:>12,d} B  "
            f"{state:10s} {os.path.relpath(f.path)}"
        )
    print(f"next: xlcat init {os.path.relpath(report.folder)}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fetch`` to the ``xlcat`` command."""
    p = sub.add_parser(
        "fetch",
        help="download the event lists and flare time series of obsids from the archive",
        description="Download the XMM-Newton pipeline (PPS) event lists (PIEVLI, MIEVLI) and "
        "flare background time series (FBKTSR) of each OBSID and camera into "
        "DIR/<obsid>/pps/, where xlcat init finds them. Downloads run in parallel, resume "
        "after an interruption (re-run the command), are checked (size, gzip CRC, FITS "
        "checksums) and only then get their names; files already there are skipped.",
    )
    p.add_argument("obsid", nargs="+", metavar="OBSID", help="10-digit XMM-Newton obsids")
    p.add_argument("directory", type=Path, metavar="DIR", help="folder to download into")
    p.add_argument(
        "--instrument",
        nargs="+",
        choices=list(CAMERAS),
        default=list(CAMERAS),
        metavar="CAMERA",
        help=f"cameras: {' '.join(CAMERAS)} (default: all three)",
    )
    p.add_argument(
        "--archive",
        choices=list(ARCHIVES),
        default="xsa",
        help="xsa: the XMM-Newton Science Archive's AIO interface (default); heasarc: "
        "HEASARC's HTTPS tree",
    )
    p.add_argument(
        "--base-url",
        help="the archive's base URL (default: $"
        + " / $".join(BASE_URL_ENV.values())
        + ", else "
        + ", ".join(f"{k}: {v}" for k, v in DEFAULT_BASE_URL.items())
        + ")",
    )
    p.add_argument(
        "--no-flare-series", action="store_true", help="fetch the event lists only (no FBKTSR)"
    )
    p.add_argument("--jobs", type=int, default=4, help="parallel downloads (4)")
    p.add_argument("--retries", type=int, default=5, help="retries per file (5)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for data (60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_fetch)
