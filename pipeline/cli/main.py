"""The ``xlcat`` command: thin subcommands over the Python API.

Errors a user can cause end as one line on stderr and exit status 2; a build
with failed groups exits with status 1 after its summary. Ctrl-C exits with
status 130 and SIGTERM with 143, both after closing what the command started
(a build's cluster, its worker processes or batch jobs).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from schemas.errors import ConfigError, XlcatError

if TYPE_CHECKING:
    from pipeline.build.cluster import JobQueueOptions
    from pipeline.build.graph import BuildProgress, ProgressCallback

__all__ = ["main", "parse_range", "output_path"]

#: Modules that add subcommands; each defines ``register(subparsers) -> None`` and
#: sets ``func`` on its parsers (a function of the parsed arguments returning the exit status).
COMMAND_MODULES: tuple[str, ...] = (
    "pipeline.cli.sas",
    "pipeline.cli.timing",
    "pipeline.cli.init",
    "pipeline.cli.export",
    "pipeline.cli.fetch",
    "pipeline.cli.nustar",
    "pipeline.cli.pileup",
)

_RANGE = re.compile(r"^\s*([0-9.eE+]+)\s*[-:,]\s*([0-9.eE+]+)\s*$")


def parse_range(text: str, what: str) -> tuple[float, float]:
    """Parse ``LO-HI`` (or ``LO:HI``) into two floats with LO < HI.

    Raises
    ------
    ConfigError
        If the text is not two increasing numbers.
    """
    m = _RANGE.match(text)
    try:
        lo, hi = (float(m.group(1)), float(m.group(2))) if m else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(
            f"--{what} {text!r}: give LO-HI (or LO:HI), two finite numbers with LO < HI, e.g. 2-4"
        )
    return lo, hi


#: Image formats ``plot -o`` writes (matplotlib's, by suffix).
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif")
#: Table formats ``query -o`` writes.
TABLE_SUFFIXES = (".csv", ".json", ".txt")


def output_path(text: str, option: str, suffixes: Sequence[str]) -> Path:
    """Check an output file before anything is computed: its folder exists, its type is known.

    Raises
    ------
    ConfigError
        The path is a folder, its folder does not exist, or its suffix is not one of
        ``suffixes`` (when the path has a suffix; none is allowed when ``""`` is listed).
    """
    path = Path(text)
    if path.is_dir():
        raise ConfigError(f"{option} {text}: is a folder; give a file name in it")
    if not path.parent.is_dir():
        raise ConfigError(f"{option} {text}: there is no folder {path.parent}; create it first")
    if path.suffix.lower() not in suffixes:
        raise ConfigError(
            f"{option} {text}: {path.suffix or 'no suffix'!r} is not an image format "
            f"this command writes; use one of {', '.join(suffixes)}"
            if ".png" in suffixes
            else f"{option} {text}: this command writes csv or json; name the file "
            f"with one of {', '.join(suffixes)}"
        )
    return path


# -- simulate -------------------------------------------------------------------------
def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.mission == "nustar":
        from pipeline.cli.nustar import simulate_nustar_command

        return simulate_nustar_command(args)
    from pipeline.simulate import simulate_preset

    extra: dict[str, Any] = {}
    if args.pileup_rate is not None:
        extra["pileup_rate"] = args.pileup_rate
    if args.nh is not None:
        extra["nh_22"] = args.nh
    build = simulate_preset(
        args.outdir,
        preset=args.preset,
        scale=args.scale,
        seed=args.seed,
        obsids=args.obsid,
        **extra,
    )
    print(f"wrote simulated observations and build file {build}")
    return 0


# -- build ------------------------------------------------------------------------------
@contextlib.contextmanager
def _progress_display(*, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar of groups finished, fed by the build's progress callback."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("groups written", total=None)

        def update(step: BuildProgress) -> None:
            bar.update(task, completed=step.done, total=step.total)

        yield update


def _job_options(args: argparse.Namespace) -> JobQueueOptions | None:
    """The ``--jobqueue`` job options; ConfigError when one is given without ``--jobqueue``."""
    given = {name: getattr(args, name) for name in _JOB_OPTIONS if getattr(args, name)}
    if args.jobqueue is None:
        if given:
            option = "--" + next(iter(given)).replace("_", "-")
            raise ConfigError(f"{option} is an option of batch jobs: add --jobqueue slurm|pbs")
        return None
    # distributed is imported only here and when there is work: a build with nothing to do
    # stays quick
    from pipeline.build.cluster import JobQueueOptions

    return JobQueueOptions(
        queue=args.queue,
        account=args.account,
        cores=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        directives=tuple(args.job_directive or ()),
    )


#: Options of ``build`` that describe the batch jobs of ``--jobqueue``.
_JOB_OPTIONS = ("queue", "account", "cores", "memory", "walltime", "job_directive")


def _cmd_build(args: argparse.Namespace) -> int:
    from catalog.store import store_lock
    from pipeline.build.plan import plan_build
    from schemas.build import load_build

    config = load_build(args.build_file)
    job = _job_options(args)  # option errors before anything is read or written
    with store_lock(config.store):
        plan = plan_build(config, force=args.force)
        print(
            f"build {config.path.name}: {len(plan.jobs)} exposures x "
            f"{len(config.schemes)} schemes -> {config.store}: {len(plan.todo)} groups to build, "
            f"{len(plan.up_to_date)} up to date"
        )
        if args.dry_run:
            for spec in plan.todo:
                backends = sorted({t.backend for t in spec.schemes})
                print(
                    f"  would build {spec.label} ({spec.reason}; {len(spec.schemes)} schemes, "
                    f"{', '.join(backends)})"
                )
            return 0
        if not plan.todo:
            return 0
        from pipeline.build.cluster import connect
        from pipeline.build.graph import run_build

        with connect(
            args.scheduler,
            workers=args.workers,
            processes=args.processes,
            jobqueue=args.jobqueue,
            job=job,
        ) as client:
            with _progress_display(enabled=not args.no_progress) as progress:
                report = run_build(plan, client, progress=progress, retries=args.retries)
    print(
        f"built {len(report.built)} groups, {len(report.up_to_date)} up to date, "
        f"{len(report.failed)} failed; store {report.store}"
    )
    for msg in report.warnings:
        print(f"  warning {msg}", file=sys.stderr)
    for msg in report.dropped:
        print(
            f"  dropped scheme {msg}: the exposure's inputs changed and this build does not "
            "name it; add it to the build file to keep it",
            file=sys.stderr,
        )
    for f in report.failed:
        print(f"  FAILED {f.obsid}/{f.expid}: {f.message}", file=sys.stderr)
    if report.failed:
        print("re-run the same command to retry only the failed groups", file=sys.stderr)
    return 0 if report.ok else 1


# -- verify -------------------------------------------------------------------------------
def _cmd_verify(args: argparse.Namespace) -> int:
    from catalog.store import Store

    store = Store(args.store)
    groups = store.groups()
    bad = 0
    for obsid, expid in groups:
        state = store.state(obsid, expid, deep=True)
        problem = state.problem
        if problem is None:
            try:
                store.read_group(obsid, expid)
            except XlcatError as exc:
                problem = str(exc).split(": ", 2)[-1]
        if problem is not None:
            bad += 1
            print(f"DAMAGED {obsid}/{expid}: {problem}")
        elif args.verbose_list:
            print(f"ok      {obsid}/{expid}")
    links = store.links()
    for link in links:
        bad += 1
        print(
            f"LINK    {link} -> {os.readlink(link)}: xlcat does not write through links; remove it"
        )
    leftovers = sorted(p.name for p in store.staging.iterdir()) if store.staging.is_dir() else []
    if leftovers:
        print(
            f"staging {store.staging}: {len(leftovers)} leftovers of an interrupted write "
            "(the next build removes them)"
        )
    print(
        f"{store.path}: {len(groups)} groups, {len(groups) - bad + len(links)} complete, "
        f"{bad - len(links)} damaged"
        + (f", {len(links)} symbolic links" if links else "")
        + ("; xlcat build rebuilds damaged groups" if bad > len(links) else "")
    )
    return 1 if bad else 0


# -- ls -----------------------------------------------------------------------------------
def _cmd_ls(args: argparse.Namespace) -> int:
    import catalog

    cat = catalog.open(args.store)
    idx = cat.index
    if args.scheme:
        idx = idx[idx.scheme.isin(args.scheme)]
    if args.obsid:
        idx = idx[idx.obsid.isin(args.obsid)]
    if idx.empty:
        print(f"{cat.path}: no light curves match")
        return 0
    if args.bands:
        cols = ["obsid", "expid", "scheme", "band", "e_lo", "e_hi", "pi_lo", "pi_hi", "exposure"]
        print(idx[cols].to_string(index=False))
        return 0
    grouped = (
        idx.groupby(["obsid", "expid", "scheme"], sort=True)
        .agg(
            bands=("band", "size"),
            e_lo=("e_lo", "min"),
            e_hi=("e_hi", "max"),
            tstart=("tstart", "first"),
            dt=("dt", "first"),
            n_bins=("n_bins", "first"),
            exposure=("exposure", "max"),
            backend=("backend", "first"),
        )
        .reset_index()
    )
    grouped["tstart"] = grouped["tstart"].map(lambda v: f"{v:.1f}")
    grouped["exposure"] = grouped["exposure"].map(lambda v: f"{v:.0f}")
    grouped = grouped.rename(columns={"dt": "dt_s", "exposure": "exposure_s"})
    n_exp = len(idx[["obsid", "expid"]].drop_duplicates())
    print(
        f"{cat.path}: {_count(idx.obsid.nunique(), 'observation')}, "
        f"{_count(n_exp, 'exposure')}, {_count(idx.scheme.nunique(), 'scheme')}, "
        f"{_count(len(idx), 'band')}"
    )
    if not args.summary:
        print(grouped.to_string(index=False))
        print()
    per_scheme = (
        idx.assign(group=idx.obsid + "/" + idx.expid)
        .groupby("scheme", sort=True)
        .agg(
            bands=("band", "nunique"),
            e_lo=("e_lo", "min"),
            e_hi=("e_hi", "max"),
            observations=("obsid", "nunique"),
            exposures=("group", "nunique"),
            dt_s=("dt", "first"),
            backend=("backend", "first"),
        )
        .reset_index()
    )
    exposure = idx.groupby(["scheme", "obsid", "expid"]).exposure.max().groupby("scheme").sum()
    per_scheme.insert(7, "exposure_ks", per_scheme.scheme.map(exposure / 1e3))
    per_scheme["exposure_ks"] = per_scheme["exposure_ks"].map(lambda v: f"{v:.1f}")
    print("per scheme (exposure_ks: the exposures' summed exposure, ks):")
    print(per_scheme.to_string(index=False))
    return 0


def _count(n: int, noun: str) -> str:
    """``1 scheme``, ``2 schemes``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


