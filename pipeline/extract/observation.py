"""Observation-level rules every backend applies the same way.

- :func:`screened`: the screening mask of a chunk of events;
- :func:`region_ccds`: the CCDs holding screened source or background events (one
  pass over the event file in row chunks; the native backend gets them from its own pass);
- :func:`ccd_gtis`: the GTI of each of those CCDs, which judges that CCD's events
  (docs/semantics.md §4): [TSTART, TSTOP] intersected with the CCD's STDGTInn, its
  data-subspace time filter (``GTI00004``...), the user GTI and the flare GTI;
  :func:`stored_gti`: the GTI an observation's group records;
- :func:`subspace_warnings`: where the build asks for events (PI, PATTERN, FLAG) the
  event file was already cut without (its data subspace, docs/semantics.md §4);
- :func:`macro_fallback`: ``#NAME`` macros the EVENTS header lacks replaced by
  ``(FLAG==0)`` (docs/semantics.md §8), recorded;
- :func:`header_facts`: what the provenance keeps of the EVENTS header (camera, exposure);
- :func:`job_facts`: what the provenance keeps of the job's binding to its event file
  (default screening, flare defaults, converted regions, a missing background);
- :func:`screening_text`, :func:`flare_text`: the screening and the flare-curve selection
  in SAS selectlib syntax (provenance, and the SAS backend's expressions).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from catalog import gti as gtilib
from pipeline.extract.binding import macro_fallback
from pipeline.extract.jobs import ObservationJob
from pipeline.read.events import EventFileInfo, iter_event_chunks
from pipeline.read.subspace import ALL_FLAG_BITS
from pipeline.select.expression import Expression, compile_expression
from pipeline.select.parser import SelectionParser, Tree
from pipeline.select.regions import NO_BACKGROUND_NOTE
from schemas.build import DefaultScreening, FlareFilter, Screening
from schemas.errors import ConfigError, InputFileError, XlcatError

__all__ = [
    "screening_expression",
    "screened",
    "region_ccds",
    "CcdGtis",
    "ccd_gtis",
    "stored_gti",
    "subspace_warnings",
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


@dataclass(frozen=True)
class CcdGtis:
    """The GTI of each CCD holding region events (docs/semantics.md §4).

    Attributes
    ----------
    gtis : dict of int to numpy.ndarray
        CCD -> its GTI, shape (n, 2): the GTI that judges the CCD's events.
    sources : dict of int to list of str
        CCD -> what was intersected (``STDGTI01``, ``GTI00004 (data subspace)``, ``user GTI``,
        ``flare GTI``).
    notes : list of str
        Facts for provenance.
    """

    gtis: dict[int, NDArray[np.float64]]
    sources: dict[int, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def boundaries(self) -> NDArray[np.float64]:
        """Every start and stop of every CCD's GTI."""
        parts = [g.ravel() for g in self.gtis.values()]
        return np.concatenate(parts) if parts else np.empty(0)

    def provenance(self) -> dict[str, Any]:
        """JSON-able: per CCD its GTI and sources."""
        return {
            str(c): {"gti": g.tolist(), "sources": self.sources.get(c, [])}
            for c, g in sorted(self.gtis.items())
        }


def ccd_gtis(
    info: EventFileInfo,
    ccds: list[int],
    user: NDArray[np.float64] | None,
    flare: NDArray[np.float64] | None,
) -> CcdGtis:
    """Each CCD's GTI: [TSTART, TSTOP] ∩ STDGTInn ∩ data-subspace time filter ∩ user ∩ flare.

    epiclccorr judges each CCD's events by that CCD's own GTI (its selection,
    ``*_lccorr_2.604.lc`` SLCTEXPR, is ``(CCDNR in [1] && ... && gti(...:GTI00004,TIME))
    || (CCDNR in [2] && ...)``); in a filtered event list the time filter
    (``GTI00004`` for CCD 1, ...) is named by the data subspace, not by ``STDGTInn``.

    Parameters
    ----------
    info : EventFileInfo
    ccds : list of int
        CCDs holding screened source or background events.
    user, flare : numpy.ndarray or None
        The user GTI and the flare GTI, which apply to every CCD.

    Returns
    -------
    CcdGtis

    Raises
    ------
    InputFileError
        If a CCD holding region events has no STDGTInn extension while others have.
    """
    span = np.array([[info.tstart, info.tstop]])
    gtis: dict[int, NDArray[np.float64]] = {}
    sources: dict[int, list[str]] = {}
    notes: list[str] = []
    if not info.ccd_gtis:
        what = "GTI extension" if info.is_nustar else "STDGTInn extensions"
        notes.append(f"no {what} in the event file; used [TSTART, TSTOP]")
    for c in ccds:
        parts: list[ArrayLike] = [span]
        names = ["[TSTART, TSTOP]"]
        if info.ccd_gtis:
            gti_name = info.gti_names.get(c, f"STDGTI{c:02d}")
            if c not in info.ccd_gtis:
                raise InputFileError(
                    f"events file {info.path}: region events lie on CCD {c} but there is no "
                    f"{gti_name} extension"
                )
            parts.append(info.ccd_gtis[c])
            names.append(gti_name)
        filt, tables = info.time_filter(c)
        if filt is not None:
            parts.append(filt)
            names.append(f"{' | '.join(tables)} (data subspace)")
        if user is not None:
            parts.append(user)
            names.append("user GTI")
        if flare is not None:
            parts.append(flare)
            names.append("flare GTI")
        gtis[c] = gtilib.intersect(*parts)
        sources[c] = names
    return CcdGtis(gtis, sources, notes)


