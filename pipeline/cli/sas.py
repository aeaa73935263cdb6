"""``xlcat import`` (existing SAS light curves into a store) and ``xlcat compare`` (two stores)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError

__all__ = ["register"]


def _schemes(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Schemes, abscorr options and observations from --build or --preset."""
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


def _cmd_import(args: argparse.Namespace) -> int:
    from pipeline.build.importer import import_reference

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
    written = sum(r.status == "written" for r in results)
    current = sum(r.status == "up to date" for r in results)
    print(f"imported {written} groups ({current} up to date) into {args.store}")
    for r in results:
        if r.status != "missing":
            print(f"  {r.status:10s} {r.obsid}/{r.scheme}: {r.bands} bands from {r.detail}")
    missing = [f"{r.obsid}/{r.scheme}" for r in results if r.status == "missing"]
    if missing:
        print(f"  no folder for: {', '.join(missing)}")
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
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` and ``compare`` to the ``xlcat`` command."""
    im = sub.add_parser(
        "import",
        help="bring existing SAS light curves (reference layout) into a store",
        description="Import <DIR>/<obsid>/pn/lc/<scheme>/lc_<dt:03g>__<i>.fits (epiclccorr "
        "output; __s and __b: raw source and background) into a store, one group per "
        "(obsid, scheme), backend 'sas-import'.",
    )
    im.add_argument("directory", type=Path, metavar="DIR")
    im.add_argument("--layout", choices=["reference"], default="reference")
    im.add_argument("--scheme", action="append", required=True, help="scheme name (repeatable)")
    src = im.add_mutually_exclusive_group(required=True)
    src.add_argument("--build", type=Path, help="build file defining the schemes")
    src.add_argument("--preset", help="preset defining the schemes (e.g. ngc5506)")
    im.add_argument("--store", type=Path, required=True)
    im.add_argument("--obsid", action="append", help="only this obsid (repeatable)")
    im.add_argument("--dt", type=float, help="time bin, s (default: the only one present)")
    im.add_argument("--force", action="store_true", help="re-import unchanged groups")
    im.set_defaults(func=_cmd_import)

    cp = sub.add_parser(
        "compare",
        help="compare two stores band by band (grid offset, rate ratio, rms in errors)",
    )
    cp.add_argument("store_a", type=Path, metavar="STORE_A")
    cp.add_argument("store_b", type=Path, metavar="STORE_B")
    cp.add_argument("--obsid", action="append")
    cp.add_argument("--scheme", action="append")
    cp.add_argument(
        "--min-fracexp",
        type=float,
        default=0.5,
        help="use bins with fracexp >= this in both (default 0.5)",
    )
    cp.add_argument("--format", choices=["table", "json"], default="table")
    cp.set_defaults(func=_cmd_compare)
