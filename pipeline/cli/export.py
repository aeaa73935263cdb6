"""``xlcat export``: OGIP files for FTOOLS, HENDRICS, stingray, XSPEC and sherpa.

- ``xlcat export lc STORE --obsid O --scheme S -o DIR``: one OGIP light curve per band
  (:func:`catalog.export.write_ogip_lightcurve`).
- ``xlcat export spectrum STORE --product NAME --quantity lag -o lag.pha``: a saved
  lag-energy product's lag, rms, covariance or coherence spectrum as OGIP PHA with an
  RMF from the band edges (:func:`catalog.export.write_ogip_spectrum`).
- ``xlcat export pha STORE --obsid O [--expid E] -o DIR``: the exposure's stored source and
  background PI spectra as OGIP PHA (``<obsid>_<expid>_src.pha``, ``_bkg.pha``), with its
  RMF and ARF copied beside them when the store has them
  (:func:`catalog.export.write_ogip_pha`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError

__all__ = ["register"]


def _cmd_lc(args: argparse.Namespace) -> int:
    import catalog
    from catalog.export import lightcurve_filename, write_ogip_lightcurve

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"-o {out}: a file, not a folder; name a folder for the light curves")
    if not out.exists():
        if not out.resolve().parent.is_dir():
            raise ConfigError(f"-o {out}: folder {out.parent} does not exist; create it first")
        out.mkdir()
    ds = catalog.open(args.store).lightcurves(args.obsid, args.scheme, expid=args.expid)
    n = ds.sizes["band"]
    bands = args.band if args.band else list(range(n))
    for b in bands:
        if not 0 <= b < n:
            raise ConfigError(f"--band {b}: scheme {args.scheme} has bands 0..{n - 1}")
    for b in bands:
        path = write_ogip_lightcurve(
            ds, b, out / lightcurve_filename(ds, b), overwrite=args.overwrite
        )
        print(f"wrote {path}")
    return 0


def _cmd_spectrum(args: argparse.Namespace) -> int:
    import catalog
    from catalog.export import write_ogip_spectrum

    ds = catalog.open(args.store).product(args.product)
    if ds.attrs.get("product") != "lag-energy":
        raise ConfigError(
            f"--product {args.product} is a {ds.attrs.get('product')!r} product; export "
            "spectrum takes a lag-energy product (xlcat lags ... --save NAME)"
        )
    pha, rmf = write_ogip_spectrum(
        ds, args.quantity, args.output, freq_range=args.freq_range, overwrite=args.overwrite
    )
    print(f"wrote {pha} and {rmf}")
    return 0


def _cmd_pha(args: argparse.Namespace) -> int:
    import catalog
    from catalog.export import write_ogip_pha

    cat = catalog.open(args.store)
    spec = cat.spectrum(args.obsid, args.expid)
    paths = write_ogip_pha(spec, args.output, store=cat.path, overwrite=args.overwrite)
    for p in paths.values():
        print(f"wrote {p}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``export`` (``lc``, ``spectrum``, ``pha``) to the ``xlcat`` subcommands."""
    p = subparsers.add_parser(
        "export",
        help="write OGIP light curves (FTOOLS, HENDRICS, stingray) or PHA spectra (XSPEC)",
        description="Export to OGIP FITS: light curves laid out as SAS epiclccorr writes "
        "them (RATE extension with TIME, RATE, ERROR, FRACEXP, BACKV, BACKE and a GTI "
        "extension), or lag/rms/covariance spectra as PHA files with an RMF built from "
        "the band edges.",
    )
    sub = p.add_subparsers(
        dest="what",
        required=True,
        metavar="{lc,spectrum,pha}",
        help="lc: OGIP light curves of a scheme; spectrum: a saved lag-energy product as PHA; "
        "pha: an exposure's source and background PI spectra as PHA",
    )
    lc = sub.add_parser("lc", help="OGIP light curves, one file per band")
    lc.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    lc.add_argument("--obsid", required=True)
    lc.add_argument("--scheme", required=True)
    lc.add_argument("--expid", help="exposure, when the observation has several")
    lc.add_argument(
        "--band", type=int, action="append", help="band index (repeatable; default: every band)"
    )
    lc.add_argument("-o", "--output", required=True, help="output folder")
    lc.add_argument("--overwrite", action="store_true", help="replace existing files")
    lc.set_defaults(func=_cmd_lc)
    sp = sub.add_parser("spectrum", help="a saved lag-energy product as OGIP PHA + RMF")
    sp.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    sp.add_argument("--product", required=True, help="saved product name (xlcat products)")
    sp.add_argument(
        "--quantity",
        default="lag",
        choices=("lag", "rms", "covariance", "coherence"),
        help="which spectrum (default lag)",
    )
    sp.add_argument(
        "--freq-range",
        type=int,
        help="range position of a several-range product (xlcat lags --freq with >2 edges)",
    )
    sp.add_argument("-o", "--output", required=True, help="PHA file; the .rmf goes beside it")
    sp.add_argument("--overwrite", action="store_true", help="replace existing files")
    sp.set_defaults(func=_cmd_spectrum)
    pha = sub.add_parser(
        "pha", help="an exposure's source and background PI spectra as OGIP PHA (+ RMF, ARF)"
    )
    pha.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    pha.add_argument("--obsid", required=True)
    pha.add_argument("--expid", help="exposure, when the observation has several")
    pha.add_argument("-o", "--output", required=True, help="output folder")
    pha.add_argument("--overwrite", action="store_true", help="replace existing files")
    pha.set_defaults(func=_cmd_pha)
