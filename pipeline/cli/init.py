"""``xlcat init``: a first build file and ds9 regions for a folder of EPIC event lists."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["register"]


def _rel(path: Path) -> str:
    return os.path.relpath(path)


def _cmd_init(args: argparse.Namespace) -> int:
    from pipeline.build.scaffold import scaffold_build

    output = args.output if args.output is not None else args.directory / "build.toml"
    scaffold = scaffold_build(
        args.directory,
        output,
        time_bin=args.time_bin,
        store=args.store,
        recentre_source=not args.at_target,
    )
    written = scaffold.write(force=args.force)
    listed = sum(e.active for e in scaffold.entries)
    print(
        f"{_rel(scaffold.folder)}: {len(scaffold.entries)} event lists ({listed} listed, "
        f"{len(scaffold.entries) - listed} commented out), {len(scaffold.skipped)} FITS files "
        f"skipped, {scaffold.ignored} other files not opened"
    )
    for e in scaffold.entries:
        state = "" if e.active else "  [commented out]"
        print(f"  {e.obsid} {e.info.exposure:7s} {_rel(e.path)}{state}")
        print(f"      {_rel(e.regions)}: {e.plan.summary}")
        for remark in e.remarks:
            print(f"      {remark}")
    for s in scaffold.skipped:
        print(f"  skipped {_rel(s.path)}: {s.reason}")
    print(
        f"wrote {_rel(scaffold.output)} and {len(written) - 1} regions files; check the regions "
        f"(their '# check:' lines, e.g. in ds9), then: xlcat build {_rel(scaffold.output)}"
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``init`` to the ``xlcat`` command."""
    p = sub.add_parser(
        "init",
        help="write a build file and ds9 regions for a folder of event lists",
        description="Scan DIR (and its sub-folders) for EPIC imaging event lists (.fits, "
        ".fits.gz, .FTZ, .evt, .ds, ...; decided by the headers: EVENTS table, INSTRUME, "
        "DATAMODE), and write a build file with one observation per list and, next to it, "
        "regions/<obsid>_<exposure>.reg with a source circle at the target (RA_OBJ/DEC_OBJ) and "
        "a background circle on the source's CCD. Check the regions before building.",
    )
    p.add_argument("directory", type=Path, metavar="DIR", help="folder scanned for event lists")
    p.add_argument(
        "-o", "--output", type=Path, help="the build file to write (default: DIR/build.toml)"
    )
    p.add_argument("--time-bin", type=float, default=128.0, help="light-curve bin, s (128)")
    p.add_argument("--store", help="store path, relative to the build file (default: <name>.zarr)")
    p.add_argument(
        "--at-target",
        action="store_true",
        help="keep source circles at the target position (do not move them onto the events)",
    )
    p.add_argument("--force", action="store_true", help="overwrite the build and regions files")
    p.set_defaults(func=_cmd_init)
