"""Planning a build: validate every input, fingerprint it, and decide which exposures to (re)build.

Everything a user can get wrong is checked here, before the store is touched:
the build file (already validated by :mod:`schemas.build`), each event file's
headers and columns, each region file, each user GTI file, the backend's
environment, and conflicts between the build's schemes and those already in
the store. Each (exposure, scheme) gets an *input hash* over everything that
determines its numbers; an exposure group already in the store that is complete
and holds every scheme of the build with the same hash is up to date and is
skipped, so a re-run resumes an interrupted build.

Each exposure's settings are bound to its event file here
(:func:`pipeline.extract.binding.bind_to_event_file`): a missing screening becomes the
camera's default, flare keys left out take the camera's, sky regions are converted with
the file's WCS; the fingerprint hashes the bound settings. An event file that is not an
EPIC imaging list (INSTRUME, DATAMODE) is refused here, before anything is written.

Re-runs are fast: an event or GTI file whose path, size and modification time
match what a stored group recorded is not hashed or opened again; its recorded
SHA-256 and header facts (camera, mode, exposure key, the default macros) are used.
Sky regions read the event file's WCS on every run.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from catalog.store import Store
from pipeline.extract.backends import get_backend
from pipeline.extract.backends.base import Backend
from pipeline.extract.binding import EventFacts, bind_to_event_file
from pipeline.extract.jobs import ObservationJob
from pipeline.select.regions import read_regions
from schemas.build import (
    BuildConfig,
    DefaultScreening,
    FlareFilter,
    Observation,
    Screening,
    canonical_json,
    default_screening,
)
from schemas.energy import NUSTAR_INSTRUMENTS
from schemas.errors import ConfigError, InputFileError, StoreError
from schemas.schemes import instrument_scheme
from schemas.store_layout import FORMAT_VERSION

if TYPE_CHECKING:
    from pipeline.read.events import ColumnSummary, EventFileInfo

__all__ = [
    "SchemeTask",
    "ExposureSpec",
    "BuildPlan",
    "StoredReference",
    "plan_build",
    "binning_edges",
    "stored_references",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchemeTask:
    """One scheme of an exposure in a build, and the hash of its inputs."""

    scheme: str
    backend: str
    input_hash: str


@dataclass(frozen=True)
class ExposureSpec:
    """One exposure group of a build: every scheme the build gives it.

    Attributes
    ----------
    obsid, expid : str
        The group's address.
    schemes : tuple of SchemeTask
        The build's schemes, with their input hashes.
    fingerprint_hash : str
        SHA-256 of the exposure's fingerprint (inputs that every scheme shares).
    reason : str
        Why it is built (``new``, ``changed``, ``damaged: ...``, ``forced``), or
        ``up to date``.
    """

    obsid: str
    expid: str
    schemes: tuple[SchemeTask, ...]
    fingerprint_hash: str
    reason: str = "new"

    @property
    def label(self) -> str:
        """``obsid/expid``."""
        return f"{self.obsid}/{self.expid}"


@dataclass
class BuildPlan:
    """What a build will do.

    Attributes
    ----------
    config : BuildConfig
    backends : dict
        Backend name to backend object, for every backend the build uses.
    backend_info : dict
        Backend name to what its environment check reported.
    jobs : dict
        ``obsid/expid`` to ObservationJob.
    fingerprints : dict
        ``obsid/expid`` to the JSON-able description of its inputs.
    todo : list of ExposureSpec
        Exposure groups to build.
    up_to_date : list of ExposureSpec
        Groups already in the store, complete, with matching input hashes.
    """

    config: BuildConfig
    backends: dict[str, Backend[Any]]
    backend_info: dict[str, dict[str, Any]]
    jobs: dict[str, ObservationJob]
    fingerprints: dict[str, dict[str, Any]]
    todo: list[ExposureSpec] = field(default_factory=list)
    up_to_date: list[ExposureSpec] = field(default_factory=list)
    #: Reference label -> its stored spectrum (:class:`StoredReference`), for the equal-count
    #: references the store holds a spectrum of, made from the inputs the build has.
    stored_references: dict[str, StoredReference] = field(default_factory=dict)

    def reference_label(self, scheme: str) -> str | None:
        """The ``obsid/expid`` of an equal-count scheme's reference exposure.

        ``reference = "OBSID/EXPID"`` names the exposure itself (one of the build's, or
        a stored spectrum of the store); ``reference = "OBSID"`` the observation's only
        exposure in the build.
        """
        ref = self.config.schemes[scheme].reference
        if ref is None:
            return None
        if "/" in ref:
            if ref not in self.jobs and ref not in self.stored_references:
                raise ConfigError(
                    f"build file {self.config.path}: schemes.{scheme}.equal_counts.reference: "
                    f"exposure {ref} is neither in the build nor a stored spectrum of store "
                    f"{self.config.store}; list its observation or build it first"
                )
            return ref
        found = sorted(k for k, j in self.jobs.items() if j.obsid == ref)
        if len(found) != 1:
            raise ConfigError(
                f"build file {self.config.path}: schemes.{scheme}.equal_counts.reference: "
                f"observation {ref} has {len(found)} exposures ({', '.join(found)}); an "
                "equal-count scheme needs one reference exposure: list only one of them"
            )
        return found[0]


@dataclass(frozen=True)
class StoredReference:
    """The stored spectrum of an equal-count scheme's reference exposure.

    Attributes
    ----------
    label : str
        ``obsid/expid``.
    fingerprint_hash : str
        The stored group's fingerprint (enters the schemes' input hashes).
    backend : str
        The backend that counted the spectrum.
    store : pathlib.Path
        The store holding it; :meth:`net` reads the spectrum only when a scheme is made
        from it, so a build with nothing to do reads group metadata alone.
    """

    label: str
    fingerprint_hash: str
    backend: str
    store: Path

    def net(self) -> NDArray[np.float64]:
        """Net counts per channel from channel 0: ``spec_src - backscal_ratio spec_bkg``
        (the source spectrum alone without a background)."""
        from catalog.layout import spectrum_part

        obsid, _, expid = self.label.partition("/")
        part = spectrum_part(Store(self.store).read_group(obsid, expid))
        if part is None:
            raise StoreError(
                f"store {self.store}: group {self.label} holds no spectrum any more; "
                "rebuild it, or take another equal-count reference"
            )
        net = part.src.astype(np.float64)
        ratio = part.attrs.get("backscal_ratio")
        if part.bkg is not None and ratio:
            net = net - float(ratio) * part.bkg
        return net

    def record(self) -> dict[str, Any]:
        """The scheme provenance of the reference (``schemes[<name>]["reference"]``)."""
        return {
            "exposure": self.label,
            "fingerprint_hash": self.fingerprint_hash,
            "spectrum": "stored",
            "spectrum_backend": self.backend,
        }


def stored_references(
    config: BuildConfig, store: Store | None, fingerprints: dict[str, dict[str, Any]]
) -> dict[str, StoredReference]:
    """The stored spectra the build's equal-count schemes may take as their reference.

    A reference exposure of the build is taken from the store when its group holds a
    spectrum made from the same inputs (the same fingerprint); a reference
    ``OBSID/EXPID`` outside the build is taken from the store as it is.
    """
    out: dict[str, StoredReference] = {}
    if store is None:
        return out
    for scheme in config.schemes.values():
        ref = scheme.reference
        if ref is None:
            continue
        labels = [ref] if "/" in ref else [k for k in fingerprints if k.split("/")[0] == ref]
        for label in labels:
            obsid, _, expid = label.partition("/")
            if label in out or not store.has_group(obsid, expid):
                continue
            try:
                attrs = store.group_attrs(obsid, expid)
            except StoreError:
                continue
            if not attrs.get("spectrum"):
                continue
            if label in fingerprints and attrs.get("fingerprint_hash") != _hash(
                fingerprints[label]
            ):
                continue  # the build changes this exposure: its spectrum is made again
            out[label] = StoredReference(
                label,
                str(attrs["fingerprint_hash"]),
                str(attrs["spectrum"].get("backend")),
                store.path,
            )
    return out


def binning_edges(
    config: BuildConfig, screening_pi: tuple[int, int], instrument: str = "PN"
) -> tuple[int, ...]:
    """PI edges an observation must be binned with so that every band is a sum of columns.

    The screening limits, every edge of every static scheme made for ``instrument`` (in its
    PI units, :func:`schemas.schemes.instrument_scheme`), and every 5 eV channel edge over the
    range of each equal-count scheme (whose edges come from a spectrum later).
    """
    lo, hi = screening_pi[0], screening_pi[1] + 1
    edges = {lo, hi}
    for name, scheme in config.schemes.items():
        if not config.scheme_options[name].applies_to(instrument):
            continue
        if scheme.pi_edges is not None:
            edges.update(instrument_scheme(scheme, instrument)[0].resolved_pi_edges)
        else:
            c = scheme.canonical
            edges.update(range(c["pi_lo"], c["pi_hi"] + 1, 5))
    return tuple(sorted(e for e in edges if lo <= e <= hi))


def _stat(path: Path) -> dict[str, int]:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class _Recorded:
    """What stored groups recorded of their input files: path -> facts (for fast re-runs)."""

    def __init__(self, store: Store | None, obsids: set[str]) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], dict[str, Any] | None] = {}
        if store is None:
            return
        for obsid, expid in store.groups():
            try:
                attrs = store.group_attrs(obsid, expid)
            except StoreError:
                self.groups[(obsid, expid)] = None
                continue
            self.groups[(obsid, expid)] = attrs
            if obsid not in obsids:
                continue
            for rec in attrs.get("inputs", {}).get("files", []):
                if isinstance(rec, dict) and "path" in rec:
                    self.files[rec["path"]] = rec

    def sha256(self, path: Path) -> tuple[str, dict[str, Any]] | None:
        """The recorded SHA-256 and facts of ``path`` if its size and mtime are unchanged."""
        rec = self.files.get(str(path))
        if rec is None:
            return None
        try:
            now = _stat(path)
        except OSError:
            return None
        if rec.get("size") == now["size"] and rec.get("mtime_ns") == now["mtime_ns"]:
            return str(rec["sha256"]), rec
        return None


def _file_record(path: Path, role: str, recorded: _Recorded) -> tuple[dict[str, Any], bool]:
    """A file's record (path, role, size, mtime, sha256), and whether it was recorded before."""
    hit = recorded.sha256(path)
    if hit is not None:
        return {**hit[1], "role": role}, True
    from pipeline.read.fitsio import file_sha256  # astropy: only when a file changed

    return {"path": str(path), "role": role, **_stat(path), "sha256": file_sha256(path)}, False


