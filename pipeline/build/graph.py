"""The Dask graph of a build, and running it on a distributed client.

One exposure group is the unit of work and of writing. Shape (every task a pure
function of its inputs, so a failed task can be retried)::

    native (and any backend with ``one_task_per_exposure``):
        build[obsid/expid]                  read and bin the events once, extract every
                                            scheme, write the group: one task, nothing
                                            large leaves the worker
    SAS (one task per band):
        prepare[backend, obsid/expid]       check the inputs, make the observation's GTIs
          -> extract[obsid/expid, scheme, unit]   one SAS run per band
            -> commit[obsid/expid]          assemble every scheme and write the group

Equal-count schemes are resolved first (phase 1): the net spectrum of their reference
exposure is read from the store when its group holds spectra made from the same inputs
(or the reference names a stored spectrum outside the build); otherwise the reference
exposure is prepared and its net spectrum computed, the prepared exposure kept on the
worker that made it and reused by phase 2 there. The scheme's ``reference`` record
says which (``spectrum``: ``stored`` or ``events``).

A group is written whole (:meth:`catalog.store.Store.write_group`): the schemes of
this build, plus the schemes already in the group that this build does not name,
carried over when they were made from the same inputs (the same fingerprint) and
dropped, with a warning, when those inputs changed.

The library draws nothing: :func:`run_build` reports each finished group to an
optional callback (a :class:`BuildProgress`) and to the ``logging`` logger of
this module; the command line owns the progress display.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
from dask.delayed import Delayed
from distributed import Client, Future, as_completed

from catalog.layout import SchemePart, SpectrumPart, exposure_dataset, scheme_parts, spectrum_part
from catalog.store import Store
from pipeline.build.plan import BuildPlan, ExposureSpec, check_scheme_conflicts
from pipeline.extract.backends.base import Backend
from pipeline.extract.jobs import BandCurves, ObservationJob, ObservationSummary, combine_curves
from schemas.build import SchemeOptions
from schemas.energy import energy_scale
from schemas.errors import StoreError
from schemas.schemes import EnergyScheme, instrument_scheme
from schemas.store_layout import DATA_VARS

__all__ = [
    "GroupFailure",
    "BuildReport",
    "BuildProgress",
    "ProgressCallback",
    "SchemeWork",
    "commit_group",
    "build_graph",
    "run_build",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupFailure:
    """An exposure group that could not be built, and why."""

    obsid: str
    expid: str
    message: str


@dataclass(frozen=True)
class BuildProgress:
    """One finished group of a running build, as passed to a progress callback.

    Attributes
    ----------
    done, total : int
        Groups finished so far (written or failed) and groups to build.
    obsid, expid : str
        The exposure group that just finished.
    failure : GroupFailure or None
        Why it failed; None when it was written.
    """

    done: int
    total: int
    obsid: str
    expid: str
    failure: GroupFailure | None = None


#: What :func:`run_build` calls after each group.
ProgressCallback = Callable[[BuildProgress], None]


@dataclass
class BuildReport:
    """What a build did.

    Attributes
    ----------
    store : pathlib.Path
    built, up_to_date : list of ExposureSpec
    failed : list of GroupFailure
    dropped : list of str
        Schemes removed from a group because the exposure's inputs changed and this
        build does not name them (``obsid/expid: scheme``).
    warnings : list of str
        What the groups written recorded about their inputs (``obsid/expid: text``), e.g.
        a band asking for PI the event file was already cut below.
    """

    store: Path
    built: list[ExposureSpec] = field(default_factory=list)
    up_to_date: list[ExposureSpec] = field(default_factory=list)
    failed: list[GroupFailure] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no group failed."""
        return not self.failed


@dataclass(frozen=True)
class SchemeWork:
    """One scheme of one exposure: the resolved scheme, its options, its static record."""

    scheme: EnergyScheme
    options: SchemeOptions
    attrs: dict[str, Any]


def _resolve(scheme: EnergyScheme, spectrum: tuple[Any, int]) -> EnergyScheme:
    counts, chan0 = spectrum
    return scheme.resolve(counts, chan0)


