"""Planning a build: validate every input, fingerprint it, and decide which groups to (re)build.

Everything a user can get wrong is checked here, before the store is touched:
the build file (already validated by :mod:`schemas.build`), each event file's
headers and columns, each region file, each user GTI file, the backend's
environment, and conflicts between the build's schemes and those already in
the store. Each (obsid, scheme) group gets an *input hash* over everything that
determines its numbers; a group already in the store with the same hash is up
to date and is skipped, so a re-run resumes an interrupted build.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from catalog.store import Store
from pipeline.extract.backends import get_backend
from pipeline.extract.backends.base import Backend
from pipeline.extract.jobs import ObservationJob
from pipeline.read.events import read_event_info, read_gti_file
from pipeline.read.fitsio import file_sha256
from pipeline.select.regions import read_regions
from schemas.build import BuildConfig, canonical_json
from schemas.errors import ConfigError
from schemas.store_layout import FORMAT_VERSION

__all__ = ["GroupSpec", "BuildPlan", "plan_build", "binning_edges"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupSpec:
    """One (obsid, scheme) group of a build and the hash of its inputs."""

    obsid: str
    scheme: str
    backend: str
    input_hash: str


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
        Obsid to ObservationJob.
    fingerprints : dict
        Obsid to the JSON-able description of its inputs.
    todo : list of GroupSpec
        Groups to build.
    up_to_date : list of GroupSpec
        Groups already in the store with matching input hashes.
    """

    config: BuildConfig
    backends: dict[str, Backend[Any]]
    backend_info: dict[str, dict[str, Any]]
    jobs: dict[str, ObservationJob]
    fingerprints: dict[str, dict[str, Any]]
    todo: list[GroupSpec] = field(default_factory=list)
    up_to_date: list[GroupSpec] = field(default_factory=list)


def binning_edges(config: BuildConfig, screening_pi: tuple[int, int]) -> tuple[int, ...]:
    """PI edges an observation must be binned with so that every band is a sum of columns.

    The screening limits, every edge of every static scheme, and every 5 eV
    channel edge over the range of each equal-count scheme (whose edges come
    from a spectrum later).
    """
    lo, hi = screening_pi[0], screening_pi[1] + 1
    edges = {lo, hi}
    for scheme in config.schemes.values():
        if scheme.pi_edges is not None:
            edges.update(scheme.pi_edges)
        else:
            c = scheme.canonical
            edges.update(range(c["pi_lo"], c["pi_hi"] + 1, 5))
    return tuple(sorted(e for e in edges if lo <= e <= hi))


def _observation_fingerprint(job: ObservationJob) -> dict[str, Any]:
    return {
        "obsid": job.obsid,
        "events_sha256": job.inputs["events_sha256"],
        "regions_sha256": job.inputs["regions_sha256"],
        "gti_sha256": job.inputs.get("gti_sha256"),
        "screening": job.screening.model_dump(mode="json"),
        "flare": job.flare.model_dump(mode="json") if job.flare else None,
        "time_bin": job.time_bin,
    }


def _check_scheme_conflicts(config: BuildConfig, store: Store) -> None:
    known: dict[str, tuple[str, str]] = {}
    for obsid, name in store.groups():
        if name in config.schemes and name not in known:
            attrs = store.group_attrs(obsid, name)
            known[name] = (attrs.get("scheme_hash", "?"), f"{obsid}/{name}")
    for name, (stored_hash, where) in known.items():
        scheme = config.schemes[name]
        if stored_hash != scheme.hash:
            raise ConfigError(
                f"build file {config.path}: scheme '{name}' (hash {scheme.hash}) differs from the "
                f"scheme of that name in store {store.path} (hash {stored_hash}, group {where}); "
                "a name means one definition: rename the scheme or build into another store"
            )


def plan_build(config: BuildConfig, *, force: bool = False) -> BuildPlan:
    """Validate inputs and decide which groups to build.

    Parameters
    ----------
    config : BuildConfig
        The validated build file.
    force : bool
        Rebuild every group even when its input hash matches.

    Returns
    -------
    BuildPlan

    Raises
    ------
    XlcatError
        ConfigError, InputFileError, StoreError or SASError, before anything is written.
    """
    jobs: dict[str, ObservationJob] = {}
    fingerprints: dict[str, dict[str, Any]] = {}
    for obs in config.observations:
        read_event_info(obs.events)
        regions = read_regions(obs.regions)
        inputs = {
            "events": str(obs.events),
            "events_sha256": file_sha256(obs.events),
            "regions": str(obs.regions),
            "regions_sha256": hashlib.sha256(regions.text.encode()).hexdigest(),
        }
        if obs.gti is not None:
            read_gti_file(obs.gti)
            inputs["gti"] = str(obs.gti)
            inputs["gti_sha256"] = file_sha256(obs.gti)
        job = ObservationJob(
            obsid=obs.obsid,
            events=obs.events,
            regions=regions,
            gti_file=obs.gti,
            screening=obs.screening,
            flare=obs.flare,
            time_bin=config.time_bin,
            inputs=inputs,
            pi_edges=binning_edges(config, obs.screening.pi),
        )
        jobs[obs.obsid] = job
        log.debug("observation %s: %s, regions %s checked", obs.obsid, obs.events, obs.regions)
        fingerprints[obs.obsid] = _observation_fingerprint(job)

    names = {config.scheme_backend(s) for s in config.schemes}
    backends = {n: get_backend(n, config.backend_options.get(n)) for n in sorted(names)}
    info = {n: b.check(list(jobs.values())) for n, b in backends.items()}

    store = Store(config.store) if (config.store / "zarr.json").exists() else None
    if store is not None:
        _check_scheme_conflicts(config, store)
    plan = BuildPlan(config, backends, info, jobs, fingerprints)
    for name, scheme in config.schemes.items():
        backend = config.scheme_backend(name)
        opts = config.scheme_options[name]
        for obsid in jobs:
            payload = {
                "format_version": FORMAT_VERSION,
                "backend": backend,
                # what the backend's environment contributes to the numbers (SAS: its version
                # and calibration files); run-time options such as timeouts are left out
                "backend_identity": info[backend].get("identity"),
                "abscorr": opts.abscorr,
                "observation": fingerprints[obsid],
                "scheme": scheme.canonical,
                "reference": fingerprints[scheme.reference] if scheme.reference else None,
            }
            h = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
            spec = GroupSpec(obsid, name, backend, h)
            current = (
                store is not None
                and not force
                and store.has_group(obsid, name)
                and store.group_attrs(obsid, name).get("input_hash") == h
            )
            (plan.up_to_date if current else plan.todo).append(spec)
    log.info(
        "plan for %s: %d groups to build, %d up to date",
        config.store,
        len(plan.todo),
        len(plan.up_to_date),
    )
    return plan