#: Most time bins one light curve may have (exposure span / time_bin).
MAX_BINS_PER_CURVE = 10_000_000


def _check_columns(
    obs: Observation, record: dict[str, Any], instrument: str, known: bool
) -> ColumnSummary | None:
    """The event list's column summary (scanned once, then kept in its record), checked.

    None for an unchanged file whose stored record predates the summary: it was built
    before, and scanning it on every no-op build would cost a pass over the file.
    """
    from pipeline.read.events import ColumnSummary, scan_event_columns

    summary = ColumnSummary.from_record(record)
    if summary is None:
        if known:
            return None
        summary = scan_event_columns(obs.events)
        record.update(summary.record())
    summary.check(obs.events, instrument)
    return summary


def _check_span(
    obs: Observation, config: BuildConfig, record: dict[str, Any], info: EventFileInfo | None
) -> None:
    """Refuse a light curve of more than :data:`MAX_BINS_PER_CURVE` bins."""
    if info is not None:
        record["span"] = [info.tstart, info.tstop]
    span = record.get("span")
    if not (isinstance(span, list) and len(span) == 2):
        from pipeline.read.events import read_event_info

        info = read_event_info(obs.events)
        span = record["span"] = [info.tstart, info.tstop]
    length = float(span[1]) - float(span[0])
    bins = length / config.time_bin
    if bins > MAX_BINS_PER_CURVE:
        raise ConfigError(
            f"build file {config.path}: time_bin = {config.time_bin:g} s over the "
            f"{length:.6g} s of events file {obs.events} (TSTOP - TSTART) makes {bins:.3g} bins "
            f"per light curve, more than {MAX_BINS_PER_CURVE:,}; choose a larger time_bin "
            "(or check TSTART and TSTOP)"
        )


