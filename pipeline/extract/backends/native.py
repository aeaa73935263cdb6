"""The native backend: numpy, one pass over each event file, every band from one cube.

``prepare`` reads the event file once (memory-mapped, in row chunks; a compressed
file through one temporary uncompressed copy), screens the events, counts them per
(CCD, elementary interval, PI) in the source and background regions, builds the
flare curve in the same pass, then fixes each CCD's GTI, sums into (time bin, PI)
counts, and computes the fractional exposure per bin from the CCDs' exposure steps
(:mod:`pipeline.extract.exposure`). ``extract`` is a sum over PI columns followed by the
net-rate formulas of :mod:`pipeline.extract.netrate`. No absolute corrections
(vignetting, PSF, QE, filter) are applied; the store says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from catalog import gti as gtilib
from pipeline.extract.backends.base import Backend
from pipeline.extract.binding import bind_job
from pipeline.extract.binning import BinnedObservation, ObservationBinner, TimeGrid, finalize
from pipeline.extract.exposure import FRACEXP_RULE, ccd_fracexp, region_fracexp
from pipeline.extract.jobs import BandCurves, ObservationJob, ObservationSummary
from pipeline.extract.netrate import net_rate
from pipeline.extract.observation import (
    CcdGtis,
    ccd_gtis,
    flare_text,
    header_facts,
    job_facts,
    macro_fallback,
    screened,
    screening_expression,
    screening_text,
    stored_gti,
    subspace_warnings,
)
from pipeline.read.events import (
    REQUIRED_COLUMNS,
    EventFileInfo,
    iter_event_chunks,
    read_gti_file,
)
from pipeline.read.fitsio import decompressed
from pipeline.select.expression import Expression, compile_expression
from schemas.build import SchemeOptions
from schemas.energy import Band
from schemas.errors import InputFileError
from schemas.spectra import channel_grid

__all__ = ["NativeBackend", "NativePrepared", "bin_observation"]

#: Rows per chunk when reading events (about 7 MB of columns).
CHUNK_ROWS = 250_000

log = logging.getLogger(__name__)

#: Which events the stored spectra hold (the native backend).
SPECTRUM_RULE = (
    "the screened source (background) region events inside each CCD's GTI and inside the PI "
    "columns of the light curves, summed over the time bins: exactly the events the light "
    "curves count; channel = PI // pi_per_channel"
)
#: How the spectra's EXPOSURE is computed.
EXPOSURE_RULE = (
    "sum over the time bins of fracexp * dt: the source CCDs' live exposure in the GTIs "
    "(docs/semantics.md §5); no vignetting"
)

if TYPE_CHECKING:
    from catalog.layout import SpectrumPart


@dataclass(frozen=True)
class NativePrepared:
    """The native per-observation product: binned counts plus a summary."""

    binned: BinnedObservation
    summary: ObservationSummary


def bin_observation(job: ObservationJob) -> NativePrepared:
    """Read an observation's events once and bin them (the native ``prepare``).

    Parameters
    ----------
    job : ObservationJob
        Bound to its event file by the planner; a job made by hand is bound here
        (:func:`pipeline.extract.binding.bind_job`).

    Returns
    -------
    NativePrepared

    Raises
    ------
    InputFileError
        If the event file is unusable or no screened event lies in the source region.
    """
    info = job.event_info()
    job = bind_job(job, info)  # a job made by hand; the planner's are bound already
    with decompressed(job.events) as data:
        return _bin(job, info, data)


def _bin(job: ObservationJob, info: EventFileInfo, data: Path) -> NativePrepared:
    """:func:`bin_observation` on the event file's (uncompressed) content at ``data``."""
    grid = TimeGrid.for_exposure(info.tstart, info.tstop, job.time_bin)
    scr = job.screening
    extra = screening_expression(job, info)
    warnings = list(info.warnings) + subspace_warnings(info, scr)
    flare_expr: Expression | None = None
    notes: list[str] = []
    flare_grid = None
    if job.flare is not None:
        text, notes = macro_fallback(job.flare.expression, info)
        flare_expr = compile_expression(
            text, macros=info.macro, source=f"events file {info.path} flare expression"
        )
        flare_grid = TimeGrid.for_exposure(info.tstart, info.tstop, job.flare.bin)
    user_gti = read_gti_file(job.gti_file) if job.gti_file else None
    boundaries = [np.array([info.tstart, info.tstop])]
    boundaries += [g.ravel() for g in info.ccd_gtis.values()]
    boundaries += [f.gti.ravel() for f in info.time_filters if f.gti is not None]
    if user_gti is not None:
        boundaries.append(user_gti.ravel())
    if flare_grid is not None:
        boundaries.append(flare_grid.edges)
    binner = ObservationBinner(
        grid,
        np.concatenate(boundaries),
        job.pi_edges or np.arange(scr.pi[0], scr.pi[1] + 2),
        flare_edges=flare_grid.edges if flare_grid is not None else None,
        channels=channel_grid(info.instrument),  # the camera, as the event file says
    )
    columns = set(REQUIRED_COLUMNS)
    for e in (extra, flare_expr):
        if e is not None:
            columns |= set(e.columns)
    regions = job.regions
    for chunk in iter_event_chunks(data, sorted(columns), CHUNK_ROWS):
        pi, pattern = chunk["PI"], chunk["PATTERN"]
        x, y = chunk["X"], chunk["Y"]
        src = np.zeros(len(pi), bool)
        bkg = np.zeros(len(pi), bool)
        idx = np.flatnonzero(screened(chunk, scr, extra))
        src[idx] = regions.in_source(x[idx], y[idx])
        bkg[idx] = regions.in_background(x[idx], y[idx])
        flare_sel = None
        if job.flare is not None and flare_expr is not None:
            f = job.flare
            flare_sel = (pi >= f.pi[0]) & (pi <= f.pi[1]) & (pattern == f.pattern)
            flare_sel &= flare_expr.evaluate(chunk)
        binner.add(chunk["TIME"], pi, chunk["CCDNR"], src, bkg, flare_sel)

    src_ccd = binner.ccd_counts("src")
    bkg_ccd = binner.ccd_counts("bkg")
    if src_ccd.sum() == 0:
        raise InputFileError(
            f"regions file {regions.path}: no screened event of {job.events} lies in the source "
            "region; check that the region is in physical (sky pixel) coordinates of this file"
        )
    ccds = sorted(int(c) for c in np.flatnonzero(src_ccd + bkg_ccd))
    flare_gti = None
    flare_prov: dict[str, Any] = {}
    if job.flare is not None:
        flare_counts, flare_times = binner.flare_counts, binner.flare_times
        # the binner was given flare edges and the expression compiled whenever job.flare is set
        assert flare_expr is not None and flare_counts is not None and flare_times is not None
        rate = flare_counts / job.flare.bin
        flare_gti = gtilib.from_good_samples(flare_times, job.flare.good(rate))
        flare_prov = {
            "selection": flare_text(job.flare, flare_expr.text),
            "threshold": job.flare.threshold,
            "comparison": job.flare.comparison,
            "expression": job.flare.rate_expression(),
            "bin": job.flare.bin,
            "gti": flare_gti.tolist(),
            "rejected_s": float(
                gtilib.total([[info.tstart, info.tstop]])
                - gtilib.total(gtilib.intersect(flare_gti, [[info.tstart, info.tstop]]))
            ),
            "notes": notes,
            "method": "tabgtigen emulation, TIME = bin centre, prefraction = postfraction = 0.5",
        }
    per_ccd = ccd_gtis(info, ccds, user_gti, flare_gti)
    # the source's events in each CCD's GTI weigh that CCD's fracexp (docs/semantics.md §5)
    in_gti = binner.counts_in_gti("src", per_ccd.gtis)
    weights = {c: float(n) for c, n in in_gti.items() if n > 0}
    if not weights:
        weights = {c: float(src_ccd[c]) for c in ccds if src_ccd[c] > 0}
    exposures = {
        c: ccd_fracexp(info, data, c, per_ccd.gtis[c], grid.edges) for c in sorted(weights)
    }
    fracexp, used = region_fracexp({c: e.fracexp for c, e in exposures.items()}, weights)
    gti = stored_gti(per_ccd, used)
    warnings += _background_warnings(per_ccd, used, bkg_ccd, ccds, grid)
    if binner.outside["src"] or binner.outside["bkg"]:
        warnings.append(
            f"{binner.outside['src']} source and {binner.outside['bkg']} background events of "
            f"{job.events} lie outside the grid [TSTART, TSTART + n dt) = [{grid.t0!r}, "
            f"{grid.stop!r}) and are not counted: the EVENTS header's TSTART/TSTOP do not cover "
            "the events (a barycentred list whose TSTART was not corrected?)"
        )
    for w in warnings:
        log.warning("obsid %s: %s", job.obsid, w)
    binned = finalize(
        binner,
        gti,
        fracexp,
        regions.source_area,
        regions.background_area,
        ccd_gtis=per_ccd.gtis,
    )
    provenance = {
        "events_file": str(job.events),
        "events_compressed": info.compressed,
        "n_events_read": int(binner.n_events),
        "screening": screening_text(scr),
        "ccds": ccds,
        "src_counts_per_ccd": {str(c): int(src_ccd[c]) for c in ccds},
        "bkg_counts_per_ccd": {str(c): int(bkg_ccd[c]) for c in ccds},
        "gti_rule": "each event judged by its own CCD's GTI: [TSTART, TSTOP] intersected with "
        "the CCD's STDGTInn, its data-subspace time filter, the user GTI and the flare GTI; "
        "START <= t < STOP; the stored GTI is the union of the GTIs of the CCDs fracexp is "
        "taken from (docs/semantics.md §4)",
        "gti_notes": per_ccd.notes,
        "ccd_gtis": per_ccd.provenance(),
        "user_gti_file": str(job.gti_file) if job.gti_file else None,
        "flare": flare_prov or None,
        "fracexp_rule": FRACEXP_RULE,
        "fracexp_weights": {str(c): w for c, w in sorted(used.items())},
        "fracexp_method": {str(c): e.method for c, e in sorted(exposures.items())},
        "data_subspace": info.subspace.describe(),
        "warnings": warnings,
        "filter": info.string_keywords.get("FILTER"),
        **header_facts(info),
        **job_facts(job),
    }
    summary = ObservationSummary(
        obsid=job.obsid,
        t0=grid.t0,
        dt=grid.dt,
        n_bins=grid.n_bins,
        gti=binned.gti,
        mjdref=info.mjdref,
        timesys=info.timesys,
        timeref=info.timeref,
        provenance=provenance,
    )
    return NativePrepared(binned=binned, summary=summary)


