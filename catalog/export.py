"""Export to OGIP FITS files that FTOOLS, HENDRICS, stingray, XSPEC and sherpa read.

- :func:`write_ogip_lightcurve`: one band of an (obsid, scheme) light-curve Dataset as
  an OGIP light curve (OGIP/93-003), laid out as SAS epiclccorr writes it: extension
  ``RATE`` with columns TIME (bin centre, MET s), RATE and ERROR (net, already divided
  by FRACEXP), FRACEXP, BACKV, BACKE; keywords TIMEDEL, TIMEPIXR = 0.5, TIMEZERO = 0,
  TSTART, TSTOP, MJDREF (and MJDREFI/MJDREFF), TIMESYS, TIMEREF, TIMEUNIT; then an
  extension ``GTI`` (START, STOP) with the stored GTIs.
- :func:`write_ogip_spectrum`: a lag-, rms- or covariance-energy spectrum as an OGIP
  PHA type I file (one channel per band, the value as RATE with STAT_ERR) plus an RMF
  whose matrix is the identity on the band edges (EBOUNDS also in the PHA), so XSPEC or
  sherpa fit a model integrated over each band.
- :func:`write_ogip_pha`: an exposure's stored source and background PI spectra
  (store format 3) as OGIP PHA type I files, with the background file named in the
  source's header and the exposure's RMF/ARF copied beside them when a backend made them.

Caveat for stingray: ``Lightcurve.read(path, fmt="ogip")`` divides RATE by FRACEXP
again and zeroes bins below its ``fracexp_limit`` (0.9), so only fully exposed bins
come back unchanged; :func:`catalog.stingray.to_stingray` is the exact hand-off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from astropy.io import fits

from catalog.netcdf import python_attrs
from schemas.errors import ConfigError

__all__ = [
    "lightcurve_filename",
    "pha_filenames",
    "write_ogip_lightcurve",
    "write_ogip_pha",
    "write_ogip_spectrum",
]

_SPECTRUM_VARS = {
    "lag": ("lag", "lag_err", "s"),
    "rms": ("rms", "rms_err", "count/s"),
    "covariance": ("covariance", "covariance_err", "count/s"),
    "coherence": ("coherence", "coherence_err", ""),
}


def lightcurve_filename(ds: xr.Dataset, band: int) -> str:
    """``<obsid>_<expid>_<scheme>_b<band>_<lo>-<hi>keV.lc`` for one band (position)."""
    a = ds.attrs
    lo, hi = float(ds["e_lo"].values[band]), float(ds["e_hi"].values[band])
    return (
        f"{a['obsid']}_{a.get('expid', '')}_{a['scheme']}_b{int(ds['band'].values[band])}_"
        f"{lo:g}-{hi:g}keV.lc"
    )


def _mjdref(header: fits.Header, mjdref: float) -> None:
    header["MJDREF"] = (mjdref, "reference MJD of TIME (TT)")
    header["MJDREFI"] = (int(np.floor(mjdref)), "integer part of MJDREF")
    header["MJDREFF"] = (mjdref - np.floor(mjdref), "fractional part of MJDREF")


def _telescope(instrument: str) -> str:
    """TELESCOP of an instrument: NuSTAR for FPMA/FPMB, XMM for the EPIC cameras."""
    return "NuSTAR" if instrument.upper() in ("FPMA", "FPMB") else "XMM"


def _common(header: fits.Header, a: dict[str, Any]) -> None:
    header["TELESCOP"] = (_telescope(str(a.get("instrument", ""))), "mission")
    header["INSTRUME"] = (str(a.get("instrument", "")), "instrument")
    header["OBS_ID"] = (str(a.get("obsid", "")), "observation")
    header["EXPIDSTR"] = (str(a.get("expid", "")), "exposure")
    header["CREATOR"] = ("xlcat", "program that wrote this file")


def write_ogip_lightcurve(
    ds: xr.Dataset, band: int, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write one band of a light-curve Dataset as an OGIP light curve.

    Parameters
    ----------
    ds : xarray.Dataset
        From :meth:`catalog.Catalog.lightcurves` (either attribute form).
    band : int
        Band position in ``ds``.
    path : str or os.PathLike
        Output FITS file.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        If the band does not exist, the folder is missing or the file exists.
    """
    ds = python_attrs(ds)
    a = dict(ds.attrs)
    n_band = ds.sizes["band"]
    if not 0 <= band < n_band:
        raise ConfigError(f"export: band position {band}; the Dataset has 0..{n_band - 1}")
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"export {path}: folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise ConfigError(f"export {path}: file exists; remove it or pass --overwrite")
    dt = float(a["dt"])
    time = ds["time"].values.astype(np.float64)
    cols = [fits.Column("TIME", "D", unit="s", array=time)]
    for name, col, unit in (
        ("RATE", "rate", "count/s"),
        ("ERROR", "error", "count/s"),
        ("FRACEXP", "fracexp", ""),
        ("BACKV", "backv", "count/s"),
        ("BACKE", "backe", "count/s"),
    ):
        cols.append(
            fits.Column(name, "D", unit=unit or None, array=ds[col].values[band].astype(float))
        )
    rate = fits.BinTableHDU.from_columns(cols, name="RATE")
    h = rate.header
    h["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
    h["HDUCLAS1"] = ("LIGHTCURVE", "light curve dataset")
    h["HDUCLAS2"] = ("NET", "background subtracted")
    h["HDUCLAS3"] = ("RATE", "rates, not counts")
    _common(h, a)
    h["TIMESYS"] = (str(a.get("TIMESYS", "TT")), "time system")
    h["TIMEREF"] = (str(a.get("TIMEREF", "LOCAL")), "time reference")
    h["TIMEUNIT"] = ("s", "unit of TIME, TSTART, TSTOP, TIMEDEL")
    _mjdref(h, float(a["MJDREF"]))
    h["TSTART"] = (float(time[0] - 0.5 * dt), "start of the first bin (MET s)")
    h["TSTOP"] = (float(time[-1] + 0.5 * dt), "end of the last bin (MET s)")
    h["TIMEZERO"] = (0.0, "TIME is absolute MET")
    h["TIMEDEL"] = (dt, "bin width (s)")
    h["TIMEPIXR"] = (0.5, "TIME is the bin centre")
    h["CHANMIN"] = (int(ds["pi_lo"].values[band]), "lowest PI channel (eV), inclusive")
    h["CHANMAX"] = (int(ds["pi_hi"].values[band]) - 1, "highest PI channel (eV), inclusive")
    h["E_MIN"] = (float(ds["e_lo"].values[band]), "band lower edge (keV)")
    h["E_MAX"] = (float(ds["e_hi"].values[band]), "band upper edge (keV), exclusive")
    h["EXPOSURE"] = (float(np.nansum(ds["fracexp"].values[band]) * dt), "exposure (s)")
    h["SCHEME"] = (str(a.get("scheme", "")), "xlcat energy scheme")
    h["BACKEND"] = (str(a.get("backend", "")), "xlcat extraction backend")
    h["COMMENT"] = "RATE and ERROR are net rates already divided by FRACEXP (epiclccorr)."
    gti = np.asarray(a["gti"], dtype=np.float64).reshape(-1, 2)
    g = fits.BinTableHDU.from_columns(
        [
            fits.Column("START", "D", unit="s", array=gti[:, 0]),
            fits.Column("STOP", "D", unit="s", array=gti[:, 1]),
        ],
        name="GTI",
    )
    g.header["HDUCLASS"] = "OGIP"
    g.header["HDUCLAS1"] = "GTI"
    g.header["HDUCLAS2"] = "STANDARD"
    g.header["TIMEUNIT"] = "s"
    g.header["TIMEZERO"] = 0.0
    _mjdref(g.header, float(a["MJDREF"]))
    _common(g.header, a)
    fits.HDUList([fits.PrimaryHDU(), rate, g]).writeto(path, overwrite=overwrite)
    return path


def write_ogip_spectrum(
    ds: xr.Dataset,
    quantity: str,
    path: str | os.PathLike[str],
    *,
    freq_range: int | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write a lag-, rms-, covariance- or coherence-energy spectrum as OGIP PHA + RMF.

    Channel ``i`` is band ``i``; the PHA holds the value as RATE (type II errors in
    STAT_ERR, ``POISSERR = F``) and EXPOSURE = 1 s, so XSPEC reads the numbers
    unchanged. The RMF (``<path stem>.rmf``) has one energy bin and one channel per
    band with matrix 1 (EBOUNDS and MATRIX energies from the band edges, keV); with
    no ARF, a fitted model's value in a channel is its integral over that band.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`catalog.timing.lag_energy` or :func:`catalog.timing.lag_energy_ranges`.
    quantity : {'lag', 'rms', 'covariance', 'coherence'}
    path : str or os.PathLike
        The PHA file (e.g. ``lag.pha``); the RMF goes beside it.
    freq_range : int, optional
        The range position of a several-range result (required then).
    overwrite : bool, default False

    Returns
    -------
    (pathlib.Path, pathlib.Path)
        The PHA and RMF paths.

    Raises
    ------
    ConfigError
        For an unknown quantity, a missing range, a missing folder or an existing file.
    """
    if quantity not in _SPECTRUM_VARS:
        raise ConfigError(f"export: quantity {quantity!r}; use one of {list(_SPECTRUM_VARS)}")
    ds = python_attrs(ds)
    if "freq_range" in ds.dims:
        if freq_range is None:
            raise ConfigError(
                f"export: the spectrum has {ds.sizes['freq_range']} frequency ranges; "
                "choose one (freq_range=i, --freq-range i)"
            )
        ds = ds.isel(freq_range=freq_range)
    path = Path(path)
    rmf_path = path.with_suffix(".rmf")
    if not path.parent.is_dir():
        raise ConfigError(f"export {path}: folder {path.parent} does not exist; create it first")
    for p in (path, rmf_path):
        if p.exists() and not overwrite:
            raise ConfigError(f"export {p}: file exists; remove it or pass --overwrite")
    var, err, unit = _SPECTRUM_VARS[quantity]
    value = ds[var].values.astype(np.float64)
    error = ds[err].values.astype(np.float64)
    lo, hi = ds["e_lo"].values.astype(np.float64), ds["e_hi"].values.astype(np.float64)
    n = value.size
    chan = np.arange(n, dtype=np.int32)
    good = np.isfinite(value) & np.isfinite(error)
    spec = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=chan),
            fits.Column("RATE", "D", unit=unit or None, array=np.where(good, value, 0.0)),
            fits.Column("STAT_ERR", "D", unit=unit or None, array=np.where(good, error, 0.0)),
            fits.Column("QUALITY", "I", array=np.where(good, 0, 1).astype(np.int16)),
        ],
        name="SPECTRUM",
    )
    h = spec.header
    h["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
    h["HDUCLAS1"] = ("SPECTRUM", "PHA dataset")
    h["HDUVERS"] = ("1.2.1", "OGIP/92-007")
    h["HDUCLAS2"] = ("NET", "")
    h["HDUCLAS3"] = ("RATE", "values in RATE")
    h["TELESCOP"] = (_telescope(str(ds.attrs.get("instrument", ""))), "mission")
    h["INSTRUME"] = (str(ds.attrs.get("instrument", "EPN")) or "EPN", "instrument")
    h["FILTER"] = ("NONE", "")
    h["CHANTYPE"] = ("PI", "channel i is band i of the scheme")
    h["DETCHANS"] = (n, "number of channels (bands)")
    h["TLMIN1"] = 0
    h["TLMAX1"] = n - 1
    h["EXPOSURE"] = (1.0, "s; RATE holds the values unchanged")
    h["AREASCAL"] = 1.0
    h["BACKSCAL"] = 1.0
    h["CORRSCAL"] = 0.0
    h["BACKFILE"] = "NONE"
    h["CORRFILE"] = "NONE"
    h["ANCRFILE"] = "NONE"
    h["RESPFILE"] = (rmf_path.name, "identity response on the band edges")
    h["POISSERR"] = (False, "errors in STAT_ERR")
    h["SYS_ERR"] = 0.0
    h["GROUPING"] = 0
    h["XLCQUANT"] = (quantity, "xlcat spectral-timing quantity")
    h["XLCUNIT"] = (unit, "unit of RATE and STAT_ERR")
    if "f_lo" in ds.coords:
        h["FREQ_LO"] = (float(ds["f_lo"]), "frequency range lower edge (Hz)")
        h["FREQ_HI"] = (float(ds["f_hi"]), "frequency range upper edge (Hz)")
    h["SCHEME"] = str(ds.attrs.get("scheme", ""))
    h["REFERENC"] = str(ds.attrs.get("reference", ""))[:68]
    matrix = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=lo),
            fits.Column("ENERG_HI", "E", unit="keV", array=hi),
            fits.Column("N_GRP", "I", array=np.ones(n, np.int16)),
            # variable-length rows, as rmfgen writes them (one group of one channel each)
            fits.Column("F_CHAN", "PJ()", array=[np.array([c], np.int32) for c in chan]),
            fits.Column("N_CHAN", "PJ()", array=[np.ones(1, np.int32) for _ in chan]),
            fits.Column("MATRIX", "PE()", array=[np.ones(1, np.float32) for _ in chan]),
        ],
        name="MATRIX",
    )
    ebounds = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=chan),
            fits.Column("E_MIN", "E", unit="keV", array=lo),
            fits.Column("E_MAX", "E", unit="keV", array=hi),
        ],
        name="EBOUNDS",
    )
    for hdu, cls3 in ((matrix, "REDIST"), (ebounds, "EBOUNDS")):
        hh = hdu.header
        hh["HDUCLASS"] = "OGIP"
        hh["HDUCLAS1"] = "RESPONSE"
        hh["HDUCLAS2"] = "RSP_MATRIX" if cls3 == "REDIST" else "EBOUNDS"
        if cls3 == "REDIST":
            hh["HDUCLAS3"] = "REDIST"
        hh["HDUVERS"] = "1.3.0"
        hh["TELESCOP"] = h["TELESCOP"]
        hh["INSTRUME"] = h["INSTRUME"]
        hh["FILTER"] = "NONE"
        hh["CHANTYPE"] = "PI"
        hh["DETCHANS"] = n
        hh["TLMIN4" if cls3 == "REDIST" else "TLMIN1"] = 0
        hh["TLMAX4" if cls3 == "REDIST" else "TLMAX1"] = n - 1
    matrix.header["LO_THRES"] = 0.0
    fits.HDUList([fits.PrimaryHDU(), matrix, ebounds]).writeto(rmf_path, overwrite=overwrite)
    # the channel energies also beside the spectrum (as gammapy writes PHA files; XSPEC
    # and sherpa take them from the RMF and skip the extension)
    fits.HDUList([fits.PrimaryHDU(), spec, ebounds.copy()]).writeto(path, overwrite=overwrite)
    return path, rmf_path


def pha_filenames(obsid: str, expid: str) -> dict[str, str]:
    """File names :func:`write_ogip_pha` writes: ``src``, ``bkg``, ``rmf``, ``arf``."""
    stem = f"{obsid}_{expid}"
    return {
        "src": f"{stem}_src.pha",
        "bkg": f"{stem}_bkg.pha",
        "rmf": f"{stem}.rmf",
        "arf": f"{stem}.arf",
    }


def write_ogip_pha(
    spec: xr.Dataset,
    folder: str | os.PathLike[str],
    *,
    store: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write an exposure's stored PI spectra as OGIP PHA type I files (OGIP/92-007).

    ``<obsid>_<expid>_src.pha`` (and ``_bkg.pha`` unless the exposure is source-only):
    extension SPECTRUM with CHANNEL, COUNTS (integer), QUALITY (0), GROUPING (1) and
    BACKSCAL (the region area in sky pixels², also as the BACKSCAL keyword); keywords
    EXPOSURE (s), AREASCAL = 1, BACKSCAL, POISSERR = T, DETCHANS, CHANTYPE = 'PI',
    TELESCOP, INSTRUME, FILTER, the HDUCLAS keywords, BACKFILE (the background file's
    name, beside it), RESPFILE and ANCRFILE (the exposure's RMF and ARF, copied beside
    the spectra from the store's ``responses/`` folder when a backend made them, else
    ``NONE``); then an EBOUNDS extension (channel energies, keV) as gammapy writes it.

    Parameters
    ----------
    spec : xarray.Dataset
        From :meth:`catalog.query.Catalog.spectrum`.
    folder : str or os.PathLike
        Output folder (created when its parent exists).
    store : str or os.PathLike, optional
        The store the spectra came from, to find the response files (the
        ``responses`` record is relative to it).
    overwrite : bool, default False

    Returns
    -------
    dict of str to pathlib.Path
        ``src``, and ``bkg``, ``rmf``, ``arf`` when written.

    Raises
    ------
    ConfigError
        If the folder's parent is missing, a file exists (without ``overwrite``), or a
        recorded response file is missing from the store.
    """
    import shutil

    spec = python_attrs(spec)
    a = spec.attrs
    out = Path(folder)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export {out}: a file, not a folder; name a folder for the spectra")
    if not out.exists():
        if not out.resolve().parent.is_dir():
            raise ConfigError(f"export {out}: folder {out.parent} does not exist; create it first")
        out.mkdir()
    names = pha_filenames(str(a["obsid"]), str(a["expid"]))
    has_bkg = not a.get("source_only") and bool(np.isfinite(spec["bkg"].values).all())
    responses = dict(a.get("responses") or {})
    sources: dict[str, Path] = {}
    for kind in ("rmf", "arf"):
        rel = responses.get(kind)
        if rel:
            if store is None:
                raise ConfigError(f"export: the spectra name a {kind.upper()} ({rel}); pass store=")
            src = Path(store) / rel
            if not src.is_file():
                raise ConfigError(
                    f"export: store {store}: response file {rel} is missing; rebuild the "
                    "exposure with xlcat build --force"
                )
            sources[kind] = src
    wanted = ["src", *(["bkg"] if has_bkg else []), *sources]
    paths = {k: out / names[k] for k in wanted}
    for p in paths.values():
        if p.exists() and not overwrite:
            raise ConfigError(f"export {p}: file exists; remove it or pass --overwrite")
    for kind, src in sources.items():
        shutil.copyfile(src, paths[kind])
    chan = spec["channel"].values.astype(np.int32)
    e_lo = spec["chan_e_lo"].values.astype(np.float64)
    e_hi = spec["chan_e_hi"].values.astype(np.float64)
    grid = a.get("channels", {})
    for role in ("src", "bkg") if has_bkg else ("src",):
        counts = spec[role].values
        backscal = float(a["src_backscal"] if role == "src" else a["bkg_backscal"])
        hdu = fits.BinTableHDU.from_columns(
            [
                fits.Column("CHANNEL", "J", array=chan),
                fits.Column("COUNTS", "J", unit="count", array=counts.astype(np.int32)),
                fits.Column("QUALITY", "I", array=np.zeros(len(chan), np.int16)),
                fits.Column("GROUPING", "I", array=np.ones(len(chan), np.int16)),
                fits.Column("BACKSCAL", "E", array=np.full(len(chan), backscal, np.float32)),
            ],
            name="SPECTRUM",
        )
        h = hdu.header
        h["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
        h["HDUCLAS1"] = ("SPECTRUM", "PHA dataset")
        h["HDUVERS"] = ("1.2.1", "OGIP/92-007")
        h["HDUCLAS2"] = ("TOTAL" if role == "src" else "BKG", "source + background / background")
        h["HDUCLAS3"] = ("COUNT", "values in COUNTS")
        h["HDUCLAS4"] = ("TYPE:I", "one spectrum")
        _common(h, a)
        h["INSTRUME"] = (_ogip_instrument(str(a.get("instrument", ""))), "instrument")
        h["FILTER"] = (str(a.get("filter") or "NONE"), "filter")
        h["CHANTYPE"] = ("PI", "channel type")
        h["DETCHANS"] = (len(chan), "number of channels")
        h["TLMIN1"] = 0
        h["TLMAX1"] = len(chan) - 1
        h["EXPOSURE"] = (float(a["exposure"]), "s: sum over time bins of fracexp * dt")
        h["AREASCAL"] = (float(a.get("areascal", 1.0)), "area scaling")
        h["BACKSCAL"] = (backscal, "region area, sky pixels^2")
        h["CORRSCAL"] = 0.0
        h["CORRFILE"] = "NONE"
        h["BACKFILE"] = (paths["bkg"].name if role == "src" and has_bkg else "NONE", "background")
        h["RESPFILE"] = (paths["rmf"].name if "rmf" in paths else "NONE", "response")
        h["ANCRFILE"] = (paths["arf"].name if "arf" in paths else "NONE", "ancillary response")
        h["POISSERR"] = (True, "Poisson errors")
        h["SYS_ERR"] = 0.0
        h["SPECDELT"] = (int(grid.get("pi_per_channel", 5)), "PI values per channel")
        h["SPECPIX"] = (0, "channel of SPECVAL")
        h["SPECVAL"] = (0.0, "first PI of channel SPECPIX")
        h["TSTART"] = (float(a.get("tstart", 0.0)), "s (MET)")
        h["TSTOP"] = (float(a.get("tstop", 0.0)), "s (MET)")
        ebounds = fits.BinTableHDU.from_columns(
            [
                fits.Column("CHANNEL", "J", array=chan),
                fits.Column("E_MIN", "E", unit="keV", array=e_lo),
                fits.Column("E_MAX", "E", unit="keV", array=e_hi),
            ],
            name="EBOUNDS",
        )
        eh = ebounds.header
        eh["HDUCLASS"] = "OGIP"
        eh["HDUCLAS1"] = "RESPONSE"
        eh["HDUCLAS2"] = "EBOUNDS"
        eh["CHANTYPE"] = "PI"
        eh["DETCHANS"] = len(chan)
        fits.HDUList([fits.PrimaryHDU(), hdu, ebounds]).writeto(paths[role], overwrite=overwrite)
    return paths


def _ogip_instrument(instrument: str) -> str:
    """INSTRUME as SAS writes it: EPN, EMOS1, EMOS2 (other instruments unchanged)."""
    return {"PN": "EPN", "M1": "EMOS1", "M2": "EMOS2"}.get(instrument.upper(), instrument)
