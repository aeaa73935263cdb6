"""Binding an observation's settings to its event file: camera defaults, macros, sky regions.

Some of what a build file says can only be settled once the event file is read:

- the default screening (no ``screening`` table) is the camera's (docs/semantics.md §1),
  and a ``#XMMEA_EP`` / ``#XMMEA_EM`` the EVENTS header lacks becomes ``(FLAG==0)``;
- flare-filter keys the file leaves out take the camera's defaults (§9);
- regions in a celestial system are converted to physical pixels with the file's X/Y
  column WCS (§2).

:func:`bind_to_event_file` does all three. The build's planner
(:mod:`pipeline.build.plan`) calls it for every exposure, so the job every backend receives,
the exposure's fingerprint and the stored attributes all see the settings actually applied.
What the camera defaults need of the EVENTS header (camera, mode, exposure key, the default
macros) is an :class:`EventFacts`, small and JSON-able: the planner records it with the event
file in the store (``inputs.files``), so a re-run with an unchanged file binds without
opening it. Sky regions need the file's WCS and read its EVENTS header whenever they are
bound. A job made by hand is bound by the backend that prepares it (:func:`bind_job`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipeline.extract.jobs import ObservationJob
from pipeline.select.regions import RegionSet
from schemas.build import (
    DEFAULT_FLARE,
    DEFAULT_SCREENING,
    DefaultScreening,
    FlareFilter,
    Screening,
    default_screening,
    flare_defaults_for,
)

if TYPE_CHECKING:
    from pipeline.read.events import EventFileInfo

__all__ = [
    "HeaderFacts",
    "EventFacts",
    "Bound",
    "default_macros",
    "macro_fallback",
    "needs_binding",
    "bind_screening",
    "bind_flare",
    "bind_to_event_file",
    "bind_job",
]

_MACRO = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)")


class HeaderFacts(Protocol):
    """What binding reads of an EVENTS header: :class:`EventFacts` or an ``EventFileInfo``."""

    @property
    def path(self) -> str:
        """The event file, for notes."""
        ...

    @property
    def instrument(self) -> str:
        """``PN``, ``M1`` or ``M2``."""
        ...

    def macro(self, name: str) -> str | None:
        """The text of header keyword ``name`` (a selection macro), or None."""
        ...


def default_macros(instrument: str) -> tuple[str, ...]:
    """The header keywords a camera's default screening and flare filter name (``XMMEA_EP``)."""
    names: set[str] = set()
    for table in (DEFAULT_SCREENING, DEFAULT_FLARE):
        text = table.get(instrument, {}).get("expression")  # none for NuSTAR
        names.update(n.upper() for n in _MACRO.findall(text or ""))
    return tuple(sorted(names))


@dataclass(frozen=True)
class EventFacts:
    """What binding and the store's exposure key need of an event file's EVENTS header.

    Attributes
    ----------
    path : str
        The event file.
    instrument : {"PN", "M1", "M2"}
    expid : str
        The exposure key (:func:`pipeline.read.events.exposure_key`).
    datamode : str
        ``IMAGING`` (other modes are refused when the file is read).
    macros : dict of str to (str or None)
        The camera's default macros (:func:`default_macros`): the keyword's text, or None
        when the header lacks it.
    """

    path: str
    instrument: str
    expid: str
    datamode: str
    macros: dict[str, str | None]

    def macro(self, name: str) -> str | None:
        """The text of macro ``#name``, or None when the header lacks it.

        Raises
        ------
        KeyError
            For a name that is not one of the camera's default macros (not recorded).
        """
        return self.macros[name.upper()]

    @classmethod
    def from_info(cls, info: EventFileInfo) -> EventFacts:
        """The facts of a read EVENTS header."""
        return cls(
            path=info.path,
            instrument=info.instrument,
            expid=info.exposure,
            datamode=info.datamode,
            macros={n: info.macro(n) for n in default_macros(info.instrument)},
        )

    def record(self) -> dict[str, Any]:
        """The JSON-able fields the planner adds to the event file's record in ``inputs.files``."""
        return {
            "instrument": self.instrument,
            "expid": self.expid,
            "datamode": self.datamode,
            "macros": dict(self.macros),
        }

    @classmethod
    def from_record(cls, path: str, record: Mapping[str, Any]) -> EventFacts | None:
        """The facts a stored file record holds, or None when it lacks some (an older record)."""
        instrument = record.get("instrument")
        macros = record.get("macros")
        if (
            instrument not in DEFAULT_SCREENING
            or not isinstance(record.get("expid"), str)
            or not isinstance(record.get("datamode"), str)
            or not isinstance(macros, dict)
            or not set(default_macros(str(instrument))) <= set(macros)
        ):
            return None
        return cls(
            path=path,
            instrument=str(instrument),
            expid=str(record["expid"]),
            datamode=str(record["datamode"]),
            macros={str(k): (None if v is None else str(v)) for k, v in macros.items()},
        )


