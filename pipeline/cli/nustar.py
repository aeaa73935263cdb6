"""``xlcat cospectrum`` and ``xlcat simulate --mission nustar``: NuSTAR's two modules.

``cospectrum`` reads one band of two exposures of one observation (NuSTAR FPMA and FPMB)
from a store and prints their cross spectrum's real part (cospectrum) with both power
spectra, Leahy normalised by default (:func:`catalog.timing.cospectrum.exposure_cospectrum`;
docs/semantics.md §20). :func:`simulate_nustar_command` is what ``xlcat simulate --mission
nustar`` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from schemas.errors import ConfigError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["register", "simulate_nustar_command", "format_cospectrum_table", "pick_exposure"]


def simulate_nustar_command(args: argparse.Namespace) -> int:
    """``xlcat simulate OUTDIR --mission nustar``: FPMA, FPMB, hk files and a build file."""
    from pipeline.simulate.nustar import simulate_nustar

    kwargs: dict[str, Any] = {"seed": args.seed}
    if args.scale != 1.0:
        kwargs["duration"] = float(max(800, int(round(2000 * args.scale))))
    truth = simulate_nustar(args.outdir, **kwargs)
    print(
        f"wrote simulated NuSTAR observation {truth.obsid} (FPMA, FPMB, hk files) and build "
        f"file {Path(args.outdir) / truth.build_file}"
    )
    return 0


def pick_exposure(expids: list[str], wanted: str, obsid: str, scheme: str) -> str:
    """The exposure named ``wanted``: an exact expid, or the one expid starting with it.

    Raises
    ------
    ConfigError
        None or several match (the message lists the exposures).
    """
    if wanted in expids:
        return wanted
    found = [e for e in expids if e.startswith(wanted)]
    if len(found) != 1:
        raise ConfigError(
            f"--exposures {wanted}: {'no' if not found else 'several'} exposures of "
            f"{obsid} with scheme {scheme} match (exposures: {', '.join(expids) or 'none'}); "
            "give the expid as xlcat ls prints it"
        )
    return found[0]


def format_cospectrum_table(ds: xr.Dataset, f_min: float) -> str:
    """The cospectrum and both power spectra per frequency bin, then their means above f_min."""
    from catalog.netcdf import python_attrs
    from catalog.timing.cospectrum import average_over

    ds = python_attrs(ds)  # either form (catalog.netcdf)
    a, b = ds.attrs["exposures"]
    lines = [
        f"cospectrum {ds.attrs['obsid']} {a} x {b}, scheme {ds.attrs['scheme']} band "
        f"{ds.attrs['band']} ({ds.attrs['e_lo']:g}-{ds.attrs['e_hi']:g} keV), "
        f"{ds.attrs['quantity']}, {ds.attrs['norm']} normalisation, "
        f"{ds.attrs['n_segments']} segments of {ds.attrs['segment_length']:g} s",
        f"{'freq_Hz':>10} {'cospec':>10} {'err':>9} {'P_' + a:>10} {'P_' + b:>10} {'n_eff':>7}",
    ]
    for i in range(ds.sizes["freq"]):
        lines.append(
            f"{float(ds['freq'][i]):>10.4g} {float(ds['cospectrum'][i]):>10.4g} "
            f"{float(ds['cospectrum_err'][i]):>9.3g} {float(ds['power_a'][i]):>10.4g} "
            f"{float(ds['power_b'][i]):>10.4g} {float(ds['n_eff'][i]):>7.0f}"
        )
    co = average_over(ds, "cospectrum", f_min)
    pa = average_over(ds, "power_a", f_min)
    pb = average_over(ds, "power_b", f_min)
    lines.append(
        f"mean over f >= {f_min:g} Hz: cospectrum {co[0]:.4g} +- {co[1]:.2g}; "
        f"P_{a} {pa[0]:.4g} +- {pa[1]:.2g}; P_{b} {pb[0]:.4g} +- {pb[1]:.2g}"
    )
    return "\n".join(lines)


def _cmd_cospectrum(args: argparse.Namespace) -> int:
    from catalog.query import Catalog
    from catalog.timing.cospectrum import exposure_cospectrum
    from pipeline.cli.main import output_path

    out = output_path(str(args.output), "-o", (".nc",)) if args.output else None
    if out is not None and out.exists() and not args.overwrite:
        raise ConfigError(f"-o {out}: exists; give --overwrite to replace it")
    cat = Catalog(args.store, attrs="python")  # -o writes exposures and taper its own way
    expids = cat.expids(args.obsid, args.scheme)
    a, b = (pick_exposure(expids, e, args.obsid, args.scheme) for e in args.exposures)
    if a == b:
        raise ConfigError(f"--exposures: {a} twice; give two different exposures")
    ds = exposure_cospectrum(
        cat.lightcurves(args.obsid, args.scheme, expid=a),
        cat.lightcurves(args.obsid, args.scheme, expid=b),
        args.band,
        segment_length=args.segment_length,
        quantity=args.quantity,
        norm=args.norm,
        min_fracexp=args.min_fracexp,
        min_per_bin=args.min_per_bin,
        factor=args.factor,
        taper=args.taper,
    )
    f_min = args.high_f if args.high_f is not None else 0.25 / float(ds.attrs["dt"])
    print(format_cospectrum_table(ds, f_min))
    if out is not None:
        ds.assign_attrs(exposures=",".join(ds.attrs["exposures"]), taper=int(args.taper)).to_netcdf(
            out
        )
        print(f"wrote {out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``cospectrum`` to the ``xlcat`` subcommands."""
    p = subparsers.add_parser(
        "cospectrum",
        help="cross spectrum (cospectrum) of two exposures of one observation (NuSTAR FPMA x "
        "FPMB): free of the dead-time distortion of each module's power spectrum",
        description="The real part of the cross spectrum of one band of two exposures of one "
        "observation, with both power spectra, segment averaged and log-binned. Leahy "
        "normalisation of the detected source counts by default: an undistorted Poisson "
        "power spectrum is 2, the cospectrum's noise level 0 (dead time lowers each "
        "module's level, not the cospectrum's).",
    )
    p.add_argument("store", help="the Zarr store")
    p.add_argument("--obsid", required=True, help="the observation")
    p.add_argument("--scheme", required=True, help="the energy scheme")
    p.add_argument("--band", type=int, default=0, help="band index within the scheme (default 0)")
    p.add_argument(
        "--exposures",
        nargs=2,
        required=True,
        metavar="EXPID",
        help="the two exposures (an expid, or a unique prefix: FPMA FPMB)",
    )
    p.add_argument(
        "--segment-length", type=float, default=64.0, help="segment length, s (default 64)"
    )
    p.add_argument(
        "--quantity",
        choices=("counts", "rate"),
        default="counts",
        help="counts: detected source counts/s (default; Leahy's 2 holds for these); rate: the "
        "catalogue's net, live-time corrected rate",
    )
    p.add_argument(
        "--norm",
        choices=("leahy", "rms", "abs"),
        default="leahy",
        help="leahy: powers over the mean, the cross spectrum over the means' geometric mean "
        "(default); rms: over the mean squared; abs: (counts/s)^2/Hz",
    )
    p.add_argument(
        "--min-fracexp", type=float, default=0.5, help="minimum fracexp of a bin (default 0.5)"
    )
    p.add_argument("--min-per-bin", type=int, default=20, help="pairs per frequency bin (20)")
    p.add_argument("--factor", type=float, default=1.1, help="log-binning factor (default 1.1)")
    p.add_argument("--taper", action="store_true", help="Hanning taper (default: none)")
    p.add_argument(
        "--high-f",
        type=float,
        default=None,
        help="summary line: mean over f >= this, Hz (default: half the Nyquist frequency)",
    )
    p.add_argument("-o", "--output", type=Path, help="write the Dataset as netCDF")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    p.set_defaults(func=_cmd_cospectrum)