def _scheme_part(work: SchemeWork, pieces: list[BandCurves]) -> SchemePart:
    """Stack the extracted pieces of one scheme into the part the group stores."""
    curves = combine_curves(pieces)
    if curves.bands != tuple(work.scheme.bands):
        raise RuntimeError(f"extracted bands {curves.bands} differ from scheme {work.scheme.name}")
    attrs = dict(work.attrs)
    if any(curves.band_provenance):
        attrs["band_provenance"] = list(curves.band_provenance)
    return SchemePart(
        work.scheme.name,
        curves.bands,
        {name: getattr(curves, name) for name in DATA_VARS},
        attrs,
    )


def commit_group(
    store_path: str,
    attrs: dict[str, Any],
    summaries: dict[str, ObservationSummary],
    backend_info: dict[str, dict[str, Any]],
    parts: list[SchemePart],
    spectra: list[SpectrumPart | None] | None = None,
) -> dict[str, Any]:
    """Write one exposure group whole: this build's schemes and the valid ones already there.

    Parameters
    ----------
    store_path : str
    attrs : dict
        The exposure's static attributes (obsid, expid, instrument, fingerprint_hash,
        inputs, regions).
    summaries : dict
        Backend name to its summary of the prepared exposure (grid, GTIs, provenance).
    backend_info : dict
        Backend name to what its environment check reported.
    parts : list of SchemePart
        The schemes this build made.
    spectra : list of SpectrumPart or None, optional
        The spectra each backend of this build made (None: it makes none); the first is
        stored. Without one, the spectra already in the group are kept when they were
        made from the same inputs (the same fingerprint and grid).

    Returns
    -------
    dict
        obsid, expid, the schemes written, carried over and dropped, and the path.
    """
    first = next(iter(summaries.values()))
    for name, s in summaries.items():
        if (s.t0, s.dt, s.n_bins) != (first.t0, first.dt, first.n_bins):
            raise RuntimeError(
                f"backend {name} made grid ({s.t0}, {s.dt}, {s.n_bins}), another "
                f"({first.t0}, {first.dt}, {first.n_bins}): one grid per exposure"
            )
    obsid, expid = attrs["obsid"], attrs["expid"]
    store = Store(store_path)
    backends = {
        name: {"info": backend_info.get(name), "gti": s.gti.tolist(), "provenance": s.provenance}
        for name, s in summaries.items()
    }
    carried: list[SchemePart] = []
    dropped: list[str] = []
    made = {p.name for p in parts}
    spectrum = next((s for s in spectra or [] if s is not None), None)
    if store.has_group(obsid, expid) and store.state(obsid, expid).ok:
        try:
            old = store.read_group(obsid, expid)
        except StoreError:
            old = None
        if old is not None:
            same_grid = np.array_equal(old["time"].values, first.time)
            for part in scheme_parts(old):
                if part.name in made:
                    continue
                if same_grid and part.attrs.get("fingerprint_hash") == attrs["fingerprint_hash"]:
                    carried.append(part)
                    name = str(part.attrs.get("backend"))
                    if name not in backends and name in old.attrs.get("backends", {}):
                        backends[name] = old.attrs["backends"][name]
                else:
                    dropped.append(part.name)
            if (
                spectrum is None
                and same_grid
                and (old.attrs.get("fingerprint_hash") == attrs["fingerprint_hash"])
            ):
                spectrum = spectrum_part(old)
    warnings = sorted(
        {w for s in summaries.values() for w in s.provenance.get("warnings", []) or []}
    )
    full = dict(attrs)
    full.update(
        dt=first.dt,
        tstart=first.t0,
        tstop=first.t0 + first.dt * first.n_bins,
        MJDREF=first.mjdref,
        TIMESYS=first.timesys,
        TIMEREF=first.timeref,
        backends=backends,
        warnings=warnings,
    )
    ds = exposure_dataset(first.time, [*parts, *carried], full, spectrum)
    path = store.write_group(obsid, expid, ds)
    return {
        "obsid": obsid,
        "expid": expid,
        "schemes": sorted(made),
        "carried": sorted(p.name for p in carried),
        "dropped": sorted(dropped),
        "warnings": warnings,
        "path": str(path),
    }


