"""The layout of an xlcat Zarr store (format version 1). ``STORE_FORMAT.md`` describes it in prose.

A store is a Zarr v3 hierarchy. The root group's attributes say what it is::

    <store>/zarr.json                      attrs: format = "xlcat-lightcurves", format_version = 1
    <store>/<obsid>/zarr.json              a plain group per observation (10-digit obsid)
    <store>/<obsid>/<scheme>/              one xarray Dataset per (obsid, energy scheme)

Each (obsid, scheme) group has dims ``(band, time)``.

Per-band provenance: a group made by a backend that runs external programs (SAS) has
the attribute ``band_provenance``, a list with one record (dict) per band. Its
command lines and logs are kept compressed, as ``{"encoding": "json+zlib+base64",
"data": ...}`` (:data:`TEXT_RECORD_ENCODING`: JSON text, zlib-compressed, base64);
``catalog.Catalog.provenance(obsid, scheme, band)`` returns it decoded. The SAS
backend's record::

    {"backend": "sas", "band": {"pi_lo", "pi_hi"}, "abscorr": bool,
     "task_key": sha256 of the task's inputs, "cache": "miss" | "hit",
     "sas": {"sas_dir", "sas_version", "ccf", "ccf_sha256", ...},
     "outputs": {"corrected" | "source" | "background": {TIMEPIXR, TIMEDEL, keywords,
                 SRC_GTIS/BKG_GTIS, rows dropped or missing}},
     "counts": how src_counts/bkg_counts were recovered,
     "commands": <compressed list of {"name", "argv", "command_line", "returncode",
                  "timed_out", "seconds", "stdout", "stderr"}>}

``xlcat import`` (backend ``"sas-import"``) records per band the files read, with
their sha256, and the same ``outputs`` facts.

Derived products (timing results) live beside the observations, in a folder that is
not a 10-digit obsid, so the group listing never sees them::

    <store>/products/zarr.json             a plain group
    <store>/products/<name>/               one xarray Dataset per saved product

Each product's attributes are :data:`PRODUCT_ATTRS` (identity, written on save) plus
those of :data:`PRODUCT_INPUT_ATTRS` its computation recorded (present for products
computed from ``Catalog.segments``), plus the product's own parameters.
"""

from __future__ import annotations

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DATA_VARS",
    "BAND_COORDS",
    "UNITS",
    "REQUIRED_GROUP_ATTRS",
    "TEXT_RECORD_ENCODING",
    "PRODUCTS_GROUP",
    "PRODUCT_FORMAT_NAME",
    "PRODUCT_ATTRS",
    "PRODUCT_INPUT_ATTRS",
]

#: How compressed text records (command lines, logs) are encoded in group attributes.
TEXT_RECORD_ENCODING = "json+zlib+base64"

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


#: Folder of the derived products inside a store; product names match
#: ``[A-Za-z0-9][A-Za-z0-9_.-]{0,99}``.
PRODUCTS_GROUP = "products"
PRODUCT_FORMAT_NAME = "xlcat-product"

#: Attributes written on every saved product.
PRODUCT_ATTRS: dict[str, str] = {
    "format": 'always "xlcat-product"',
    "product_name": "the name under products/",
    "product": "what it is: segments, power spectrum, cross spectrum, lag-frequency, lag-energy",
    "created": "UTC time the product was saved",
    "software": "versions of Python, xlcat and the numerical libraries",
}

#: Input attributes of a product computed from ``Catalog.segments``.
PRODUCT_INPUT_ATTRS: dict[str, str] = {
    "store": "path of the store the light curves were read from",
    "scheme": "energy scheme name",
    "scheme_hash": "the scheme's hash (as the groups' scheme_hash)",
    "obsids": "observations read",
    "input_hash": "obsid -> input_hash of each (obsid, scheme) group read",
    "obsids_with_segments": "observations that gave at least one segment",
    "obsids_used": "observations of the segments the product was computed from",
    "min_fracexp": "minimum fractional exposure of a good bin (every band)",
    "fill_gaps": "longest gap filled by interpolation with noise, s",
    "min_length": "shortest segment kept, s",
    "segment_length": "equal segment length, s (null: whole continuous stretches)",
    "seed": "seed of the gap-fill noise",
}
