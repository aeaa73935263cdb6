"""Measuring a command and every process it starts: CPU, wall time, peak memory, store size.

The build runs as a subprocess (``xlcat build``) that starts a Dask LocalCluster: its
worker processes are children of the build (multiprocessing ``spawn``), so grandchildren of
the benchmark. Two independent measures of their CPU are taken in the same run:

``getrusage(RUSAGE_CHILDREN)`` (the figure used)
    The kernel adds a process's user + system time, *and what it has collected of its own
    children*, to its parent's ``RUSAGE_CHILDREN`` when the parent waits for it. The build
    joins its worker processes when it closes the cluster, and the benchmark waits for the
    build, so every worker's CPU reaches the benchmark's counter exactly, up to the moment
    each exited. Only a descendant nobody waits for (one orphaned to init) escapes it.
psutil sampling (the check)
    Every ``interval`` seconds the process tree (the build and all its descendants, however
    deep) is listed and each process's own ``cpu_times()`` user + system kept; the last
    sample of each (pid, start time) is summed. This sees orphans too, but misses the CPU a
    process spends after its last sample (at most ``interval`` each) and processes that live
    shorter than ``interval``. It also gives the peak RSS: of the tree (summed over its
    processes at one sample) and of its largest process.

The rusage figure is used; when the sampled sum exceeds it by more than 2 % (a descendant
escaped being waited for) the sampled sum is used instead, and ``cpu_source`` says which.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = ["TreeUsage", "run_measured", "tree_inodes", "cpu_now"]


def cpu_now() -> float:
    """CPU seconds (user + system, every thread) of this process so far."""
    return time.process_time()


@dataclass(frozen=True)
class TreeUsage:
    """What one command and its descendants used.

    Attributes
    ----------
    cpu_s : float
        Total CPU (user + system) of the command and all its descendants: the figure used.
    cpu_source : str
        ``"rusage"`` or ``"psutil"``: which measure ``cpu_s`` is (see the module docstring).
    cpu_rusage_s, cpu_sampled_s : float
        The two measures.
    wall_s : float
        Wall time from start to exit.
    peak_rss_tree_mb : float
        Largest sum of the RSS of all processes of the tree at one sample (shared pages count
        once per process).
    max_rss_one_process_mb : float
        Largest RSS of any single process of the tree at one sample.
    processes_seen : int
        Distinct processes the sampling saw.
    cpu_per_process_s : list of float
        Sampled CPU of each of them, the command itself first, then its descendants by CPU.
    returncode : int
    """

    cpu_s: float
    cpu_source: str
    cpu_rusage_s: float
    cpu_sampled_s: float
    wall_s: float
    peak_rss_tree_mb: float
    max_rss_one_process_mb: float
    processes_seen: int
    returncode: int
    cpu_per_process_s: list[float]

    def as_dict(self) -> dict[str, Any]:
        """Rounded figures for the JSON report."""
        d = asdict(self)
        d["cpu_per_process_s"] = [round(v, 2) for v in self.cpu_per_process_s]
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def run_measured(
    cmd: list[str], *, log: Path, interval: float = 0.05, env: dict[str, str] | None = None
) -> TreeUsage:
    """Run ``cmd`` to completion and measure it with all its descendants.

    Parameters
    ----------
    cmd : list of str
        The command (argument list, no shell).
    log : Path
        File receiving the command's stdout and stderr.
    interval : float
        Seconds between psutil samples of the process tree.
    env : dict, optional
        Environment of the command (default: this process's).

    Returns
    -------
    TreeUsage
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    last: dict[tuple[int, float], float] = {}
    peak_rss = peak_one = 0
    t0 = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                tree = []
            rss = 0
            for p in tree:
                try:
                    with p.oneshot():
                        ct = p.cpu_times()
                        key = (p.pid, p.create_time())
                        one = p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                last[key] = ct.user + ct.system
                rss += one
                peak_one = max(peak_one, one)
            peak_rss = max(peak_rss, rss)
            time.sleep(interval)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_rusage = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu_sampled = float(sum(last.values()))
    own = [v for (pid, _), v in last.items() if pid == proc.pid]
    others = sorted((v for (pid, _), v in last.items() if pid != proc.pid), reverse=True)
    use_sampled = cpu_sampled > 1.02 * cpu_rusage
    return TreeUsage(
        cpu_s=cpu_sampled if use_sampled else cpu_rusage,
        cpu_source="psutil" if use_sampled else "rusage",
        cpu_rusage_s=cpu_rusage,
        cpu_sampled_s=cpu_sampled,
        wall_s=wall,
        peak_rss_tree_mb=peak_rss / 2**20,
        max_rss_one_process_mb=peak_one / 2**20,
        processes_seen=len(last),
        returncode=int(proc.returncode),
        cpu_per_process_s=own + others,
    )


def tree_inodes(root: Path) -> dict[str, int]:
    """Files, directories and bytes under ``root`` (the directory itself not counted).

    Returns
    -------
    dict
        ``files``, ``dirs``, ``bytes`` (sum of file sizes) and ``disk_bytes`` (allocated
        blocks, what ``du`` counts).
    """
    files = dirs = size = disk = 0
    for _here, dnames, fnames in os.walk(root):
        dirs += len(dnames)
        for f in fnames:
            st = os.lstat(os.path.join(_here, f))
            files += 1
            size += st.st_size
            disk += st.st_blocks * 512
    return {"files": files, "dirs": dirs, "bytes": size, "disk_bytes": disk}
