"""The layout of an xlcat Zarr store (format version 1). ``STORE_FORMAT.md`` describes it in prose.

A store is a Zarr v3 hierarchy. The root group's attributes say what it is::

    <store>/zarr.json                      attrs: format = "xlcat-lightcurves", format_version = 1
    <store>/<obsid>/zarr.json              a plain group per observation (10-digit obsid)
    <store>/<obsid>/<scheme>/              one xarray Dataset per (obsid, energy scheme)

Each (obsid, scheme) group has dims ``(band, time)``.
"""

from __future__ import annotations

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DATA_VARS",
    "BAND_COORDS",
    "UNITS",
    "REQUIRED_GROUP_ATTRS",
]

FORMAT_NAME = "xlcat-lightcurves"
FORMAT_VERSION = 1

#: Data variables of every (obsid, scheme) group, dims (band, time), float64.
DATA_VARS: dict[str, str] = {
    "rate": "net count rate: src/(dt f) - (A_src/A_bkg) bkg/(dt f); NaN where fracexp = 0",
    "error": "1-sigma error of rate: sqrt(src + (A_src/A_bkg)^2 bkg)/(dt f)",
    "src_counts": "events in the source region within the GTIs (NaN where not recoverable)",
    "bkg_counts": "events in the background region within the GTIs (NaN where not recoverable)",
    "backv": "background rate scaled to the source area: (A_src/A_bkg) bkg/(dt f)",
    "backe": "1-sigma error of backv",
    "fracexp": "fraction of the bin inside the GTIs, times the live fraction",
}

#: Band coordinates (dim band). Bands select pi_lo <= PI < pi_hi; e_lo = pi_lo/1000 keV.
BAND_COORDS: dict[str, str] = {
    "e_lo": "keV",
    "e_hi": "keV",
    "pi_lo": "PI (eV), inclusive",
    "pi_hi": "PI (eV), exclusive",
}

UNITS: dict[str, str] = {
    "rate": "count/s",
    "error": "count/s",
    "backv": "count/s",
    "backe": "count/s",
    "src_counts": "count",
    "bkg_counts": "count",
    "fracexp": "",
    "time": "s",
}

#: Attributes every (obsid, scheme) group carries.
REQUIRED_GROUP_ATTRS: tuple[str, ...] = (
    "format",
    "format_version",
    "obsid",
    "scheme",
    "scheme_hash",
    "scheme_definition",
    "dt",
    "tstart",
    "tstop",
    "MJDREF",
    "TIMESYS",
    "TIMEREF",
    "TIMEPIXR",
    "gti",
    "exposure",
    "bands",
    "regions",
    "backend",
    "abscorr",
    "input_hash",
    "inputs",
    "software",
    "provenance",
    "created",
)
