"""The query layer: an index of the store's bands; light curves by obsid, scheme, energy, time.

As in intake-esm, the catalogue is a table first (:attr:`Catalog.index`, read
from group metadata only) and queries filter that table before any array is
opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from catalog.layout import check_dataset, decode_text_records
from catalog.store import Store
from schemas.energy import kev_to_pi
from schemas.errors import StoreError

__all__ = ["Catalog", "EnergyMatch", "select"]

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
    if energy is not None:
        lo, hi = kev_to_pi(energy[0]), kev_to_pi(energy[1])
        if lo >= hi:
            raise StoreError(f"energy range {energy[0]}-{energy[1]} keV is empty")
        pl, ph = ds["pi_lo"].values, ds["pi_hi"].values
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


class Catalog:
    """A light-curve catalogue opened from an xlcat store.

    Parameters
    ----------
    path : str or os.PathLike
        The store (``*.zarr``).

    Examples
    --------
    >>> import catalog
    >>> cat = catalog.open("ngc5506.zarr")                       # doctest: +SKIP
    >>> cat.index.query("scheme == '8lch'")                       # doctest: +SKIP
    >>> ds = cat.lightcurves(obsid="0201830201", scheme="8lch")   # doctest: +SKIP
    >>> ds.rate.sel(band=0)                                       # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.store = Store(path)

    @property
    def path(self) -> str:
        """The store's path."""
        return str(self.store.path)

    def __repr__(self) -> str:
        idx = self.index
        return (
            f"<xlcat Catalog {self.path}: {idx.obsid.nunique()} observations, "
            f"{idx.scheme.nunique()} schemes, {len(idx)} bands>"
        )

    @cached_property
    def index(self) -> pd.DataFrame:
        """One row per (obsid, scheme, band).

        Columns: obsid, scheme, band, e_lo, e_hi (keV), pi_lo, pi_hi, tstart,
        tstop (MET s), dt (s), exposure (s: sum of fracexp x dt), n_bins,
        backend, abscorr, scheme_hash. Read from group metadata only.
        """
        rows: list[dict[str, Any]] = []
        for obsid, scheme in self.store.groups():
            a = self.store.group_attrs(obsid, scheme)
            n_bins = int(round((a["tstop"] - a["tstart"]) / a["dt"]))
            for b in a["bands"]:
                rows.append(
                    {
                        "obsid": obsid,
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
                        "backend": a["backend"],
                        "abscorr": a["abscorr"],
                        "scheme_hash": a["scheme_hash"],
                    }
                )
        columns = [
            "obsid",
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
        """Forget the cached index (after a build added groups)."""
        self.__dict__.pop("index", None)

    @property
    def obsids(self) -> list[str]:
        """Observations in the store."""
        return sorted(self.index.obsid.unique())

    @property
    def schemes(self) -> list[str]:
        """Energy schemes in the store."""
        return sorted(self.index.scheme.unique())

    def _require(self, obsid: str, scheme: str) -> None:
        if not self.store.has_group(obsid, scheme):
            have = self.index
            if scheme not in set(have.scheme):
                hint = f"schemes in the store: {', '.join(self.schemes) or 'none'}"
            else:
                obs = sorted(have.obsid[have.scheme == scheme].unique())
                hint = f"observations with scheme {scheme}: {', '.join(obs)}"
            raise StoreError(
                f"store {self.path}: no light curves for obsid {obsid}, scheme {scheme} ({hint})"
            )

    def lightcurves(
        self,
        obsid: str,
        scheme: str,
        *,
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
            If the store has no such group.
        """
        self._require(obsid, scheme)
        ds = self.store.read_group(obsid, scheme)
        check_dataset(ds, f"store {self.path} group {obsid}/{scheme}")
        return select(ds, energy=energy, time=time, match=match)

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

        Observations are never concatenated along time: each keeps its own
        grid. Observations with no band or no bin left after selection are left out.

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
            Keyed by obsid, in obsid order.
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
            if time is not None:
                row = idx[idx.obsid == obsid]
                if not row.empty and (
                    row.tstop.iloc[0] <= time[0] or row.tstart.iloc[0] >= time[1]
                ):
                    continue
            ds = self.lightcurves(obsid, scheme, energy=energy, time=time, match=match)
            if ds.sizes["band"] and ds.sizes["time"]:
                out[obsid] = ds
        return out

    def provenance(self, obsid: str, scheme: str, band: int | None = None) -> dict[str, Any]:
        """How a group (or one of its bands) was made: inputs, hashes, backend, commands.

        Parameters
        ----------
        obsid, scheme : str
        band : int, optional
            Band index; adds that band's own record (e.g. the SAS commands and logs).

        Returns
        -------
        dict
            Compressed records (command lines, logs) are returned decoded.
        """
        self._require(obsid, scheme)
        a = self.store.group_attrs(obsid, scheme)
        keys = (
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
        )
        out = {k: a.get(k) for k in keys}
        if band is not None:
            bands: Sequence[dict[str, Any]] = a["bands"]
            if not 0 <= band < len(bands):
                raise StoreError(
                    f"group {obsid}/{scheme} has bands 0..{len(bands) - 1}, not {band}"
                )
            out["band"] = bands[band]
            per_band = a.get("band_provenance")
            out["band_record"] = per_band[band] if per_band else None
        decoded: dict[str, Any] = decode_text_records(out)
        return decoded

    def to_stingray(
        self, obsid: str, scheme: str, *, band: int | None = None, min_fracexp: float = 0.0
    ) -> list[Any]:
        """stingray Lightcurve objects of one group (see :func:`catalog.stingray.to_stingray`)."""
        from catalog.stingray import to_stingray

        return to_stingray(self.lightcurves(obsid, scheme), band=band, min_fracexp=min_fracexp)

    # -- timing ---------------------------------------------------------------------------
    def segments(
        self,
        scheme: str,
        obsids: Iterable[str] | None = None,
        *,
        min_fracexp: float = 0.6,
        fill_gaps: float = 1000.0,
        min_length: float = 14000.0,
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
            Good-bin threshold, longest filled gap (s), shortest segment (s),
            optional equal segment length (s), gap-fill noise seed.

        Returns
        -------
        xarray.Dataset
            Dims (segment, band, time): rate, error, filled; NaN-padded; feeds
            :func:`catalog.timing.power_spectrum`, ``lag_energy`` and friends.
        """
        from catalog.timing.catalogue import segments_dataset

        return segments_dataset(
            self.query(scheme, obsids),
            min_fracexp=min_fracexp,
            fill_gaps=fill_gaps,
            min_length=min_length,
            segment_length=segment_length,
            seed=seed,
            store=self.path,
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
        from catalog.products import prepare_product

        return str(self.store.write_product(name, prepare_product(ds, name), overwrite=overwrite))

    def product(self, name: str) -> xr.Dataset:
        """A saved product, loaded into memory."""
        return self.store.read_product(name)

    @property
    def products(self) -> pd.DataFrame:
        """Saved products: name, product, scheme, obsids, n_segments, created, inputs
        (``current`` when the light curves they came from are unchanged)."""
        from catalog.products import products_table

        return products_table(self.store)
