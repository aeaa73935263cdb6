"""``xlcat query STORE --obsid O --spectrum``: an exposure's stored PI spectra as CSV or JSON.

CSV: one row per channel (``obsid, expid, channel, pi_lo, pi_hi, e_lo, e_hi, src, bkg,
net_rate``); JSON: one object per exposure with the spectrum's exposure, region areas
(BACKSCAL), backscal ratio, AREASCAL, channel grid, response files and the arrays.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

import numpy as np

from schemas.errors import ConfigError

__all__ = ["query_spectrum"]

_KEYS = (
    "exposure",
    "src_backscal",
    "bkg_backscal",
    "backscal_ratio",
    "areascal",
    "source_only",
    "src_total",
    "bkg_total",
    "backend",
    "channels",
    "responses",
)


def _num(v: float) -> float | None:
    return float(v) if np.isfinite(v) else None


def _write_csv(specs: list[Any], out: TextIO) -> None:
    out.write("obsid,expid,channel,pi_lo,pi_hi,e_lo,e_hi,src,bkg,net_rate\n")
    for ds in specs:
        o, e = ds.attrs["obsid"], ds.attrs["expid"]
        cols = zip(
            ds["channel"].values,
            ds["chan_pi_lo"].values,
            ds["chan_pi_hi"].values,
            ds["chan_e_lo"].values,
            ds["chan_e_hi"].values,
            ds["src"].values,
            ds["bkg"].values,
            ds["net_rate"].values,
            strict=True,
        )
        for c, plo, phi, elo, ehi, s, b, r in cols:
            bkg = str(int(b)) if np.isfinite(b) else "nan"
            rate = repr(float(r)) if np.isfinite(r) else "nan"
            out.write(
                f"{o},{e},{int(c)},{int(plo)},{int(phi)},{elo:g},{ehi:g},{int(s)},{bkg},{rate}\n"
            )


def _write_json(specs: list[Any], out: TextIO) -> None:
    from catalog.netcdf import decode_attrs

    doc = []
    for ds in specs:
        a = decode_attrs(ds.attrs)  # either form (catalog.netcdf)
        doc.append(
            {
                "obsid": a["obsid"],
                "expid": a["expid"],
                "instrument": a.get("instrument"),
                **{k: a.get(k) for k in _KEYS},
                "channel": [int(c) for c in ds["channel"].values],
                "pi_lo": [int(v) for v in ds["chan_pi_lo"].values],
                "pi_hi": [int(v) for v in ds["chan_pi_hi"].values],
                "e_lo": [float(v) for v in ds["chan_e_lo"].values],
                "e_hi": [float(v) for v in ds["chan_e_hi"].values],
                "src": [int(v) for v in ds["src"].values],
                "bkg": None if a.get("source_only") else [int(v) for v in ds["bkg"].values],
                "net_rate": [_num(v) for v in ds["net_rate"].values],
            }
        )
    json.dump(doc, out)
    out.write("\n")


def query_spectrum(args: argparse.Namespace) -> int:
    """Print (or write to ``-o``) the spectra of the exposures ``--obsid``/``--expid`` name."""
    import catalog

    if not args.obsid:
        raise ConfigError("--spectrum: give --obsid (one or more)")
    if args.expid and len(args.obsid) != 1:
        raise ConfigError("--expid: give exactly one --obsid with it")
    cat = catalog.open(args.store)
    specs = []
    for obsid in args.obsid:
        if args.expid:
            specs.append(cat.spectrum(obsid, args.expid))
            continue
        table = cat.spectra()
        have = sorted(table.expid[table.obsid == obsid])
        specs += [cat.spectrum(obsid, e) for e in have] or [cat.spectrum(obsid)]
    writer = _write_csv if args.format == "csv" else _write_json
    if args.output:
        with open(args.output, "w") as f:
            writer(specs, f)
    else:
        writer(specs, sys.stdout)
    return 0
