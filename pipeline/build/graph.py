"""The Dask graph of a build, and running it on a distributed client.

Shape (all ``dask.delayed``; every task a pure function of its inputs, so a
failed task can be retried)::

    prepare[obsid]                      one task per observation (native: read, bin events once)
      -> extract[obsid, scheme, unit]   per extraction unit (native: whole scheme; SAS: one band)
        -> write[obsid, scheme]         assemble the bands and write the group atomically

Equal-count schemes are resolved first (phase 1): their reference
observation is prepared, its net spectrum computed, and the edges fixed; the
prepared observation is kept on the cluster and reused by phase 2.

The library draws nothing: :func:`run_build` reports each finished group to an
optional callback (a :class:`BuildProgress`) and to the ``logging`` logger of
this module; the command line owns the progress display.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
from dask.delayed import Delayed
from distributed import Client, Future, as_completed

from catalog.layout import lightcurve_dataset
from catalog.store import Store
from pipeline.build.plan import BuildPlan, GroupSpec
from pipeline.extract.backends.base import Backend
from pipeline.extract.jobs import BandCurves, ObservationSummary, combine_curves
from schemas.build import SchemeOptions
from schemas.schemes import EnergyScheme

__all__ = [
    "GroupFailure",
    "BuildReport",
    "BuildProgress",
    "ProgressCallback",
    "write_group",
    "build_graph",
    "run_build",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupFailure:
    """A group that could not be built, and why."""

    obsid: str
    scheme: str
    message: str


@dataclass(frozen=True)
class BuildProgress:
    """One finished group of a running build, as passed to a progress callback.

    Attributes
    ----------
    done, total : int
        Groups finished so far (written or failed) and groups to build.
    obsid, scheme : str
        The group that just finished.
    failure : GroupFailure or None
        Why it failed; None when it was written.
    """

    done: int
    total: int
    obsid: str
    scheme: str
    failure: GroupFailure | None = None


#: What :func:`run_build` calls after each group.
ProgressCallback = Callable[[BuildProgress], None]


@dataclass
class BuildReport:
    """What a build did."""

    store: Path
    built: list[GroupSpec] = field(default_factory=list)
    up_to_date: list[GroupSpec] = field(default_factory=list)
    failed: list[GroupFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no group failed."""
        return not self.failed


def _resolve(scheme: EnergyScheme, spectrum: tuple[Any, int]) -> EnergyScheme:
    counts, chan0 = spectrum
    return scheme.resolve(counts, chan0)


def write_group(
    store_path: str,
    scheme: EnergyScheme,
    static_attrs: dict[str, Any],
    summary: ObservationSummary,
    parts: list[BandCurves],
) -> dict[str, Any]:
    """Assemble the bands of one (obsid, scheme) and write the group atomically.

    Returns
    -------
    dict
        obsid, scheme, number of bands and the group path.
    """
    curves = combine_curves(parts)
    if curves.bands != tuple(scheme.bands):
        raise RuntimeError(f"extracted bands {curves.bands} differ from scheme {scheme.name}")
    attrs = dict(static_attrs)
    attrs.update(
        scheme_definition=scheme.canonical,
        pi_edges=list(scheme.resolved_pi_edges),
        dt=summary.dt,
        tstart=summary.t0,
        tstop=summary.t0 + summary.dt * summary.n_bins,
        MJDREF=summary.mjdref,
        TIMESYS=summary.timesys,
        TIMEREF=summary.timeref,
        gti=summary.gti.tolist(),
        provenance=summary.provenance,
    )
    if any(curves.band_provenance):
        attrs["band_provenance"] = list(curves.band_provenance)
    ds = lightcurve_dataset(
        time=summary.time,
        bands=curves.bands,
        variables={
            "rate": curves.rate,
            "error": curves.error,
            "src_counts": curves.src_counts,
            "bkg_counts": curves.bkg_counts,
            "backv": curves.backv,
            "backe": curves.backe,
            "fracexp": curves.fracexp,
        },
        attrs=attrs,
    )
    path = Store(store_path).write_group(summary.obsid, scheme.name, ds)
    return {
        "obsid": summary.obsid,
        "scheme": scheme.name,
        "bands": len(curves.bands),
        "path": str(path),
    }