# -- query --------------------------------------------------------------------------------
def _nan_to_none(values: np.ndarray) -> list[Any]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(values, float).ravel()]


_COLUMNS = ("rate", "error", "fracexp", "src_counts", "bkg_counts", "backv", "backe")


def _write_csv(groups: dict[str, Any], out: TextIO) -> None:
    out.write("obsid,expid,scheme,band,e_lo,e_hi,time," + ",".join(_COLUMNS) + "\n")
    for ds in groups.values():
        obsid, expid, scheme = ds.attrs["obsid"], ds.attrs["expid"], ds.attrs["scheme"]
        t = ds["time"].values
        for b in range(ds.sizes["band"]):
            lo, hi = float(ds.e_lo.values[b]), float(ds.e_hi.values[b])
            band = int(ds.band.values[b])
            cols = [ds[c].values[b] for c in _COLUMNS]
            for k in range(len(t)):
                vals = ",".join(repr(float(c[k])) if np.isfinite(c[k]) else "nan" for c in cols)
                out.write(f"{obsid},{expid},{scheme},{band},{lo:g},{hi:g},{float(t[k])!r},{vals}\n")


def _write_json(groups: dict[str, Any], out: TextIO) -> None:
    doc = []
    for ds in groups.values():
        doc.append(
            {
                "obsid": ds.attrs["obsid"],
                "expid": ds.attrs["expid"],
                "scheme": ds.attrs["scheme"],
                "dt": float(ds.attrs["dt"]),
                "MJDREF": float(ds.attrs["MJDREF"]),
                "TIMESYS": ds.attrs["TIMESYS"],
                "time_reference": "bin centre, MET seconds",
                "bands": [
                    {
                        "band": int(b),
                        "e_lo": float(lo),
                        "e_hi": float(hi),
                        "pi_lo": int(pl),
                        "pi_hi": int(ph),
                    }
                    for b, lo, hi, pl, ph in zip(
                        ds.band.values,
                        ds.e_lo.values,
                        ds.e_hi.values,
                        ds.pi_lo.values,
                        ds.pi_hi.values,
                        strict=True,
                    )
                ],
                "time": _nan_to_none(ds["time"].values),
                **{c: [_nan_to_none(row) for row in ds[c].values] for c in _COLUMNS},
            }
        )
    json.dump(doc, out)
    out.write("\n")