def _check_obs_id(
    obs: Observation, config: BuildConfig, record: dict[str, Any], info: EventFileInfo | None
) -> None:
    """Refuse an event list whose EVENTS header OBS_ID is not the build file's obsid.

    An absent OBS_ID passes; ``obsid_check = false`` in the observation turns the check off.
    """
    if info is not None:
        record["obs_id"] = info.obs_id
    if "obs_id" not in record:
        from pipeline.read.events import read_event_info

        record["obs_id"] = read_event_info(obs.events).obs_id
    header = str(record["obs_id"]).strip()
    if obs.obsid_check and header and header != obs.obsid:
        raise ConfigError(
            f"build file {config.path}: observation {obs.obsid}: events file {obs.events} has "
            f"OBS_ID = {header!r} in its EVENTS header; give that file's own obsid, or set "
            "obsid_check = false in the observation to keep the build file's"
        )


def _check_expression(
    obs: Observation, text: str | None, facts: EventFacts, columns: ColumnSummary | None
) -> None:
    """Parse the screening expression against the file's header macros and column names.

    Raises
    ------
    ConfigError
        A syntax error, an undefined macro, or a column the EVENTS table lacks.
    """
    if not text:
        return
    from pipeline.select.expression import compile_expression

    read: list[EventFileInfo] = []

    def macro(name: str) -> str | None:
        if name.upper() in facts.macros:
            return facts.macro(name)
        if not read:  # a macro the record does not hold: read the header
            from pipeline.read.events import read_event_info

            read.append(read_event_info(obs.events))
        return read[0].macro(name)

    where = f"observation {obs.obsid} ({obs.events}) screening.expression"
    expr = compile_expression(text, macros=macro, source=where)
    missing = sorted(expr.columns - set(columns.names)) if columns is not None else []
    if missing:
        raise ConfigError(
            f"{where}: '{expr.text}' reads column {missing[0]}, which the EVENTS table lacks "
            f"(columns: {', '.join(columns.names if columns else ())}); fix the expression"
        )


