"""Benchmark: the full NGC 5506 preset build, reported as rates and ratios measured in one run.

Usage::

    python bench/bench_build.py [--scale 1.0] [--workers N] [--keep DIR]

It simulates the nine observations, then measures, in this one run:

1. the full build (9 observations x every preset scheme) on a LocalCluster:
   wall time and events read per second;
2. speed ratio, one pass against one pass per band: the time to extract every
   band of every scheme of the largest observation from its one-pass cube,
   against reading and selecting the event file once per band (what running
   evselect per band amounts to), extrapolated from a sample of bands;
3. memory against file size: the peak of heap allocations (tracemalloc, which
   numpy reports to; the memory-mapped file's pages are reclaimable page cache
   and are not counted) when the event count of a 20 ks exposure grows about
   sevenfold, for chunked binning against loading the EVENTS table.

Nothing here is a pass/fail test; the numbers are printed for the record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.build.cluster import connect
from pipeline.build.graph import run_build
from pipeline.build.plan import plan_build
from pipeline.extract.backends.native import NativeBackend, bin_observation
from pipeline.read.events import iter_event_chunks
from pipeline.simulate import simulate_observation, simulate_preset
from schemas.build import SchemeOptions, load_build

_PEAK = """
import sys, tracemalloc
mode, path = sys.argv[1], sys.argv[2]
tracemalloc.start()
if mode.startswith("load"):
    from astropy.io import fits
    import numpy as np
    if mode == "load":
        with fits.open(path, memmap=False) as h:
            d = h["EVENTS"].data
            cols = {c: np.array(d[c]) for c in ("TIME", "X", "Y", "PI", "PATTERN", "FLAG", "CCDNR")}
else:
    from pipeline.extract.jobs import ObservationJob
    from pipeline.extract.backends.native import bin_observation
    from pipeline.select.regions import read_regions
    from schemas.build import Screening
    if mode == "bin":
        edges = tuple(int(v) for v in sys.argv[4].split(","))
        job = ObservationJob(obsid="0000000000", events=path, regions=read_regions(sys.argv[3]),
                             gti_file=None, screening=Screening(), flare=None, time_bin=128.0,
                             pi_edges=edges)
        bin_observation(job)
# peak of heap allocations (numpy's included); pages of the memory-mapped file are page
# cache, reclaimable by the kernel, and are not counted
print(tracemalloc.get_traced_memory()[1] // 1024)
"""


def _growth_mb(mode: str, events: Path, regions: Path, edges: tuple[int, ...]) -> float:
    """Peak RSS of one fresh process doing `mode`, minus the same process that only imports."""

    def peak(m: str) -> int:
        args = [str(events), str(regions), ",".join(map(str, edges))]
        out = subprocess.run(
            [sys.executable, "-c", _PEAK, m, *args], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip().splitlines()[-1])

    return (peak(mode) - peak(mode + "-imports")) / 1024.0


def _per_band_selection(job, bands) -> float:
    """Seconds to select each band by re-reading the event file (evselect-style), per band."""
    t = time.perf_counter()
    for band in bands:
        for chunk in iter_event_chunks(job.events, ["TIME", "X", "Y", "PI", "PATTERN", "FLAG"]):
            pi = chunk["PI"]
            sel = (
                (chunk["PATTERN"] <= 4)
                & (chunk["FLAG"] == 0)
                & (pi >= band.pi_lo)
                & (pi < band.pi_hi)
            )
            x, y = chunk["X"][sel], chunk["Y"][sel]
            job.regions.in_source(x, y)
            job.regions.in_background(x, y)
    return (time.perf_counter() - t) / len(bands)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="simulate into this folder and keep it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t = time.perf_counter()
        build_file = simulate_preset(root, scale=args.scale)
        t_sim = time.perf_counter() - t
        config = load_build(build_file)
        plan = plan_build(config, force=True)
        n_events = sum(
            int(fits.getheader(j.events, "EVENTS")["NAXIS2"]) for j in plan.jobs.values()
        )
        with connect(workers=args.workers) as client:
            t = time.perf_counter()
            report = run_build(plan, client)
            t_build = time.perf_counter() - t
        assert report.ok, report.failed
        n_bands = sum(len(s.bands) for s in config.schemes.values() if s.is_resolved)

        largest = max(plan.jobs.values(), key=lambda j: j.events.stat().st_size)
        backend = NativeBackend()
        t = time.perf_counter()
        prep = bin_observation(largest)
        t_pass = time.perf_counter() - t
        bands = [b for s in config.schemes.values() if s.is_resolved for b in s.bands]
        t = time.perf_counter()
        for s in config.schemes.values():
            if s.is_resolved:
                backend.extract(prep, s.bands, SchemeOptions())
        t_derive = time.perf_counter() - t
        rng = np.random.default_rng(0)
        sample = [bands[i] for i in rng.choice(len(bands), size=min(12, len(bands)), replace=False)]
        t_band = _per_band_selection(largest, sample)
        one_pass = t_pass + t_derive
        per_band = t_band * len(bands)

        # memory against event count: the same 20 ks exposure at 10 and 80 cts/s
        sizes = {}
        edges = largest.pi_edges
        for rate in (10.0, 80.0):
            d = root / f"mem{rate:g}"
            truth = simulate_observation(
                d,
                "0000000001",
                exposure=20_000.0,
                source_rate=rate,
                mjd=57000.0,
                seed=1,
                flares=False,
            )
            sizes[rate] = {
                "events": truth.n_events,
                "chunked": _growth_mb("bin", d / truth.events_path, d / truth.regions_path, edges),
                "loaded": _growth_mb("load", d / truth.events_path, d / truth.regions_path, edges),
            }
        lo, hi = sizes[10.0], sizes[80.0]
        result = {
            "scale": args.scale,
            "observations": len(plan.jobs),
            "schemes": len(config.schemes),
            "bands_per_observation": n_bands,
            "groups_built": len(report.built),
            "events_total": n_events,
            "simulate_s": round(t_sim, 2),
            "build_s": round(t_build, 2),
            "events_per_s": round(n_events / t_build),
            "largest_file": largest.events.name + f" ({largest.obsid}, "
            f"{largest.events.stat().st_size / 1e6:.1f} MB)",
            "one_pass_all_bands_s": round(one_pass, 3),
            "per_band_reads_all_bands_s (extrapolated)": round(per_band, 2),
            "speed_ratio_per_band_over_one_pass": round(per_band / one_pass, 1),
            "memory_events_low_high": [lo["events"], hi["events"]],
            "memory_chunked_binning_MB_low_high": [
                round(lo["chunked"], 1),
                round(hi["chunked"], 1),
            ],
            "memory_table_loaded_MB_low_high": [round(lo["loaded"], 1), round(hi["loaded"], 1)],
            "memory_growth_ratio_loaded_over_chunked": round(
                (hi["loaded"] - lo["loaded"]) / max(hi["chunked"] - lo["chunked"], 0.1), 1
            ),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
