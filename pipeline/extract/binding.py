"""Binding an observation's settings to its event file: camera defaults, macros, sky regions.

Some of what a build file says can only be settled once the event file is read:

- the default screening (no ``screening`` table) is the camera's (docs/semantics.md §1),
  and a ``#XMMEA_EP`` / ``#XMMEA_EM`` the EVENTS header lacks becomes ``(FLAG==0)``;
- flare-filter keys the file leaves out take the camera's defaults (§9);
- regions in a celestial system are converted to physical pixels with the file's X/Y
  column WCS (§2).

:func:`bind_to_event_file` does all three; :class:`pipeline.extract.jobs.ObservationJob`
calls it when it is made, so the job every backend receives, the input hash and the stored
attributes all see the settings actually applied. Each returns notes for provenance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pipeline.read.events import EventFileInfo, read_event_info
from pipeline.read.wcs import read_sky_wcs
from pipeline.select.regions import RegionSet
from schemas.build import (
    DEFAULT_FLARE,
    DefaultScreening,
    FlareFilter,
    Screening,
    default_screening,
    flare_defaults_for,
)

__all__ = [
    "Bound",
    "macro_fallback",
    "needs_binding",
    "bind_screening",
    "bind_flare",
    "bind_to_event_file",
]

_MACRO = re.compile(r"#([A-Za-z_][A-Za-z0-9_]*)")


def macro_fallback(text: str, info: EventFileInfo) -> tuple[str, list[str]]:
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


def needs_binding(screening: Screening, flare: FlareFilter | None, regions: RegionSet) -> bool:
    """True when a setting waits for the event file (default screening, flare keys, sky regions)."""
    unbound_screening = isinstance(screening, DefaultScreening) and screening.instrument is None
    return unbound_screening or not _flare_is_complete(flare) or regions.needs_wcs


def bind_screening(screening: Screening, info: EventFileInfo) -> tuple[Screening, list[str]]:
    """The camera's default screening in place of an unbound :class:`DefaultScreening`.

    A screening the build file set is returned as it is (its macros must be in the header,
    docs/semantics.md §8); a default one whose macro the header lacks uses ``(FLAG==0)``.
    """
    if not isinstance(screening, DefaultScreening) or screening.instrument is not None:
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
    flare: FlareFilter | None, info: EventFileInfo
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
    events: Path, screening: Screening, flare: FlareFilter | None, regions: RegionSet
) -> Bound:
    """Bind the screening, flare filter and regions of one observation to its event file.

    Parameters
    ----------
    events : pathlib.Path
        Event file (its EVENTS header is read; for sky regions also its X/Y column WCS).
    screening, flare, regions
        As the build file gave them.

    Returns
    -------
    Bound

    Raises
    ------
    InputFileError
        If the event file is unusable, or the regions are celestial and the file's X/Y column
        WCS is absent or malformed (one line naming the file and the keyword).
    """
    if not needs_binding(screening, flare, regions):
        return Bound(screening, flare, regions, ())
    info = read_event_info(events)
    screening, s_notes = bind_screening(screening, info)
    flare, f_notes = bind_flare(flare, info)
    notes = s_notes + f_notes
    if regions.needs_wcs:
        sky = read_sky_wcs(events)
        regions = regions.resolve(sky.wcs, {"events_file": sky.path, **sky.keywords})
        notes.append(
            f"regions: {len(regions.conversion['shapes']) if regions.conversion else 0} "
            f"celestial shapes converted with the X/Y column WCS of {sky.path}"
        )
    return Bound(screening, flare, regions, tuple(notes))