def _event_facts(
    obs: Observation, record: dict[str, Any], known: bool
) -> tuple[EventFacts, EventFileInfo | None]:
    """The event file's header facts: from its stored record when unchanged, else read.

    Reading refuses what the build cannot extract (an INSTRUME other than EPN, EMOS1, EMOS2;
    a DATAMODE other than IMAGING) with one line naming the file and the keyword. The facts
    are added to ``record``, so the next build of an unchanged file does not open it. The
    headers read (None when the record served) travel with the job to the worker.
    """
    facts = EventFacts.from_record(str(obs.events), record) if known else None
    info = None
    if facts is None:
        from pipeline.read.events import read_event_info

        info = read_event_info(obs.events, obs.hk)
        facts = EventFacts.from_info(info)
        record.update(facts.record())
    return facts, info


def _job(
    obs: Observation, config: BuildConfig, recorded: _Recorded
) -> tuple[ObservationJob, dict[str, Any]]:
    """The job of one exposure and its fingerprint; opens the files only when they changed.

    The settings are bound to the event file here (:func:`bind_to_event_file`: the camera's
    default screening and flare keys, sky regions converted with the file's WCS), and the
    fingerprint hashes the bound settings.
    """
    if not obs.events.is_file():
        from pipeline.read.events import read_event_info

        read_event_info(obs.events)  # raises the reader's one-line error
    if obs.hk is not None and not obs.hk.is_file():
        raise InputFileError(
            f"observation {obs.obsid}: hk file {obs.hk} does not exist; give the module's "
            "nu<obsid><A|B>_fpm.hk file or leave hk out"
        )
    events, known = _file_record(obs.events, "events", recorded)
    facts, info = _event_facts(obs, events, known)
    _check_span(obs, config, events, info)
    _check_obs_id(obs, config, events, info)
    columns = _check_columns(obs, events, facts.instrument, known)
    files = [events]
    regions = read_regions(obs.regions)
    screening, flare, nu_notes = _instrument_settings(obs, facts.instrument)
    bound = bind_to_event_file(obs.events, screening, flare, regions, facts)
    _check_expression(obs, bound.screening.expression, facts, columns)
    lo, hi = bound.screening.pi
    _check_scheme_ranges(obs, config, facts.instrument, (lo, hi))
    if (
        columns is not None
        and columns.pi_min is not None
        and columns.pi_max is not None
        and (columns.pi_max < lo or columns.pi_min > hi)
    ):
        raise InputFileError(
            f"events file {obs.events} EVENTS: column PI spans {columns.pi_min}-"
            f"{columns.pi_max}, outside the screening's PI range {lo}-{hi} (eV): no event "
            "would be kept; check the PI column (energies in eV) or the screening's pi"
        )
    inputs: dict[str, Any] = {
        "events": str(obs.events),
        "events_sha256": events["sha256"],
        "regions": str(obs.regions),
        "regions_sha256": hashlib.sha256(regions.text.encode()).hexdigest(),
    }
    if obs.hk is not None:
        hk, _ = _file_record(obs.hk, "hk", recorded)
        files.append(hk)
        inputs["hk"] = str(obs.hk)
        inputs["hk_sha256"] = hk["sha256"]
    if obs.gti is not None:
        if not obs.gti.is_file():
            from pipeline.read.events import read_gti_file

            read_gti_file(obs.gti)  # raises the reader's one-line error
        gti, known = _file_record(obs.gti, "gti", recorded)
        if not known:
            from pipeline.read.events import read_gti_file

            read_gti_file(obs.gti)
        files.append(gti)
        inputs["gti"] = str(obs.gti)
        inputs["gti_sha256"] = gti["sha256"]
    inputs["files"] = files
    job = ObservationJob(
        obsid=obs.obsid,
        events=obs.events,
        regions=bound.regions,
        gti_file=obs.gti,
        screening=bound.screening,
        flare=bound.flare,
        time_bin=config.time_bin,
        inputs=inputs,
        pi_edges=binning_edges(config, bound.screening.pi, facts.instrument),
        expid=facts.expid,
        instrument=facts.instrument,
        notes=nu_notes + bound.notes,
        info=info,
        hk_file=obs.hk,
    )
    fingerprint = {
        "format_version": FORMAT_VERSION,
        "obsid": job.obsid,
        "expid": job.expid,
        "events_sha256": inputs["events_sha256"],
        "regions_sha256": inputs["regions_sha256"],
        "gti_sha256": inputs.get("gti_sha256"),
        **({"hk_sha256": inputs["hk_sha256"]} if obs.hk is not None else {}),
        "screening": job.screening.model_dump(mode="json"),
        "flare": job.flare.model_dump(mode="json") if job.flare else None,
        # the shapes selected with, in sky pixels (celestial ones as converted)
        "regions": job.regions.physical_text(),
        "time_bin": job.time_bin,
    }
    return job, fingerprint


