"""``xlcat pileup``: the pile-up check of a build's exposures, and the annulus it chooses."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError

__all__ = ["register"]


def _ratio(r: Any) -> str:
    return f"{r.value:.4f} +- {r.error:.4f}"


def _fraction(v: float, e: float) -> str:
    return "-" if math.isnan(v) else f"{v:.3f} +- {e:.3f}"


def _print_check(check: Any) -> None:
    c, o = check.circle, check.options
    scale = c.px_per_arcsec
    method = (
        f"native (expected fractions from the reference annulus "
        f'{check.r_ref / scale:.4g}"-{c.r_out_arcsec:.4g}")'
        if o.method == "native"
        else "SAS epatplot"
    )
    print(
        f"{check.label} ({check.instrument}): source {c.text} ({c.system}, radius "
        f'{c.r_out_arcsec:.4g}"); {method}; rule {o.rule} ({o.n_sigma:g} sigma)'
    )
    print(
        f"  {'r_in':>6}  {'events':>8}  {'s (0.5-2 keV)':>17}  {'d (0.5-2 keV)':>17}  "
        f"{'SAS rule':>9}  {'reference-workflow rule':>23}"
    )
    for st in check.steps:
        print(
            f'  {st.r_in_arcsec:>5g}"  {st.n_band:>8,}  {_ratio(st.s):>17}  {_ratio(st.d):>17}  '
            f"{'piled up' if st.piled_sas else 'clean':>9}  "
            f"{'piled up' if st.piled_reference else 'clean':>23}"
        )
        if st.note:
            print(f"         note: {st.note}")
    print(f"  -> {check.status}: {check.message}")
    last = check.steps[-1] if check.steps else None
    if last is None:
        return
    ref = check.reference.fractions() if check.reference is not None else None
    fr = last.counts.fractions()
    edges = last.counts.edges
    head = f'  pattern fractions in the annulus {last.r_in_arcsec:g}"-{c.r_out_arcsec:.4g}"'
    print(head + (" (and in the reference annulus)" if ref is not None else "") + ":")
    print(
        f"  {'keV':>11}  {'events':>8}  {'singles':>15}  {'doubles':>15}"
        + (f"  {'ref singles':>15}  {'ref doubles':>15}" if ref is not None else "")
    )
    for j in range(len(edges) - 1):
        row = (
            f"  {edges[j] / 1000:>5.2f}-{edges[j + 1] / 1000:<5.2f}  {last.counts.total[j]:>8,}  "
            f"{_fraction(fr['singles'][j], fr['singles_error'][j]):>15}  "
            f"{_fraction(fr['doubles'][j], fr['doubles_error'][j]):>15}"
        )
        if ref is not None:
            row += (
                f"  {_fraction(ref['singles'][j], ref['singles_error'][j]):>15}  "
                f"{_fraction(ref['doubles'][j], ref['doubles_error'][j]):>15}"
            )
        print(row)


def _sas_setup(config: Any, method: str) -> tuple[str, Any]:
    """The method to use and, for SAS, a function giving each observation's SAS settings."""
    if method == "native":
        return "native", None
    from pipeline.extract.sas.environment import discover, find_ccf
    from schemas.build import SASOptions
    from schemas.errors import SASError

    options = SASOptions.model_validate(config.backend_options.get("sas", {}))
    try:
        env = discover(options, tasks=("evselect", "epatplot"))
    except SASError as exc:
        if method == "sas":
            raise
        print(f"SAS not available ({exc}); native method")
        return "native", None

    def settings(obs: Any) -> dict[str, Any]:
        ccf, _ = find_ccf(obs.events, options)
        return {
            "env": env.process_env(ccf),
            "timeout": options.timeout,
            "tmp_dir": options.tmp_dir,
        }

    print(f"SAS {env.version}: expected fractions from epatplot")
    return "sas", settings


