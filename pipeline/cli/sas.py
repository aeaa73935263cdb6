"""``xlcat import`` (existing SAS light curves into a store) and ``xlcat compare`` (two stores)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError

__all__ = ["register"]


def _schemes(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Schemes, abscorr options and observations from --build or --preset (one is given)."""
    from schemas.build import load_build
    from schemas.schemes import load_preset, scheme_from_spec

    if args.build is not None:
        config = load_build(args.build)
        available = config.schemes
        abscorr = {n: o.abscorr for n, o in config.scheme_options.items()}
        observations = {o.obsid: o for o in config.observations}
        source = f"build file {args.build}"
    else:
        specs = load_preset(args.preset)
        available = {
            n: scheme_from_spec(n, s, source=f"preset {args.preset}") for n, s in specs.items()
        }
        abscorr = {n: s.get("abscorr") for n, s in specs.items()}
        observations = {}
        source = f"preset {args.preset}"
    unknown = [s for s in args.scheme if s not in available]
    if unknown:
        raise ConfigError(
            f"--scheme {unknown[0]}: not defined in {source} (schemes: {', '.join(available)})"
        )
    chosen = {n: available[n] for n in dict.fromkeys(args.scheme)}
    return chosen, {n: abscorr.get(n) for n in chosen}, observations


def _print_results(results: list[Any], store: Path) -> None:
    written = sum(r.status == "written" for r in results)
    current = sum(r.status == "up to date" for r in results)
    print(f"imported {written} groups ({current} up to date) into {store}")
    for r in results:
        if r.status != "missing":
            print(f"  {r.status:10s} {r.obsid}/{r.scheme}: {r.bands} bands from {r.detail}")
            for note in r.notes:
                print(f"    note: {note}")
    missing = [f"{r.obsid}/{r.scheme}" for r in results if r.status == "missing"]
    if missing:
        print(f"  no folder for: {', '.join(missing)}")