def build_exposure(
    store_path: str,
    backend: Backend[Any],
    source: Any,
    work: list[SchemeWork],
    attrs: dict[str, Any],
    backend_info: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """One task: prepare an exposure (or take it prepared), extract every scheme, write the group.

    ``source`` is the ObservationJob, or the backend's prepared exposure (phase 1
    of equal-count schemes prepared it already).
    """
    prepared = backend.prepare(source) if isinstance(source, ObservationJob) else source
    summary = backend.summary(prepared)
    parts = [
        _scheme_part(
            w,
            [
                backend.extract(prepared, unit, w.options)
                for unit in backend.partition(w.scheme.bands)
            ],
        )
        for w in work
    ]
    spectra = [backend.spectrum(prepared)]
    return commit_group(store_path, attrs, {backend.name: summary}, backend_info, parts, spectra)


def _exposure_attrs(plan: BuildPlan, spec: ExposureSpec) -> dict[str, Any]:
    cfg = plan.config
    job = plan.jobs[spec.label]
    return {
        "obsid": spec.obsid,
        "expid": spec.expid,
        "instrument": job.instrument,
        # how the bands' PI edges map to keV (docs/semantics.md §20): catalog.layout's e_lo/e_hi
        "energy_scale": energy_scale(job.instrument).record(),
        "fingerprint_hash": spec.fingerprint_hash,
        "inputs": {
            **job.inputs,
            "build_file": str(cfg.path),
            "build_file_sha256": cfg.text_sha256,
            "fingerprint": plan.fingerprints[spec.label],
        },
        # the regions as bound: celestial shapes converted, source_only without a background
        "regions": job.regions.describe(),
    }


def _scheme_work(
    plan: BuildPlan, spec: ExposureSpec, resolved: dict[str, EnergyScheme]
) -> dict[str, list[SchemeWork]]:
    """Backend name to the schemes of ``spec`` it makes."""
    out: dict[str, list[SchemeWork]] = {}
    instrument = plan.jobs[spec.label].instrument
    for task in spec.schemes:
        scheme = resolved[task.scheme]
        # the scheme's identity is its energies; its bands are in the instrument's PI units
        mapped, _, edge_notes = instrument_scheme(scheme, instrument)
        opts = plan.config.scheme_options[task.scheme]
        backend = plan.backends[task.backend]
        ref = plan.reference_label(task.scheme)
        stored = plan.stored_references.get(ref) if ref else None
        reference = None
        if stored is not None:
            reference = stored.record()
        elif ref:
            reference = {
                "exposure": ref,
                "fingerprint": plan.fingerprints[ref],
                "spectrum": "events",
            }
        attrs = {
            "scheme_hash": scheme.hash,
            "scheme_spec": scheme.spec,
            "scheme_definition": scheme.canonical,
            "pi_edges": list(mapped.resolved_pi_edges),
            "input_hash": task.input_hash,
            "fingerprint_hash": spec.fingerprint_hash,
            "backend": task.backend,
            "abscorr": backend.applies_abscorr and bool(opts.abscorr),
            "abscorr_requested": opts.abscorr,
            "reference": reference,
        }
        if edge_notes:
            attrs["edge_notes"] = edge_notes
        out.setdefault(task.backend, []).append(SchemeWork(mapped, opts, attrs))
    return out


def build_graph(
    plan: BuildPlan,
    resolved: dict[str, EnergyScheme],
    prepared: dict[tuple[str, str], Any] | None = None,
    *,
    run: str | None = None,
) -> dict[str, Delayed]:
    """The delayed graph of the exposure groups in ``plan.todo``.

    Parameters
    ----------
    plan : BuildPlan
    resolved : dict
        Scheme name to a resolved EnergyScheme (equal-count schemes resolved).
    prepared : dict, optional
        (backend, ``obsid/expid``) to an already prepared exposure (a Future or value),
        reused instead of preparing again.
    run : str, optional
        Suffix of every task key, unique to one build (default: a new one).

    Returns
    -------
    dict
        ``obsid/expid`` to the delayed task that writes its group.
    """
    prepared = dict(prepared or {})
    store_path = str(plan.config.store)
    backends = {n: b.for_store(store_path) for n, b in plan.backends.items()}
    run = run or _run_id()
    out: dict[str, Delayed] = {}
    for spec in plan.todo:
        label = spec.label
        tag = label.replace("/", "-")
        attrs = _exposure_attrs(plan, spec)
        work = _scheme_work(plan, spec, resolved)
        info = {n: plan.backend_info[n] for n in work}
        if len(work) == 1 and backends[next(iter(work))].one_task_per_exposure:
            name, schemes = next(iter(work.items()))
            source = prepared.get((name, label), plan.jobs[label])
            out[label] = dask.delayed(build_exposure, pure=True)(
                store_path,
                backends[name],
                source,
                schemes,
                attrs,
                info,
                dask_key_name=f"build-{tag}-{run}",
            )
            continue
        summaries: dict[str, Any] = {}
        parts: list[Any] = []
        spectra: list[Any] = []
        for name, schemes in work.items():
            backend = backends[name]
            prep = prepared.get((name, label))
            if prep is None:
                prep = dask.delayed(backend.prepare, pure=True)(
                    plan.jobs[label], dask_key_name=f"prepare-{name}-{tag}-{run}"
                )
            summaries[name] = dask.delayed(backend.summary, pure=True)(
                prep, dask_key_name=f"summary-{name}-{tag}-{run}"
            )
            spectra.append(
                dask.delayed(backend.spectrum, pure=True)(
                    prep, dask_key_name=f"spectrum-{name}-{tag}-{run}"
                )
            )
            for w in schemes:
                pieces = [
                    dask.delayed(backend.extract, pure=True)(
                        prep,
                        unit,
                        w.options,
                        dask_key_name=f"extract-{tag}-{w.scheme.name}-{i}-{run}",
                    )
                    for i, unit in enumerate(backend.partition(w.scheme.bands))
                ]
                parts.append(
                    dask.delayed(_scheme_part, pure=True)(
                        w, pieces, dask_key_name=f"assemble-{tag}-{w.scheme.name}-{run}"
                    )
                )
        out[label] = dask.delayed(commit_group, pure=True)(
            store_path,
            attrs,
            summaries,
            info,
            parts,
            spectra,
            dask_key_name=f"commit-{tag}-{run}",
        )
    return out


def _run_id() -> str:
    """A suffix that makes a build's task keys its own.

    The scheduler hands back the result of any (pure) key it still holds, and an
    exposure's name alone does not name a task's inputs (files, store) nor a write's
    side effect: a second build on the same client must never get the first one's.
    """
    return uuid.uuid4().hex[:8]


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def run_build(
    plan: BuildPlan,
    client: Client,
    *,
    progress: ProgressCallback | None = None,
    retries: int = 0,
) -> BuildReport:
    """Run a planned build on a Dask distributed client.

    Holds the store's writer lock throughout (waiting for another writer), removes
    what an interrupted writer left in the staging folder, and checks again, under
    the lock, that no scheme name of the build has another definition in the store.

    Parameters
    ----------
    plan : BuildPlan
        From :func:`pipeline.build.plan.plan_build`.
    client : distributed.Client
    progress : callable, optional
        Called with a :class:`BuildProgress` after each group is written or fails
        (the command line draws its progress bar from it). Every group is also
        logged on this module's logger: written at INFO, failed at WARNING.
    retries : int
        Times Dask retries a failed task.

    Returns
    -------
    BuildReport
        Built, up-to-date and failed groups. One failed group never stops the others.
    """
    report = BuildReport(store=plan.config.store, up_to_date=list(plan.up_to_date))
    store = Store.create(plan.config.store)
    with store.lock():
        store.clean_staging()
        check_scheme_conflicts(plan.config, store)
        if not plan.todo:
            log.info("store %s: every group is up to date", plan.config.store)
            return report
        _run(plan, client, report, progress, retries)
    return report


def _run(
    plan: BuildPlan,
    client: Client,
    report: BuildReport,
    progress: ProgressCallback | None,
    retries: int,
) -> None:
    total = len(plan.todo)
    log.info(
        "building %d groups into %s (%d up to date)", total, plan.config.store, len(plan.up_to_date)
    )

    def finished(spec: ExposureSpec, failure: GroupFailure | None) -> None:
        if failure is None:
            report.built.append(spec)
            log.info("wrote %s", spec.label)
        else:
            report.failed.append(failure)
            log.warning("group %s failed: %s", spec.label, failure.message)
        if progress is not None:
            done = len(report.built) + len(report.failed)
            progress(BuildProgress(done, total, spec.obsid, spec.expid, failure))

    run = _run_id()
    schemes = plan.config.schemes
    resolved: dict[str, EnergyScheme] = {n: s for n, s in schemes.items() if s.is_resolved}
    reused: dict[tuple[str, str], Future[Any]] = {}
    wanted = {t.scheme for spec in plan.todo for t in spec.schemes}
    failed_schemes: dict[str, str] = {}
    for name in sorted(n for n in wanted if not schemes[n].is_resolved):
        scheme = schemes[name]
        backend_name = plan.config.scheme_backend(name)
        backend = plan.backends[backend_name].for_store(str(plan.config.store))
        reference = plan.reference_label(name)
        assert reference is not None  # an unresolved scheme is an equal-count scheme
        stored = plan.stored_references.get(reference)
        if stored is not None:  # the store holds its spectrum: no events read again
            try:
                resolved[name] = scheme.resolve(stored.net(), 0)
            except Exception as exc:  # noqa: BLE001 - reported per group, never raised
                failed_schemes[name] = (
                    f"equal-count scheme {name}: stored spectrum of {reference}: {_error_text(exc)}"
                )
            continue
        key = (backend_name, reference)
        if key not in reused:
            reused[key] = client.submit(
                backend.prepare,
                plan.jobs[reference],
                pure=True,
                retries=retries,
                key=f"prepare-{backend_name}-{reference.replace('/', '-')}-{run}",
            )
        spectrum = client.submit(backend.reference_spectrum, reused[key], pure=True)
        try:
            resolved[name] = client.submit(_resolve, scheme, spectrum, pure=True).result()
        except Exception as exc:  # noqa: BLE001 - reported per group, never raised
            failed_schemes[name] = (
                f"equal-count scheme {name}: reference {reference}: {_error_text(exc)}"
            )
    todo = []
    for spec in plan.todo:
        bad = [t.scheme for t in spec.schemes if t.scheme in failed_schemes]
        if bad:
            finished(spec, GroupFailure(spec.obsid, spec.expid, failed_schemes[bad[0]]))
        else:
            todo.append(spec)
    sub = dataclasses.replace(plan, todo=todo, up_to_date=[])
    graph = build_graph(sub, resolved, prepared=reused, run=run)
    labels = list(graph)
    futures = client.compute(  # type: ignore[no-untyped-call]  # untyped in distributed
        [graph[k] for k in labels], retries=retries
    )
    where = {f.key: k for f, k in zip(futures, labels, strict=True)}
    specs = {s.label: s for s in todo}
    for fut in as_completed(futures):  # type: ignore[no-untyped-call]  # untyped __init__
        label = where[fut.key]
        spec = specs[label]
        if fut.status == "finished":
            result = fut.result()
            report.dropped += [f"{label}: {name}" for name in result.get("dropped", [])]
            report.warnings += [f"{label}: {w}" for w in result.get("warnings", [])]
            finished(spec, None)
        else:
            finished(spec, GroupFailure(spec.obsid, spec.expid, _error_text(fut.exception())))
        fut.release()
    report.failed.sort(key=lambda f: (f.obsid, f.expid))
    for msg in report.dropped:
        log.warning("dropped scheme %s (the exposure's inputs changed; not in this build)", msg)
