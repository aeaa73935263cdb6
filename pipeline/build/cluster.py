"""Connecting to Dask distributed: LocalCluster, scheduler address, or SLURM/PBS (dask-jobqueue)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

from schemas.errors import ConfigError

__all__ = ["connect"]


@contextlib.contextmanager
def connect(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = True,
    jobqueue: str | None = None,
) -> Iterator[Client]:
    """A Dask distributed client for the build, closed on exit.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``). When omitted, a
        LocalCluster (or a jobqueue cluster) is started for the duration.
    workers : int, optional
        Local workers (default: the number of cores), or jobqueue jobs.
    threads_per_worker : int
        Threads per local worker.
    processes : bool
        Local workers as processes (default) or threads in this process.
    jobqueue : {"slurm", "pbs"}, optional
        Start a dask-jobqueue cluster configured from ``~/.config/dask/jobqueue.yaml``.

    Yields
    ------
    distributed.Client

    Raises
    ------
    ConfigError
        For an unknown jobqueue kind or when dask-jobqueue is not installed.
    """
    if scheduler is not None:
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]  # untyped __init__
            yield client
        return
    if jobqueue is not None:
        try:
            import dask_jobqueue
        except ImportError:
            raise ConfigError("--jobqueue needs dask-jobqueue: pip install 'xlcat[hpc]'") from None
        kinds = {"slurm": dask_jobqueue.SLURMCluster, "pbs": dask_jobqueue.PBSCluster}
        if jobqueue not in kinds:
            raise ConfigError(f"--jobqueue {jobqueue!r}: choose slurm or pbs")
        with kinds[jobqueue]() as cluster:
            cluster.scale(jobs=workers or 1)
            with Client(cluster) as client:  # type: ignore[no-untyped-call]  # untyped __init__
                yield client
        return
    n = workers or os.cpu_count() or 1
    with (
        LocalCluster(  # type: ignore[no-untyped-call]  # untyped __init__
            n_workers=n,
            threads_per_worker=threads_per_worker,
            processes=processes,
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # shutdown chatter; task errors reach the report
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]  # untyped __init__
    ):
        yield client