def _cmd_import_folder(args: argparse.Namespace) -> int:
    from pipeline.build.import_layouts import FOLDER_PATTERNS
    from pipeline.build.importer import import_folder

    if len(args.scheme) != 1:
        raise ConfigError(
            f"--scheme: the folder layout holds one band; give one scheme (got {len(args.scheme)})"
        )
    if args.obsid is not None and len(args.obsid) != 1:
        raise ConfigError("--obsid: the folder layout holds one observation; give it once")
    scheme = abscorr = observation = None
    if args.build is not None or args.preset is not None:
        schemes, options, observations = _schemes(args)
        scheme = schemes[args.scheme[0]]
        abscorr = options[args.scheme[0]]
        if args.obsid is not None:
            observation = observations.get(args.obsid[0])
        elif len(observations) == 1:
            observation = next(iter(observations.values()))
    patterns = {
        role: value
        for role in FOLDER_PATTERNS
        if (value := getattr(args, f"{role}_pattern")) is not None
    }
    result = import_folder(
        args.directory,
        args.store,
        args.scheme[0],
        scheme=scheme,
        abscorr=abscorr,
        obsid=args.obsid[0] if args.obsid else None,
        dt=args.dt,
        patterns=patterns,
        observation=observation,
        force=args.force,
    )
    _print_results([result], args.store)
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from pipeline.build.import_layouts import FOLDER_PATTERNS, PATTERN_OPTIONS
    from pipeline.build.importer import import_reference

    if args.layout == "folder":
        return _cmd_import_folder(args)
    given = [PATTERN_OPTIONS[r] for r in FOLDER_PATTERNS if getattr(args, f"{r}_pattern")]
    if given:
        raise ConfigError(f"{given[0]}: only with --layout folder")
    if args.build is None and args.preset is None:
        raise ConfigError(
            "--layout reference: give the schemes' bands with --build FILE or --preset NAME"
        )
    schemes, abscorr, observations = _schemes(args)
    results = import_reference(
        args.directory,
        schemes,
        abscorr,
        args.store,
        obsids=args.obsid,
        dt=args.dt,
        observations=observations,
        force=args.force,
    )
    _print_results(results, args.store)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from catalog.compare import compare_stores

    report = compare_stores(
        args.store_a,
        args.store_b,
        obsids=args.obsid,
        schemes=args.scheme,
        min_fracexp=args.min_fracexp,
    )
    print(report.to_json() if args.format == "json" else report.to_table())
    if args.expect_equal_counts:
        bad = [r for r in report.rows if not r.counts_equal]
        for r in bad:
            why = (
                "no matched bin with counts in both"
                if r.count_bins == 0
                else f"source counts differ in {r.src_counts_differ} and background counts in "
                f"{r.bkg_counts_differ} of {r.count_bins} bins"
            )
            print(f"xlcat: counts: {r.obsid}/{r.scheme} band {r.band}: {why}", file=sys.stderr)
        if not report.rows:
            print("xlcat: counts: no band is in both stores", file=sys.stderr)
        return 1 if bad or not report.rows else 0
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` and ``compare`` to the ``xlcat`` command."""
    from pipeline.build.import_layouts import FOLDER_PATTERNS, LAYOUTS, PATTERN_OPTIONS

    im = sub.add_parser(
        "import",
        help="bring existing SAS light curves (reference or folder layout) into a store",
        description="Import SAS light curves into a store, one group per (obsid, scheme), "
        "backend 'sas-import'. --layout reference: <DIR>/<obsid>/pn/lc/<scheme>/"
        "lc_<dt:03g>__<i>.fits (epiclccorr output; __s and __b: raw source and background). "
        "--layout folder: one exposure's folder of <name>_lc_<dt>_src.lc, "
        "<name>_lc_<dt>_bgd.lc (raw evselect curves), <name>_lccorr_<dt>.lc (epiclccorr, "
        "optional) and <name>_region.txt; counts come from the raw curves, rate, error, "
        "backv, backe and fracexp from the corrected one.",
    )
    im.add_argument("directory", type=Path, metavar="DIR", help="folder of the light curves")
    im.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        default="reference",
        help="how DIR is organised (default reference; see above)",
    )
    im.add_argument(
        "--scheme",
        action="append",
        required=True,
        help="scheme name (repeatable; folder layout: one, defined by --build/--preset or "
        "else made from the curves' PI selection)",
    )
    src = im.add_mutually_exclusive_group()
    src.add_argument("--build", type=Path, help="build file defining the schemes")
    src.add_argument("--preset", help="preset defining the schemes (e.g. ngc5506)")
    im.add_argument("--store", type=Path, required=True, help="the xlcat store to write into")
    im.add_argument(
        "--obsid",
        action="append",
        help="only this obsid (repeatable); folder layout: the obsid (default: OBS_ID)",
    )
    im.add_argument("--dt", type=float, help="time bin, s (default: the only one present)")
    for role, what in (
        ("source", "raw source curves"),
        ("background", "raw background curves"),
        ("corrected", "epiclccorr curves"),
        ("regions", "the region file"),
    ):
        im.add_argument(
            PATTERN_OPTIONS[role],
            dest=f"{role}_pattern",
            metavar="PATTERN",
            help=f"folder layout: file names of {what}; {{name}} any text, {{dt}} the time "
            f"bin (default {FOLDER_PATTERNS[role]!r})".replace("%", "%%"),
        )
    im.add_argument("--force", action="store_true", help="re-import unchanged groups")
    im.set_defaults(func=_cmd_import)

    cp = sub.add_parser(
        "compare",
        help="compare two stores band by band (grid offset, rate ratio, rms in errors)",
    )
    cp.add_argument("store_a", type=Path, metavar="STORE_A", help="the first store")
    cp.add_argument("store_b", type=Path, metavar="STORE_B", help="the store compared with it")
    cp.add_argument("--obsid", action="append", help="only this obsid (repeatable)")
    cp.add_argument("--scheme", action="append", help="only this scheme (repeatable)")
    cp.add_argument(
        "--min-fracexp",
        type=float,
        default=0.5,
        help="use bins with fracexp >= this in both (default 0.5)",
    )
    cp.add_argument("--format", choices=["table", "json"], default="table", help="default table")
    cp.add_argument(
        "--expect-equal-counts",
        action="store_true",
        help="exit with status 1 unless every band's source and background counts are equal "
        "bin for bin (fracexp and rates may differ)",
    )
    cp.set_defaults(func=_cmd_compare)