def _instrument_settings(
    obs: Observation, instrument: str
) -> tuple[Screening, FlareFilter | None, tuple[str, ...]]:
    """The screening and flare filter an exposure starts from, by instrument.

    EPIC: the observation's (an ``hk`` file is refused). NuSTAR (docs/semantics.md §20): the
    cleaned list is screened already, so no screening or flare filter: the module's default
    screening (every event) and no flare filter; build-wide ``screening``/``flare`` tables are
    for EPIC lists and are not applied (noted); the observation's own are refused.

    Raises
    ------
    ConfigError
        One line naming the observation, the file and the key.
    """
    if instrument not in NUSTAR_INSTRUMENTS:
        if obs.hk is not None:
            raise ConfigError(
                f"observation {obs.obsid}: hk = {obs.hk} is only for NuSTAR lists, but "
                f"{obs.events} is an XMM-Newton {instrument} list; remove hk"
            )
        return obs.screening, obs.flare, ()
    where = f"observation {obs.obsid} ({obs.events}, NuSTAR {instrument})"
    for key, own in (("screening", obs.own_screening), ("flare", obs.own_flare)):
        if own:
            raise ConfigError(
                f"{where}: {key} is for XMM-Newton EPIC lists; a NuSTAR cleaned list is "
                f"screened by nupipeline already: remove this observation's {key} table"
            )
    notes = [f"screening: none, the {instrument} cleaned list is screened already"]
    if not isinstance(obs.screening, DefaultScreening):
        notes.append("the build-wide screening table (for EPIC lists) is not applied")
    if obs.flare is not None:
        notes.append("the build-wide flare table (for EPIC lists) is not applied")
    if obs.hk is None:
        notes.append(
            "no hk file: live time from the LIVETIME/ONTIME keywords, constant over the "
            "exposure (give hk = 'nu<obsid><A|B>_fpm.hk' for nulccorr's per-second live time)"
        )
    return default_screening(instrument), None, tuple(notes)