def _cmd_query(args: argparse.Namespace) -> int:
    import catalog

    if args.output:
        output_path(args.output, "-o", TABLE_SUFFIXES)
    if args.spectrum:
        from pipeline.cli.spectra import query_spectrum

        return query_spectrum(args)
    if not args.scheme:
        raise ConfigError("query: give --scheme (light curves) or --spectrum (PI spectra)")
    cat = catalog.open(args.store)
    energy = parse_range(args.energy, "energy") if args.energy else None
    time = parse_range(args.time, "time") if args.time else None
    if args.expid:
        if not args.obsid or len(args.obsid) != 1:
            raise ConfigError("--expid: give exactly one --obsid with it")
        ds = cat.lightcurves(
            args.obsid[0],
            args.scheme,
            expid=args.expid,
            energy=energy,
            time=time,
            match="overlap" if args.overlap else "within",
        )
        groups = {f"{args.obsid[0]}/{args.expid}": ds} if ds.sizes["band"] else {}
    else:
        groups = cat.query(
            args.scheme,
            args.obsid or None,
            energy=energy,
            time=time,
            match="overlap" if args.overlap else "within",
        )
    if not groups:
        print(_empty_query_hint(cat, args), file=sys.stderr)
        return 0
    writer: Callable[[dict[str, Any], TextIO], None] = (
        _write_csv if args.format == "csv" else _write_json
    )
    if args.output:
        with open(args.output, "w") as f:
            writer(groups, f)
    else:
        writer(groups, sys.stdout)
    return 0


