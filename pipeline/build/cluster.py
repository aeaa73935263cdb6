"""Connecting to Dask distributed: LocalCluster, scheduler address, or SLURM/PBS (dask-jobqueue).

Whatever :func:`connect` starts it stops again on every way out of the ``with``
block (a finished build, an exception, KeyboardInterrupt; the command line turns
SIGTERM into an exception too):

- a LocalCluster, its worker processes, and any process its tasks started (a SAS
  task still running when the build is interrupted would otherwise outlive its
  worker, in a session of its own);
- a dask-jobqueue cluster and its batch jobs, which are submitted before
  :func:`connect` yields, so that a refused submission is a one-line ConfigError
  rather than a build waiting for workers forever. The job script exports this
  process's ``PYTHONPATH``: the workers unpickle the build's functions by name.

No scheduler started here listens on a fixed HTTP port: the Dask dashboard is off
and the scheduler's small HTTP server (health, metrics) takes a free port on
127.0.0.1, so builds side by side never meet on port 8787.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dask
import psutil
from distributed import Client, LocalCluster

from schemas.errors import ConfigError

__all__ = ["JobQueueOptions", "connect", "JOBQUEUE_KINDS"]

#: ``--jobqueue`` kinds: the dask-jobqueue cluster class and the batch system's submit command.
JOBQUEUE_KINDS: dict[str, tuple[str, str]] = {
    "slurm": ("SLURMCluster", "sbatch"),
    "pbs": ("PBSCluster", "qsub"),
}

log = logging.getLogger(__name__)

#: Environment variable marking the processes started while a LocalCluster runs.
_TAG = "XLCAT_CLUSTER_TAG"

#: The scheduler's HTTP server: a free port on the loopback interface, never the dashboard.
_HTTP: dict[str, Any] = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


@dataclass(frozen=True)
class JobQueueOptions:
    """What each batch job asks for; None leaves the value to the Dask config.

    The Dask config is ``jobqueue.<kind>.*`` (``~/.config/dask/jobqueue.yaml``,
    or ``DASK_JOBQUEUE__SLURM__QUEUE=...`` environment variables); a value given
    here wins.

    Attributes
    ----------
    queue : str, optional
        Partition (SLURM) or queue (PBS).
    account : str, optional
        Account charged for the jobs.
    cores : int, optional
        Cores per job; the job runs one single-threaded Dask worker per core
        unless ``jobqueue.<kind>.processes`` says otherwise.
    memory : str, optional
        Memory per job, e.g. ``"8GB"``.
    walltime : str, optional
        Wall-clock limit per job, e.g. ``"01:00:00"``.
    directives : tuple of str
        Extra scheduler directives, e.g. ``("--qos=debug",)`` (SLURM) or ``("-V",)`` (PBS),
        appended to the ones of the Dask config.
    """

    queue: str | None = None
    account: str | None = None
    cores: int | None = None
    memory: str | None = None
    walltime: str | None = None
    directives: tuple[str, ...] = ()


@contextlib.contextmanager
def connect(
    scheduler: str | None = None,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    processes: bool = False,
    jobqueue: str | None = None,
    job: JobQueueOptions | None = None,
) -> Iterator[Client]:
    """A Dask distributed client for the build; what it started is closed on exit.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``) or the path of its
        scheduler file. When omitted, a LocalCluster (or a jobqueue cluster) is
        started for the duration.
    workers : int, optional
        Local workers (default: the number of cores), or jobqueue jobs (default 1).
    threads_per_worker : int
        Threads per local worker.
    processes : bool
        Local workers as processes, or as threads of this process (the default: with one
        task per exposure, the native backend's work is numpy, memory-mapped reads and
        compression, which release the GIL, and threads spare each worker process its
        start-up and imports; see README "Where a build runs").
    jobqueue : {"slurm", "pbs"}, optional
        Start the workers as batch jobs through dask-jobqueue.
    job : JobQueueOptions, optional
        What each batch job asks for (with ``jobqueue``).

    Yields
    ------
    distributed.Client

    Raises
    ------
    ConfigError
        An unreachable scheduler; an unknown jobqueue kind, dask-jobqueue not
        installed, no cores or memory per job, or a refused job submission.
    """
    if scheduler is not None:
        with _scheduler_client(scheduler) as client:
            yield client
        return
    if jobqueue is not None:
        with (
            _silenced("distributed"),
            _jobqueue_cluster(jobqueue, workers or 1, job or JobQueueOptions()) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]  # untyped __init__
        ):
            yield client
        return
    n = workers or os.cpu_count() or 1
    with contextlib.ExitStack() as stack:
        stack.enter_context(_silenced("distributed"))
        reaper = stack.enter_context(_Reaper(processes=processes))
        with _workers_spared_ctrl_c(processes):
            cluster = stack.enter_context(
                LocalCluster(  # type: ignore[no-untyped-call]  # untyped __init__
                    n_workers=n,
                    threads_per_worker=threads_per_worker,
                    processes=processes,
                    dashboard_address=_HTTP["dashboard_address"],
                    scheduler_kwargs={"dashboard": _HTTP["dashboard"]},
                    silence_logs=logging.CRITICAL,  # shutdown chatter; errors reach the report
                )
            )
        client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
        try:
            yield client
        except BaseException:
            # worker threads may start another task's subprocess while the cluster closes
            reaper.end_task_processes(until_exit=True)
            raise
        else:
            reaper.end_task_processes()


@contextlib.contextmanager
def _workers_spared_ctrl_c(processes: bool) -> Iterator[None]:
    """Start worker processes with SIGINT blocked, so Ctrl-C reaches only xlcat itself.

    A terminal's Ctrl-C goes to the whole process group: worker processes would print
    KeyboardInterrupt tracebacks while xlcat closes them. The signal mask is inherited by
    the cluster's thread (created here) and the processes it spawns, and Python leaves it
    as it is; xlcat's own thread unblocks it afterwards, so a Ctrl-C pressed meanwhile is
    delivered then (exit 130). Worker threads need nothing: signals reach the main thread.
    """
    block = (
        processes
        and hasattr(signal, "pthread_sigmask")
        and threading.current_thread() is threading.main_thread()
    )
    if not block:
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _Reaper:
    """Ends every process started within it that outlives it.

    Processes started within inherit a variable naming this reaper: the
    LocalCluster's worker processes, and through them the SAS tasks they run. A
    worker stopped while its task waits for a SAS task (an interrupted build)
    would leave that task running without a parent, in a session of its own.
    """

    def __init__(self, *, processes: bool) -> None:
        self.processes = processes
        self.tag = f"{os.getpid()}-{uuid.uuid4().hex}"
        self.previous: str | None = None
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    def __enter__(self) -> _Reaper:
        if self.processes:
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()  # started untagged: it serves the whole process
        self.previous = os.environ.get(_TAG)
        os.environ[_TAG] = self.tag
        return self

    def end_task_processes(self, *, until_exit: bool = False) -> None:
        """End the processes the tasks started (not the worker processes, our children).

        Called before the workers are stopped: a task whose SAS task ends returns at
        once, where a stopping worker would wait for it, then be killed. With
        ``until_exit`` and worker threads (which cannot be killed), processes started
        after this call are ended too, every 0.2 s until the reaper exits: a worker
        thread that takes another task while the cluster closes would otherwise keep
        the close waiting for that task's subprocess.
        """
        _end(self._task_processes())
        if until_exit and not self.processes and self._sweeper is None:
            self._sweeper = threading.Thread(target=self._sweep, name="xlcat-reaper", daemon=True)
            self._sweeper.start()

    def _task_processes(self) -> list[psutil.Process]:
        me = os.getpid()
        procs = []
        for proc in _tagged(self.tag):
            with contextlib.suppress(psutil.Error):
                if not self.processes or proc.ppid() != me:
                    procs.append(proc)
        return procs

    def _sweep(self) -> None:
        while not self._stop.wait(0.2):
            _end(self._task_processes(), grace=1.0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join()
        if self.previous is None:
            os.environ.pop(_TAG, None)
        else:
            os.environ[_TAG] = self.previous
        _end(_tagged(self.tag))


def end_started_processes(grace: float = 1.0) -> int:
    """End every process the running build started: its worker processes and their tasks.

    The last resort of an interrupted command line whose cluster does not close: the
    processes carrying the running reaper's tag (SAS tasks left without their worker
    included) and every descendant of this process.

    Returns
    -------
    int
        Processes ended.
    """
    tag = os.environ.get(_TAG)
    procs = _tagged(tag) if tag else []
    with contextlib.suppress(psutil.Error):
        pids = {p.pid for p in procs}
        procs += [p for p in psutil.Process().children(recursive=True) if p.pid not in pids]
    _end(procs, grace=grace)
    return len(procs)


def _tagged(tag: str) -> list[psutil.Process]:
    """Live processes (other than this one) whose environment has ``_TAG=tag``."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get(_TAG) == tag:
                found.append(proc)
        except psutil.Error:  # gone meanwhile, or not ours to read
            continue
    return found