def stored_gti(gtis: CcdGtis, ccds: Mapping[int, float] | list[int]) -> NDArray[np.float64]:
    """The GTI a group records: the union of the GTIs of ``ccds`` (those fracexp comes from)."""
    chosen = [gtis.gtis[c] for c in ccds if c in gtis.gtis]
    return gtilib.union(*chosen) if chosen else np.empty((0, 2))


def _flag_clear_mask(tree: Tree) -> int:
    """FLAG bits an expression requires clear through top-level ``&&`` terms (0 if none).

    Recognises ``(FLAG & m) == 0`` (either order) and ``FLAG == 0``; anything else
    requires nothing (so the check below never warns on an expression it cannot read).
    """
    kind = tree[0]
    if kind == "and":
        mask = 0
        for item in tree[1]:
            mask |= _flag_clear_mask(item)
        return mask
    if kind != "cmp" or tree[1] != "==":
        return 0
    left, right = tree[2], tree[3]
    if left == ("num", 0):
        left, right = right, left
    if right != ("num", 0):
        return 0
    if left[0] == "col" and str(left[1]).upper() == "FLAG":
        return ALL_FLAG_BITS
    if left[0] == "bitand" and len(left[1]) == 2:
        a, b = left[1]
        if b[0] == "col":
            a, b = b, a
        if a[0] == "col" and str(a[1]).upper() == "FLAG" and b[0] == "num":
            return int(b[1]) & ALL_FLAG_BITS
    return 0


def subspace_warnings(info: EventFileInfo, screening: Screening) -> list[str]:
    """Where the screening asks for events the event file's data subspace excludes.

    A filtered event list records the PI, PATTERN and FLAG ranges it was cut to
    (:mod:`pipeline.read.subspace`); a screening wider than that finds fewer events than
    it asks for, so bands reaching outside those ranges silently lose counts.

    Parameters
    ----------
    info : EventFileInfo
    screening : Screening

    Returns
    -------
    list of str
        One message per column (PI, PATTERN, FLAG) the file was cut tighter than asked.
    """
    out = []
    sub = info.subspace
    where = f"events file {info.path}"
    lo, hi = screening.pi
    pi = sub.ranges("PI")
    if pi is not None and not pi.covers(lo, hi):
        out.append(
            f"{where} was already cut to PI {pi.text()} (data subspace) but the screening asks "
            f"PI [{lo}:{hi}]: bands outside {pi.text()} hold fewer counts than asked; set "
            "screening.pi inside the file's range"
        )
    pattern = sub.ranges("PATTERN")
    if pattern is not None and not pattern.covers(0, screening.pattern_max):
        out.append(
            f"{where} was already cut to PATTERN {pattern.text()} (data subspace) but the "
            f"screening asks PATTERN <= {screening.pattern_max}: patterns outside "
            f"{pattern.text()} are not in the file"
        )
    flags = sub.flag_masks()
    if flags is not None:
        asked = ALL_FLAG_BITS if screening.flag_zero else 0
        if screening.expression and not screening.flag_zero:
            try:
                tree = SelectionParser(
                    screening.expression, "screening", ConfigError, info.macro, ()
                ).parse()
            except XlcatError:
                tree = ("num", 1)
            asked |= _flag_clear_mask(tree)
        missing = flags.clear & ~asked
        if missing:
            text = "FLAG == 0" if asked == ALL_FLAG_BITS else f"(FLAG & {asked:#x}) == 0"
            out.append(
                f"{where} was already cut to {flags.text()} (data subspace) but the screening "
                f"asks {text if asked else 'any FLAG'}: events with FLAG bits {missing:#x} set "
                "are not in the file"
            )
    return out


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
            **regions.physical_text(),
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