def _write(checks: list[Any], config: Any) -> int:
    """Write each clean excision into its regions file; the number of exposures not written."""
    from pipeline.pileup.regionfile import write_annulus

    users = Counter(str(o.regions) for o in config.observations)
    failed = 0
    for check in checks:
        step = check.chosen
        if step is None:
            print(f"{check.label}: not written ({check.status}): {check.message}")
            failed += 1
            continue
        if step.r_in == 0:
            print(f"{check.label}: nothing to write, clean without excision")
            continue
        if math.isclose(check.circle.r_in, step.r_in, rel_tol=1e-9, abs_tol=1e-6):
            print(
                f"{check.label}: {check.regions} already has the annulus r_in = "
                f'{step.r_in_arcsec:g}"; nothing written'
            )
            continue
        if users[str(check.regions)] > 1:
            raise ConfigError(
                f"regions file {check.regions}: used by {users[str(check.regions)]} exposures "
                f"of {config.path}; give each exposure its own regions file before --write"
            )
        physical = check.circle.system == "physical"
        r_in = step.r_in if physical else step.r_in_arcsec
        backup = write_annulus(
            check.regions,
            r_in,
            f'inner radius {step.r_in_arcsec:g}" excised by the pile-up check '
            f"({check.options.method}, rule {check.options.rule}): s = {_ratio(step.s)}, "
            f"d = {_ratio(step.d)}",
        )
        print(
            f'{check.label}: wrote the annulus r_in = {step.r_in_arcsec:g}" into '
            f"{check.regions} (original kept as {backup.name}); xlcat build rebuilds this "
            "exposure"
        )
    return failed


def _cmd_pileup(args: argparse.Namespace) -> int:
    from pipeline.pileup.procedure import PileupOptions, check_build
    from schemas.build import load_build

    config = load_build(args.build_file)
    method, sas = _sas_setup(config, args.method)
    options = PileupOptions(
        method=method,  # type: ignore[arg-type]
        rule=args.rule,
        n_sigma=args.sigma,
        reference_arcsec=args.reference_radius,
        min_counts=args.min_counts,
    )
    checks = check_build(config, options, args.obsid, sas, on_skip=print)
    for check in checks:
        _print_check(check)
    if args.json is not None:
        Path(args.json).write_text(json.dumps([c.to_dict() for c in checks], indent=1) + "\n")
        print(f"wrote {args.json}")
    not_clean = [c for c in checks if c.status != "clean"]
    if args.write:
        _write(checks, config)
    return 1 if not_clean else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pileup`` to the ``xlcat`` command."""
    p = sub.add_parser(
        "pileup",
        help="check each exposure's source for pile-up; grow an excised core until clean",
        description="Per exposure of BUILD: the single and double pattern fractions against "
        "energy in the source circle, and the 0.5-2 keV observed-to-expected ratios s, d. "
        "Starting without excision, while the source is piled up (s below 1 or d above 1 by "
        'more than 3 sigma) the inner radius grows to 3" and then in 0.5" steps. --write puts '
        "the chosen annulus into the regions file (the original is kept as <file>.orig). Exit "
        "status 1 when an exposure could not be made clean or judged.",
    )
    p.add_argument("build_file", type=Path, metavar="BUILD", help="the TOML build file")
    p.add_argument("--obsid", action="append", help="only this obsid (repeatable)")
    p.add_argument(
        "--method",
        choices=["auto", "native", "sas"],
        default="auto",
        help="expected fractions from SAS epatplot (sas), from the source's outer annulus "
        "(native), or SAS where it is set up, else native (auto, the default)",
    )
    p.add_argument(
        "--rule",
        choices=["sas", "reference-workflow"],
        default="sas",
        help="sas: piled up when s < 1 - 3 sigma or d > 1 + 3 sigma (default); "
        "reference-workflow: the reference study's inverted test (s > 1 + 3 sigma or "
        "d < 1 - 3 sigma), for comparison only. Both are shown",
    )
    p.add_argument("--sigma", type=float, default=3.0, help="the rule's threshold (default 3)")
    p.add_argument(
        "--reference-radius",
        type=float,
        metavar="ARCSEC",
        help="native: inner radius of the reference annulus (default: half the source radius)",
    )
    p.add_argument(
        "--min-counts",
        type=int,
        default=200,
        help="fewest 0.5-2 keV events in the reference and in the compared annulus (200)",
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="write the chosen annulus into each exposure's regions file (backup: .orig)",
    )
    p.add_argument("--json", metavar="FILE", help="also write every step as JSON")
    p.set_defaults(func=_cmd_pileup)