def _check_scheme_ranges(
    obs: Observation, config: BuildConfig, instrument: str, screening_pi: tuple[int, int]
) -> None:
    """Refuse a scheme (made for this instrument) reaching outside the screening's PI range.

    Also converts each scheme's edges to the instrument's PI (refusing the edges it cannot
    take, :func:`schemas.schemes.instrument_scheme`), and refuses an exposure for which the
    build has no scheme at all.
    """
    lo, hi = screening_pi
    made = 0
    for name, scheme in config.schemes.items():
        if not config.scheme_options[name].applies_to(instrument):
            continue
        made += 1
        if instrument in NUSTAR_INSTRUMENTS and config.scheme_backend(name) != "native":
            raise ConfigError(
                f"build file {config.path}: scheme '{name}' uses the "
                f"{config.scheme_backend(name)} backend, which reads EPIC lists only; observation "
                f"{obs.obsid} is NuSTAR {instrument}: use the native backend for it (limit the "
                'scheme with instruments = ["PN", "M1", "M2"])'
            )
        try:
            mapped = instrument_scheme(scheme, instrument)[0]
        except ConfigError as exc:
            raise ConfigError(f"build file {config.path}: {exc}") from None
        if mapped.pi_edges is None:
            c = scheme.canonical
            pi_lo, pi_hi = c["pi_lo"], c["pi_hi"]
        else:
            pi_lo, pi_hi = mapped.pi_edges[0], mapped.pi_edges[-1]
        if pi_lo < lo or pi_hi > hi + 1:
            raise ConfigError(
                f"build file {config.path}: scheme '{name}' spans PI [{pi_lo}, {pi_hi}), outside "
                f"observation {obs.obsid}'s screening PI range [{lo}, {hi}]; widen "
                "screening.pi or change the scheme"
            )
    if not made:
        raise ConfigError(
            f"build file {config.path}: observation {obs.obsid} ({obs.events}) is {instrument} "
            "but no scheme is made for it (every scheme's instruments leaves it out); add "
            f'"{instrument}" to a scheme\'s instruments'
        )


def check_scheme_conflicts(
    config: BuildConfig,
    store: Store,
    groups: dict[tuple[str, str], dict[str, Any] | None] | None = None,
) -> None:
    """Refuse a build that gives a scheme name already in the store another definition.

    Parameters
    ----------
    config : BuildConfig
    store : Store
    groups : dict, optional
        (obsid, expid) to the attributes of every group, as already read (None for an
        unreadable one); read from the store when not given.

    Raises
    ------
    ConfigError
        Naming the scheme, both hashes and a group holding the stored one.
    """
    if groups is None:
        groups = {}
        for key in store.groups():
            try:
                groups[key] = store.group_attrs(*key)
            except StoreError:
                groups[key] = None
    for (obsid, expid), attrs in groups.items():
        if attrs is None:
            continue  # a damaged group is rebuilt or reported by xlcat verify
        for name, rec in attrs["schemes"].items():
            scheme = config.schemes.get(name)
            if scheme is not None and rec.get("scheme_hash") != scheme.hash:
                raise ConfigError(
                    f"build file {config.path}: scheme '{name}' (hash {scheme.hash}) differs from "
                    f"the scheme of that name in store {store.path} (hash "
                    f"{rec.get('scheme_hash')}, group {obsid}/{expid}); a name means one "
                    "definition: rename the scheme or build into another store"
                )