def _background_warnings(
    gtis: CcdGtis,
    used: dict[int, float],
    bkg_ccd: NDArray[np.int64],
    ccds: list[int],
    grid: TimeGrid,
) -> list[str]:
    """A warning when background events lie on a CCD whose GTI differs from the source's."""
    out = []
    src_gti = gtilib.intersect(stored_gti(gtis, used), [[grid.t0, grid.stop]])
    for c in ccds:
        if bkg_ccd[c] == 0 or c in used:
            continue
        mine = gtilib.intersect(gtis.gtis[c], [[grid.t0, grid.stop]])
        differ = gtilib.total(gtilib.union(mine, src_gti)) - gtilib.total(
            gtilib.intersect(mine, src_gti)
        )
        if differ > 0:
            out.append(
                f"background events lie on CCD {c}, whose GTI differs from the source CCDs' "
                f"({sorted(used)}) by {differ:.6g} s; the background is scaled with the "
                "source's fracexp, so backv is biased in the bins where they differ"
            )
    return out


class NativeBackend(Backend[NativePrepared]):
    """One-pass numpy extraction (the default backend)."""

    name: ClassVar[str] = "native"

    def check(self, jobs: list[ObservationJob]) -> dict[str, Any]:
        """Nothing external is needed; returns the backend's description."""
        return {
            "backend": self.name,
            "absolute_corrections": "not applied (vignetting, PSF, QE, filter); use the sas "
            "backend with abscorr = true for them",
            "area_method": "geometric region areas",
        }

    def prepare(self, job: ObservationJob) -> NativePrepared:
        """Read and bin the observation's events (see :func:`bin_observation`)."""
        return bin_observation(job)

    def summary(self, prepared: NativePrepared) -> ObservationSummary:
        """The prepared observation's grid, GTIs and provenance."""
        return prepared.summary

    def extract(
        self, prepared: NativePrepared, bands: tuple[Band, ...], options: SchemeOptions
    ) -> BandCurves:
        """Counts per band and time bin, then the net-rate formulas."""
        b = prepared.binned
        src, bkg = b.band_counts(tuple(bands))
        fracexp = np.broadcast_to(b.fracexp, src.shape).astype(np.float64)
        nr = net_rate(src, bkg, b.area_ratio, b.grid.dt, fracexp)
        # without a background region there are no background counts (docs/semantics.md §6)
        no_bkg = b.area_ratio is None
        return BandCurves(
            bands=tuple(bands),
            rate=nr.rate,
            error=nr.error,
            backv=nr.backv,
            backe=nr.backe,
            fracexp=fracexp.copy(),
            src_counts=src.astype(np.float64),
            bkg_counts=np.full(src.shape, np.nan) if no_bkg else bkg.astype(np.float64),
        )

    def spectrum(self, prepared: NativePrepared) -> SpectrumPart | None:
        """The source and background PI spectra counted in the one pass (:data:`SPECTRUM_RULE`)."""
        from catalog.layout import SpectrumPart  # xarray: only when a group is made

        b = prepared.binned
        if b.channels is None or b.spec_src is None:
            return None
        return SpectrumPart(
            b.channels,
            b.spec_src,
            b.spec_bkg,
            {
                "exposure": b.exposure,
                "exposure_rule": EXPOSURE_RULE,
                "src_backscal": b.src_area,
                "bkg_backscal": b.bkg_area if b.bkg_area > 0 else None,
                "areascal": 1.0,
                "backend": self.name,
                "counts_rule": SPECTRUM_RULE,
                "filter": prepared.summary.provenance.get("filter"),
            },
        )

    def reference_spectrum(self, prepared: NativePrepared) -> tuple[NDArray[np.float64], int]:
        """Net counts per 5 eV channel over the GTIs."""
        return prepared.binned.net_channel_spectrum()
