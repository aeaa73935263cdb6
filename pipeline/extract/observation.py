"""Observation-level rules every backend applies the same way.

- :func:`screened`: the screening mask of a chunk of events;
- :func:`region_ccds`: the CCDs holding screened source or background events (one
  pass over the event file in row chunks; the native backend gets them from its own pass);
- :func:`observation_gti`: the GTI every band applies (docs/semantics.md §4): [TSTART, TSTOP]
  intersected with those CCDs' STDGTInn, the user GTI and the flare GTI;
- :func:`macro_fallback`: ``#NAME`` macros the EVENTS header lacks replaced by
  ``(FLAG==0)`` (docs/semantics.md §8), recorded;
- :func:`header_facts`: what the provenance keeps of the EVENTS header (camera, exposure);
- :func:`job_facts`: what the provenance keeps of the job's binding to its event file
  (default screening, flare defaults, converted regions, a missing background);
- :func:`screening_text`, :func:`flare_text`: the screening and the flare-curve selection
  in SAS selectlib syntax (provenance, and the SAS backend's expressions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from catalog import gti as gtilib
from pipeline.extract.binding import macro_fallback
from pipeline.extract.jobs import ObservationJob
from pipeline.read.events import EventFileInfo, iter_event_chunks
from pipeline.select.expression import Expression, compile_expression
from pipeline.select.shapes import ds9_text
from schemas.build import DefaultScreening, FlareFilter, Screening
from schemas.errors import InputFileError

__all__ = [
    "screening_expression",
    "screened",
    "region_ccds",
    "observation_gti",
    "macro_fallback",
    "header_facts",
    "job_facts",
    "screening_text",
    "flare_text",
]

#: Rows per chunk when reading events.
CHUNK_ROWS = 250_000


def screening_expression(job: ObservationJob, info: EventFileInfo) -> Expression | None:
    """The screening's extra selection compiled against the file's header macros, if any."""
    text = job.screening.expression
    if not text:
        return None
    return compile_expression(text, macros=info.macro, source=f"screening of {job.obsid}")


def screened(
    chunk: dict[str, NDArray[Any]], screening: Screening, extra: Expression | None
) -> NDArray[np.bool_]:
    """Events of a chunk passing ``PATTERN <= p && FLAG == 0 && PI IN [lo:hi] && extra``."""
    pi = chunk["PI"]
    ok = (chunk["PATTERN"] <= screening.pattern_max) & (pi >= screening.pi[0])
    ok &= pi <= screening.pi[1]
    if screening.flag_zero:
        ok &= chunk["FLAG"] == 0
    if extra is not None:
        ok &= extra.evaluate(chunk)
    return ok


def region_ccds(
    job: ObservationJob, info: EventFileInfo, chunk_rows: int = CHUNK_ROWS
) -> tuple[list[int], dict[int, int], dict[int, int]]:
    """CCDs holding screened source or background events, and the counts per CCD.

    Parameters
    ----------
    job : ObservationJob
        Event file, regions and screening.
    info : EventFileInfo
        The event file's headers (for ``#NAME`` macros in the screening).
    chunk_rows : int
        Rows read at a time.

    Returns
    -------
    (list of int, dict, dict)
        Sorted CCD numbers, and CCD -> screened events in the source and in the
        background region.

    Raises
    ------
    InputFileError
        If no screened event lies in the source region.
    """
    extra = screening_expression(job, info)
    columns = {"X", "Y", "PI", "PATTERN", "FLAG", "CCDNR"} | set(extra.columns if extra else ())
    src: dict[int, int] = {}
    bkg: dict[int, int] = {}
    for chunk in iter_event_chunks(job.events, sorted(columns), chunk_rows):
        i = np.flatnonzero(screened(chunk, job.screening, extra))
        x, y, ccd = chunk["X"][i], chunk["Y"][i], chunk["CCDNR"][i]
        for sel, acc in (
            (job.regions.in_source(x, y), src),
            (job.regions.in_background(x, y), bkg),
        ):
            for c, n in zip(*np.unique(ccd[sel], return_counts=True), strict=True):
                acc[int(c)] = acc.get(int(c), 0) + int(n)
    if not src:
        raise InputFileError(
            f"regions file {job.regions.path}: no screened event of {job.events} lies in the "
            "source region; check that the region is in physical (sky pixel) coordinates of "
            "this file"
        )
    return sorted(set(src) | set(bkg)), src, bkg


def observation_gti(
    info: EventFileInfo,
    ccds: list[int],
    user: NDArray[np.float64] | None,
    flare: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], list[str]]:
    """[TSTART, TSTOP] intersected with the CCDs' STDGTInn, the user and the flare GTI.

    Returns
    -------
    (ndarray, list of str)
        The GTI, shape (n, 2), and notes for provenance.

    Raises
    ------
    InputFileError
        If a CCD holding region events has no STDGTInn extension.
    """
    parts = [np.array([[info.tstart, info.tstop]])]
    notes = []
    if info.ccd_gtis:
        for c in ccds:
            if c not in info.ccd_gtis:
                raise InputFileError(
                    f"events file {info.path}: region events lie on CCD {c} but there is no "
                    f"STDGTI{c:02d} extension"
                )
            parts.append(info.ccd_gtis[c])
    else:
        notes.append("no STDGTInn extensions in the event file; used [TSTART, TSTOP]")
    parts += [g for g in (user, flare) if g is not None]
    return gtilib.intersect(*parts), notes


def header_facts(info: EventFileInfo) -> dict[str, object]:
    """What provenance keeps of an event file's EVENTS header."""
    return {
        "frmtime_s": info.frmtime,
        "tstart": info.tstart,
        "tstop": info.tstop,
        "obs_id_header": info.obs_id,
        "telescop": info.telescop,
        "instrume": info.instrume,
        "instrument": info.instrument,
        "datamode": info.datamode,
        "exp_id": info.exp_id,
        "expidstr": info.expidstr,
        "exposure": info.exposure,
        "instrument_notes": list(info.identity_notes),
    }