def _static_attrs(plan: BuildPlan, spec: GroupSpec, scheme: EnergyScheme) -> dict[str, Any]:
    cfg = plan.config
    job = plan.jobs[spec.obsid]
    opts = cfg.scheme_options[spec.scheme]
    info = plan.backend_info[spec.backend]
    applies_abscorr = plan.backends[spec.backend].applies_abscorr and bool(opts.abscorr)
    return {
        "obsid": spec.obsid,
        "scheme": spec.scheme,
        "scheme_hash": scheme.hash,
        "scheme_spec": scheme.spec,
        "input_hash": spec.input_hash,
        "inputs": {
            **job.inputs,
            "build_file": str(cfg.path),
            "build_file_sha256": cfg.text_sha256,
            "fingerprint": plan.fingerprints[spec.obsid],
            "reference_fingerprint": plan.fingerprints.get(scheme.reference)
            if scheme.reference
            else None,
        },
        "regions": {
            "path": job.regions.path,
            "text": job.regions.text,
            "src_area": job.regions.source_area,
            "bkg_area": job.regions.background_area,
            "area_ratio": job.regions.area_ratio,
            "area_method": "geometric (union of shapes), sky pixels^2",
            "src_expression": job.regions.sas_expression("source"),
            "bkg_expression": job.regions.sas_expression("background"),
        },
        "backend": spec.backend,
        "backend_info": info,
        "abscorr": applies_abscorr,
        "abscorr_requested": opts.abscorr,
    }


def build_graph(
    plan: BuildPlan,
    resolved: dict[str, EnergyScheme],
    prepared: dict[tuple[str, str], Any] | None = None,
    *,
    run: str | None = None,
) -> dict[tuple[str, str], Delayed]:
    """The delayed graph of the groups in ``plan.todo``.

    Parameters
    ----------
    plan : BuildPlan
    resolved : dict
        Scheme name to a resolved EnergyScheme (equal-count schemes resolved).
    prepared : dict, optional
        (backend, obsid) to an already prepared observation (a Future or value),
        reused instead of preparing again.
    run : str, optional
        Suffix of every task key, unique to one build (default: a new one).

    Returns
    -------
    dict
        (obsid, scheme) to the delayed write task.
    """
    prepared = dict(prepared or {})
    prep: dict[tuple[str, str], Any] = {}
    summaries: dict[tuple[str, str], Delayed] = {}
    out: dict[tuple[str, str], Delayed] = {}
    store_path = str(plan.config.store)
    backends = {n: b.for_store(store_path) for n, b in plan.backends.items()}
    run = run or _run_id()
    for spec in plan.todo:
        backend: Backend[Any] = backends[spec.backend]
        key = (spec.backend, spec.obsid)
        if key not in prep:
            if key in prepared:
                prep[key] = prepared[key]
            else:
                prep[key] = dask.delayed(backend.prepare, pure=True)(
                    plan.jobs[spec.obsid],
                    dask_key_name=f"prepare-{spec.backend}-{spec.obsid}-{run}",
                )
            summaries[key] = dask.delayed(backend.summary, pure=True)(
                prep[key], dask_key_name=f"summary-{spec.backend}-{spec.obsid}-{run}"
            )
        scheme = resolved[spec.scheme]
        options: SchemeOptions = plan.config.scheme_options[spec.scheme]
        parts = [
            dask.delayed(backend.extract, pure=True)(
                prep[key],
                unit,
                options,
                dask_key_name=f"extract-{spec.obsid}-{spec.scheme}-{i}-{run}",
            )
            for i, unit in enumerate(backend.partition(scheme.bands))
        ]
        out[(spec.obsid, spec.scheme)] = dask.delayed(write_group, pure=True)(
            store_path,
            scheme,
            _static_attrs(plan, spec, scheme),
            summaries[key],
            parts,
            dask_key_name=f"write-{spec.obsid}-{spec.scheme}-{run}",
        )
    return out