def _hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def plan_build(config: BuildConfig, *, force: bool = False) -> BuildPlan:
    """Validate inputs and decide which exposure groups to build.

    Parameters
    ----------
    config : BuildConfig
        The validated build file.
    force : bool
        Rebuild every group even when it is up to date.

    Returns
    -------
    BuildPlan

    Raises
    ------
    XlcatError
        ConfigError, InputFileError, StoreError or SASError, before anything is written.
    """
    store = Store(config.store) if (config.store / "zarr.json").exists() else None
    recorded = _Recorded(store, {o.obsid for o in config.observations})
    jobs: dict[str, ObservationJob] = {}
    fingerprints: dict[str, dict[str, Any]] = {}
    sources: dict[str, Path] = {}
    for obs in config.observations:
        job, fingerprint = _job(obs, config, recorded)
        if job.label in jobs:
            raise ConfigError(
                f"build file {config.path}: observations {sources[job.label]} and {obs.events} "
                f"are both exposure {job.expid} of obsid {job.obsid}; list each exposure once"
            )
        jobs[job.label] = job
        sources[job.label] = obs.events
        fingerprints[job.label] = fingerprint
        log.debug("exposure %s: %s, regions %s checked", job.label, obs.events, obs.regions)

    names = {config.scheme_backend(s) for s in config.schemes}
    backends = {n: get_backend(n, config.backend_options.get(n)) for n in sorted(names)}
    info = {n: b.check(list(jobs.values())) for n, b in backends.items()}
    if store is not None:
        check_scheme_conflicts(config, store, recorded.groups)
    plan = BuildPlan(config, backends, info, jobs, fingerprints)
    plan.stored_references.update(stored_references(config, store, fingerprints))
    references = {name: plan.reference_label(name) for name in config.schemes}
    for label, job in jobs.items():
        fp_hash = _hash(fingerprints[label])
        tasks = []
        for name, scheme in config.schemes.items():
            if not config.scheme_options[name].applies_to(job.instrument):
                continue
            backend = config.scheme_backend(name)
            ref = references[name]
            payload = {
                "backend": backend,
                # what the backend's environment contributes to the numbers (SAS: its version
                # and calibration files); run-time options such as timeouts are left out
                "backend_identity": info[backend].get("identity"),
                "abscorr": config.scheme_options[name].abscorr,
                "observation": fingerprints[label],
                "scheme": scheme.canonical,
                "reference": _reference_identity(plan, ref),
            }
            tasks.append(SchemeTask(name, backend, _hash(payload)))
        reason = _status(store, recorded, job, tasks, force)
        spec = ExposureSpec(job.obsid, job.expid, tuple(tasks), fp_hash, reason)
        (plan.up_to_date if reason == "up to date" else plan.todo).append(spec)
    if store is not None:
        for spec in plan.todo:
            store.refuse_links(store.group_path(spec.obsid, spec.expid))
    log.info(
        "plan for %s: %d groups to build, %d up to date",
        config.store,
        len(plan.todo),
        len(plan.up_to_date),
    )
    return plan


def _reference_identity(plan: BuildPlan, ref: str | None) -> Any:
    """What the reference exposure contributes to an input hash: its fingerprint."""
    if ref is None:
        return None
    if ref in plan.fingerprints:
        return plan.fingerprints[ref]
    return {"stored_spectrum": plan.stored_references[ref].fingerprint_hash}


def _status(
    store: Store | None,
    recorded: _Recorded,
    job: ObservationJob,
    tasks: list[SchemeTask],
    force: bool,
) -> str:
    """Why an exposure group must be built, or ``up to date``."""
    if store is None or (job.obsid, job.expid) not in recorded.groups:
        return "new"
    attrs = recorded.groups[(job.obsid, job.expid)]
    if attrs is None:
        return "damaged: " + str(store.state(job.obsid, job.expid).problem)
    state = store.state(job.obsid, job.expid)
    if not state.ok:
        return f"damaged: {state.problem}"
    if force:
        return "forced"
    stored = attrs.get("schemes", {})
    for t in tasks:
        if stored.get(t.scheme, {}).get("input_hash") != t.input_hash:
            return "changed"
    return "up to date"