#: Provenance note of source-only curves (docs/semantics.md §6).
NO_BACKGROUND_NOTE = (
    "no background region: source-only curves; rate = src/(dt f), error = sqrt(src)/(dt f); "
    "bkg_counts, backv and backe are NaN"
)


def job_facts(job: ObservationJob) -> dict[str, object]:
    """What provenance keeps of how the job was bound to its event file.

    Keys: ``screening_source`` ("build file" or the camera default), ``binding_notes``, and
    ``regions``: the physical shapes used (ds9 text), the conversion of celestial shapes
    (WCS keywords, each shape as written and converted; None when none), and ``background``
    None with a note for source-only curves.
    """
    scr = job.screening
    source = "build file"
    if isinstance(scr, DefaultScreening):
        source = f"{scr.instrument} default (docs/semantics.md §1)"
    regions = job.regions
    return {
        "screening_source": source,
        "binding_notes": list(job.notes),
        "regions": {
            "source": [ds9_text(s) for s in regions.physical("source")],
            "background": [ds9_text(s) for s in regions.physical("background")]
            if regions.has_background
            else None,
            "conversion": regions.conversion,
            "note": None if regions.has_background else NO_BACKGROUND_NOTE,
        },
    }


def screening_text(s: Screening) -> str:
    """The screening in SAS selectlib syntax (for provenance and the SAS backend)."""
    parts = [f"(PATTERN<={s.pattern_max})"]
    if s.flag_zero:
        parts.append("(FLAG==0)")
    parts.append(f"(PI in [{s.pi[0]}:{s.pi[1]}])")
    if s.expression:
        parts.append(f"({s.expression})")
    return "&&".join(parts)


def flare_text(f: FlareFilter, expression: str) -> str:
    """The flare-curve selection in SAS selectlib syntax."""
    return f"(PI in [{f.pi[0]}:{f.pi[1]}])&&(PATTERN=={f.pattern})&&({expression})"
