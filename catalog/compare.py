"""Comparing two stores built from the same inputs (e.g. native against SAS), band by band.

Read-only. For each (obsid, scheme) present in both stores and each band present
in both (same PI edges):

- time grids: ``start_offset`` = t0_B - t0_A (first bin starts, s) and ``phase_offset``,
  the difference of bin centres modulo the bin, in [-dt/2, dt/2); the grids *align*
  when the bins are equal and the phase offset is below 1e-6 dt, and bins are then
  matched by index;
- ``rate_ratio`` = mean(rate_B) / mean(rate_A) over the bins where both have
  fracexp >= ``min_fracexp`` and finite rates (over each store's own such bins when
  the grids do not align);
- ``rms_pull`` = sqrt(mean(((rate_B - rate_A) / sqrt(error_A^2 + error_B^2))^2)) over
  the same matched bins with a positive combined error (NaN when not aligned);
- counts, separately from the rates and whatever the fracexp: over the matched bins
  where both stores have finite ``src_counts`` and ``bkg_counts`` (``count_bins``;
  aligned grids only), the totals of each store and the number of bins whose source
  or background counts differ; ``counts_equal`` when there is at least one such bin
  and none differs. An imported raw curve without its corrected curve has counts
  but NaN rates, so only its counts are compared;
- ``fracexp_max_diff`` = max |fracexp_B - fracexp_A| over the matched bins where both
  are finite (reported, never a condition).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from catalog.netcdf import decode_attrs

__all__ = ["BandComparison", "ComparisonReport", "compare_stores", "compare_groups"]

ALIGN_TOLERANCE = 1e-6


@dataclass(frozen=True)
class BandComparison:
    """One band of one (obsid, scheme) in two stores (A and B); see the module docstring."""

    obsid: str
    scheme: str
    band: int
    e_lo: float
    e_hi: float
    backend_a: str
    backend_b: str
    abscorr_a: bool
    abscorr_b: bool
    dt_a: float
    dt_b: float
    start_offset: float
    phase_offset: float
    aligned: bool
    n_bins: int
    mean_rate_a: float
    mean_rate_b: float
    rate_ratio: float
    rms_pull: float
    count_bins: int = 0
    src_counts_a: float = float("nan")
    src_counts_b: float = float("nan")
    bkg_counts_a: float = float("nan")
    bkg_counts_b: float = float("nan")
    src_counts_differ: int = 0
    bkg_counts_differ: int = 0
    fracexp_max_diff: float = float("nan")
    note: str = ""

    @property
    def counts_equal(self) -> bool:
        """At least one bin has counts in both stores, and no bin's counts differ."""
        return self.count_bins > 0 and self.src_counts_differ == self.bkg_counts_differ == 0