def _empty_query_hint(cat: Any, args: argparse.Namespace) -> str:
    """Why a query matched nothing: the bands and time range the scheme has, and --overlap."""
    idx = cat.index[cat.index.scheme == args.scheme]
    if args.obsid:
        idx = idx[idx.obsid.isin(args.obsid)]
    if idx.empty:
        return (
            f"no light curves match the query: no observation {', '.join(args.obsid)} has "
            f"scheme {args.scheme}"
        )
    lo, hi = float(idx.e_lo.min()), float(idx.e_hi.max())
    t0, t1 = float(idx.tstart.min()), float(idx.tstop.max())
    hint = (
        f"no light curves match the query; scheme {args.scheme} has {idx.band.nunique()} bands "
        f"over {lo:g}-{hi:g} keV and times {t0:.10g}-{t1:.10g} (MET s)"
    )
    if args.energy and not args.overlap:
        hint += "; add --overlap to keep bands that overlap --energy"
    return hint


# -- plot ----------------------------------------------------------------------------------
def _cmd_plot(args: argparse.Namespace) -> int:
    import catalog
    from catalog.plot import plot_lightcurves

    output_path(args.output, "-o", IMAGE_SUFFIXES)
    cat = catalog.open(args.store)
    energy = parse_range(args.energy, "energy") if args.energy else None
    ds = cat.lightcurves(args.obsid, args.scheme, expid=args.expid, energy=energy)
    if ds.sizes["band"] == 0:
        raise ConfigError(f"--energy {args.energy}: no band of scheme {args.scheme} lies inside it")
    plot_lightcurves(ds, args.output, min_fracexp=args.min_fracexp)
    print(f"wrote {args.output}")
    return 0


