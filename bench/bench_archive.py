"""Benchmark: archive scale, many small exposures x 3 schemes, measured in one run.

Usage::

    python -m bench.bench_archive [--n-exposures 1000] [--exposure 2000] [--rate 2]
                                  [--workers N] [--keep DIR] [--json out.json]

It simulates ``--n-exposures`` short pn exposures with the simulator's Python API
(:func:`pipeline.simulate.simulate_observation`: ``--exposure`` seconds each at ``--rate``
source counts/s, CCD GTI gaps and one soft-proton flare each: about 30 000 events), writes
one build file with all of them, a flare filter and three schemes (``1a``, ``8lch``,
``24ch``: 33 bands), then measures:

1. **the whole build**: ``xlcat build`` as a subprocess into a fresh store, its total CPU
   over every process (Dask worker processes included; :mod:`bench.measure`), wall time and
   the peak RSS of the process tree;
2. **the numpy anchor** (:func:`bench.anchors.numpy_anchor`) on the same exposures: the
   event work alone; a sample of exposures is compared with the store;
3. **the store**: files and directories under it, whatever its layout, and its size;
4. the same build again, every exposure up to date: start-up and planning alone
   (``--no-rerun`` skips it).

Reported per exposure: the build's CPU beyond the event work
(``(build CPU - numpy anchor CPU) / n``), which includes the build's fixed start-up (Python
imports, the cluster) spread over the exposures; files and directories in the store; bytes.
Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: put the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.anchors import numpy_anchor, scheme_bands
from bench.bench_build import compare_with_store, machine, run_build_measured
from bench.measure import tree_inodes
from pipeline.simulate import simulate_observation
from schemas.build import load_build

#: The three schemes of the archive build (33 bands).
SCHEMES = """
[schemes]
1a   = { unit = "keV", edges = [2, 10] }
8lch = { unit = "keV", log = [2, 10, 8], snap = "chan" }
24ch = { unit = "chan", lin = [400, 2000, 24] }
"""

#: Obsid of exposure 0; exposure i is this plus i (10 digits).
FIRST_OBSID = 7_000_000_000


def simulate_archive(root: Path, n: int, exposure: float, rate: float, seed: int) -> Path:
    """Simulate ``n`` exposures under ``root`` and write ``root/archive.toml``; returns it."""
    lines = ['store = "archive.zarr"', "time_bin = 128.0", "", "[flare]", "threshold = 0.7"]
    for i in range(n):
        obsid = f"{FIRST_OBSID + i:010d}"
        truth = simulate_observation(
            root,
            obsid,
            exposure=exposure,
            source_rate=rate,
            mjd=55000.0 + 0.1 * i,
            seed=seed + i,
            flares=True,
            n_flares=1,
        )
        lines += [
            "",
            "[[observations]]",
            f'obsid = "{obsid}"',
            f'events = "{truth.events_path}"',
            f'regions = "{truth.regions_path}"',
        ]
    build = root / "archive.toml"
    build.write_text("\n".join(lines) + "\n" + SCHEMES)
    return build


def main(argv: list[str] | None = None) -> None:
    """Run the archive benchmark; see the module docstring."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n-exposures", type=int, default=1000)
    ap.add_argument("--exposure", type=float, default=2000.0, help="seconds per exposure")
    ap.add_argument("--rate", type=float, default=2.0, help="source counts/s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None, help="xlcat build --workers")
    ap.add_argument("--verify", type=int, default=10, help="exposures compared with the store")
    ap.add_argument("--keep", type=Path, default=None, help="simulate into this folder and keep it")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--no-rerun", action="store_true", help="skip the up-to-date re-run")
    args = ap.parse_args(argv)
    started = machine()
    n = args.n_exposures
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        build_file = simulate_archive(root, n, args.exposure, args.rate, args.seed)
        t_sim = time.perf_counter() - t
        config = load_build(build_file)
        print(f"simulated {n} exposures in {t_sim:.1f} s; building...", file=sys.stderr, flush=True)
        build = run_build_measured(build_file, args.workers, root / "build.log")
        store = tree_inodes(config.store)
        print(
            f"build: {build['cpu_s']:.1f} CPU s, {build['wall_s']:.1f} s wall",
            file=sys.stderr,
            flush=True,
        )
        rerun = None
        if not args.no_rerun:
            rerun = run_build_measured(build_file, args.workers, root / "rerun.log", fresh=False)
        print("numpy anchor...", file=sys.stderr, flush=True)
        anchor = numpy_anchor(config)
        sample = dict(list(anchor.counts.items())[: args.verify])
        n_cmp, bad = compare_with_store(config.store, sample)

    bands = scheme_bands(config)
    beyond = build["cpu_s"] - anchor.cpu_s
    result: dict[str, Any] = {
        "benchmark": "archive scale",
        "exposures": n,
        "exposure_s": args.exposure,
        "source_rate": args.rate,
        "schemes": len(bands),
        "bands_per_exposure": sum(len(b) for b in bands.values()),
        "events_total": anchor.n_events,
        "simulate_wall_s": round(t_sim, 2),
        "per_exposure": {
            "build_cpu_s": round(build["cpu_s"] / n, 4),
            "numpy_anchor_cpu_s": round(anchor.cpu_s / n, 4),
            "cpu_beyond_event_work_s": round(beyond / n, 4),
            "rerun_up_to_date_cpu_s": round(rerun["cpu_s"] / n, 4) if rerun else None,
            "store_files": round(store["files"] / n, 2),
            "store_dirs": round(store["dirs"] / n, 2),
            "store_bytes": round(store["bytes"] / n),
            "store_disk_bytes": round(store["disk_bytes"] / n),
        },
        "build": build,
        "rerun_up_to_date": rerun,
        "numpy_anchor": {
            "cpu_s": round(anchor.cpu_s, 3),
            "groups_compared_with_store": n_cmp,
            "groups_differing_from_store": bad,
        },
        "store": store,
        "machine_at_start": started,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
