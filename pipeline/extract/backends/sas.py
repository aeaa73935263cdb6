"""The SAS backend: evselect and epiclccorr for each (obsid, band), as Dask tasks.

``check`` finds SAS and each observation's calibration index before anything
runs (:mod:`pipeline.extract.sas.environment`). ``prepare`` (one task per observation)
fixes the explicit grid (t0 = TSTART, ``ceil((TSTOP - TSTART)/dt)`` bins, the
native grid), runs the flare filter (evselect + tabgtigen) when the build asks
for it, and fixes the GTIs as the native backend does (docs/semantics.md §4): for each
CCD the screened source and background events lie on, [TSTART, TSTOP] intersected with
its STDGTInn, its data-subspace time filter, the user GTI and the flare GTI. The
prepared value holds GTI arrays, not paths, so band tasks may run on other machines.

``extract`` (one task per band) writes those GTIs into its own temporary folder (one
extension per CCD), runs evselect for the source and the background on the grid, each
CCD's events selected with its own GTI (``(CCDNR==c&&gti(gti.fits:GTICCDcc,TIME))||...``),
then epiclccorr
(``applyabsolutecorrections`` from the scheme's ``abscorr``), and reads the
outputs onto the grid by index (:mod:`pipeline.extract.sas.lightcurve`). Each band's exact
argument lists, stdout and stderr are kept, compressed, in its provenance
record. A failed command names the obsid, band and command and leaves its folder
in ``.<store>.sas-logs/<obsid>/<band>/``; successful bands are cached in
``.<store>.sas-cache/`` so that a re-run repeats only what failed.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray
from pydantic import ValidationError

from catalog import gti as gtilib
from catalog.layout import SpectrumPart, encode_text_record
from pipeline.extract.backends.base import Backend
from pipeline.extract.binding import bind_job
from pipeline.extract.binning import TimeGrid
from pipeline.extract.jobs import BandCurves, ObservationJob, ObservationSummary, combine_curves
from pipeline.extract.observation import (
    ccd_gtis,
    flare_text,
    header_facts,
    job_facts,
    macro_fallback,
    region_ccds,
    screening_text,
    stored_gti,
    subspace_warnings,
)
from pipeline.extract.sas import commands as cmd
from pipeline.extract.sas.cache import BandCache, task_key
from pipeline.extract.sas.environment import SASEnvironment, discover, find_ccf
from pipeline.extract.sas.outputs import curves_from_outputs, read_sas_spectrum, write_gti_file
from pipeline.extract.sas.runner import TaskFolder
from pipeline.read.events import EventFileInfo, read_gti_file
from pipeline.read.fitsio import file_sha256
from pipeline.select.shapes import format_number
from schemas.build import SASOptions, SchemeOptions
from schemas.energy import Band
from schemas.errors import ConfigError, InputFileError, SASError
from schemas.spectra import channel_grid
from schemas.store_layout import RESPONSES_DIR

__all__ = ["SASBackend", "SASPrepared"]

_BAND_TASKS = ("sasversion", "evselect", "epiclccorr")
#: The tasks of an exposure's spectra (``[sas] spectra = true``, the default).
_SPECTRUM_TASKS = ("sasversion", "evselect", "backscale", "rmfgen", "arfgen")


@dataclass(frozen=True)
class SASPrepared:
    """What every band task of one observation needs (picklable; arrays, not paths to temp files).

    Attributes
    ----------
    job : ObservationJob
    grid : TimeGrid
    gti : ndarray, shape (n, 2)
        The stored GTI (the union of the GTIs of the CCDs holding source events).
    ccd_gtis : dict of int to ndarray
        Each region CCD's GTI, applied to that CCD's events with
        ``gti(gti.fits:GTICCDnn,TIME)``.
    events_sha256, ccf, ccf_sha256 : str
        For the band cache key and provenance.
    summary : ObservationSummary
    """

    job: ObservationJob
    grid: TimeGrid
    gti: NDArray[np.float64]
    ccd_gtis: dict[int, NDArray[np.float64]]
    events_sha256: str
    ccf: str
    ccf_sha256: str
    summary: ObservationSummary


def _spectrum_output(name: str) -> str:
    """The file a command of the spectrum task writes (backscale updates the spectrum)."""
    f = cmd.SPECTRUM_FILES
    if name in ("rmfgen", "arfgen"):
        return f["rmf" if name == "rmfgen" else "arf"]
    return f["background" if "background" in name else "source"]


def _band_text(band: Band) -> str:
    return f"{band.pi_lo / 1000:g}-{band.pi_hi / 1000:g} keV (PI [{band.pi_lo}:{band.pi_hi}))"


class SASBackend(Backend[SASPrepared]):
    """Extraction with SAS (evselect + epiclccorr), one Dask task per band.

    Parameters
    ----------
    options : dict, optional
        The build file's ``[sas]`` table (see :class:`schemas.build.SASOptions`).

    Raises
    ------
    ConfigError
        If the options are invalid.
    """

    name: ClassVar[str] = "sas"
    applies_abscorr: ClassVar[bool] = True
    one_task_per_exposure: ClassVar[bool] = False

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        try:
            self.options = SASOptions.model_validate(dict(options or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(
                f"[sas] {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            ) from None
        self.store: Path | None = None

    # -- where files go ------------------------------------------------------------------
    def for_store(self, store: str | os.PathLike[str]) -> SASBackend:
        """A copy that keeps failure logs and the band cache beside ``store``.

        Logs of failed tasks go to ``.<store name>.sas-logs/<obsid>/<task>/`` and
        the band cache to ``.<store name>.sas-cache/``, both in the store's folder.
        """
        other = copy.copy(self)
        other.store = Path(store)
        return other

    def _beside_store(self, suffix: str) -> Path | None:
        if self.store is None:
            return None
        return self.store.parent / f".{self.store.name}.{suffix}"

    def _log_dir(self, obsid: str, label: str) -> Path | None:
        root = self._beside_store("sas-logs")
        return None if root is None else root / obsid / label

    def _cache(self) -> BandCache | None:
        root = self._beside_store("sas-cache")
        return None if root is None or not self.options.cache else BandCache(root)

    def _task(
        self, where: str, env: SASEnvironment, ccf: str, obsid: str, label: str
    ) -> TaskFolder:
        return TaskFolder(
            where,
            env=env.process_env(ccf),
            timeout=self.options.timeout,
            log_dir=self._log_dir(obsid, label),
            tmp_root=self.options.tmp_dir,
            keep=self.options.keep_temp,
        )

    # -- the Backend hooks ----------------------------------------------------------------
    def check(self, jobs: list[ObservationJob]) -> dict[str, Any]:
        """Find SAS and every observation's CCF; raise one SASError if anything is missing.

        Returns
        -------
        dict
            ``applies_abscorr`` (True), the SAS folder, version (``sasversion``),
            executables, the CCF of each obsid and how it was found, the options, and
            ``identity`` (SAS version and CCFs: what an input hash should include).
        """
        tasks = _BAND_TASKS + (("tabgtigen",) if any(j.flare for j in jobs) else ())
        if self.options.spectra:
            tasks += tuple(t for t in _SPECTRUM_TASKS if t not in tasks)
        env = discover(self.options, tasks)
        ccf: dict[str, str] = {}
        how: dict[str, str] = {}
        errors = []
        for job in jobs:
            try:
                path, found = find_ccf(job.events, self.options)
            except SASError as exc:
                errors.append(str(exc))
                continue
            ccf[job.obsid], how[job.obsid] = str(path), found
        if errors:
            more = f" (and {len(errors) - 1} more observations)" if len(errors) > 1 else ""
            raise SASError(errors[0] + more)
        return {
            "backend": self.name,
            "applies_abscorr": self.applies_abscorr,
            **env.summary(),
            "ccf": ccf,
            "ccf_found": how,
            "options": self.options.model_dump(),
            # what determines SAS's numbers besides the inputs (for the groups' input hash)
            "identity": {"sas_version": env.version, "ccf": ccf},
        }

    def _flare(
        self, job: ObservationJob, info: EventFileInfo, env: SASEnvironment, ccf: str
    ) -> tuple[NDArray[np.float64], dict[str, Any]]:
        flare = job.flare
        assert flare is not None
        expression, notes = macro_fallback(flare.expression, info)
        grid = TimeGrid.for_exposure(info.tstart, info.tstop, flare.bin)
        commands = cmd.flare_commands(job.events, flare, expression, grid)
        task = self._task(f"obsid {job.obsid} flare filter", env, ccf, job.obsid, "flare")
        outputs = {"evselect (flare curve)": cmd.FLARE_CURVE, "tabgtigen": cmd.FLARE_GTI}
        with task.guard():
            for name, argv in commands.items():
                task.run(name, argv, outputs=[outputs[name]])
            gti = read_gti_file(task.path / cmd.FLARE_GTI, extensions=("STDGTI", "GTI"))
        kept = task.finish()
        span = [[info.tstart, info.tstop]]
        record = {
            "selection": flare_text(flare, expression),
            "threshold": flare.threshold,
            "comparison": flare.comparison,
            "expression": flare.rate_expression(format_number(flare.threshold)),
            "bin": flare.bin,
            "gti": gti.tolist(),
            "rejected_s": float(gtilib.total(span) - gtilib.total(gtilib.intersect(gti, span))),
            "notes": notes,
            "method": "SAS evselect rate curve on the explicit grid + tabgtigen "
            f"expression={flare.rate_expression(format_number(flare.threshold))}",
            "kept_folder": kept,
            "commands": encode_text_record([r.to_json() for r in task.records]),
        }
        return gti, record

    def prepare(self, job: ObservationJob) -> SASPrepared:
        """Grid, flare GTI (SAS), user GTI and CCD GTIs of one observation.

        Raises
        ------
        SASError
            If SAS or the CCF is missing on this worker, or the flare filter fails.
        InputFileError
            If an input file is unusable or no screened event lies in the source region.
        """
        info = job.event_info()
        job = bind_job(job, info)  # a job made by hand; the planner's are bound already
        grid = TimeGrid.for_exposure(info.tstart, info.tstop, job.time_bin)
        ccf, ccf_how = find_ccf(job.events, self.options)
        env = discover(self.options, _BAND_TASKS + (("tabgtigen",) if job.flare else ()))
        ccds, src_ccd, bkg_ccd = region_ccds(job, info)
        user = read_gti_file(job.gti_file) if job.gti_file else None
        flare_gti, flare_record = (None, None)
        if job.flare is not None:
            flare_gti, flare_record = self._flare(job, info, env, str(ccf))
        per_ccd = ccd_gtis(info, ccds, user, flare_gti)
        source_ccds = [c for c in ccds if src_ccd.get(c)]
        gti = stored_gti(per_ccd, source_ccds)
        gti = gtilib.intersect(gti, [[grid.t0, grid.stop]])
        events_sha = job.inputs.get("events_sha256") or file_sha256(job.events)
        provenance = {
            "events_file": str(job.events),
            "screening": screening_text(job.screening),
            "ccds": ccds,
            "src_counts_per_ccd": {str(c): n for c, n in sorted(src_ccd.items())},
            "bkg_counts_per_ccd": {str(c): n for c, n in sorted(bkg_ccd.items())},
            "gti_rule": "each CCD the screened source and background events lie on has its own "
            "GTI: [TSTART, TSTOP] intersected with its STDGTInn, its data-subspace time filter, "
            "the user GTI and the flare GTI; passed to evselect as "
            "(CCDNR==c&&gti(gti.fits:GTICCDcc,TIME))||... (START <= t < STOP assumed); the "
            "stored GTI is the union of the GTIs of the CCDs holding source events "
            "(docs/semantics.md §4)",
            "gti_notes": per_ccd.notes,
            "ccd_gtis": per_ccd.provenance(),
            "data_subspace": info.subspace.describe(),
            "warnings": list(info.warnings) + subspace_warnings(info, job.screening),
            "fracexp_rule": "epiclccorr's FRACEXP, as written",
            "user_gti_file": str(job.gti_file) if job.gti_file else None,
            "flare": flare_record,
            "grid": {
                "t0": grid.t0,
                "dt": grid.dt,
                "n_bins": grid.n_bins,
                "timemin": format_number(grid.t0),
                "timemax": format_number(grid.stop),
            },
            "sas": {**env.summary(), "ccf": str(ccf), "ccf_found": ccf_how},
            **header_facts(info),
            **job_facts(job),
        }
        summary = ObservationSummary(
            obsid=job.obsid,
            t0=grid.t0,
            dt=grid.dt,
            n_bins=grid.n_bins,
            gti=gti,
            mjdref=info.mjdref,
            timesys=info.timesys,
            timeref=info.timeref,
            provenance=provenance,
        )
        return SASPrepared(
            job, grid, gti, per_ccd.gtis, events_sha, str(ccf), file_sha256(ccf), summary
        )

    def summary(self, prepared: SASPrepared) -> ObservationSummary:
        """The prepared observation's grid, GTI and provenance."""
        return prepared.summary

    def partition(self, bands: tuple[Band, ...]) -> list[tuple[Band, ...]]:
        """One band per task: each band is its own SAS runs."""
        return [(b,) for b in bands]

    def _band(self, p: SASPrepared, band: Band, abscorr: bool) -> BandCurves:
        job = p.job
        env = discover(self.options, _BAND_TASKS)
        ccds = sorted(p.ccd_gtis)
        commands = cmd.band_commands(
            job.events, job.regions, job.screening, p.grid, band, abscorr, ccds=ccds
        )
        files = tuple(cmd.OUTPUT_OF[name] for name in commands)
        with_bkg = job.regions.has_background
        sas = {
            "sas_dir": env.sas_dir,
            "sas_version": env.version,
            "ccf": p.ccf,
            "ccf_sha256": p.ccf_sha256,
        }
        key = task_key(
            {
                "events_sha256": p.events_sha256,
                "gti": p.gti.tolist(),
                "ccd_gtis": {str(c): g.tolist() for c, g in sorted(p.ccd_gtis.items())},
                "commands": commands,
                **sas,
            }
        )
        label = f"PI{band.pi_lo}-{band.pi_hi}_abscorr-{'yes' if abscorr else 'no'}"
        where = f"obsid {job.obsid} band {_band_text(band)}"
        cache = self._cache()
        hit = cache.get(key, files) if cache is not None else None
        if hit is not None:
            entry, record = hit
            try:
                curves, _ = curves_from_outputs(entry, p.grid, band, with_background=with_bkg)
            except InputFileError:
                hit = None
            else:
                record = {**record, "cache": "hit"}
        if hit is None:
            task = self._task(where, env, p.ccf, job.obsid, label)
            with task.guard():
                write_gti_file(task.path / cmd.GTI_FILE, p.gti, p.ccd_gtis)
                for name, argv in commands.items():
                    task.run(name, argv, outputs=[cmd.OUTPUT_OF[name]])
                curves, facts = curves_from_outputs(
                    task.path, p.grid, band, with_background=with_bkg
                )
            record = {
                "backend": self.name,
                "band": {"pi_lo": band.pi_lo, "pi_hi": band.pi_hi},
                "abscorr": abscorr,
                "task_key": key,
                "sas": sas,
                "outputs": facts,
                "counts": "src_counts/bkg_counts from the raw evselect curves: "
                + "; ".join(f"{k}: {v}" for k, v in facts["counts"].items()),
                "commands": encode_text_record([r.to_json() for r in task.records]),
            }
            if cache is not None:
                cache.put(key, task.path, files, record)
            record = {**record, "cache": "miss", "kept_folder": task.finish()}
        return dataclasses.replace(curves, band_provenance=(record,))

    def extract(
        self, prepared: SASPrepared, bands: tuple[Band, ...], options: SchemeOptions
    ) -> BandCurves:
        """Run evselect (source, background) and epiclccorr for each band; read the outputs.

        Raises
        ------
        SASError
            Naming the obsid, band and failed command, and the folder its logs are kept in.
        """
        abscorr = bool(options.abscorr)
        return combine_curves([self._band(prepared, b, abscorr) for b in bands])

    def spectrum(self, prepared: SASPrepared) -> SpectrumPart | None:
        """Source and background spectra, RMF and ARF with SAS (one task per exposure).

        Runs :func:`pipeline.extract.sas.commands.spectrum_commands` (evselect and
        backscale per region, then rmfgen and arfgen) on the prepared GTIs; the counts,
        EXPOSURE and BACKSCAL are read from the spectra as written
        (:func:`pipeline.extract.sas.outputs.read_sas_spectrum`), and the RMF and ARF
        are kept in the store's ``responses/<obsid>/<expid>/`` folder (without a store,
        the group records no response files). None with ``[sas] spectra = false``.
        """
        if not self.options.spectra:
            return None
        p, job = prepared, prepared.job
        grid = channel_grid(job.event_info().instrument)  # the camera, as the file says
        env = discover(self.options, _SPECTRUM_TASKS)
        task = self._task(f"obsid {job.obsid} spectra", env, p.ccf, job.obsid, "spectra")
        commands = cmd.spectrum_commands(
            job.events, job.regions, job.screening, grid.pi_max, sorted(p.ccd_gtis)
        )
        with task.guard():
            write_gti_file(task.path / cmd.GTI_FILE, p.gti, p.ccd_gtis)
            for name, argv in commands.items():
                task.run(name, argv, outputs=[_spectrum_output(name)])
            src, src_facts = read_sas_spectrum(
                task.path / cmd.SPECTRUM_FILES["source"], grid.n_channels
            )
            bkg, bkg_facts = None, None
            if job.regions.has_background:
                bkg, bkg_facts = read_sas_spectrum(
                    task.path / cmd.SPECTRUM_FILES["background"], grid.n_channels
                )
            responses = self._keep_responses(job, task.path)
            log = encode_text_record([r.to_json() for r in task.records])
        task.finish()
        return SpectrumPart(
            grid,
            src,
            bkg,
            {
                "exposure": src_facts["EXPOSURE"],
                "exposure_rule": "EXPOSURE of evselect's source spectrum, as written",
                "src_backscal": src_facts["BACKSCAL"],
                "bkg_backscal": None if bkg_facts is None else bkg_facts["BACKSCAL"],
                "areascal": src_facts["AREASCAL"],
                "backend": self.name,
                "counts_rule": "evselect spectra (spectralbinsize=5, specchannelmin=0, "
                f"specchannelmax={grid.pi_max}) of the screened region events, each CCD judged "
                "by its own GTI; BACKSCAL from backscale (bad pixels and chip gaps excluded)",
                "responses": responses,
                "filter": job.event_info().string_keywords.get("FILTER"),
                "commands": log,
            },
        )

    def _keep_responses(self, job: ObservationJob, folder: Path) -> dict[str, str] | None:
        """Move the task's RMF and ARF into ``<store>/responses/<obsid>/<expid>/``."""
        if self.store is None:
            return None
        rel = Path(RESPONSES_DIR) / job.obsid / job.expid
        dest = self.store / rel
        dest.mkdir(parents=True, exist_ok=True)
        out = {}
        for kind in ("rmf", "arf"):
            name = f"{job.obsid}_{job.expid}.{kind}"
            tmp = dest / f".{name}.tmp"
            shutil.copyfile(folder / cmd.SPECTRUM_FILES[kind], tmp)
            os.replace(tmp, dest / name)
            out[kind] = (rel / name).as_posix()
        return out

    def reference_spectrum(self, prepared: SASPrepared) -> tuple[NDArray[np.float64], int]:
        """Net counts per 5 eV channel (0..4095) from evselect source and background spectra.

        Net = source - (A_src/A_bkg) background, with geometric region areas as in the
        native backend; the source spectrum alone without a background region. evselect's
        channel boundaries for integer columns may differ from PI [5c, 5c + 5) by 2.5 eV
        (unconfirmed; docs/semantics.md §11.1, §18).
        """
        p, job = prepared, prepared.job
        env = discover(self.options, ("sasversion", "evselect"))
        task = self._task(
            f"obsid {job.obsid} reference spectrum", env, p.ccf, job.obsid, "spectrum"
        )
        spectra = {}
        with task.guard():
            write_gti_file(task.path / cmd.GTI_FILE, p.gti, p.ccd_gtis)
            gti = cmd.gti_expression(sorted(p.ccd_gtis))
            roles = {"source": "src.pha", "background": "bkg.pha"}
            for which, name in roles.items():
                region = job.regions.sas_expression(which)
                if region is None:  # no background region
                    continue
                expr = f"{screening_text(job.screening)} && {region} && {gti}"
                task.run(
                    f"evselect ({which} spectrum)",
                    cmd.spectrum_command(job.events, name, expr),
                    outputs=[name],
                )
                with fits.open(task.path / name) as hdul:
                    table = next(h for h in hdul[1:] if "COUNTS" in h.columns.names)
                    chan = np.asarray(table.data["CHANNEL"], dtype=np.int64)
                    counts = np.asarray(table.data["COUNTS"], dtype=np.float64)
                full = np.zeros(4096)
                ok = (chan >= 0) & (chan < 4096)
                np.add.at(full, chan[ok], counts[ok])
                spectra[which] = full
        task.finish()
        ratio = job.regions.area_ratio
        if ratio is None:
            return spectra["source"], 0
        return spectra["source"] - ratio * spectra["background"], 0