def _version() -> str:
    """The installed xlcat's version (``unknown`` when run from a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("xlcat")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="xlcat",
        description="X-ray light-curve catalogue: build many-band EPIC-pn light curves into one "
        "Zarr store, list, query and plot them.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what the library does on standard error (-v: each step, -vv: debugging)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("simulate", help="write simulated pn observations and a build file")
    s.add_argument("outdir", type=Path, help="folder to write the event lists and build file in")
    s.add_argument(
        "--preset", default="ngc5506", help="observation set and schemes (default ngc5506)"
    )
    s.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every exposure (default 1.0, the real lengths; 0.02: tiny)",
    )
    s.add_argument(
        "--seed", type=int, default=5506, help="seed of the simulated events (default 5506)"
    )
    s.add_argument("--obsid", action="append", help="only this obsid (repeatable)")
    s.add_argument(
        "--mission",
        choices=("xmm", "nustar"),
        default="xmm",
        help="xmm: the preset's pn observations (default); nustar: one NuSTAR observation, "
        "FPMA and FPMB with dead time, their hk files and a build file (nustar.toml)",
    )
    s.add_argument(
        "--pileup-rate",
        type=float,
        metavar="RATE",
        help="a bright piled-up source: RATE cts/s in the source circle (before pile-up) "
        "instead of the preset's, read out frame by frame with pile-up (default: no pile-up)",
    )
    s.add_argument(
        "--nh",
        type=float,
        metavar="NH22",
        help="absorbing column of the source, 1e22 cm^-2 (default 3; e.g. 0.1 for a soft "
        "source with many 0.5-2 keV counts)",
    )
    s.set_defaults(func=_cmd_simulate)

    b = sub.add_parser(
        "build", help="extract every exposure and scheme of a build file into its store"
    )
    b.add_argument("build_file", type=Path, help="the TOML build file (see README)")
    where = b.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786)")
    where.add_argument(
        "--jobqueue",
        choices=["slurm", "pbs"],
        help="start the workers as batch jobs through dask-jobqueue; job options below, "
        "defaults from ~/.config/dask/jobqueue.yaml",
    )
    b.add_argument(
        "--workers", type=int, help="local workers (default: cores), or batch jobs (default: 1)"
    )
    jobs = b.add_argument_group("batch jobs (with --jobqueue; each overrides the Dask config)")
    jobs.add_argument("--queue", help="partition (SLURM) or queue (PBS)")
    jobs.add_argument("--account", help="account charged for the jobs")
    jobs.add_argument("--cores", type=int, help="cores per job: one single-threaded worker each")
    jobs.add_argument("--memory", help="memory per job, e.g. 8GB")
    jobs.add_argument("--walltime", help="wall-clock limit per job, e.g. 01:00:00")
    jobs.add_argument(
        "--job-directive",
        action="append",
        metavar="TEXT",
        help="extra #SBATCH/#PBS directive, repeatable; write --job-directive=--qos=debug",
    )
    local = b.add_mutually_exclusive_group()
    local.add_argument(
        "--threads",
        action="store_true",
        help="local workers as threads of the xlcat process (the default)",
    )
    local.add_argument(
        "--processes",
        action="store_true",
        help="local workers as processes, one thread each (see README: Where a build runs)",
    )
    b.add_argument("--force", action="store_true", help="rebuild groups that are up to date")
    b.add_argument("--retries", type=int, default=0, help="Dask retries of a failed task")
    b.add_argument("--dry-run", action="store_true", help="only say what would be built")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_build)

    ls = sub.add_parser("ls", help="list the observations, schemes and bands of a store")
    ls.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    ls.add_argument("--scheme", action="append", help="only this scheme (repeatable)")
    ls.add_argument("--obsid", action="append", help="only this obsid (repeatable)")
    ls.add_argument("--bands", action="store_true", help="one line per band")
    ls.add_argument(
        "--summary", action="store_true", help="only the summary per scheme, not each group"
    )
    ls.set_defaults(func=_cmd_ls)

    q = sub.add_parser("query", help="print light curves as CSV or JSON")
    q.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    q.add_argument(
        "--scheme", help="energy scheme (see xlcat ls STORE); required without --spectrum"
    )
    q.add_argument(
        "--spectrum", action="store_true", help="the exposures' source and background PI spectra"
    )
    q.add_argument("--obsid", action="append", help="repeatable; default: every observation")
    q.add_argument("--expid", help="the exposure (e.g. PNS003), with one --obsid that has several")
    q.add_argument("--energy", help="keV range LO-HI: bands inside it (or overlapping, --overlap)")
    q.add_argument("--overlap", action="store_true", help="keep bands overlapping --energy")
    q.add_argument("--time", help="MET range T0-T1 (bin centres T0 <= t < T1)")
    q.add_argument("--format", choices=["csv", "json"], default="csv", help="default csv")
    q.add_argument(
        "-o", "--output", help="write to this .csv/.json/.txt file instead of standard output"
    )
    q.set_defaults(func=_cmd_query)

    pl = sub.add_parser("plot", help="plot the light curves of one observation and scheme")
    pl.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    pl.add_argument("--obsid", required=True, help="the observation (10 digits)")
    pl.add_argument("--scheme", required=True, help="energy scheme (see xlcat ls STORE)")
    pl.add_argument("--expid", help="the exposure (e.g. PNS003), where the obsid has several")
    pl.add_argument("--energy", help="keV range LO-HI of the bands to draw")
    pl.add_argument(
        "--min-fracexp",
        type=float,
        default=0.0,
        help="draw only bins exposed at least this fraction (default 0: all)",
    )
    pl.add_argument("-o", "--output", required=True, help="image file (.png, .pdf, .svg)")
    pl.set_defaults(func=_cmd_plot)

    v = sub.add_parser("verify", help="check every group of a store: files, checksums, metadata")
    v.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    v.add_argument("--list", dest="verbose_list", action="store_true", help="list good groups too")
    v.set_defaults(func=_cmd_verify)

    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    return p


class _CLIHandler(logging.StreamHandler[TextIO]):
    """The command line's log handler: writes to whatever ``sys.stderr`` is at the time."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # the base class assigns it; sys.stderr wins
        pass