def macro_fallback(text: str, info: HeaderFacts) -> tuple[str, list[str]]:
    """``text`` with every ``#NAME`` the EVENTS header lacks replaced by ``(FLAG==0)``.

    Returns
    -------
    (str, list of str)
        The expression and a note per replaced macro.
    """
    notes = []

    def substitute(m: re.Match[str]) -> str:
        if info.macro(m.group(1)) is None:
            notes.append(
                f"#{m.group(1)} is not in the EVENTS header of {info.path}; used (FLAG==0) instead"
            )
            return "(FLAG==0)"
        return m.group(0)

    return _MACRO.sub(substitute, text), notes


def _flare_is_complete(flare: FlareFilter | None) -> bool:
    return flare is None or set(DEFAULT_FLARE["PN"]) <= set(flare.model_fields_set)


def _screening_is_unbound(screening: Screening) -> bool:
    return isinstance(screening, DefaultScreening) and screening.instrument is None


def needs_binding(screening: Screening, flare: FlareFilter | None, regions: RegionSet) -> bool:
    """True when a setting waits for the event file (default screening, flare keys, sky regions)."""
    return _screening_is_unbound(screening) or not _flare_is_complete(flare) or regions.needs_wcs


def bind_screening(screening: Screening, info: HeaderFacts) -> tuple[Screening, list[str]]:
    """The camera's default screening in place of an unbound :class:`DefaultScreening`.

    A screening the build file set is returned as it is (its macros must be in the header,
    docs/semantics.md §8); a default one whose macro the header lacks uses ``(FLAG==0)``.
    """
    if not _screening_is_unbound(screening):
        return screening, []
    bound = default_screening(info.instrument)
    notes = [f"screening: the {info.instrument} default (docs/semantics.md §1)"]
    if bound.expression:
        text, missing = macro_fallback(bound.expression, info)
        if missing:
            bound = bound.model_copy(update={"expression": text})
            notes += [f"screening: {n}" for n in missing]
    return bound, notes


def bind_flare(
    flare: FlareFilter | None, info: HeaderFacts
) -> tuple[FlareFilter | None, list[str]]:
    """The flare filter with the keys the build file left out set to the camera's defaults."""
    if _flare_is_complete(flare):
        return flare, []
    assert flare is not None  # _flare_is_complete(None) is True
    bound, defaulted = flare_defaults_for(flare, info.instrument)
    note = f"flare filter: {', '.join(defaulted)} from the {info.instrument} defaults"
    return bound, [note + " (docs/semantics.md §9)"]


@dataclass(frozen=True)
class Bound:
    """An observation's settings once bound to its event file, and what was done."""

    screening: Screening
    flare: FlareFilter | None
    regions: RegionSet
    notes: tuple[str, ...]


def bind_to_event_file(
    events: Path,
    screening: Screening,
    flare: FlareFilter | None,
    regions: RegionSet,
    facts: HeaderFacts | None = None,
) -> Bound:
    """Bind the screening, flare filter and regions of one observation to its event file.

    Parameters
    ----------
    events : pathlib.Path
        Event file. Its EVENTS header is read for the camera defaults only when ``facts`` is
        not given, and for sky regions (their X/Y column WCS) always.
    screening, flare, regions
        As the build file gave them.
    facts : EventFacts or EventFileInfo, optional
        The header's facts, when already known (the planner's record of an unchanged file).

    Returns
    -------
    Bound
        Settings that need no binding come back as they are; binding a bound value again
        changes nothing.

    Raises
    ------
    InputFileError
        If the event file is unusable (not an EPIC imaging list: INSTRUME, DATAMODE), or the
        regions are celestial and the file's X/Y column WCS is absent or malformed (one line
        naming the file and the keyword).
    """
    if not needs_binding(screening, flare, regions):
        return Bound(screening, flare, regions, ())
    notes: list[str] = []
    if _screening_is_unbound(screening) or not _flare_is_complete(flare):
        if facts is None:
            from pipeline.read.events import read_event_info

            facts = EventFacts.from_info(read_event_info(events))
        screening, s_notes = bind_screening(screening, facts)
        flare, f_notes = bind_flare(flare, facts)
        notes += s_notes + f_notes
    if regions.needs_wcs:
        from pipeline.read.wcs import read_sky_wcs  # astropy.wcs: only for celestial regions

        sky = read_sky_wcs(events)
        regions = regions.resolve(sky.wcs, {"events_file": sky.path, **sky.keywords})
        notes.append(
            f"regions: {len(regions.conversion['shapes']) if regions.conversion else 0} "
            f"celestial shapes converted with the X/Y column WCS of {sky.path}"
        )
    return Bound(screening, flare, regions, tuple(notes))


def bind_job(job: ObservationJob, facts: HeaderFacts | None = None) -> ObservationJob:
    """``job`` with its settings bound to its event file (:func:`bind_to_event_file`).

    The planner's jobs are bound already and come back unchanged without reading anything;
    a job made by hand (tests, the Python API) is bound here, its ``notes`` extended.

    Parameters
    ----------
    job : ObservationJob
    facts : EventFacts or EventFileInfo, optional
        The event file's header facts, when already read.

    Returns
    -------
    ObservationJob
    """
    if not needs_binding(job.screening, job.flare, job.regions):
        return job
    bound = bind_to_event_file(job.events, job.screening, job.flare, job.regions, facts)
    return dataclasses.replace(
        job,
        screening=bound.screening,
        flare=bound.flare,
        regions=bound.regions,
        notes=job.notes + bound.notes,
    )
