"""Importing existing SAS light curves into a store: two folder layouts.

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

Folder layout (one exposure, one source, several time bins; EXOD's
``scripts/lightcurve.sh`` writes it, e.g. ``lcurve_100_M1_1/`` of observation
0001730201)::

    <DIR>/<name>_lc_<dt>_src.lc      raw evselect source curve
    <DIR>/<name>_lc_<dt>_bgd.lc      raw evselect background curve
    <DIR>/<name>_lccorr_<dt>.lc      epiclccorr output (optional)
    <DIR>/<name>_region.txt          the source and background selections

The patterns are settings (:data:`FOLDER_PATTERNS`; ``{name}`` any text, ``{dt}`` the
time bin as a number). The obsid comes from the curves' OBS_ID keyword (or the
caller), the band from the caller's scheme or else the curves' PI selection
(:func:`pipeline.extract.sas.lightcurve.pi_selection`).

Each (obsid, scheme) is written into its exposure's group (named from the files'
INSTRUME and EXPIDSTR keywords, else ``PN``) through :class:`catalog.store.Store`
with backend ``"sas-import"``: rate, error, backv, backe, fracexp exactly as in the
corrected files (float32 values kept exactly; NaN when there is no corrected curve),
time at bin centres (TIME is the centre unless a TIMEPIXR says otherwise,
docs/semantics.md §17.1) on the grid of :func:`~pipeline.extract.sas.lightcurve.common_grid`
(``TSTART + (k + 1/2) TIMEDEL`` for SAS files: the native grid of the same event
list), counts from the raw curves where present (``RATE x TIMEDEL``, exact integers;
NaN otherwise), and every file's path and sha256 in the provenance. A group already
imported from files with the same content is skipped.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from catalog.layout import SchemePart
from catalog.store import Store
from pipeline.build.import_layouts import FOLDER_PATTERNS, LAYOUTS, PATTERN_OPTIONS
from pipeline.extract.jobs import ObservationSummary, combine_curves
from pipeline.extract.sas.lightcurve import (
    LightCurveFile,
    common_grid,
    pi_selection,
    read_lightcurve,
)
from pipeline.extract.sas.outputs import curves_from_files
from pipeline.read.events import XMM_MJDREF
from pipeline.read.fitsio import file_sha256
from pipeline.read.wcs import read_sky_wcs
from pipeline.select.regions import parse_regions, read_regions
from schemas.build import Observation
from schemas.build import canonical_json as _canonical_json
from schemas.errors import ConfigError, InputFileError, StoreError, XlcatError
from schemas.schemes import EnergyScheme, scheme_from_spec
from schemas.store_layout import DATA_VARS, FORMAT_VERSION

__all__ = [
    "LAYOUTS",
    "FOLDER_PATTERNS",
    "PATTERN_OPTIONS",
    "ImportResult",
    "FolderFiles",
    "reference_files",
    "folder_files",
    "import_reference",
    "import_folder",
]

BACKEND = "sas-import"
_NAME = re.compile(r"^lc_(?P<dt>[^_]+)__(?P<i>\d+)(?P<kind>__s|__b)?\.fits$")
_ROLE = {None: "corrected", "__s": "source", "__b": "background"}
_CURVE_ROLES = ("corrected", "source", "background")


@dataclass(frozen=True)
class ImportResult:
    """What happened to one (obsid, scheme)."""

    obsid: str
    scheme: str
    status: str  # "written", "up to date" or "missing"
    bands: int
    detail: str
    notes: tuple[str, ...] = ()


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
    return r.describe("from the build file, not from the imported files")


_SAS_SHAPE = re.compile(r"\(\s*X\s*,\s*Y\s*\)\s+in\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)
_SAS_SHAPES = ("circle", "annulus", "ellipse", "box")


def _sas_region_file(path: Path) -> dict[str, Any]:
    """Facts of a ``<name>_region.txt``: ``Source = (X,Y) in CIRCLE(x,y,r)`` lines.

    A line ``Source = ...`` or ``Background = ...`` holds a SAS selection of OR-ed
    ``(X,Y) in SHAPE(...)`` terms (physical pixels; a SAS box has half sides); other
    lines (``Total time = 98``) are ignored. The shapes are turned into a ds9 text
    and parsed as a region file (docs/semantics.md §2) for the areas; a line that
    holds anything else is kept as text only.
    """
    text = path.read_text(errors="replace")
    facts: dict[str, Any] = {"path": str(path), "sha256": file_sha256(path), "text": text}
    ds9 = ["physical"]
    for line in text.splitlines():
        label, sep, expr = line.partition("=")
        role = label.strip().lower()
        if not sep or role not in ("source", "background"):
            continue
        facts[f"{role}_selection"] = expr.strip()
        rest = _SAS_SHAPE.sub("", expr).replace("||", "").replace("(", "").replace(")", "")
        shapes = _SAS_SHAPE.findall(expr)
        if rest.strip() or not shapes or any(s.lower() not in _SAS_SHAPES for s, _ in shapes):
            facts["note"] = f"{role} selection {expr.strip()!r} is not only (X,Y) shapes"
            return facts
        for name, args in shapes:
            values = [v.strip() for v in args.split(",")]
            if name.lower() == "box" and len(values) == 5:  # SAS half sides, ds9 full sides
                values[2:4] = [repr(2 * float(v)) for v in values[2:4]]
            tag = " # background" if role == "background" else ""
            ds9.append(f"{name.lower()}({','.join(values)}){tag}")
    try:
        r = parse_regions("\n".join(ds9) + "\n", str(path))
    except InputFileError as exc:
        facts["note"] = f"shapes not read: {exc}"
        return facts
    facts.update(r.describe(f"from {path.name}"))
    facts["text"], facts["ds9_text"] = text, r.text
    return facts


def _read_files(files: list[dict[str, Path | None]]) -> list[dict[str, LightCurveFile | None]]:
    return [{r: (read_lightcurve(p) if p else None) for r, p in roles.items()} for roles in files]


def _import_group(
    folder: Path,
    obsid: str,
    scheme: EnergyScheme,
    abscorr: bool | None,
    dt: float,
    files: list[dict[str, Path | None]],
    store: Store,
    *,
    layout: str,
    layout_rule: str,
    regions: dict[str, Any],
    extra_inputs: dict[str, Path],
    notes: tuple[str, ...],
    force: bool,
) -> ImportResult:
    """Read one (obsid, scheme)'s curves onto one grid and write the group (both layouts).

    ``files`` holds, per band in the scheme's order, the paths of its ``corrected``,
    ``source`` and ``background`` curves (None when absent). The group is written by
    the one :meth:`catalog.store.Store.write_group` call of the importer.
    """
    hashes = [{r: (file_sha256(p) if p else None) for r, p in roles.items()} for roles in files]
    extra_hashes = {k: file_sha256(p) for k, p in extra_inputs.items()}
    input_hash = hashlib.sha256(
        _canonical_json(
            {
                "format_version": FORMAT_VERSION,
                "backend": BACKEND,
                "layout": layout,
                "scheme": scheme.canonical,
                "dt": dt,
                "files": hashes,
                "extra": extra_hashes,
                "abscorr": abscorr,
            }
        ).encode()
    ).hexdigest()
    with store.lock():
        store.clean_staging()
        expid = _expid_of(files)
        fingerprint = {
            "format_version": FORMAT_VERSION,
            "backend": BACKEND,
            "obsid": obsid,
            "expid": expid,
            "dt": dt,
        }
        fp_hash = hashlib.sha256(_canonical_json(fingerprint).encode()).hexdigest()
        if store.has_group(obsid, expid):
            try:
                group: dict[str, Any] | None = store.group_attrs(obsid, expid)
            except StoreError:
                group = None
            if group is not None and group.get("fingerprint_hash") != fp_hash:
                raise StoreError(
                    f"store {store.path}: group {obsid}/{expid} holds light curves made from "
                    "other inputs (an event-file build, or another time bin); import into another "
                    "store"
                )
            if (
                group is not None
                and not force
                and store.state(obsid, expid).ok
                and group["schemes"].get(scheme.name, {}).get("input_hash") == input_hash
            ):
                return ImportResult(
                    obsid, scheme.name, "up to date", len(scheme.bands), str(folder), notes
                )
        read = _read_files(files)
        # the corrected curves make the grid (raw curves off it only lose their counts), the
        # raw ones when there is none; the bin is evselect's TIMEDEL, the timebinsize asked
        # for, when it agrees (epiclccorr writes 2.60399999999948 for 2.604)
        corrected = [lc for r in read if (lc := r["corrected"])]
        raws = [lc for r in read for role in ("source", "background") if (lc := r[role])]
        on = corrected or raws
        dt_raw = raws[0].timedel if raws else None
        same = dt_raw is not None and math.isclose(dt_raw, on[0].timedel, rel_tol=1e-9)
        grid, grid_rule = common_grid(on, dt=dt_raw if same else None)
        parts, records = [], []
        for band, files_k, hashes_k, lcs in zip(scheme.bands, files, hashes, read, strict=True):
            curves, facts = curves_from_files(
                lcs["corrected"], lcs["source"], lcs["background"], grid, band, strict=False
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
        first = next(lc for r in read for role in _CURVE_ROLES if (lc := r[role]))
        kw = first.keywords
        corrected0 = read[0]["corrected"]
        src_gtis = corrected0.gtis.get("SRC_GTIS") if corrected0 is not None else None
        gti = src_gtis if src_gtis is not None else np.array([[grid.t0, grid.stop]])
        scheme_attrs = {
            "scheme_hash": scheme.hash,
            "scheme_spec": scheme.spec,
            "scheme_definition": scheme.canonical,
            "pi_edges": list(scheme.resolved_pi_edges),
            "input_hash": input_hash,
            "fingerprint_hash": fp_hash,
            "backend": BACKEND,
            "abscorr": bool(abscorr),
            "abscorr_requested": abscorr,
            "reference": None,
            "band_provenance": records,
            "inputs": {
                "directory": str(folder),
                "files": [
                    {"band": k, "role": r, "path": str(p), "sha256": hashes[k][r]}
                    for k, roles in enumerate(files)
                    for r, p in roles.items()
                    if p is not None
                ]
                + [
                    {"band": None, "role": k, "path": str(p), "sha256": extra_hashes[k]}
                    for k, p in extra_inputs.items()
                ],
            },
        }
        attrs = {
            "obsid": obsid,
            "expid": expid,
            "instrument": expid[:2],
            "fingerprint_hash": fp_hash,
            "inputs": {"fingerprint": fingerprint, "files": [], "imported_from": str(folder)},
            "regions": regions,
        }
        summary = ObservationSummary(
            obsid=obsid,
            t0=grid.t0,
            dt=grid.dt,
            n_bins=grid.n_bins,
            gti=np.asarray(gti, dtype=np.float64).reshape(-1, 2),
            mjdref=first.mjdref if first.mjdref is not None else XMM_MJDREF,
            timesys=str(kw.get("TIMESYS", "TT")),
            timeref=str(kw.get("TIMEREF", "LOCAL")),
            provenance={
                "imported_from": str(folder),
                "layout": layout_rule,
                "abscorr_source": "the scheme's abscorr option (the files do not record it)",
                "gti_source": "SRC_GTIS of band 0's corrected curve"
                if src_gtis is not None
                else "no corrected curve with SRC_GTIS: the grid's span (the raw curves' "
                "per-CCD GTI tables are listed in band_provenance)",
                "grid": {"t0": grid.t0, "dt": grid.dt, "n_bins": grid.n_bins, "rule": grid_rule},
                "notes": list(notes),
            },
        )
        part = SchemePart(
            scheme.name, curves.bands, {k: getattr(curves, k) for k in DATA_VARS}, scheme_attrs
        )
        from pipeline.build.graph import commit_group

        commit_group(
            str(store.path),
            attrs,
            {BACKEND: summary},
            {BACKEND: {"backend": BACKEND, "layout": layout, "applies_abscorr": None}},
            [part],
        )
        return ImportResult(obsid, scheme.name, "written", len(scheme.bands), str(folder), notes)


def _check_schemes(target: Store, schemes: dict[str, EnergyScheme]) -> None:
    for obsid, expid in target.groups():
        try:
            stored_schemes = target.group_attrs(obsid, expid)["schemes"]
        except StoreError:
            continue
        for name, rec in stored_schemes.items():
            stored = rec.get("scheme_hash")
            if name in schemes and stored != schemes[name].hash:
                raise StoreError(
                    f"store {target.path}: scheme '{name}' of group {obsid}/{expid} (hash "
                    f"{stored}) differs from the one being imported (hash {schemes[name].hash}); "
                    "a name means one definition: import into another store"
                )


def _expid_of(files: list[dict[str, Path | None]]) -> str:
    """The exposure the files belong to: INSTRUME + EXPIDSTR of the first file, else PN.

    The key is :func:`pipeline.read.events.exposure_key`'s, as for event files.

    Raises
    ------
    InputFileError
        If INSTRUME names another camera than EPN, EMOS1 or EMOS2.
    """
    from astropy.io import fits

    from pipeline.read.events import epic_identity

    first = next((p for roles in files for p in roles.values() if p is not None), None)
    if first is None:
        return "PN"
    try:
        headers = [fits.getheader(first, 0), fits.getheader(first, 1)]
    except (OSError, IndexError):
        return "PN"
    keywords = {k: str(v) for h in headers for k, v in h.items() if isinstance(v, str) and k}
    return epic_identity(keywords, f"light-curve file {first}", imaging_only=False).expid


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
    _check_schemes(target, schemes)
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
            band_dt, files = reference_files(folder, len(scheme.bands), dt)
            results.append(
                _import_group(
                    folder,
                    obsid,
                    scheme,
                    abscorr.get(name),
                    band_dt,
                    files,
                    target,
                    layout="reference",
                    layout_rule="reference: lc_<dt:03g>__<i>.fits (epiclccorr), "
                    "__s / __b (raw evselect)",
                    regions=_regions_attr(obs),
                    extra_inputs={},
                    notes=(),
                    force=force,
                )
            )
    if not any(r.status != "missing" for r in results):
        raise InputFileError(
            f"import folder {root}: no <obsid>/pn/lc/<scheme> folder for schemes "
            f"{', '.join(schemes)} (reference layout)"
        )
    return results


@dataclass(frozen=True)
class FolderFiles:
    """The files of one time bin of a folder-layout folder (:func:`folder_files`).

    Attributes
    ----------
    name : str
        What ``{name}`` matched (e.g. ``J173442-323451``).
    dt : float
        The time bin the file names give, seconds.
    token : str
        The time bin as written in the names (``2.604``).
    curves : dict
        ``"corrected"``, ``"source"``, ``"background"`` to their path (None when absent).
    regions : Path or None
        The region file, when present.
    patterns : dict
        The patterns used.
    """

    name: str
    dt: float
    token: str
    curves: dict[str, Path | None]
    regions: Path | None
    patterns: dict[str, str]


_DT_RE = r"(?P<dt>[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"


def _pattern_regex(pattern: str, role: str) -> re.Pattern[str]:
    where = f"{PATTERN_OPTIONS[role]} {pattern!r}"
    if "/" in pattern or os.sep in pattern:
        raise ConfigError(f"{where}: a file-name pattern, without folders")
    if role != "regions" and pattern.count("{dt}") != 1:
        raise ConfigError(f"{where}: must hold {{dt}} (the time bin) once")
    if pattern.count("{name}") > 1 or pattern.count("{dt}") > 1:
        raise ConfigError(f"{where}: {{name}} and {{dt}} may appear once each")
    out = ""
    for part in re.split(r"(\{name\}|\{dt\})", pattern):
        if part == "{name}":
            out += r"(?P<name>.+?)"
        elif part == "{dt}":
            out += _DT_RE
        else:
            if "{" in part or "}" in part:
                raise ConfigError(f"{where}: only {{name}} and {{dt}} may be in braces")
            out += re.escape(part)
    return re.compile(f"^{out}$")


def folder_files(
    folder: Path, patterns: dict[str, str] | None = None, dt: float | None = None
) -> FolderFiles:
    """The curves (and region file) of one time bin in a folder-layout folder.

    Parameters
    ----------
    folder : Path
        E.g. ``lcurve_100_M1_1/``.
    patterns : dict, optional
        Overrides of :data:`FOLDER_PATTERNS` (keys ``source``, ``background``,
        ``corrected``, ``regions``).
    dt : float, optional
        Time bin (s) to read; None: the only one present.

    Returns
    -------
    FolderFiles

    Raises
    ------
    ConfigError
        If a pattern is malformed.
    InputFileError
        If no file matches, several time bins are present and no ``dt`` is given,
        no file has ``dt``, several names match one time bin, or a time bin has
        neither a source nor a corrected curve.
    """
    pats = {**FOLDER_PATTERNS, **(patterns or {})}
    unknown = sorted(set(pats) - set(FOLDER_PATTERNS))
    if unknown:
        raise ConfigError(f"import patterns: unknown role {unknown[0]!r}")
    regexes = {r: _pattern_regex(pats[r], r) for r in _CURVE_ROLES}
    _pattern_regex(pats["regions"], "regions")  # checked, then filled in below
    found: dict[float, dict[str, dict[str, Path]]] = {}
    tokens: dict[float, str] = {}
    for p in sorted(folder.iterdir()):
        for role, rx in regexes.items():
            m = rx.match(p.name)
            if not m:
                continue
            value = float(m.group("dt"))
            key = next((v for v in found if math.isclose(v, value, rel_tol=1e-9)), value)
            tokens.setdefault(key, m.group("dt"))
            name = m.groupdict().get("name") or ""
            found.setdefault(key, {}).setdefault(name, {})[role] = p
    wanted = ", ".join(pats[r] for r in _CURVE_ROLES)
    if not found:
        raise InputFileError(f"import folder {folder}: no file named like {wanted}")
    present = ", ".join(tokens[v] for v in sorted(found))
    if dt is None:
        if len(found) > 1:
            raise InputFileError(
                f"import folder {folder}: light curves of several time bins ({present} s); "
                "choose one with --dt"
            )
        key = next(iter(found))
    else:
        match = next((v for v in found if math.isclose(v, float(dt), rel_tol=1e-9)), None)
        if match is None:
            raise InputFileError(
                f"import folder {folder}: no light curve of time bin {dt:g} s "
                f"(present: {present} s)"
            )
        key = match
    names = found[key]
    if len(names) > 1:
        raise InputFileError(
            f"import folder {folder}: curves of several names for time bin {tokens[key]} s "
            f"({', '.join(sorted(names))}); narrow the patterns (e.g. --src-pattern "
            f"'{sorted(names)[0]}_lc_{{dt}}_src.lc')"
        )
    name, roles = next(iter(names.items()))
    if "source" not in roles and "corrected" not in roles:
        raise InputFileError(
            f"import folder {folder}: time bin {tokens[key]} s has no source curve "
            f"({pats['source']}) and no corrected curve ({pats['corrected']})"
        )
    ff = FolderFiles(
        name=name,
        dt=float(key),
        token=tokens[key],
        curves={r: roles.get(r) for r in _CURVE_ROLES},
        regions=None,
        patterns=pats,
    )
    region = folder / _fill(pats["regions"], ff)
    return replace(ff, regions=region) if region.is_file() else ff


def _fill(pattern: str, ff: FolderFiles) -> str:
    """A pattern with {name} and {dt} filled in."""
    return pattern.replace("{name}", ff.name).replace("{dt}", ff.token)


def _file_obsid(read: dict[str, LightCurveFile | None], given: str | None, folder: Path) -> str:
    said = {
        str(lc.primary.get("OBS_ID", lc.keywords.get("OBS_ID", ""))).strip(): lc.path
        for lc in read.values()
        if lc is not None
    }
    said.pop("", None)
    if given is not None:
        other = {o: p for o, p in said.items() if o != given}
        if other:
            o, p = next(iter(other.items()))
            raise InputFileError(
                f"light-curve file {p}: OBS_ID is {o} but --obsid is {given}; "
                "import it under its own obsid"
            )
        obsid = given
    elif len(said) == 1:
        obsid = next(iter(said))
    elif said:
        raise InputFileError(
            f"import folder {folder}: the curves' OBS_ID differ ({', '.join(sorted(said))})"
        )
    else:
        raise InputFileError(
            f"import folder {folder}: the curves have no OBS_ID keyword; give --obsid"
        )
    if not re.fullmatch(r"\d{10}", obsid):
        raise InputFileError(f"import folder {folder}: obsid {obsid!r} is not 10 digits")
    return obsid


def _folder_scheme(
    read: dict[str, LightCurveFile | None],
    name: str,
    scheme: EnergyScheme | None,
    folder: Path,
) -> tuple[EnergyScheme, list[str]]:
    """The scheme of a folder import, checked against the curves' PI selection."""
    notes: list[str] = []
    bands = {}
    for lc in read.values():
        if lc is None:
            continue
        band, how = pi_selection(lc)
        if band is not None:
            bands[lc.path] = (band, how)
    distinct = {b for b, _ in bands.values()}
    if len(distinct) > 1:
        (pa, (ba, _)), (pb, (bb, _)) = list(bands.items())[:2]
        raise InputFileError(
            f"light-curve file {pb}: selects PI [{bb.pi_lo}, {bb.pi_hi}) but {pa} "
            f"PI [{ba.pi_lo}, {ba.pi_hi}); the curves are not of one band"
        )
    files_band = next(iter(distinct)) if distinct else None
    if scheme is None:
        if files_band is None:
            raise ConfigError(
                f"import folder {folder}: the curves do not say which PI they selected; give "
                "the band with --build or --preset and --scheme"
            )
        path, (band, how) = next(iter(bands.items()))
        spec = {"unit": "keV", "edges": [band.pi_lo / 1000, band.pi_hi / 1000]}
        scheme = scheme_from_spec(name, spec, source=f"PI selection of {path}")
        notes.append(f"band PI [{band.pi_lo}, {band.pi_hi}) from the curves ({how})")
        return scheme, notes
    if not scheme.is_resolved:
        raise ConfigError(
            f"scheme {scheme.name}: an equal-count scheme whose edges come from data; to import "
            "light curves give its edges explicitly (unit and edges)"
        )
    if len(scheme.bands) != 1:
        raise ConfigError(
            f"scheme {scheme.name}: has {len(scheme.bands)} bands but the folder holds the "
            "curves of one band; import it under a one-band scheme"
        )
    band = scheme.bands[0]
    if files_band is None:
        notes.append("the curves do not record their PI selection; band from the scheme")
    elif files_band != band:
        lo, hi = files_band.pi_lo, files_band.pi_hi
        path, (_, how) = next(iter(bands.items()))
        if abs(lo - band.pi_lo) > 1 or abs(hi - band.pi_hi) > 1:
            raise InputFileError(
                f"light-curve file {path}: selects PI [{lo}, {hi}) ({how}) but scheme "
                f"{scheme.name} has the band [{band.pi_lo}, {band.pi_hi}); import the curves "
                "under a scheme of their band"
            )
        only_files = sorted(set(range(lo, hi)) - set(range(band.pi_lo, band.pi_hi)))
        only_band = sorted(set(range(band.pi_lo, band.pi_hi)) - set(range(lo, hi)))
        parts = [f"PI {v} only in the curves' selection" for v in only_files]
        parts += [f"PI {v} only in the band" for v in only_band]
        notes.append(
            f"the curves select PI [{lo}, {hi}) ({how}); the scheme's band is "
            f"[{band.pi_lo}, {band.pi_hi}): {', '.join(parts)} (a closed SAS range against a "
            "half-open band)"
        )
    return scheme, notes


