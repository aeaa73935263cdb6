"""``xlcat psd``, ``lags``, ``lagfreq`` and ``products``: timing analyses straight from a store.

The analyses read one scheme's light curves, cut them into continuous,
gap-filled segments (:meth:`catalog.Catalog.segments`), compute the product
(:func:`catalog.timing.power_spectrum`, :func:`catalog.timing.lag_energy` or
:func:`catalog.timing.lag_energy_ranges`, :func:`catalog.timing.lag_frequency`),
print a table and optionally write the Dataset (``-o``), a figure (``--plot``)
and save it into the store (``--save NAME``). Default taper: Hanning, as the
reference workflow (``--no-taper`` switches it off).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from schemas.errors import ConfigError

if TYPE_CHECKING:  # xarray is imported by the commands that use it, not by every xlcat run
    import xarray as xr

__all__ = [
    "check_pair_counts",
    "format_lag_table",
    "format_lagfreq_table",
    "format_psd_table",
    "parse_reference",
    "register",
    "resolve_bands",
    "with_expected_lag",
]

_INT = re.compile(r"^\s*-?\d+\s*$")
_LIST = re.compile(r"^\s*\d+(\s*,\s*\d+)+\s*$")


def parse_reference(text: str) -> Any:
    """Parse ``--reference``: ``others``, a band index, ``i,j,k`` or an energy range ``LO-HI`` keV.

    Returns
    -------
    str or int or list of int or (float, float)
        As :func:`catalog.timing.band_selection` takes it.

    Raises
    ------
    ConfigError
        If the text is none of these.
    """
    from pipeline.cli.main import parse_range

    t = text.strip()
    if t.lower() == "others":
        return "others"
    if _INT.match(t):
        return int(t)
    if _LIST.match(t):
        return [int(v) for v in t.split(",")]
    t = re.sub(r"\s*kev\s*$", "", t, flags=re.IGNORECASE)
    try:
        return parse_range(t, "reference")
    except ConfigError:
        raise ConfigError(
            f"--reference {text!r}: give 'others', a band index (0, 1, ...), a list "
            "of band indices (0,1) or an energy range in keV (2-3)"
        ) from None


def resolve_bands(text: str, e_lo: Any, e_hi: Any, option: str) -> list[int]:
    """Band indices of ``--subject`` / ``--reference`` of ``xlcat lagfreq``.

    Parameters
    ----------
    text : str
        A band index (``3``), indices (``0,1``) or an energy range ``LO-HI`` keV
        (the bands lying inside it).
    e_lo, e_hi : array_like
        (n_band,) band edges, keV.
    option : str
        The option's name, for the error message.

    Returns
    -------
    list of int

    Raises
    ------
    ConfigError
        If the text is none of these, or names no band of the scheme.
    """
    lo, hi = np.asarray(e_lo, np.float64), np.asarray(e_hi, np.float64)
    try:
        sel = parse_reference(text)
    except ConfigError:
        sel = None
    if sel is None or isinstance(sel, str):
        raise ConfigError(
            f"{option} {text!r}: give a band index (0), band indices (0,1) or an "
            "energy range in keV (2-3)"
        )
    if isinstance(sel, tuple):
        tol = 1e-9 * max(1.0, abs(sel[1]))
        idx = np.flatnonzero((lo >= sel[0] - tol) & (hi <= sel[1] + tol)).tolist()
        if not idx:
            raise ConfigError(
                f"{option} {text}: no band of the scheme ({lo.min():g}-{hi.max():g} keV) lies "
                "inside it; widen the range"
            )
        return [int(i) for i in idx]
    return [int(sel)] if isinstance(sel, int) else [int(i) for i in sel]


# -- shared -------------------------------------------------------------------------------
def _check_outputs(args: argparse.Namespace) -> None:
    for opt, path in (("-o", args.output), ("--plot", args.plot)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise ConfigError(
                f"{opt} {path}: folder {Path(path).parent} does not exist; create it first"
            )
    if args.plot is not None:
        from matplotlib.figure import Figure  # only with --plot: matplotlib is slow to import

        kinds = Figure().canvas.get_supported_filetypes()
        suffix = Path(args.plot).suffix.lstrip(".").lower()
        if suffix not in kinds:
            raise ConfigError(
                f"--plot {args.plot}: unknown image type {suffix!r}; use .png, .pdf or .svg"
            )
    if args.output is not None and Path(args.output).suffix not in (".nc", ".zarr"):
        raise ConfigError(f"-o {args.output}: use a .nc (netCDF) or .zarr file name")
    if args.save is not None:
        from catalog.store import Store

        store = Store(args.store)
        if store.product_path(args.save).exists() and not args.overwrite:
            raise ConfigError(
                f"--save {args.save}: store {store.path} already has a product of that name; "
                "add --overwrite to replace it, or choose another name"
            )


def _segments(args: argparse.Namespace) -> tuple[Any, xr.Dataset]:
    import catalog

    cat = catalog.open(args.store, attrs="python")  # the tables read rich attributes
    seg = cat.segments(
        args.scheme,
        args.obsid or None,
        min_fracexp=args.min_fracexp,
        fill_gaps=args.fill_gaps,
        min_length=args.min_length if args.min_bins is None else f"{args.min_bins}b",
        segment_length=args.segment_length,
        seed=args.seed,
    )
    return cat, seg


def _finish(args: argparse.Namespace, cat: Any, ds: xr.Dataset, plot: str, **plot_kw: Any) -> None:
    """Write, plot (importing matplotlib only then) and save a product as asked."""
    from catalog.products import write_file

    if args.output is not None:
        print(f"wrote {write_file(ds, args.output)}")
    if args.plot is not None:
        from catalog.timing import plots

        getattr(plots, plot)(ds, args.plot, **plot_kw)
        print(f"wrote {args.plot}")
    if args.save is not None:
        where = cat.save_product(args.save, ds, overwrite=args.overwrite)
        print(f"saved product {args.save} in {where}")


def _g(x: float, width: int = 10) -> str:
    return f"{x:>{width}.4g}" if np.isfinite(x) else f"{'-':>{width}}"


def _header(ds: xr.Dataset) -> str:
    from catalog.timing.results import describe_obsids

    used = ds.attrs.get("obsids_used") or []
    return (
        f"{ds.attrs.get('n_segments')} segments ({ds.attrs.get('exposure', 0) / 1e3:.1f} ks, "
        f"dt {ds.attrs.get('dt'):g} s) from {describe_obsids(used, limit=6)}; "
        f"taper {ds.attrs.get('taper')}"
    )


def format_psd_table(ds: xr.Dataset) -> str:
    """The text table of a power-spectrum Dataset: one block per band.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.power_spectrum`.

    Returns
    -------
    str
    """
    lines = [
        f"power spectra, scheme {ds.attrs.get('scheme', '')}, rms normalisation "
        "((rms/mean)^2/Hz); rms in counts/s over each frequency bin",
        _header(ds),
    ]
    cols = (
        f"{'freq (Hz)':>10} {'f_lo':>10} {'f_hi':>10} {'K x M':>6} {'power':>10} "
        f"{'error':>10} {'noise':>10} {'rms':>10} {'error':>10}"
    )
    for b in range(ds.sizes["band"]):
        lines += [
            "",
            f"band {int(ds['band'][b])}: {float(ds['e_lo'][b]):g}-"
            f"{float(ds['e_hi'][b]):g} keV, mean rate "
            f"{float(ds['mean_rate'][b]):.4g} counts/s",
            cols,
        ]
        for k in range(ds.sizes["freq"]):
            v = [
                float(ds[n].values[b, k]) for n in ("power", "power_err", "noise", "rms", "rms_err")
            ]
            lines.append(
                f"{_g(float(ds['freq'][k]))} {_g(float(ds['f_lo'][k]))} "
                f"{_g(float(ds['f_hi'][k]))} {int(ds['count'][k]):>6d} "
                + " ".join(_g(x) for x in v)
            )
    return "\n".join(lines)


def _coherence_note(ds: xr.Dataset) -> list[str]:
    """A footnote line when some coherence is not quoted (``-``), saying why."""
    if "coherence_undefined" not in ds or not bool(np.any(ds["coherence_undefined"].values)):
        return []
    from catalog.timing.products import HIGH_POWER_SIGMA

    n = int(np.sum(ds["coherence_undefined"].values))
    return [
        f"coherence '-' ({n} row{'s' if n > 1 else ''}): a band's signal power P - N is "
        f"below {HIGH_POWER_SIGMA:g} N/sqrt(n_eff), outside the high-power regime of Vaughan "
        "& Nowak (1997): there the intrinsic coherence is undefined or has no calibrated error"
    ]


def _lag_err_mark(ds: xr.Dataset, index: int) -> str:
    """``*`` after a lag error outside the calibrated range, else a space."""
    flag = ds["lag_err_uncalibrated"].values if "lag_err_uncalibrated" in ds else None
    return "*" if flag is not None and bool(np.ravel(flag)[index]) else " "


def _lag_err_note(ds: xr.Dataset) -> list[str]:
    """A footnote line when some lag error is marked ``*``, saying why."""
    if "lag_err_uncalibrated" not in ds or not bool(np.any(ds["lag_err_uncalibrated"].values)):
        return []
    from catalog.timing.products import LOW_COHERENCE, MIN_N_EFF_LOW_COHERENCE

    n = int(np.sum(ds["lag_err_uncalibrated"].values))
    return [
        f"lag error '*' ({n} row{'s' if n > 1 else ''}): raw coherence below "
        f"{LOW_COHERENCE:g} with n_eff below {MIN_N_EFF_LOW_COHERENCE:g}, where the quoted "
        "error is not calibrated (it misses the realisation scatter by 12-25 %); widen the "
        "frequency bin or add segments"
    ]


def format_lag_table(ds: xr.Dataset) -> str:
    """The text table of a lag-energy Dataset: one row per band.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.lag_energy`.

    Returns
    -------
    str
    """
    lines = [
        f"lag-energy, scheme {ds.attrs.get('scheme', '')}, "
        f"{float(ds['f_lo']):.3g}-{float(ds['f_hi']):.3g} Hz (mean {float(ds['freq']):.3g} "
        f"Hz, {int(ds['count'])} segment x frequency pairs); reference: "
        f"{ds.attrs.get('reference')}; lag > 0: the band lags",
        _header(ds),
        "rms and covariance in counts/s over the frequency range; coherence intrinsic",
        "",
        f"{'band':>4} {'E_lo':>7} {'E_hi':>7} {'lag (s)':>10} {'error':>10}  "
        f"{'coherence':>10} {'error':>10} {'rms':>10} {'error':>10} {'covariance':>10} "
        f"{'error':>10}",
    ]
    for b in range(ds.sizes["band"]):
        v = [
            float(ds[n].values[b])
            for n in (
                "lag",
                "lag_err",
                "coherence",
                "coherence_err",
                "rms",
                "rms_err",
                "covariance",
                "covariance_err",
            )
        ]
        cells = [_g(x) for x in v]
        cells[1] = cells[1] + _lag_err_mark(ds, b)
        lines.append(
            f"{int(ds['band'][b]):>4d} {float(ds['e_lo'][b]):>7.4g} "
            f"{float(ds['e_hi'][b]):>7.4g} " + " ".join(cells)
        )
    return "\n".join(lines + _coherence_note(ds) + _lag_err_note(ds))


def format_lagfreq_table(ds: xr.Dataset) -> str:
    """The text table of a lag-frequency Dataset: one row per frequency bin.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.lag_frequency`.

    Returns
    -------
    str
    """
    lines = [
        f"lag-frequency, scheme {ds.attrs.get('scheme', '')}: subject "
        f"{float(ds['e_lo']):g}-{float(ds['e_hi']):g} keV (bands "
        f"{ds.attrs.get('subject_bands')}) against {float(ds['ref_e_lo']):g}-"
        f"{float(ds['ref_e_hi']):g} keV ({ds.attrs.get('reference')}); lag > 0: the "
        "subject lags",
        _header(ds),
        "coherence intrinsic; K x M: segment x frequency pairs in the bin",
        "",
        f"{'freq (Hz)':>10} {'f_lo':>10} {'f_hi':>10} {'K x M':>6} {'lag (s)':>10} "
        f"{'error':>10}  {'coherence':>10} {'error':>10}",
    ]
    for k in range(ds.sizes["freq"]):
        v = [float(ds[n].values[k]) for n in ("lag", "lag_err", "coherence", "coherence_err")]
        cells = [_g(x) for x in v]
        cells[1] = cells[1] + _lag_err_mark(ds, k)
        lines.append(
            f"{_g(float(ds['freq'][k]))} {_g(float(ds['f_lo'][k]))} "
            f"{_g(float(ds['f_hi'][k]))} {int(ds['count'][k]):>6d} " + " ".join(cells)
        )
    return "\n".join(lines + _coherence_note(ds) + _lag_err_note(ds))


def check_pair_counts(ds: xr.Dataset, fix: str) -> None:
    """Refuse a lag product with a frequency bin of fewer independent pairs than ``MIN_N_EFF``.

    Below :data:`catalog.timing.products.MIN_N_EFF` effective (segment, frequency) pairs
    the quoted lag errors are not calibrated (README, "What the numbers are").

    Parameters
    ----------
    ds : xarray.Dataset
        A lag-energy (one or several ranges) or lag-frequency result, with ``n_eff``,
        ``count``, ``f_lo`` and ``f_hi``.
    fix : str
        What to change, for the message (the options of the command).

    Raises
    ------
    ConfigError
        One line naming the first bin short of pairs and ``fix``.
    """
    from catalog.timing.products import MIN_N_EFF

    n_eff = np.atleast_1d(ds["n_eff"].values)
    short = np.flatnonzero(n_eff < MIN_N_EFF)
    if short.size == 0:
        return
    i = int(short[0])
    lo, hi = np.atleast_1d(ds["f_lo"].values)[i], np.atleast_1d(ds["f_hi"].values)[i]
    count = int(np.atleast_1d(ds["count"].values)[i])
    raise ConfigError(
        f"frequency bin {lo:.3g}-{hi:.3g} Hz holds {count} segment x frequency pairs, "
        f"{n_eff[i]:.1f} independent (n_eff, {ds.attrs.get('taper')} taper); lag and "
        f"coherence errors are calibrated from n_eff >= {MIN_N_EFF:g}: {fix}"
    )


# -- commands -------------------------------------------------------------------------------
def _cmd_psd(args: argparse.Namespace) -> int:
    from catalog.timing import power_spectrum

    _check_outputs(args)
    cat, seg = _segments(args)
    ds = power_spectrum(
        seg, min_per_bin=args.min_per_bin, factor=args.factor, taper=not args.no_taper
    )
    print(format_psd_table(ds))
    _finish(args, cat, ds, "plot_power_spectrum")
    return 0


def _cmd_lags(args: argparse.Namespace) -> int:
    from catalog.timing import lag_energy, lag_energy_ranges

    _check_outputs(args)
    reference = parse_reference(args.reference)
    if len(args.freq) < 2:
        raise ConfigError(
            f"--freq {' '.join(map(str, args.freq))}: give two or more frequency edges, Hz "
            "(consecutive pairs are the ranges)"
        )
    panels = [p.strip() for p in args.panels.split(",") if p.strip()]
    bad = [p for p in panels if p not in ("lag", "coherence", "covariance", "rms")]
    if bad or not panels:
        raise ConfigError(
            f"--panels {args.panels}: choose among lag, coherence, covariance, rms (e.g. "
            "lag,coherence)"
        )
    cat, seg = _segments(args)
    dt = float(seg.attrs["dt"])
    nyquist = 0.5 / dt
    if args.freq[0] >= nyquist:
        raise ConfigError(
            f"--freq {' '.join(f'{f:g}' for f in args.freq)}: above the Nyquist frequency "
            f"{nyquist:g} Hz of the {dt:g} s bins; give frequencies below it"
        )
    if args.freq[-1] > nyquist:
        print(
            f"note: --freq {args.freq[-1]:g} Hz is above the Nyquist frequency {nyquist:g} Hz "
            f"of the {dt:g} s bins; the last range ends there",
            file=sys.stderr,
        )
    if len(args.freq) == 2:
        f_lo, f_hi = args.freq
        ds = lag_energy(
            seg, f_lo, f_hi, reference=reference, overlap=args.overlap, taper=not args.no_taper
        )
        check_pair_counts(ds, _LAGS_FIX)
        print(format_lag_table(ds))
        if isinstance(reference, tuple):
            print(reference_bands_used(ds, reference))
    else:
        ds = lag_energy_ranges(
            seg, args.freq, reference=reference, overlap=args.overlap, taper=not args.no_taper
        )
        check_pair_counts(ds, _LAGS_FIX)
        print("\n\n".join(format_lag_table(ds.isel(freq_range=i)) for i in range(len(ds.f_lo))))
        if isinstance(reference, tuple):
            print(reference_bands_used(ds.isel(freq_range=0), reference))
    plot_kw: dict[str, Any] = {"panels": panels}
    if args.expected:
        ds = with_expected_lag(ds, seg, reference, args.overlap)
        plot_kw["expected"] = np.atleast_2d(ds["lag_expected"].values)
        f_lo, f_hi = np.atleast_1d(ds["f_lo"].values), np.atleast_1d(ds["f_hi"].values)
        for one, lo, hi in zip(np.atleast_2d(ds["lag_expected"].values), f_lo, f_hi, strict=True):
            print(
                f"expected lag (simulator's injected delay) at {lo:.3g}-{hi:.3g} Hz, s, per band: "
                + " ".join(_g(x) for x in one)
            )
    _finish(args, cat, ds, "plot_lag_energy", **plot_kw)
    return 0


def with_expected_lag(ds: xr.Dataset, seg: xr.Dataset, reference: Any, overlap: int) -> xr.Dataset:
    """``ds`` with ``lag_expected``: the lag the simulator's model gives each band and range.

    The member frequencies of each range are the Fourier frequencies of the segments of
    ``seg`` in [f_lo, f_hi); the subject and reference weights those of the product
    (:func:`catalog.timing.band_selection` with ``reference`` and ``overlap``); the model is
    :func:`pipeline.simulate.expected_lag_energy`.

    Parameters
    ----------
    ds : xarray.Dataset
        A lag-energy result (dims band, or freq_range x band).
    seg : xarray.Dataset
        The segments it was computed from.
    reference, overlap
        As given to the lag-energy function.

    Returns
    -------
    xarray.Dataset
        A copy with the variable ``lag_expected`` (s) on the dims of ``lag``.
    """
    from catalog.timing import band_selection, fourier_frequencies
    from pipeline.simulate import expected_lag_energy

    dt = float(seg.attrs["dt"])
    pooled = np.concatenate([fourier_frequencies(int(n), dt) for n in seg["n_bins"].values])
    sub, ref = band_selection(
        seg.sizes["band"],
        reference=reference,
        overlap=overlap,
        e_lo=seg["e_lo"].values,
        e_hi=seg["e_hi"].values,
    )
    f_lo, f_hi = np.atleast_1d(ds["f_lo"].values), np.atleast_1d(ds["f_hi"].values)
    values = np.stack(
        [
            expected_lag_energy(
                seg["pi_lo"].values,
                seg["pi_hi"].values,
                sub,
                ref,
                pooled[(pooled >= lo) & (pooled < hi)],
                dt,
            )
            for lo, hi in zip(f_lo, f_hi, strict=True)
        ]
    )
    out = ds.copy()
    out["lag_expected"] = (ds["lag"].dims, values.reshape(ds["lag"].shape))
    out["lag_expected"].attrs.update(
        units="s",
        description="lag the simulator's model gives (pipeline.simulate.expected_lag_energy): "
        "the injected delays, source spectrum and power spectrum over the same pairs",
    )
    return out


_LAGS_FIX = (
    "widen that --freq range, or use more or longer segments (--obsid, --min-length, "
    "--segment-length)"
)


def _cmd_lagfreq(args: argparse.Namespace) -> int:
    from catalog.timing import lag_frequency

    _check_outputs(args)
    cat, seg = _segments(args)
    lo, hi = seg["e_lo"].values, seg["e_hi"].values
    subject = resolve_bands(args.subject, lo, hi, "--subject")
    reference = resolve_bands(args.reference, lo, hi, "--reference")
    ds = lag_frequency(
        seg,
        subject,
        reference,
        min_per_bin=args.min_per_bin,
        factor=args.factor,
        taper=not args.no_taper,
    )
    check_pair_counts(
        ds,
        f"raise --min-per-bin (now {args.min_per_bin}; about 2 x n_eff with the taper), "
        "or use more or longer segments (--obsid, --min-length)",
    )
    print(format_lagfreq_table(ds))
    _finish(args, cat, ds, "plot_lag_frequency")
    return 0


def reference_bands_used(ds: xr.Dataset, reference: tuple[float, float]) -> str:
    """The bands an energy-range ``--reference`` selected (those lying inside the range)."""
    lo, hi = reference
    tol = 1e-9 * max(1.0, abs(hi))
    e_lo, e_hi = ds["e_lo"].values, ds["e_hi"].values
    used = [
        f"{int(b)} ({a:g}-{z:g} keV)"
        for b, a, z in zip(ds["band"].values, e_lo, e_hi, strict=True)
        if a >= lo - tol and z <= hi + tol
    ]
    return f"reference --reference {lo:g}-{hi:g} keV: bands {', '.join(used)}"


def _cmd_products(args: argparse.Namespace) -> int:
    import catalog

    cat = catalog.open(args.store, attrs="python")  # prints the attributes as JSON
    if args.name:
        ds = cat.product(args.name)
        print(ds)
        print(json.dumps({k: v for k, v in ds.attrs.items() if k != "software"}, indent=1))
        return 0
    table = cat.products
    if table.empty:
        print(f"{cat.path}: no saved products")
        return 0
    print(f"{cat.path}: {len(table)} products")
    print(table.to_string(index=False))
    return 0


# -- parsers --------------------------------------------------------------------------------
def _segment_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    p.add_argument("--scheme", required=True, help="energy scheme (see xlcat ls STORE)")
    p.add_argument(
        "--obsid",
        action="append",
        help="observation (repeatable; default: every observation with the scheme)",
    )
    g = p.add_argument_group("segments")
    g.add_argument(
        "--min-fracexp",
        type=float,
        default=0.6,
        help="good bin: fractional exposure >= this in every band (default 0.6)",
    )
    g.add_argument(
        "--fill-gaps",
        type=float,
        default=1000.0,
        help="fill gaps up to this many s by interpolation with noise (default 1000)",
    )
    ml = g.add_mutually_exclusive_group()
    ml.add_argument(
        "--min-length",
        default="14000",
        help="shortest continuous segment kept: seconds, or bins with a b suffix (109b: "
        "the reference workflow's int(14e3/128) at 128 s bins) (default 14000)",
    )
    ml.add_argument(
        "--min-bins",
        type=int,
        help="shortest continuous segment kept, in bins (instead of --min-length)",
    )
    g.add_argument(
        "--segment-length",
        type=float,
        help="cut segments into equal pieces of this many s (a multiple of the bin)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed of the gap-fill noise (default 0)")
    g.add_argument(
        "--no-taper",
        action="store_true",
        help="no Hanning taper (default: Hanning taper, as the reference workflow)",
    )
    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", help="write the product: .nc (netCDF) or .zarr")
    o.add_argument("--plot", help="write a figure (.png, .pdf, .svg)")
    o.add_argument("--save", metavar="NAME", help="save the product in STORE/products/NAME")
    o.add_argument("--overwrite", action="store_true", help="replace a saved product NAME")


def register(subparsers: Any) -> None:
    """Add ``psd``, ``lags`` and ``products`` to the ``xlcat`` subcommands."""
    p = subparsers.add_parser(
        "psd",
        help="power spectra of every band of a scheme (rms normalisation)",
        description="Averaged power spectra of every band, rms normalisation, log-binned, "
        "averaged over all segments of the chosen observations. Hanning taper by default.",
    )
    _segment_options(p)
    p.add_argument(
        "--min-per-bin",
        type=int,
        default=20,
        help="minimum segment x frequency pairs per frequency bin (default 20)",
    )
    p.add_argument(
        "--factor",
        type=float,
        default=1.1,
        help="minimum ratio of a bin's upper to lower frequency (default 1.1)",
    )
    p.set_defaults(func=_cmd_psd)

    lg = subparsers.add_parser(
        "lags",
        help="lag-, coherence-, rms- and covariance-energy spectra over a frequency range",
        description="Cross spectrum of every band against a reference band (default: the sum "
        "of all other bands), averaged over F_LO <= f < F_HI and all segments; prints lag, "
        "coherence, rms and covariance per band. Positive lag: the band lags the reference. "
        "Hanning taper by default.",
    )
    _segment_options(lg)
    lg.add_argument(
        "--freq",
        nargs="+",
        type=float,
        required=True,
        metavar="F",
        help="frequency edges, Hz: F_LO F_HI for one range (e.g. 1e-4 5e-4), or more edges "
        "for consecutive ranges in one call (8e-6 1e-4 2.6e-4 5e-4 8e-4: four ranges)",
    )
    lg.add_argument(
        "--panels",
        default="lag",
        help="rows of the --plot figure, comma-separated: lag, coherence, covariance, rms "
        "(default: lag); one column per frequency range",
    )
    lg.add_argument(
        "--reference",
        default="others",
        help="'others' (default: the sum of all other bands), a band index, a list "
        "of band indices (0,1), or an energy range LO-HI in keV",
    )
    lg.add_argument(
        "--overlap",
        type=int,
        default=1,
        help="sum this many adjacent bands into each subject (default 1)",
    )
    lg.add_argument(
        "--expected",
        action="store_true",
        help="simulated data (xlcat simulate) only: also compute the lag the simulator's "
        "injected delays give each band (variable lag_expected) and draw it in --plot",
    )
    lg.set_defaults(func=_cmd_lags)

    lf = subparsers.add_parser(
        "lagfreq",
        help="lag- and coherence-frequency spectrum of one band range against another",
        description="Cross spectrum of the subject bands (summed) against the reference bands "
        "(summed), averaged over all segments in log-spaced frequency bins; prints lag and "
        "intrinsic coherence with errors per frequency bin. Positive lag: the subject lags. "
        "Hanning taper by default.",
    )
    _segment_options(lf)
    lf.add_argument(
        "--subject",
        required=True,
        help="subject bands: an energy range LO-HI keV (the bands inside it), a band index "
        "or band indices (0,1)",
    )
    lf.add_argument(
        "--reference",
        required=True,
        help="reference bands, as --subject; must not share a band with it",
    )
    lf.add_argument(
        "--min-per-bin",
        type=int,
        default=20,
        help="minimum segment x frequency pairs per frequency bin (default 20)",
    )
    lf.add_argument(
        "--factor",
        type=float,
        default=1.1,
        help="minimum ratio of a bin's upper to lower frequency (default 1.1)",
    )
    lf.set_defaults(func=_cmd_lagfreq)

    pr = subparsers.add_parser("products", help="list the products saved in a store, or show one")
    pr.add_argument("store", type=Path, help="the xlcat store (*.zarr)")
    pr.add_argument("name", nargs="?", help="show this product")
    pr.set_defaults(func=_cmd_products)


if __name__ == "__main__":  # pragma: no cover - use the xlcat entry point
    sys.exit("run: xlcat psd|lags|products ...")