@dataclass
class ComparisonReport:
    """Rows of a comparison, and the groups only one store has."""

    store_a: str
    store_b: str
    min_fracexp: float
    rows: list[BandComparison] = field(default_factory=list)
    only_a: list[tuple[str, str]] = field(default_factory=list)
    only_b: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> str:
        """JSON text (NaN as null)."""

        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        doc = {
            "store_a": self.store_a,
            "store_b": self.store_b,
            "min_fracexp": self.min_fracexp,
            "bands": [
                {**{k: clean(v) for k, v in asdict(r).items()}, "counts_equal": r.counts_equal}
                for r in self.rows
            ],
            "only_in_a": [list(g) for g in self.only_a],
            "only_in_b": [list(g) for g in self.only_b],
        }
        return json.dumps(doc, indent=1)

    def to_table(self) -> str:
        """A readable fixed-width table."""
        head = (
            f"A = {self.store_a}\nB = {self.store_b}\n"
            f"rates: bins with fracexp >= {self.min_fracexp:g} in both, finite rates; counts: "
            "matched bins with finite counts in both (cnt_differ: bins whose source/background "
            "counts differ); dfracexp: largest fracexp difference\n"
        )
        cols = [
            "obsid",
            "scheme",
            "band",
            "keV",
            "backends",
            "dt",
            "offset_s",
            "aligned",
            "n",
            "ratio_B/A",
            "rms_pull",
            "cnt_bins",
            "src_A/B",
            "bkg_A/B",
            "cnt_differ",
            "dfracexp",
            "note",
        ]
        lines = []
        for r in self.rows:
            lines.append(
                [
                    r.obsid,
                    r.scheme,
                    str(r.band),
                    f"{r.e_lo:g}-{r.e_hi:g}",
                    f"{r.backend_a}/{r.backend_b}",
                    f"{r.dt_a:g}" if r.dt_a == r.dt_b else f"{r.dt_a:g}/{r.dt_b:g}",
                    f"{r.phase_offset:+.6g}",
                    "yes" if r.aligned else "no",
                    str(r.n_bins),
                    f"{r.rate_ratio:.4f}",
                    f"{r.rms_pull:.3f}",
                    str(r.count_bins),
                    f"{r.src_counts_a:g}/{r.src_counts_b:g}",
                    f"{r.bkg_counts_a:g}/{r.bkg_counts_b:g}",
                    f"{r.src_counts_differ}/{r.bkg_counts_differ}",
                    f"{r.fracexp_max_diff:.3g}",
                    r.note,
                ]
            )
        widths = [max([len(c)] + [len(row[i]) for row in lines]) for i, c in enumerate(cols)]
        out = [head, "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
        out += [
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
            for row in lines
        ]
        if not lines:
            out.append("(no (obsid, scheme) group is in both stores)")
        for label, groups in (("only in A", self.only_a), ("only in B", self.only_b)):
            if groups:
                out.append(f"{label}: " + ", ".join(f"{o}/{s}" for o, s in groups))
        return "\n".join(out)


def _good(ds: xr.Dataset, b: int, min_fracexp: float) -> np.ndarray:
    f = ds["fracexp"].values[b]
    r = ds["rate"].values[b]
    good: np.ndarray = (f >= min_fracexp) & np.isfinite(r)
    return good


def _counts(
    a: xr.Dataset, b: xr.Dataset, i: int, j: int, ka: np.ndarray, kb: np.ndarray
) -> dict[str, Any]:
    """Counts and fracexp of band i of A and band j of B over matched bins ka, kb."""
    sa, sb = a["src_counts"].values[i][ka], b["src_counts"].values[j][kb]
    ba, bb = a["bkg_counts"].values[i][ka], b["bkg_counts"].values[j][kb]
    use = np.isfinite(sa) & np.isfinite(sb) & np.isfinite(ba) & np.isfinite(bb)
    fa, fb = a["fracexp"].values[i][ka], b["fracexp"].values[j][kb]
    both = np.isfinite(fa) & np.isfinite(fb)
    return {
        "count_bins": int(use.sum()),
        "src_counts_a": float(sa[use].sum()) if use.any() else float("nan"),
        "src_counts_b": float(sb[use].sum()) if use.any() else float("nan"),
        "bkg_counts_a": float(ba[use].sum()) if use.any() else float("nan"),
        "bkg_counts_b": float(bb[use].sum()) if use.any() else float("nan"),
        "src_counts_differ": int(np.sum(sa[use] != sb[use])),
        "bkg_counts_differ": int(np.sum(ba[use] != bb[use])),
        "fracexp_max_diff": float(np.max(np.abs(fa[both] - fb[both])))
        if both.any()
        else float("nan"),
    }


def compare_groups(
    a: xr.Dataset, b: xr.Dataset, *, min_fracexp: float = 0.5
) -> list[BandComparison]:
    """Compare the bands of one (obsid, scheme) group read from two stores.

    Parameters
    ----------
    a, b : xarray.Dataset
        The same group from stores A and B (attributes in either form, catalog.netcdf).
    min_fracexp : float
        Bins with a smaller fractional exposure (in either) are left out.

    Returns
    -------
    list of BandComparison
        One per band present in both (matched by PI edges), in A's band order.
    """
    aa, ab = decode_attrs(a.attrs), decode_attrs(b.attrs)  # either form (catalog.netcdf)
    dt_a, dt_b = float(aa["dt"]), float(ab["dt"])
    ta, tb = a["time"].values, b["time"].values
    t0a, t0b = float(aa["tstart"]), float(ab["tstart"])
    start_offset = t0b - t0a
    same_dt = math.isclose(dt_a, dt_b, rel_tol=1e-9)
    phase = math.remainder(start_offset, dt_a) if same_dt else float("nan")
    aligned = same_dt and abs(phase) <= ALIGN_TOLERANCE * dt_a
    shift = int(round(start_offset / dt_a)) if aligned else 0
    edges_b = {
        (int(lo), int(hi)): i
        for i, (lo, hi) in enumerate(zip(b["pi_lo"].values, b["pi_hi"].values, strict=True))
    }
    rows = []
    for i, (lo, hi) in enumerate(zip(a["pi_lo"].values, a["pi_hi"].values, strict=True)):
        j = edges_b.get((int(lo), int(hi)))
        if j is None:
            continue
        ga, gb = _good(a, i, min_fracexp), _good(b, j, min_fracexp)
        ra, rb = a["rate"].values[i], b["rate"].values[j]
        note = ""
        counts: dict[str, Any] = {}
        if aligned:
            ka = np.arange(len(ta))
            kb = ka - shift  # bin k of A is bin k - shift of B
            ok = (kb >= 0) & (kb < len(tb))
            ka, kb = ka[ok], kb[ok]
            counts = _counts(a, b, i, j, ka, kb)
            use = ga[ka] & gb[kb]
            ka, kb = ka[use], kb[use]
            xa, xb = ra[ka], rb[kb]
            ea, eb = a["error"].values[i][ka], b["error"].values[j][kb]
            comb = np.sqrt(ea**2 + eb**2)
            pos = comb > 0
            rms = (
                float(np.sqrt(np.mean(((xb - xa)[pos] / comb[pos]) ** 2))) if pos.any() else np.nan
            )
            n = len(ka)
        else:
            xa, xb = ra[ga], rb[gb]
            rms, n = float("nan"), 0
            note = "grids do not align: mean rates over each store's own bins, no rms"
        mean_a = float(np.mean(xa)) if len(xa) else float("nan")
        mean_b = float(np.mean(xb)) if len(xb) else float("nan")
        ratio = mean_b / mean_a if len(xa) and len(xb) and mean_a != 0 else float("nan")
        if aligned and n == 0:
            note = f"no bin with fracexp >= {min_fracexp:g} in both"
        rows.append(
            BandComparison(
                obsid=str(aa["obsid"]),
                scheme=str(aa["scheme"]),
                band=i,
                e_lo=float(lo) / 1000,
                e_hi=float(hi) / 1000,
                backend_a=str(aa["backend"]),
                backend_b=str(ab["backend"]),
                abscorr_a=bool(aa["abscorr"]),
                abscorr_b=bool(ab["abscorr"]),
                dt_a=dt_a,
                dt_b=dt_b,
                start_offset=start_offset,
                phase_offset=phase,
                aligned=aligned,
                n_bins=n,
                mean_rate_a=mean_a,
                mean_rate_b=mean_b,
                rate_ratio=ratio,
                rms_pull=rms,
                **counts,
                note=note,
            )
        )
    return rows


def compare_stores(
    store_a: str | os.PathLike[str],
    store_b: str | os.PathLike[str],
    *,
    obsids: Iterable[str] | None = None,
    schemes: Iterable[str] | None = None,
    min_fracexp: float = 0.5,
) -> ComparisonReport:
    """Compare every (obsid, exposure, scheme) two stores share (read-only).

    Parameters
    ----------
    store_a, store_b : str or os.PathLike
    obsids, schemes : iterable of str, optional
        Restrict the comparison.
    min_fracexp : float
        Bins with fracexp below this (in either store) are left out.

    Returns
    -------
    ComparisonReport

    Raises
    ------
    StoreError
        If a path is not an xlcat store.
    """
    from catalog.query import Catalog

    a, b = Catalog(store_a), Catalog(store_b)
    want_o = set(obsids) if obsids else None
    want_s = set(schemes) if schemes else None

    def groups(c: Catalog) -> dict[tuple[str, str], list[str]]:
        """(obsid, scheme) -> the exposures having it."""
        idx = c.index[["obsid", "expid", "scheme"]].drop_duplicates()
        out: dict[tuple[str, str], list[str]] = {}
        for o, e, sc in idx.itertuples(index=False):
            if (want_o is None or o in want_o) and (want_s is None or sc in want_s):
                out.setdefault((o, sc), []).append(e)
        return out

    ga, gb = groups(a), groups(b)
    pairs: list[tuple[str, str, str, str]] = []  # obsid, scheme, expid in A, expid in B
    only_a: list[tuple[str, str]] = []
    only_b: list[tuple[str, str]] = []
    for key in sorted(set(ga) | set(gb)):
        ea, eb = ga.get(key, []), gb.get(key, [])
        if len(ea) == 1 and len(eb) == 1:  # one exposure each: the same, whatever its name
            pairs.append((*key, ea[0], eb[0]))
            continue
        for e in sorted(set(ea) & set(eb)):
            pairs.append((*key, e, e))
        for mine, other, out in ((ea, eb, only_a), (eb, ea, only_b)):
            rest = sorted(set(mine) - set(other))
            if not other and len(mine) == 1:
                out.append(key)  # the obsid's one exposure: named by the obsid
            else:
                out += [(f"{key[0]}/{e}", key[1]) for e in rest]
    report = ComparisonReport(a.path, b.path, min_fracexp, only_a=only_a, only_b=only_b)
    for obsid, scheme, ea_, eb_ in pairs:
        report.rows += compare_groups(
            a.lightcurves(obsid, scheme, expid=ea_),
            b.lightcurves(obsid, scheme, expid=eb_),
            min_fracexp=min_fracexp,
        )
    return report
