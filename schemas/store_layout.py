"""The layout of an xlcat Zarr store (format version 3). ``STORE_FORMAT.md`` describes it in prose.

A store is a Zarr v3 hierarchy with one group per *exposure* (an instrument's
exposure within an observation: EPIC-pn, MOS1 and MOS2 of one obsid sit side by
side)::

    <store>/zarr.json                      attrs: format = "xlcat-lightcurves", format_version = 3
    <store>/<obsid>/zarr.json              a plain group per observation (10-digit obsid)
    <store>/<obsid>/<expid>/               one xarray Dataset per exposure, e.g. PNS003, M1S001, PN
    <store>/responses/<obsid>/<expid>/     the exposure's RMF and ARF (FITS), if a backend made them

Each exposure group holds every energy scheme built for it, concatenated along one
``band`` dimension with a ``scheme`` coordinate, so the number of files of a group
does not depend on the number of schemes, and one exposure's bands are read together
(the catalogue's access pattern). Dims ``(band, time)``; one chunk per array (a
shard with inner time chunks for very long grids); every chunk carries a CRC32C
checksum (the Zarr v3 ``crc32c`` codec), and the group attribute ``manifest`` lists
every file of the group with its size and CRC-32, so a missing chunk or array
metadata is detected (the group is *damaged*) instead of read as fill values.

Format 3 adds the exposure's source and background PI spectra on a ``channel``
dimension (:data:`SPECTRUM_VARS`, :data:`CHANNEL_COORDS`, the group attribute
``spectrum`` with the keys of :data:`SPECTRUM_ATTRS`).

Per-band provenance: a scheme made by a backend that runs external programs (SAS)
has the record ``schemes[<name>]["band_provenance"]``, one dict per band. Its
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
    "GROUP_COORDS",
    "UNITS",
    "SPECTRUM_VARS",
    "CHANNEL_COORDS",
    "SPECTRUM_ATTRS",
    "RESPONSES_DIR",
    "REQUIRED_GROUP_ATTRS",
    "SCHEME_ATTRS",
    "TEXT_RECORD_ENCODING",
    "PRODUCTS_GROUP",
    "PRODUCT_FORMAT_NAME",
    "PRODUCT_ATTRS",
    "PRODUCT_INPUT_ATTRS",
]

#: How compressed text records (command lines, logs) are encoded in group attributes.
TEXT_RECORD_ENCODING = "json+zlib+base64"

FORMAT_NAME = "xlcat-lightcurves"
FORMAT_VERSION = 3

#: Data variables of every exposure group, dims (band, time), float64.
DATA_VARS: dict[str, str] = {
    "rate": "net count rate: src/(dt f) - (A_src/A_bkg) bkg/(dt f); NaN where fracexp = 0",
    "error": "1-sigma error of rate: sqrt(src + (A_src/A_bkg)^2 bkg)/(dt f)",
    "src_counts": "events in the source region within the GTIs (NaN where not recoverable)",
    "bkg_counts": "events in the background region within the GTIs (NaN where not recoverable)",
    "backv": "background rate scaled to the source area: (A_src/A_bkg) bkg/(dt f)",
    "backe": "1-sigma error of backv",
    "fracexp": (
        "effective exposure over the bin width: the frame steps (EXPOSUnn) of the source "
        "CCD(s) within their GTIs, else GTI overlap x LIVETInn/ONTIMEnn"
    ),
}

#: Band coordinates of a scheme's view (``Catalog.lightcurves``): e_lo = pi_lo/1000 keV.
BAND_COORDS: dict[str, str] = {
    "e_lo": "keV",
    "e_hi": "keV",
    "pi_lo": "PI (eV), inclusive",
    "pi_hi": "PI (eV), exclusive",
}

#: Coordinates stored in an exposure group (dim band unless noted).
GROUP_COORDS: dict[str, str] = {
    "time": "bin centre, mission elapsed time, s (dim time; TIMEPIXR = 0.5)",
    "scheme": "energy scheme of the band",
    "scheme_band": "index of the band within its scheme, 0..n-1 in energy order",
    "pi_lo": "PI (eV), inclusive: the band selects pi_lo <= PI < pi_hi",
    "pi_hi": "PI (eV), exclusive",
}

#: Spectra of an exposure group (format 3), dim channel, int64 counts. ``spec_bkg`` is
#: absent for a source-only exposure (no background region).
SPECTRUM_VARS: dict[str, str] = {
    "spec_src": "source-region events per PI channel inside the GTIs (the light curves' events)",
    "spec_bkg": "background-region events per PI channel inside the GTIs",
}

#: Coordinates of the channel dimension (format 3).
CHANNEL_COORDS: dict[str, str] = {
    "channel": "spectral channel number, 0..n-1 (OGIP CHANNEL, CHANTYPE = PI)",
    "chan_pi_lo": "first PI of the channel (inclusive): chan_pi_lo <= PI < chan_pi_hi",
    "chan_pi_hi": "PI just above the channel (exclusive)",
    "chan_e_lo": "lower energy edge, keV: offset_kev + kev_per_pi * chan_pi_lo",
    "chan_e_hi": "upper energy edge, keV: offset_kev + kev_per_pi * chan_pi_hi",
}

#: Keys of the group attribute ``spectrum`` (null when the group holds no spectra).
SPECTRUM_ATTRS: dict[str, str] = {
    "exposure": "s: the source's live exposure in the GTIs, sum over bins of fracexp * dt",
    "exposure_rule": "how exposure was computed",
    "src_backscal": "source region area, sky pixels^2 (the BACKSCAL SAS backscale writes)",
    "bkg_backscal": "background region area, sky pixels^2; null for a source-only exposure",
    "backscal_ratio": "src_backscal / bkg_backscal; null for a source-only exposure",
    "areascal": "AREASCAL, 1",
    "source_only": "true when there is no background region (then no spec_bkg)",
    "channels": "the channel grid: instrument, pi_per_channel, n_channels, specchannelmin/max, "
    "offset_kev, kev_per_pi, rule",
    "src_total": "sum of spec_src",
    "bkg_total": "sum of spec_bkg (null for a source-only exposure)",
    "backend": "the backend that counted the spectra",
    "counts_rule": "which events the spectra hold",
    "responses": "RMF and ARF files relative to the store root ({rmf, arf}), or null",
    "filter": "the event file's FILTER keyword (null when absent)",
    "created": "UTC time the spectra were made",
}

#: Folder (in the store root) of the response files a backend made:
#: ``responses/<obsid>/<expid>/<obsid>_<expid>.rmf`` and ``.arf``.
RESPONSES_DIR = "responses"

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

#: Attributes every exposure group carries.
REQUIRED_GROUP_ATTRS: tuple[str, ...] = (
    "format",
    "format_version",
    "obsid",
    "expid",
    "instrument",
    "dt",
    "tstart",
    "tstop",
    "MJDREF",
    "TIMESYS",
    "TIMEREF",
    "TIMEPIXR",
    "inputs",
    "fingerprint_hash",
    "regions",
    "backends",
    "schemes",
    "spectrum",
    "software",
    "created",
    "manifest",
)

#: Attributes of one scheme inside an exposure group (``schemes[<name>]``).
SCHEME_ATTRS: dict[str, str] = {
    "scheme_hash": "first 16 hex digits of the SHA-256 of the scheme's canonical definition",
    "scheme_definition": "the canonical definition (PI edges, or the equal-count rule)",
    "scheme_spec": "the scheme as declared in the build file or preset",
    "pi_edges": "the scheme's PI edges as used",
    "input_hash": "SHA-256 over everything that determines this scheme's numbers",
    "fingerprint_hash": "the exposure's fingerprint_hash when the scheme was made",
    "backend": "the backend that made the numbers (native, sas, sas-import, or a plug-in)",
    "abscorr": "whether absolute corrections were applied",
    "abscorr_requested": "the scheme's abscorr option",
    "exposure": "s: the largest over bands of sum(fracexp) * dt",
    "bands": "per band: band, pi_lo, pi_hi, e_lo, e_hi, exposure",
    "created": "UTC time the scheme's numbers were made",
}

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
    "input_hash": "group (obsid or obsid/exposure) -> input_hash of the scheme in each group read",
    "obsids_with_segments": "observations that gave at least one segment",
    "obsids_used": "observations of the segments the product was computed from",
    "min_fracexp": "minimum fractional exposure of a good bin (every band)",
    "fill_gaps": "longest gap filled by interpolation with noise, s",
    "min_length": "shortest segment kept, s",
    "segment_length": "equal segment length, s (null: whole continuous stretches)",
    "seed": "seed of the gap-fill noise",
}