def import_folder(
    directory: str | os.PathLike[str],
    store: str | os.PathLike[str],
    scheme_name: str,
    *,
    scheme: EnergyScheme | None = None,
    abscorr: bool | None = None,
    obsid: str | None = None,
    dt: float | None = None,
    patterns: dict[str, str] | None = None,
    observation: Observation | None = None,
    force: bool = False,
) -> ImportResult:
    """Import one time bin of a folder-layout folder (one exposure, one source) into a store.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder (e.g. ``lcurve_100_M1_1/``).
    store : str or os.PathLike
        The store (created if absent).
    scheme_name : str
        Name of the group's scheme.
    scheme : EnergyScheme, optional
        A one-band scheme (from a build file or preset); default: a one-band scheme
        named ``scheme_name`` with the curves' PI selection
        (:func:`pipeline.extract.sas.lightcurve.pi_selection`). A scheme whose band
        differs from the curves' selection by more than one PI at an edge is refused.
    abscorr : bool, optional
        The scheme's ``abscorr`` option (recorded; the files do not say).
    obsid : str, optional
        Default: the curves' OBS_ID keyword.
    dt : float, optional
        Time bin in seconds; default: the only one present.
    patterns : dict, optional
        Overrides of :data:`FOLDER_PATTERNS`.
    observation : Observation, optional
        The build file's observation, for its regions when the folder has no region file.
    force : bool
        Re-import an unchanged group.

    Returns
    -------
    ImportResult

    Raises
    ------
    ConfigError
        If a pattern is malformed, or the scheme is not one resolved band, or the band is
        neither given nor recorded in the curves.
    InputFileError
        If the folder or its curves are missing or unreadable, the obsid is unknown or
        disagrees with the curves, or the scheme's band is not the curves'.
    StoreError
        If the store holds another scheme under this name.
    """
    root = Path(directory)
    if not root.is_dir():
        raise InputFileError(f"import folder {root}: not found")
    ff = folder_files(root, patterns, dt)
    read = {r: (read_lightcurve(p) if p else None) for r, p in ff.curves.items()}
    the_obsid = _file_obsid(read, obsid, root)
    chosen, notes = _folder_scheme(read, scheme_name, scheme, root)
    if ff.curves["corrected"] is None:
        notes.append(
            f"no corrected curve ({_fill(ff.patterns['corrected'], ff)}): "
            "counts only; rate, error, backv, backe and fracexp are NaN"
        )
    if ff.regions is not None:
        regions = _sas_region_file(ff.regions)
    else:
        regions = _regions_attr(observation)
    target = Store.create(store)
    _check_schemes(target, {chosen.name: chosen})
    rule = "folder: " + ", ".join(f"{r} {ff.patterns[r]}" for r in FOLDER_PATTERNS)
    return _import_group(
        root,
        the_obsid,
        chosen,
        abscorr,
        ff.dt,
        [ff.curves],
        target,
        layout="folder",
        layout_rule=f"{rule} (name {ff.name}, dt {ff.token})",
        regions=regions,
        extra_inputs={"regions": ff.regions} if ff.regions is not None else {},
        notes=tuple(notes),
        force=force,
    )