def _end(procs: list[psutil.Process], grace: float = 3.0) -> None:
    """SIGTERM, and SIGKILL to those still running after ``grace`` seconds."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    if procs:
        log.warning("ended %d processes left behind by the build's workers", len(procs))


@contextlib.contextmanager
def _scheduler_client(address: str) -> Iterator[Client]:
    """A client of a running scheduler, or a one-line ConfigError when there is none."""
    kind = "scheduler_file" if os.path.isfile(address) else "address"
    try:
        client = Client(**{kind: address})  # type: ignore[no-untyped-call]  # untyped __init__
    except (OSError, ValueError) as exc:  # TimeoutError is an OSError
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"--scheduler {address}: no Dask scheduler answers there ({reason}); "
            "start one (dask scheduler) or give its tcp://host:port or scheduler file"
        ) from None
    with client:
        yield client


@contextlib.contextmanager
def _jobqueue_cluster(kind: str, jobs: int, job: JobQueueOptions) -> Iterator[Any]:
    """A started dask-jobqueue cluster with ``jobs`` batch jobs submitted, closed on exit."""
    if kind not in JOBQUEUE_KINDS:
        raise ConfigError(f"--jobqueue {kind!r}: choose one of {', '.join(JOBQUEUE_KINDS)}")
    try:
        import dask_jobqueue
    except ImportError:
        raise ConfigError("--jobqueue needs dask-jobqueue: pip install 'xlcat[hpc]'") from None
    class_name, submit = JOBQUEUE_KINDS[kind]
    if shutil.which(submit) is None:
        raise ConfigError(
            f"--jobqueue {kind}: {submit} is not on PATH; run xlcat where jobs can be submitted"
        )
    kwargs = _jobqueue_kwargs(kind, job)
    try:
        cluster = getattr(dask_jobqueue, class_name)(**kwargs)
    except ValueError as exc:  # dask-jobqueue's word for a bad option
        raise ConfigError(f"--jobqueue {kind}: {str(exc).splitlines()[0]}") from None
    with cluster:
        _submit(cluster, jobs, kind, submit)
        yield cluster


def _submit(cluster: Any, jobs: int, kind: str, submit: str) -> None:
    """Submit the batch jobs now; ConfigError with the batch system's reason if it refuses one.

    ``scale()`` only schedules the submission on the cluster's event loop, where a
    refusal is merely logged (by tornado) and the build would wait for workers forever.
    """
    from distributed.core import Status

    cluster.scale(jobs=jobs)
    with _kept_errors("tornado.application") as logged:
        try:
            cluster.sync(cluster._correct_state)
            error: BaseException | None = None
        except Exception as exc:  # the submit command's failure, whatever dask-jobqueue calls it
            error = exc
    refused = [job for job in cluster.workers.values() if job.job_id is None]
    if not refused:
        return
    for job in refused:
        job.status = Status.failed  # never submitted, nothing to cancel; lets the cluster close
    reason = _last_line(error or (logged[0] if logged else RuntimeError("no reason given")))
    raise ConfigError(
        f"--jobqueue {kind}: {submit} refused the worker job: {reason}; "
        "check --queue, --account, --cores, --memory, --walltime and --job-directive"
    )


@contextlib.contextmanager
def _kept_errors(name: str) -> Iterator[list[BaseException]]:
    """Exceptions logged on logger ``name`` meanwhile, kept in a list instead of printed."""
    kept: list[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                kept.append(record.exc_info[1])

    logger = logging.getLogger(name)
    handler, propagate = Keep(), logger.propagate
    logger.propagate = False
    with _silenced(name):
        logger.addHandler(handler)
        try:
            yield kept
        finally:
            logger.removeHandler(handler)
            logger.propagate = propagate


def _jobqueue_kwargs(kind: str, job: JobQueueOptions) -> dict[str, Any]:
    """Keyword arguments of the dask-jobqueue cluster: the options over the Dask config."""

    def config(key: str) -> Any:
        return dask.config.get(f"jobqueue.{kind}.{key}", None)

    cores = job.cores if job.cores is not None else config("cores")
    memory = job.memory if job.memory is not None else config("memory")
    if cores is None or memory is None:
        missing = " and ".join(
            f"--{name}" for name, v in (("cores", cores), ("memory", memory)) if v is None
        )
        raise ConfigError(
            f"--jobqueue {kind}: give {missing} per job "
            f"(or set jobqueue.{kind}.cores and .memory in ~/.config/dask/jobqueue.yaml)"
        )
    if int(cores) < 1:
        raise ConfigError(f"--jobqueue {kind}: --cores {cores}: give at least 1 core per job")
    kwargs: dict[str, Any] = {"cores": int(cores), "memory": memory}
    if config("processes") is None:
        kwargs["processes"] = int(cores)  # one single-threaded worker per core, as locally
    for name in ("queue", "account", "walltime"):
        value = getattr(job, name)
        if value is not None:
            kwargs[name] = value
    if job.directives:
        kwargs["job_extra_directives"] = [
            *(config("job-extra-directives") or []),
            *job.directives,
        ]
    pythonpath = os.environ.get("PYTHONPATH")
    if pythonpath:
        # Workers import the build's code by name: they need this process's import path,
        # which PBS (without -V) or SLURM with --export=NONE would not hand them.
        absolute = os.pathsep.join(os.path.abspath(p) for p in pythonpath.split(os.pathsep) if p)
        kwargs["job_script_prologue"] = [
            *(config("job-script-prologue") or []),
            f"export PYTHONPATH={shlex.quote(absolute)}",
        ]
    scheduler_options = dict(config("scheduler-options") or {})
    if "dashboard_address" not in scheduler_options:
        scheduler_options.update(_HTTP)
    kwargs["scheduler_options"] = scheduler_options
    return kwargs


@contextlib.contextmanager
def _silenced(name: str) -> Iterator[None]:
    """The handlers on logger ``name`` (Dask configures its own) print nothing meanwhile.

    Closing a cluster whose workers are being stopped logs comm errors with
    tracebacks (``Batched Comm Closed``, at INFO) after the cluster's own
    ``silence_logs`` has been undone; task errors reach the build report anyway.
    """
    handlers = list(logging.getLogger(name).handlers)
    levels = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for h, level in zip(handlers, levels, strict=True):
            h.setLevel(level)


def _last_line(exc: BaseException) -> str:
    """The last non-empty line of an error (dask-jobqueue puts the command's stderr last)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
