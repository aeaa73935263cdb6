"""The query layer: an index of the store's bands; light curves by obsid, scheme, energy, time.

As in intake-esm, the catalogue is a table first (:attr:`Catalog.index`, read
from group metadata only) and queries filter that table before any array is
opened.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from catalog.layout import decode_text_records, scheme_view, spectrum_view
from catalog.netcdf import decode_attrs
from catalog.store import Store
from schemas.energy import kev_to_pi, scale_from_record
from schemas.errors import ConfigError, StoreError

__all__ = ["Catalog", "EnergyMatch", "select"]

log = logging.getLogger(__name__)

#: Exposure groups kept in memory by one Catalog (the most recently read).
_CACHE_GROUPS = 4

EnergyMatch = Literal["within", "overlap"]


def select(
    ds: xr.Dataset,
    *,
    energy: tuple[float, float] | None = None,
    time: tuple[float, float] | None = None,
    match: EnergyMatch = "within",
) -> xr.Dataset:
    """Bands and time bins of one group's Dataset.

    Parameters
    ----------
    ds : xarray.Dataset
        An (obsid, scheme) group.
    energy : (float, float), optional
        keV range [lo, hi). With ``match="within"`` bands lying inside it are
        kept; with ``"overlap"`` bands sharing any energy with it. Compared in
        PI (keV x 1000 rounded), so 2-4 keV keeps a band [2000, 4000) exactly.
    time : (float, float), optional
        MET seconds; bins whose centre t satisfies ``t0 <= t < t1`` are kept.
    match : {"within", "overlap"}

    Returns
    -------
    xarray.Dataset
    """
    energy, time = check_range(energy, "energy", "keV"), check_range(time, "time", "s (MET)")
    if energy is not None:
        lo, hi = kev_to_pi(energy[0]), kev_to_pi(energy[1])
        if lo >= hi:
            raise StoreError(f"energy range {energy[0]}-{energy[1]} keV is empty")
        pl, ph = ds["pi_lo"].values, ds["pi_hi"].values
        if not scale_from_record(decode_attrs(ds.attrs).get("energy_scale")).is_ev:
            # another PI scale (NuSTAR): compare the bands' keV edges, to the eV
            pl = np.round(np.asarray(ds["e_lo"].values, np.float64) * 1000.0).astype(np.int64)
            ph = np.round(np.asarray(ds["e_hi"].values, np.float64) * 1000.0).astype(np.int64)
        if match == "within":
            keep = (pl >= lo) & (ph <= hi)
        elif match == "overlap":
            keep = (pl < hi) & (ph > lo)
        else:
            raise StoreError(f"energy match {match!r}: choose within or overlap")
        ds = ds.isel(band=np.flatnonzero(keep))
    if time is not None:
        t = ds["time"].values
        ds = ds.isel(time=np.flatnonzero((t >= time[0]) & (t < time[1])))
    return ds


def check_range(
    value: tuple[float, float] | None, what: str, unit: str
) -> tuple[float, float] | None:
    """``(lo, hi)`` as two finite floats with lo < hi, or None.

    Raises
    ------
    StoreError
        One line naming the range: not two numbers, not finite, or empty.
    """
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise StoreError(f"{what} range {value!r}: give two numbers (lo, hi) in {unit}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise StoreError(f"{what} range {lo}-{hi} {unit}: give finite numbers")
    if not lo < hi:
        raise StoreError(f"{what} range {lo}-{hi} {unit} is empty; give lo < hi")
    return lo, hi


class Catalog:
    """A light-curve catalogue opened from an xlcat store.

    Parameters
    ----------
    path : str or os.PathLike
        The store (``*.zarr``).
    attrs : {'netcdf', 'python'}, default 'netcdf'
        How the returned Datasets (and the timing results computed from its segments)
        carry their attributes: netCDF-valid ones under the JSON rule of
        :mod:`catalog.netcdf`, so a plain ``ds.to_netcdf()`` writes them
        (:func:`catalog.netcdf.python_attrs` decodes them), or ``'python'``: rich Python
        values (dicts, lists, booleans, None).

    Examples
    --------
    >>> import catalog
    >>> cat = catalog.open("ngc5506.zarr")                       # doctest: +SKIP
    >>> cat.index.query("scheme == '8lch'")                       # doctest: +SKIP
    >>> ds = cat.lightcurves(obsid="0201830201", scheme="8lch")   # doctest: +SKIP
    >>> ds.rate.sel(band=0)                                       # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, attrs: str = "netcdf") -> None:
        if attrs not in ("python", "netcdf"):
            raise ConfigError(f"catalog.open: attrs = {attrs!r}; use 'python' or 'netcdf'")
        self.attrs_mode = attrs
        self.store = Store(path)
        self._groups: OrderedDict[tuple[str, str], tuple[int, xr.Dataset]] = OrderedDict()

    @property
    def path(self) -> str:
        """The store's path."""
        return str(self.store.path)

    def __repr__(self) -> str:
        idx = self.index
        n_exp = len(idx[["obsid", "expid"]].drop_duplicates())
        return (
            f"<xlcat Catalog {self.path}: {idx.obsid.nunique()} observations, "
            f"{n_exp} exposures, {idx.scheme.nunique()} schemes, {len(idx)} bands>"
        )

    def _readable_groups(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(obsid, expid, attributes) of every group whose metadata reads; the others are
        left out with a warning (``xlcat verify`` lists them)."""
        for obsid, expid in self.store.groups():
            try:
                yield obsid, expid, self.store.group_attrs(obsid, expid)
            except StoreError as exc:
                log.warning("%s", exc)

    @cached_property
    def index(self) -> pd.DataFrame:
        """One row per (obsid, expid, scheme, band).

        Columns: obsid, expid (the exposure: instrument and EXPIDSTR, e.g. PNS003),
        instrument, scheme, band, e_lo, e_hi (keV), pi_lo, pi_hi, tstart, tstop (MET s),
        dt (s), exposure (s: sum of fracexp x dt), n_bins, backend, abscorr,
        scheme_hash. Read from group metadata only; a group whose metadata cannot be
        read is left out with a warning (``xlcat verify`` lists it).
        """
        rows: list[dict[str, Any]] = []
        for obsid, expid, a in self._readable_groups():
            n_bins = int(round((a["tstop"] - a["tstart"]) / a["dt"]))
            for scheme, rec in sorted(a["schemes"].items()):
                for b in rec["bands"]:
                    rows.append(
                        {
                            "obsid": obsid,
                            "expid": expid,
                            "instrument": a["instrument"],
                            "scheme": scheme,
                            "band": b["band"],
                            "e_lo": b["e_lo"],
                            "e_hi": b["e_hi"],
                            "pi_lo": b["pi_lo"],
                            "pi_hi": b["pi_hi"],
                            "tstart": a["tstart"],
                            "tstop": a["tstop"],
                            "dt": a["dt"],
                            "exposure": b["exposure"],
                            "n_bins": n_bins,
                            "backend": rec["backend"],
                            "abscorr": rec["abscorr"],
                            "scheme_hash": rec["scheme_hash"],
                        }
                    )
        columns = [
            "obsid",
            "expid",
            "instrument",
            "scheme",
            "band",
            "e_lo",
            "e_hi",
            "pi_lo",
            "pi_hi",
            "tstart",
            "tstop",
            "dt",
            "exposure",
            "n_bins",
            "backend",
            "abscorr",
            "scheme_hash",
        ]
        return pd.DataFrame(rows, columns=columns)

    def refresh(self) -> None:
        """Forget the cached index and groups (after a build changed the store)."""
        self.__dict__.pop("index", None)
        self._groups.clear()

    def _read(self, obsid: str, expid: str) -> xr.Dataset:
        """An exposure group, from memory when it is unchanged on disk since last read."""
        meta = self.store.group_path(obsid, expid) / "zarr.json"
        try:
            stamp = meta.stat().st_mtime_ns
        except OSError:
            stamp = -1
        key = (obsid, expid)
        hit = self._groups.get(key)
        if hit is not None and hit[0] == stamp:
            self._groups.move_to_end(key)
            return hit[1]
        ds = self.store.read_group(obsid, expid)
        self._groups[key] = (stamp, ds)
        while len(self._groups) > _CACHE_GROUPS:
            self._groups.popitem(last=False)
        return ds

    @property
    def obsids(self) -> list[str]:
        """Observations in the store."""
        return sorted(self.index.obsid.unique())

    @property
    def schemes(self) -> list[str]:
        """Energy schemes in the store."""
        return sorted(self.index.scheme.unique())

    def expids(self, obsid: str, scheme: str | None = None) -> list[str]:
        """Exposures of an observation in the store (those having ``scheme`` if given)."""
        idx = self.index
        rows = idx[idx.obsid == obsid]
        if scheme is not None:
            rows = rows[rows.scheme == scheme]
        return sorted(rows.expid.unique())

    def _expid(self, obsid: str, scheme: str, expid: str | None) -> str:
        """The exposure a request means: the one given, or the obsid's only one."""
        have = self.index
        found = self.expids(obsid, scheme)
        if expid is not None and expid in found:
            return expid
        if expid is None and len(found) == 1:
            return str(found[0])
        if len(found) > 1:
            raise StoreError(
                f"store {self.path}: obsid {obsid} has {len(found)} exposures with scheme "
                f"{scheme} ({', '.join(found)}); choose one with expid= (--expid)"
            )
        if scheme not in set(have.scheme):
            hint = f"schemes in the store: {', '.join(self.schemes) or 'none'}"
        elif expid is not None and self.expids(obsid):
            hint = f"exposures of {obsid}: {', '.join(self.expids(obsid))}"
        else:
            obs = sorted(have.obsid[have.scheme == scheme].unique())
            hint = f"observations with scheme {scheme}: {', '.join(obs)}"
        what = f"obsid {obsid}" + (f", exposure {expid}" if expid else "")
        raise StoreError(f"store {self.path}: no light curves for {what}, scheme {scheme} ({hint})")

    def lightcurves(
        self,
        obsid: str,
        scheme: str,
        *,
        expid: str | None = None,
        energy: tuple[float, float] | None = None,
        time: tuple[float, float] | None = None,
        match: EnergyMatch = "within",
    ) -> xr.Dataset:
        """Light curves of one observation in one energy scheme.

        Parameters
        ----------
        obsid : str
            10-digit obsid.
        scheme : str
            Scheme name.
        expid : str, optional
            The exposure (e.g. ``PNS003``, ``M1S001``); needed only when the observation
            has several exposures with this scheme.
        energy, time, match
            Optional selection, as in :func:`select`.

        Returns
        -------
        xarray.Dataset
            Dims (band, time): rate, error, src_counts, bkg_counts, backv, backe,
            fracexp; coords time (MET s, bin centre), e_lo, e_hi, pi_lo, pi_hi;
            provenance in attrs.

        Raises
        ------
        StoreError
            If the store has no such light curves, the observation has several
            exposures and ``expid`` is not given (the message names them), or the group
            is damaged.
        """
        expid = self._expid(obsid, scheme, expid)
        ds = scheme_view(
            self._read(obsid, expid), scheme, f"store {self.path}: group {obsid}/{expid}"
        )
        return self._out(select(ds, energy=energy, time=time, match=match))

    def spectra(self) -> pd.DataFrame:
        """One row per exposure holding spectra (store format 3), from group metadata only.

        Columns: obsid, expid, instrument, n_channels, exposure (s), src_total,
        bkg_total (None: source-only), src_backscal, bkg_backscal, backend, rmf, arf
        (response files relative to the store, None when absent).
        """
        rows: list[dict[str, Any]] = []
        for obsid, expid, a in self._readable_groups():
            rec = a.get("spectrum")
            if not rec:
                continue
            resp = rec.get("responses") or {}
            rows.append(
                {
                    "obsid": obsid,
                    "expid": expid,
                    "instrument": a["instrument"],
                    "n_channels": rec["channels"]["n_channels"],
                    "exposure": rec["exposure"],
                    "src_total": rec["src_total"],
                    "bkg_total": rec["bkg_total"],
                    "src_backscal": rec["src_backscal"],
                    "bkg_backscal": rec["bkg_backscal"],
                    "backend": rec["backend"],
                    "rmf": resp.get("rmf"),
                    "arf": resp.get("arf"),
                }
            )
        columns = [
            "obsid", "expid", "instrument", "n_channels", "exposure", "src_total",
            "bkg_total", "src_backscal", "bkg_backscal", "backend", "rmf", "arf",
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=columns)

    def spectrum(self, obsid: str, expid: str | None = None) -> xr.Dataset:
        """The source and background PI spectra of one exposure.

        Parameters
        ----------
        obsid : str
            10-digit obsid.
        expid : str, optional
            The exposure (``PNS003``...); needed only when the observation has several
            exposures with spectra.

        Returns
        -------
        xarray.Dataset
            Dims (channel,): ``src``, ``bkg`` (counts; ``bkg`` NaN for a source-only
            exposure), ``net_rate`` (count/s/keV); coords channel, chan_pi_lo,
            chan_pi_hi, chan_e_lo, chan_e_hi (keV); attrs: exposure (s),
            src_backscal, bkg_backscal (sky pixels²), backscal_ratio, areascal,
            channels (the grid), responses, backend, rules, and the exposure's address.

        Raises
        ------
        StoreError
            If the observation has no exposure with spectra, or several and ``expid``
            is not given (the message names them).
        """
        table = self.spectra()
        have = sorted(table.expid[table.obsid == obsid])
        if expid is None:
            if len(have) != 1:
                hint = (
                    f"exposures with spectra: {', '.join(have)}; choose one with expid= (--expid)"
                    if have
                    else "no exposure of it holds spectra (groups of store format 3 built by "
                    "the native backend do)"
                )
                raise StoreError(f"store {self.path}: obsid {obsid}: {hint}")
            expid = have[0]
        elif expid not in have:
            raise StoreError(
                f"store {self.path}: no spectra for obsid {obsid}, exposure {expid} "
                f"(exposures with spectra: {', '.join(have) or 'none'})"
            )
        where = f"store {self.path}: group {obsid}/{expid}"
        return self._out(spectrum_view(self._read(obsid, expid), where))

    def _out(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with its attributes as the catalogue was opened to give them."""
        if self.attrs_mode != "netcdf":
            return ds
        from catalog.netcdf import netcdf_attrs

        return netcdf_attrs(ds)

    def query(
        self,
        scheme: str,
        obsids: Iterable[str] | None = None,
        *,
        energy: tuple[float, float] | None = None,
        time: tuple[float, float] | None = None,
        match: EnergyMatch = "within",
    ) -> dict[str, xr.Dataset]:
        """Light curves of several observations in one scheme.

        Exposures are never concatenated along time: each keeps its own grid.
        Exposures with no band or no bin left after selection are left out.

        Parameters
        ----------
        scheme : str
        obsids : iterable of str, optional
            Default: every observation that has the scheme.
        energy, time, match
            As in :func:`select`.

        Returns
        -------
        dict of str to xarray.Dataset
            Keyed by obsid, in obsid order; an observation with several exposures
            having the scheme gives one entry per exposure, keyed ``obsid/expid``.
        """
        idx = self.index[self.index.scheme == scheme]
        if idx.empty:
            raise StoreError(
                f"store {self.path}: no scheme {scheme} "
                f"(schemes: {', '.join(self.schemes) or 'none'})"
            )
        wanted = sorted(set(obsids)) if obsids is not None else sorted(idx.obsid.unique())
        out = {}
        for obsid in wanted:
            found = sorted(idx.expid[idx.obsid == obsid].unique())
            if not found:
                self._expid(obsid, scheme, None)  # raises, naming what the store has
            for expid in found:
                if time is not None:
                    row = idx[(idx.obsid == obsid) & (idx.expid == expid)]
                    if row.tstop.iloc[0] <= time[0] or row.tstart.iloc[0] >= time[1]:
                        continue
                ds = self.lightcurves(
                    obsid, scheme, expid=expid, energy=energy, time=time, match=match
                )
                if ds.sizes["band"] and ds.sizes["time"]:
                    out[obsid if len(found) == 1 else f"{obsid}/{expid}"] = ds
        return out

    def provenance(
        self, obsid: str, scheme: str, band: int | None = None, *, expid: str | None = None
    ) -> dict[str, Any]:
        """How a group (or one of its bands) was made: inputs, hashes, backend, commands.

        Parameters
        ----------
        obsid, scheme : str
        band : int, optional
            Band index; adds that band's own record (e.g. the SAS commands and logs).
        expid : str, optional
            The exposure, where the observation has several.

        Returns
        -------
        dict
            Compressed records (command lines, logs) are returned decoded.
        """
        expid = self._expid(obsid, scheme, expid)
        group = self.store.group_attrs(obsid, expid)
        rec = group["schemes"][scheme]
        facts = group["backends"].get(rec["backend"], {})
        a = {
            **group,
            **rec,
            "scheme": scheme,
            "backend_info": facts.get("info"),
            "provenance": facts.get("provenance"),
            "gti": facts.get("gti"),
        }
        keys = (
            "obsid",
            "expid",
            "instrument",
            "scheme",
            "scheme_hash",
            "scheme_definition",
            "scheme_spec",
            "backend",
            "backend_info",
            "abscorr",
            "input_hash",
            "inputs",
            "regions",
            "provenance",
            "software",
            "created",
            "gti",
            "warnings",
        )
        out = {k: a.get(k) for k in keys}
        if band is not None:
            bands: Sequence[dict[str, Any]] = a["bands"]
            if not 0 <= band < len(bands):
                raise StoreError(
                    f"group {obsid}/{expid} scheme {scheme} has bands 0..{len(bands) - 1}, "
                    f"not {band}"
                )
            out["band"] = bands[band]
            per_band = a.get("band_provenance")
            out["band_record"] = per_band[band] if per_band else None
        decoded: dict[str, Any] = decode_text_records(out)
        return decoded

    def to_stingray(
        self,
        obsid: str,
        scheme: str,
        *,
        band: int | None = None,
        min_fracexp: float = 0.0,
        expid: str | None = None,
    ) -> dict[int, Any]:
        """stingray Lightcurve objects of one group, keyed by band.

        See :func:`catalog.stingray.to_stingray`.
        """
        from catalog.stingray import to_stingray

        return to_stingray(
            self.lightcurves(obsid, scheme, expid=expid), band=band, min_fracexp=min_fracexp
        )

    # -- timing ---------------------------------------------------------------------------
    def segments(
        self,
        scheme: str,
        obsids: Iterable[str] | None = None,
        *,
        min_fracexp: float = 0.6,
        fill_gaps: float = 1000.0,
        min_length: float | str = 14000.0,
        segment_length: float | None = None,
        seed: int = 0,
    ) -> xr.Dataset:
        """Analysis-ready segments of every band (see :func:`catalog.timing.segments_dataset`).

        Parameters
        ----------
        scheme : str
        obsids : iterable of str, optional
            Default: every observation that has the scheme.
        min_fracexp, fill_gaps, min_length, segment_length, seed
            Good-bin threshold, longest filled gap (s), shortest segment (s, or
            bins as ``"109b"``), optional equal segment length (s), gap-fill noise seed.

        Returns
        -------
        xarray.Dataset
            Dims (segment, band, time): rate, error, filled; NaN-padded; feeds
            :func:`catalog.timing.power_spectrum`, ``lag_energy`` and friends.
        """
        from catalog.netcdf import python_attrs
        from catalog.timing.catalogue import segments_dataset

        groups = {k: python_attrs(v) for k, v in self.query(scheme, obsids).items()}
        return self._out(
            segments_dataset(
                groups,
                min_fracexp=min_fracexp,
                fill_gaps=fill_gaps,
                min_length=min_length,
                segment_length=segment_length,
                seed=seed,
                store=self.path,
            )
        )

    def save_product(self, name: str, ds: xr.Dataset, *, overwrite: bool = False) -> str:
        """Save a derived product into ``<store>/products/<name>`` atomically.

        Parameters
        ----------
        name : str
            Letters, digits, ``_``, ``-``, ``.``.
        ds : xarray.Dataset
            E.g. a lag-energy spectrum; its attributes (parameters, input hashes) are kept.
        overwrite : bool, default False
            Replace a product of the same name.

        Returns
        -------
        str
            The product folder.
        """
        from catalog.netcdf import python_attrs
        from catalog.products import prepare_product

        product = prepare_product(python_attrs(ds), name)
        return str(self.store.write_product(name, product, overwrite=overwrite))

    def product(self, name: str) -> xr.Dataset:
        """A saved product, loaded into memory."""
        return self._out(self.store.read_product(name))

    @property
    def products(self) -> pd.DataFrame:
        """Saved products: name, product, scheme, obsids, n_segments, created, inputs
        (``current`` when the light curves they came from are unchanged)."""
        from catalog.products import products_table

        return products_table(self.store)