def _configure_logging(verbosity: int) -> None:
    """Send the library's log records (loggers ``pipeline.*``, ``catalog.*``) to stderr.

    Quiet by default (the CLI prints its own summary); ``-v`` shows INFO, ``-vv`` DEBUG.
    """
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    formatter = logging.Formatter("xlcat: %(levelname)s: %(name)s: %(message)s")
    for name in ("pipeline", "catalog", "schemas"):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        for old in [h for h in logger.handlers if isinstance(h, _CLIHandler)]:
            logger.removeHandler(old)
        handler = _CLIHandler()
        handler.setFormatter(formatter)
        logger.addHandler(handler)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that every ``with`` block closes what it started."""


#: Seconds an interrupted command may take to close what it started before it is ended.
STUCK_AFTER = 20.0

_watchdog: list[threading.Timer] = []


def _exit_if_stuck(status: int, message: str) -> None:
    """After :data:`STUCK_AFTER` s of unwinding, end the build's processes and exit.

    Closing a cluster waits for its workers, and a worker for its running task; should
    that ever hang, an interrupted ``xlcat`` must still end, and end what it started.
    """

    def fire() -> None:
        try:
            print(
                f"{message} (closing the cluster took over {STUCK_AFTER:g} s; its processes "
                "were ended)",
                file=sys.stderr,
                flush=True,
            )
            from pipeline.build.cluster import end_started_processes

            end_started_processes()
        finally:
            os._exit(status)

    timer = threading.Timer(STUCK_AFTER, fire)
    timer.daemon = True
    timer.start()
    _watchdog.append(timer)


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _exit_if_stuck(143, "xlcat: terminated")
    raise _Terminated


def _on_sigint(signum: int, frame: object) -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _exit_if_stuck(130, "xlcat: interrupted")
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's time limit) raises :class:`_Terminated` meanwhile.

    Python's default for SIGTERM ends the process without unwinding: a build's
    LocalCluster or batch jobs would not be closed by their context managers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xlcat``; returns the exit status."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        with _sigterm_raises():
            return int(args.func(args))
    except _Terminated:
        print("xlcat: terminated", file=sys.stderr)
        return 143
    except XlcatError as exc:
        print(f"xlcat: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("xlcat: interrupted", file=sys.stderr)
        return 130
    finally:
        while _watchdog:  # unwound in time
            _watchdog.pop().cancel()


if __name__ == "__main__":
    sys.exit(main())
