"""Importing existing SAS light curves (a folder in the reference layout) into a store.

Reference layout (the NGC 5506 study's, made by aztools ``scripts/xmm_lc.py``)::

    <DIR>/<obsid>/pn/lc/<scheme>/lc_<dt:03g>__<i>.fits      epiclccorr output of band i
    <DIR>/<obsid>/pn/lc/<scheme>/lc_<dt:03g>__<i>__s.fits   raw evselect source curve
    <DIR>/<obsid>/pn/lc/<scheme>/lc_<dt:03g>__<i>__b.fits   raw evselect background curve

``i`` counts bands from 1 (the script writes ``ie + 1``; 0-based folders are read
too). Python formats ``f"{128.0:03g}"`` and ``f"{128:03g}"`` both as ``"128"``,
``1.0`` as ``"001"`` and ``0.125`` (``-t -3``) as ``"0.125"``; file names are
therefore matched by the *value* of their time-bin field, so ``lc_128.0__1.fits``
is read as well. The scheme's bands come from a build file or a preset, and a
scheme whose folder holds another number of bands than the scheme is refused.

Each (obsid, scheme) is written as one group through :class:`catalog.store.Store`
with backend ``"sas-import"``: rate, error, backv, backe, fracexp exactly as in the
corrected files (float32 values kept exactly), time at bin centres
(``TIME + (0.5 - TIMEPIXR) TIMEDEL``), counts from the raw curves where present
(NaN otherwise), and every file's path and sha256 in the provenance. A group
already imported from files with the same content is skipped.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from catalog.layout import lightcurve_dataset
from catalog.store import Store
from pipeline.extract.jobs import combine_curves
from pipeline.extract.sas.lightcurve import LightCurveFile, common_grid, read_lightcurve
from pipeline.extract.sas.outputs import curves_from_files
from pipeline.read.events import XMM_MJDREF
from pipeline.read.fitsio import file_sha256
from pipeline.read.wcs import read_sky_wcs
from pipeline.select.regions import read_regions
from schemas.build import Observation
from schemas.build import canonical_json as _canonical_json
from schemas.errors import ConfigError, InputFileError, StoreError, XlcatError
from schemas.schemes import EnergyScheme
from schemas.store_layout import FORMAT_VERSION

__all__ = ["LAYOUTS", "ImportResult", "reference_files", "import_reference"]

#: Layouts ``xlcat import`` reads.
LAYOUTS: tuple[str, ...] = ("reference",)
BACKEND = "sas-import"
_NAME = re.compile(r"^lc_(?P<dt>[^_]+)__(?P<i>\d+)(?P<kind>__s|__b)?\.fits$")
_ROLE = {None: "corrected", "__s": "source", "__b": "background"}


@dataclass(frozen=True)
class ImportResult:
    """What happened to one (obsid, scheme)."""

    obsid: str
    scheme: str
    status: str  # "written", "up to date" or "missing"
    bands: int
    detail: str


def reference_files(
    folder: Path, n_bands: int, dt: float | None
) -> tuple[float, list[dict[str, Path | None]]]:
    """The files of one scheme folder, band by band.

    Parameters
    ----------
    folder : Path
        ``<DIR>/<obsid>/pn/lc/<scheme>``.
    n_bands : int
        The scheme's number of bands.
    dt : float or None
        Time bin (s) to read; None: the only one present.

    Returns
    -------
    (float, list of dict)
        The time bin, and per band (in index order) the paths of its
        ``"corrected"``, ``"source"`` and ``"background"`` files (None when absent).

    Raises
    ------
    InputFileError
        If the folder holds no light curves, several time bins and no ``dt``, no file
        of ``dt``, band indices that are not 1..n (or 0..n-1), or another number of
        bands than the scheme.
    """
    found: dict[float, dict[int, dict[str, Path]]] = {}
    tokens: dict[float, str] = {}
    for p in sorted(folder.iterdir()):
        m = _NAME.match(p.name)
        if not m:
            continue
        try:
            value = float(m.group("dt"))
        except ValueError:
            continue
        key = next((v for v in found if math.isclose(v, value, rel_tol=1e-9)), value)
        tokens.setdefault(key, m.group("dt"))
        found.setdefault(key, {}).setdefault(int(m.group("i")), {})[_ROLE[m.group("kind")]] = p
    if not found:
        raise InputFileError(
            f"import folder {folder}: no light curve named lc_<dt>__<i>.fits (reference layout)"
        )
    if dt is None:
        if len(found) > 1:
            raise InputFileError(
                f"import folder {folder}: light curves of several time bins "
                f"({', '.join(tokens[v] for v in sorted(found))} s); choose one with --dt"
            )
        dt = next(iter(found))
    match = next((v for v in found if math.isclose(v, float(dt), rel_tol=1e-9)), None)
    if match is None:
        raise InputFileError(
            f"import folder {folder}: no light curve of time bin {dt:g} s "
            f"(expected lc_{float(dt):03g}__<i>.fits; present: "
            f"{', '.join(tokens[v] for v in sorted(found))} s)"
        )
    bands = found[match]
    corrected = sorted(i for i, roles in bands.items() if "corrected" in roles)
    name = f"lc_{tokens[match]}__<i>.fits"
    if len(corrected) != n_bands:
        raise InputFileError(
            f"import folder {folder}: the scheme has {n_bands} bands but there are "
            f"{len(corrected)} files {name} (i = {', '.join(map(str, corrected)) or 'none'}); "
            "is this the folder of that scheme?"
        )
    base = corrected[0] if corrected else 1
    if base not in (0, 1) or corrected != list(range(base, base + n_bands)):
        raise InputFileError(
            f"import folder {folder}: band indices of {name} are {corrected}; expected "
            f"1..{n_bands} (or 0..{n_bands - 1})"
        )
    out = []
    for i in corrected:
        roles = bands[i]
        out.append({r: roles.get(r) for r in ("corrected", "source", "background")})
    return float(match), out


def _regions_attr(obs: Observation | None) -> dict[str, Any]:
    if obs is None:
        return {"path": None, "text": None, "note": "not known: the light curves were imported"}
    try:
        r = read_regions(obs.regions)
        if r.needs_wcs:  # celestial shapes: converted with the event file's X/Y WCS
            sky = read_sky_wcs(obs.events)
            r = r.resolve(sky.wcs, {"events_file": sky.path, **sky.keywords})
    except XlcatError as exc:
        return {"path": str(obs.regions), "text": None, "note": f"not read: {exc}"}
    return {
        "path": r.path,
        "text": r.text,
        "src_area": r.source_area,
        "bkg_area": r.background_area,
        "area_ratio": r.area_ratio,
        "area_method": "geometric (union of shapes), sky pixels^2; from the build file, "
        "not from the imported files",
        "src_expression": r.sas_expression("source"),
        "bkg_expression": r.sas_expression("background"),
    }


def _import_group(
    folder: Path,
    obsid: str,
    scheme: EnergyScheme,
    abscorr: bool | None,
    dt: float | None,
    store: Store,
    observation: Observation | None,
    force: bool,
) -> ImportResult:
    dt, files = reference_files(folder, len(scheme.bands), dt)
    hashes = [{r: (file_sha256(p) if p else None) for r, p in roles.items()} for roles in files]
    input_hash = hashlib.sha256(
        _canonical_json(
            {
                "format_version": FORMAT_VERSION,
                "backend": BACKEND,
                "scheme": scheme.canonical,
                "dt": dt,
                "files": hashes,
                "abscorr": abscorr,
            }
        ).encode()
    ).hexdigest()
    if (
        not force
        and store.has_group(obsid, scheme.name)
        and store.group_attrs(obsid, scheme.name).get("input_hash") == input_hash
    ):
        return ImportResult(obsid, scheme.name, "up to date", len(scheme.bands), str(folder))
    read: list[dict[str, LightCurveFile | None]] = [
        {r: (read_lightcurve(p) if p else None) for r, p in roles.items()} for roles in files
    ]
    corrected: list[LightCurveFile] = []
    for r in read:
        lc = r["corrected"]
        if lc is None:  # reference_files lists only the bands that have a corrected curve
            raise InputFileError(f"import folder {folder}: a band has no corrected light curve")
        corrected.append(lc)
    grid = common_grid(corrected)
    parts, records = [], []
    for band, files_k, hashes_k, lcs, corrected_k in zip(
        scheme.bands, files, hashes, read, corrected, strict=True
    ):
        curves, facts = curves_from_files(
            corrected_k,
            lcs["source"],
            lcs["background"],
            grid,
            band,
            strict=False,
        )
        parts.append(curves)
        records.append(
            {
                "backend": BACKEND,
                "band": {"pi_lo": band.pi_lo, "pi_hi": band.pi_hi},
                "files": {
                    r: ({"path": str(p), "sha256": hashes_k[r]} if p else None)
                    for r, p in files_k.items()
                },
                "outputs": facts,
                "counts": "; ".join(f"{k}: {v}" for k, v in facts["counts"].items()),
            }
        )
    curves = combine_curves(parts)
    first = corrected[0]
    kw = first.keywords
    src_gtis = first.gtis.get("SRC_GTIS")
    gti = src_gtis if src_gtis is not None else np.array([[grid.t0, grid.stop]])
    attrs = {
        "obsid": obsid,
        "scheme": scheme.name,
        "scheme_hash": scheme.hash,
        "scheme_spec": scheme.spec,
        "scheme_definition": scheme.canonical,
        "pi_edges": list(scheme.resolved_pi_edges),
        "dt": grid.dt,
        "tstart": grid.t0,
        "tstop": grid.stop,
        "MJDREF": first.mjdref if first.mjdref is not None else XMM_MJDREF,
        "TIMESYS": str(kw.get("TIMESYS", "TT")),
        "TIMEREF": str(kw.get("TIMEREF", "LOCAL")),
        "gti": np.asarray(gti).tolist(),
        "regions": _regions_attr(observation),
        "backend": BACKEND,
        "backend_info": {"backend": BACKEND, "layout": "reference", "applies_abscorr": None},
        "abscorr": bool(abscorr),
        "abscorr_requested": abscorr,
        "input_hash": input_hash,
        "inputs": {
            "directory": str(folder),
            "files": [
                {"band": k, "role": r, "path": str(p), "sha256": hashes[k][r]}
                for k, roles in enumerate(files)
                for r, p in roles.items()
                if p is not None
            ],
        },
        "provenance": {
            "imported_from": str(folder),
            "layout": "reference: lc_<dt:03g>__<i>.fits (epiclccorr), __s / __b (raw evselect)",
            "abscorr_source": "the scheme's abscorr option (the files do not record it)",
            "gti_source": "SRC_GTIS of band 0's file"
            if src_gtis is not None
            else "no SRC_GTIS extension: the grid's span",
            "grid": {
                "t0": grid.t0,
                "dt": grid.dt,
                "n_bins": grid.n_bins,
                "rule": "earliest row's bin start to the latest row's bin end",
            },
        },
        "band_provenance": records,
    }
    ds = lightcurve_dataset(
        time=grid.centres,
        bands=curves.bands,
        variables={
            k: getattr(curves, k)
            for k in ("rate", "error", "src_counts", "bkg_counts", "backv", "backe", "fracexp")
        },
        attrs=attrs,
    )
    store.write_group(obsid, scheme.name, ds)
    return ImportResult(obsid, scheme.name, "written", len(scheme.bands), str(folder))


def import_reference(
    directory: str | os.PathLike[str],
    schemes: dict[str, EnergyScheme],
    abscorr: dict[str, bool | None],
    store: str | os.PathLike[str],
    *,
    obsids: list[str] | None = None,
    dt: float | None = None,
    observations: dict[str, Observation] | None = None,
    force: bool = False,
) -> list[ImportResult]:
    """Import a reference-layout folder of SAS light curves into a store.

    Parameters
    ----------
    directory : str or os.PathLike
        Holds ``<obsid>/pn/lc/<scheme>/`` folders.
    schemes : dict
        Scheme name to its (resolved) EnergyScheme, for every scheme to import.
    abscorr : dict
        Scheme name to its ``abscorr`` option (recorded; the files do not say).
    store : str or os.PathLike
        The store (created if absent).
    obsids : list of str, optional
        Only these observations (each must have every scheme's folder); default:
        every 10-digit folder of ``directory`` that has the scheme's folder.
    dt : float, optional
        Time bin in seconds; default: the only one present in each folder.
    observations : dict, optional
        Obsid to the build file's Observation, to record its regions.
    force : bool
        Re-import groups whose files are unchanged.

    Returns
    -------
    list of ImportResult

    Raises
    ------
    ConfigError
        If a scheme is an unresolved equal-count scheme.
    InputFileError
        If the folder is missing, a requested obsid lacks a scheme folder, or nothing
        matches, or a folder disagrees with its scheme (see :func:`reference_files`).
    StoreError
        If the store holds another scheme under one of these names.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputFileError(f"import folder {root}: not found")
    for name, scheme in schemes.items():
        if not scheme.is_resolved:
            raise ConfigError(
                f"scheme {name}: an equal-count scheme whose edges come from data; to import "
                "light curves give its edges explicitly (unit and edges)"
            )
    target = Store.create(store)
    for obsid, name in target.groups():
        if name in schemes:
            stored = target.group_attrs(obsid, name).get("scheme_hash")
            if stored != schemes[name].hash:
                raise StoreError(
                    f"store {target.path}: scheme '{name}' of group {obsid}/{name} (hash {stored}) "
                    f"differs from the one being imported (hash {schemes[name].hash}); a name "
                    "means one definition: import into another store"
                )
    explicit = obsids is not None
    candidates = (
        sorted(obsids)
        if obsids is not None
        else sorted(
            p.name for p in root.iterdir() if p.is_dir() and re.fullmatch(r"\d{10}", p.name)
        )
    )
    results = []
    for obsid in candidates:
        for name, scheme in schemes.items():
            folder = root / obsid / "pn" / "lc" / name
            if not folder.is_dir():
                if explicit:
                    raise InputFileError(
                        f"import folder {root}: observation {obsid} has no folder "
                        f"{obsid}/pn/lc/{name}"
                    )
                results.append(ImportResult(obsid, name, "missing", 0, str(folder)))
                continue
            obs = (observations or {}).get(obsid)
            results.append(
                _import_group(folder, obsid, scheme, abscorr.get(name), dt, target, obs, force)
            )
    if not any(r.status != "missing" for r in results):
        raise InputFileError(
            f"import folder {root}: no <obsid>/pn/lc/<scheme> folder for schemes "
            f"{', '.join(schemes)} (reference layout)"
        )
    return results