def _run_id() -> str:
    """A suffix that makes a build's task keys its own.

    The scheduler hands back the result of any (pure) key it still holds, and an obsid
    and a scheme name alone do not name a task's inputs (files, store) nor a write's
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
    Store.create(plan.config.store)
    if not plan.todo:
        log.info("store %s: every group is up to date", plan.config.store)
        return report
    total = len(plan.todo)
    log.info(
        "building %d groups into %s (%d up to date)", total, plan.config.store, len(plan.up_to_date)
    )

    def finished(spec: GroupSpec, failure: GroupFailure | None) -> None:
        if failure is None:
            report.built.append(spec)
            log.info("wrote %s/%s", spec.obsid, spec.scheme)
        else:
            report.failed.append(failure)
            log.warning("group %s/%s failed: %s", spec.obsid, spec.scheme, failure.message)
        if progress is not None:
            done = len(report.built) + len(report.failed)
            progress(BuildProgress(done, total, spec.obsid, spec.scheme, failure))

    run = _run_id()
    schemes = plan.config.schemes
    resolved: dict[str, EnergyScheme] = {n: s for n, s in schemes.items() if s.is_resolved}
    reused: dict[tuple[str, str], Future[Any]] = {}
    unresolved = sorted({s.scheme for s in plan.todo if not schemes[s.scheme].is_resolved})
    failed_schemes: dict[str, str] = {}
    for name in unresolved:
        scheme = schemes[name]
        backend_name = plan.config.scheme_backend(name)
        backend = plan.backends[backend_name].for_store(str(plan.config.store))
        reference = scheme.reference
        assert reference is not None  # an unresolved scheme is an equal-count scheme
        key = (backend_name, reference)
        if key not in reused:
            reused[key] = client.submit(
                backend.prepare,
                plan.jobs[reference],
                pure=True,
                retries=retries,
                key=f"prepare-{backend_name}-{reference}-{run}",
            )
        spectrum = client.submit(backend.reference_spectrum, reused[key], pure=True)
        try:
            resolved[name] = client.submit(_resolve, scheme, spectrum, pure=True).result()
        except Exception as exc:  # noqa: BLE001 - reported per group, never raised
            failed_schemes[name] = (
                f"equal-count scheme {name}: reference {reference}: {_error_text(exc)}"
            )
    todo = [s for s in plan.todo if s.scheme not in failed_schemes]
    for spec in plan.todo:
        if spec.scheme in failed_schemes:
            finished(spec, GroupFailure(spec.obsid, spec.scheme, failed_schemes[spec.scheme]))
    sub = BuildPlan(
        plan.config, plan.backends, plan.backend_info, plan.jobs, plan.fingerprints, todo
    )
    graph = build_graph(sub, resolved, prepared=reused, run=run)
    keys = list(graph)
    futures = client.compute(  # type: ignore[no-untyped-call]  # untyped in distributed
        [graph[k] for k in keys], retries=retries
    )
    where = {f.key: k for f, k in zip(futures, keys, strict=True)}
    specs = {(s.obsid, s.scheme): s for s in todo}
    for fut in as_completed(futures):  # type: ignore[no-untyped-call]  # untyped __init__
        obsid, scheme_name = where[fut.key]
        failure = (
            None
            if fut.status == "finished"
            else GroupFailure(obsid, scheme_name, _error_text(fut.exception()))
        )
        finished(specs[(obsid, scheme_name)], failure)
    report.failed.sort(key=lambda f: (f.obsid, f.scheme))
    return report
