"""The pile-up check of a build's exposures and the study's annulus growth, done right.

For each exposure of a build file, in its source region (one circle, or an annulus whose
inner radius is ignored: the procedure starts without excision):

1. start with no excision, ``r_in = 0``;
2. measure the 0.5-2 keV observed-to-expected singles and doubles ratios s, d of the
   extraction annulus ``r_in <= r <= r_out`` (:mod:`pipeline.pileup.fractions` natively, or SAS
   epatplot, :mod:`pipeline.pileup.epatplot`);
3. while the rule calls it piled up, grow ``r_in`` to 3" and then in 0.5" steps
   (``r_in = max(3", r_in + 0.5")``; 1" = 20 EPIC sky pixels), and measure again;
4. stop at the first clean annulus, or, with a clear message, at the largest inner radius the
   method can judge: natively the annulus inside the reference annulus must keep at least
   ``min_counts`` events in 0.5-2 keV (and ``r_in`` stay below the reference's inner radius);
   with SAS the annulus itself must keep ``min_counts``.

Rules (docs/semantics.md §15): ``sas`` (the default, SAS's direction): piled up when
``s < 1 - n sigma_s`` or ``d > 1 + n sigma_d``. ``reference-workflow``: the reference study's
code, which tested the ratios the wrong way round (``s > 1 + n sigma_s`` or
``d < 1 - n sigma_d``); offered only for comparison with that study. Every step records what
both rules say.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.extract.binding import bind_to_event_file
from pipeline.pileup.fractions import (
    RATIO_BAND_EV,
    PatternCounts,
    Ratio,
    SourceEvents,
    otm_ratios,
    pattern_counts,
    read_source_events,
)
from pipeline.read.events import read_event_info
from pipeline.select.expression import compile_expression
from pipeline.select.regions import RegionSet, read_regions
from pipeline.select.shapes import Annulus, Circle, ds9_text, format_number
from pipeline.select.sky import SkyShape
from schemas.build import BuildConfig, Observation, Screening
from schemas.errors import ConfigError, InputFileError

__all__ = [
    "RULES",
    "PX_PER_ARCSEC",
    "FIRST_RADIUS_ARCSEC",
    "STEP_ARCSEC",
    "MIN_COUNTS",
    "is_piled",
    "SourceCircle",
    "source_circle",
    "PileupOptions",
    "Step",
    "ExposureCheck",
    "check_exposure",
    "check_build",
]

log = logging.getLogger(__name__)

Rule = Literal["sas", "reference-workflow"]
#: The rules, the default first.
RULES: tuple[Rule, ...] = ("sas", "reference-workflow")
#: EPIC sky pixels per arcsec (0.05" pixels).
PX_PER_ARCSEC = 20.0
#: The first excision radius and the growth step, arcsec (the reference study's).
FIRST_RADIUS_ARCSEC = 3.0
STEP_ARCSEC = 0.5
#: Fewest 0.5-2 keV events the compared regions may hold.
MIN_COUNTS = 200


def is_piled(s: Ratio, d: Ratio, rule: Rule, n_sigma: float = 3.0) -> bool:
    """Whether the ratios say piled up under ``rule`` (see the module docstring).

    Raises
    ------
    ConfigError
        For an unknown rule.
    """
    if rule == "sas":
        return bool(s.value < 1 - n_sigma * s.error or d.value > 1 + n_sigma * d.error)
    if rule == "reference-workflow":
        return bool(s.value > 1 + n_sigma * s.error or d.value < 1 - n_sigma * d.error)
    raise ConfigError(f"--rule {rule!r}: use one of {', '.join(RULES)}")


@dataclass(frozen=True)
class SourceCircle:
    """The exposure's source circle, in sky pixels and as its regions file writes it.

    Attributes
    ----------
    x, y, r_out : float
        Centre and outer radius, sky pixels.
    px_per_arcsec : float
        Sky pixels per arcsec: 20 for physical regions, the event file's WCS for sky ones.
    system : str
        ``physical`` or the celestial frame (``fk5``, ``icrs``, ``galactic``).
    text : str
        The shape as written.
    r_in : float
        The inner radius the file has now (0 for a circle), sky pixels.
    """

    x: float
    y: float
    r_out: float
    px_per_arcsec: float
    system: str
    text: str
    r_in: float = 0.0

    @property
    def r_out_arcsec(self) -> float:
        """The outer radius, arcsec."""
        return self.r_out / self.px_per_arcsec


def source_circle(written: RegionSet, bound: RegionSet) -> SourceCircle:
    """The single source circle (or annulus) of a regions file.

    Parameters
    ----------
    written : RegionSet
        As read (celestial shapes still :class:`SkyShape`).
    bound : RegionSet
        The same, converted to sky pixels with the event file's WCS.

    Raises
    ------
    ConfigError
        Unless the source is one circle or one annulus (the check needs a centre).
    """
    shapes, physical = written.source, bound.physical("source")
    kinds = [s.kind if isinstance(s, SkyShape) else type(s).__name__.lower() for s in shapes]
    if len(shapes) != 1 or kinds[0] not in ("circle", "annulus"):
        raise ConfigError(
            f"regions file {written.path}: the pile-up check needs one source circle (or "
            f"annulus); the source is {' + '.join(kinds)}: write it as one circle"
        )
    shape, p = shapes[0], physical[0]
    if not isinstance(p, Circle | Annulus):  # pragma: no cover - kinds checked above
        raise ConfigError(f"regions file {written.path}: source is not a circle")
    r_out = p.r if isinstance(p, Circle) else p.r_out
    r_in = 0.0 if isinstance(p, Circle) else p.r_in
    if isinstance(shape, SkyShape):
        scale = r_out / (shape.sizes[-1] * 3600.0)
        return SourceCircle(p.x, p.y, r_out, scale, shape.frame, shape.text, r_in)
    return SourceCircle(p.x, p.y, r_out, PX_PER_ARCSEC, "physical", ds9_text(shape), r_in)


@dataclass(frozen=True)
class PileupOptions:
    """How to check.

    Attributes
    ----------
    method : {"native", "sas"}
        Where the expected fractions come from: the source's outer annulus, or SAS epatplot.
    rule : {"sas", "reference-workflow"}
        Which rule decides (both are recorded).
    n_sigma : float
        The rule's threshold, in sigma (3).
    reference_arcsec : float or None
        Inner radius of the reference annulus, arcsec (native); default half the source radius.
    min_counts : int
        Fewest 0.5-2 keV events in the reference annulus and in the compared annulus.
    """

    method: Literal["native", "sas"] = "native"
    rule: Rule = "sas"
    n_sigma: float = 3.0
    reference_arcsec: float | None = None
    min_counts: int = MIN_COUNTS

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ConfigError(f"--rule {self.rule!r}: use one of {', '.join(RULES)}")
        if not (self.n_sigma > 0 and math.isfinite(self.n_sigma)):
            raise ConfigError(f"--sigma {self.n_sigma!r}: give a positive number")
        if self.min_counts < 1:
            raise ConfigError(f"--min-counts {self.min_counts}: give a positive count")
        if self.reference_arcsec is not None and not (
            self.reference_arcsec > 0 and math.isfinite(self.reference_arcsec)
        ):
            raise ConfigError(
                f"--reference-radius {self.reference_arcsec!r}: give a radius > 0 (arcsec)"
            )


@dataclass(frozen=True)
class Step:
    """One inner radius of the procedure and what it measured.

    Attributes
    ----------
    r_in_arcsec, r_in : float
        Inner radius, arcsec and sky pixels.
    n_band : int
        0.5-2 keV events (PATTERN 0-12) of the annulus.
    s, d : Ratio
        Observed-to-expected singles and doubles ratios, 0.5-2 keV.
    piled_sas, piled_reference : bool
        What the ``sas`` and the ``reference-workflow`` rule say.
    counts : PatternCounts
        The annulus's events, singles and doubles per energy bin.
    note : str or None
    """

    r_in_arcsec: float
    r_in: float
    n_band: int
    s: Ratio
    d: Ratio
    piled_sas: bool
    piled_reference: bool
    counts: PatternCounts = field(repr=False)
    note: str | None = None

    def piled(self, rule: Rule) -> bool:
        """What ``rule`` says."""
        return self.piled_sas if rule == "sas" else self.piled_reference

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "r_in_arcsec": self.r_in_arcsec,
            "r_in_px": self.r_in,
            "n_band": self.n_band,
            "s": self.s.to_dict(),
            "d": self.d.to_dict(),
            "piled_sas_rule": self.piled_sas,
            "piled_reference_workflow_rule": self.piled_reference,
            "fractions": self.counts.to_dict(),
            "note": self.note,
        }


@dataclass
class ExposureCheck:
    """The pile-up check of one exposure.

    Attributes
    ----------
    obsid, expid, instrument : str
    events, regions : Path
    options : PileupOptions
    circle : SourceCircle
    r_ref : float or None
        Inner radius of the reference annulus, sky pixels (native method).
    reference : PatternCounts or None
        The reference annulus's counts (native method).
    steps : list of Step
    status : {"clean", "piled-up", "too-few-counts"}
    message : str
    """

    obsid: str
    expid: str
    instrument: str
    events: Path
    regions: Path
    options: PileupOptions
    circle: SourceCircle
    r_ref: float | None
    reference: PatternCounts | None
    steps: list[Step] = field(default_factory=list)
    status: str = "clean"
    message: str = ""

    @property
    def label(self) -> str:
        """``obsid/expid``."""
        return f"{self.obsid}/{self.expid}"

    @property
    def chosen(self) -> Step | None:
        """The clean step (None unless the status is ``clean``)."""
        return self.steps[-1] if self.status == "clean" and self.steps else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        c = self.circle
        return {
            "obsid": self.obsid,
            "expid": self.expid,
            "instrument": self.instrument,
            "events": str(self.events),
            "regions": str(self.regions),
            "method": self.options.method,
            "rule": self.options.rule,
            "n_sigma": self.options.n_sigma,
            "source": {"x": c.x, "y": c.y, "r_out_px": c.r_out, "text": c.text},
            "px_per_arcsec": c.px_per_arcsec,
            "r_ref_px": self.r_ref,
            "reference": self.reference.to_dict() if self.reference is not None else None,
            "steps": [s.to_dict() for s in self.steps],
            "status": self.status,
            "chosen_r_in_arcsec": self.chosen.r_in_arcsec if self.chosen else None,
            "message": self.message,
        }


def _sas_expression(circle: SourceCircle, r_in: float, screening: Screening) -> str:
    x, y, r = (format_number(v) for v in (circle.x, circle.y, circle.r_out))
    shape = f"annulus({x},{y},{format_number(r_in)},{r})" if r_in > 0 else f"circle({x},{y},{r})"
    parts = [f"((X,Y) IN {shape})"]
    if screening.flag_zero:
        parts.append("(FLAG==0)")
    if screening.expression:
        parts.append(f"({screening.expression})")
    return " && ".join(parts)


class _Measure:
    """Measures one inner radius, natively or with SAS."""

    def __init__(
        self,
        events: SourceEvents,
        circle: SourceCircle,
        r_ref: float | None,
        options: PileupOptions,
        sas: dict[str, Any] | None,
        screening: Screening,
        label: str,
    ) -> None:
        self.events, self.circle, self.r_ref = events, circle, r_ref
        self.options, self.sas, self.screening, self.label = options, sas, screening, label
        self.reference = pattern_counts(events, events.r >= r_ref) if r_ref is not None else None

    def __call__(self, r_in_arcsec: float) -> Step:
        ev, r_in = self.events, r_in_arcsec * self.circle.px_per_arcsec
        counts = pattern_counts(ev, ev.r >= r_in)
        note = None
        if self.options.method == "native":
            assert self.r_ref is not None and self.reference is not None
            inner = pattern_counts(ev, (ev.r >= r_in) & (ev.r < self.r_ref))
            ratios = otm_ratios(inner, self.reference)
            s, d, n_band, note = ratios.s, ratios.d, ratios.n_band, ratios.note
        else:
            from pipeline.pileup.epatplot import run_epatplot

            assert self.sas is not None
            s, d, _ = run_epatplot(
                ev.path,
                _sas_expression(self.circle, r_in, self.screening),
                env=self.sas["env"],
                timeout=self.sas["timeout"],
                where=f'pile-up check {self.label} r_in={format_number(r_in_arcsec)}"',
                tmp_root=self.sas.get("tmp_dir"),
            )
            n_band = ev.count(r_in, ev.r_out)
        n = self.options.n_sigma
        step = Step(
            r_in_arcsec,
            r_in,
            n_band,
            s,
            d,
            is_piled(s, d, "sas", n),
            is_piled(s, d, "reference-workflow", n),
            counts,
            note,
        )
        log.info(
            '%s r_in=%g": s=%.4f+-%.4f d=%.4f+-%.4f; piled up by the SAS rule: %s, by the '
            "reference-workflow rule: %s",
            self.label,
            r_in_arcsec,
            s.value,
            s.error,
            d.value,
            d.error,
            step.piled_sas,
            step.piled_reference,
        )
        return step


def _grow(check: ExposureCheck, measure: _Measure, events: SourceEvents) -> None:
    """The growth: r_in = 0, 3", then +0.5" while piled up, up to a clean annulus or a limit."""
    opts, circle = check.options, check.circle
    scale, band = circle.px_per_arcsec, RATIO_BAND_EV
    r_arcsec = 0.0
    while True:
        step = measure(r_arcsec)
        check.steps.append(step)
        if not step.piled(opts.rule):
            check.status = "clean"
            check.message = (
                "clean without excision"
                if r_arcsec == 0
                else f'clean with the core excised: annulus r_in = {format_number(r_arcsec)}"'
            )
            return
        nxt = max(FIRST_RADIUS_ARCSEC, r_arcsec + STEP_ARCSEC)
        r_px = nxt * scale
        if opts.method == "native":
            assert check.r_ref is not None
            r_ref_arcsec = check.r_ref / scale
            left = int(
                np.count_nonzero(
                    (events.r >= r_px) & (events.r < check.r_ref) & events.in_band(*band)
                )
            )
            if r_px >= check.r_ref:
                why = (
                    f'the next inner radius {format_number(nxt)}" reaches the reference annulus '
                    f'({r_ref_arcsec:.4g}"-{circle.r_out_arcsec:.4g}"): nothing would be left '
                    "to compare"
                )
            elif left < opts.min_counts:
                why = (
                    f'the next inner radius {format_number(nxt)}" would leave {left} events '
                    f'(0.5-2 keV) inside the reference annulus at {r_ref_arcsec:.4g}", fewer '
                    f"than {opts.min_counts}"
                )
            else:
                why = ""
        else:
            left = events.count(r_px, circle.r_out, band)
            why = (
                ""
                if r_px < circle.r_out and left >= opts.min_counts
                else f'the next inner radius {format_number(nxt)}" would leave {left} events '
                f"(0.5-2 keV), fewer than {opts.min_counts}"
            )
        if why:
            check.status = "piled-up"
            check.message = (
                f'still piled up at r_in = {format_number(r_arcsec)}" (stopped: {why}); use a '
                "larger source circle"
                + (" or a larger --reference-radius" if opts.method == "native" else "")
                + ", or leave this exposure out"
            )
            return
        r_arcsec = nxt


def check_exposure(
    obs: Observation,
    options: PileupOptions,
    sas: dict[str, Any] | None = None,
) -> ExposureCheck:
    """Run the pile-up check and the annulus growth on one exposure of a build.

    Parameters
    ----------
    obs : Observation
        From the build file (event file, regions, screening).
    options : PileupOptions
    sas : dict, optional
        With ``options.method == "sas"``: ``env`` (the SAS commands' environment, with
        ``SAS_CCF``), ``timeout`` and optionally ``tmp_dir``.

    Returns
    -------
    ExposureCheck

    Raises
    ------
    ConfigError
        The source is not one circle, or the reference radius does not fit inside it.
    InputFileError
        Unreadable event or regions file.
    """
    info = read_event_info(obs.events)
    written = read_regions(obs.regions)
    bound = bind_to_event_file(obs.events, obs.screening, obs.flare, written, info)
    circle = source_circle(written, bound.regions)
    screening = bound.screening
    extra = (
        compile_expression(
            screening.expression,
            macros=info.macro,
            source=f"screening of {obs.obsid}",
        )
        if screening.expression
        else None
    )
    events = read_source_events(obs.events, (circle.x, circle.y), circle.r_out, screening, extra)
    label = f"{obs.obsid}/{info.exposure}"
    r_ref = None
    if options.method == "native":
        r_ref_arcsec = (
            circle.r_out_arcsec / 2
            if options.reference_arcsec is None
            else options.reference_arcsec
        )
        r_ref = r_ref_arcsec * circle.px_per_arcsec
        if not r_ref < circle.r_out:
            raise ConfigError(
                f"--reference-radius {format_number(r_ref_arcsec)}: not inside the source circle "
                f'of {obs.regions} (radius {circle.r_out_arcsec:.4g}"); give a smaller radius'
            )
    measure = _Measure(events, circle, r_ref, options, sas, screening, label)
    check = ExposureCheck(
        obs.obsid,
        info.exposure,
        info.instrument,
        obs.events,
        obs.regions,
        options,
        circle,
        r_ref,
        measure.reference,
    )
    n_all = events.count(0.0, circle.r_out)
    n_ref = events.count(r_ref, circle.r_out) if r_ref is not None else n_all
    if r_ref is not None and n_ref < options.min_counts:
        check.steps.append(measure(0.0))
        check.status = "too-few-counts"
        check.message = (
            f'the reference annulus ({r_ref / circle.px_per_arcsec:.4g}"-'
            f'{circle.r_out_arcsec:.4g}") holds {n_ref} events in 0.5-2 keV, fewer than '
            f"{options.min_counts}: the native check cannot judge this exposure; use SAS "
            "(--method sas) or a larger source radius"
        )
        return check
    if n_all < options.min_counts:
        raise InputFileError(
            f"regions file {obs.regions}: the source circle holds {n_all} events of "
            f"{obs.events} in 0.5-2 keV, fewer than {options.min_counts}; check the region"
        )
    _grow(check, measure, events)
    return check


def check_build(
    config: BuildConfig,
    options: PileupOptions,
    obsids: Sequence[str] | None = None,
    sas: Callable[[Observation], dict[str, Any]] | None = None,
    on_skip: Callable[[str], None] | None = None,
) -> list[ExposureCheck]:
    """Check every EPIC exposure of a build (or those of ``obsids``).

    The check reads the EPIC PATTERN column: NuSTAR exposures (no event patterns; their
    pile-up is negligible at NuSTAR's rates, docs/semantics.md §20) are skipped, each with
    one line to ``on_skip``.

    Parameters
    ----------
    config : BuildConfig
    options : PileupOptions
    obsids : sequence of str, optional
        Only these observations (all their exposures).
    sas : callable, optional
        With ``options.method == "sas"``: the ``sas`` argument of :func:`check_exposure` for an
        observation (its environment holds the observation's calibration index).
    on_skip : callable, optional
        Told one line per exposure left out (NuSTAR).

    Raises
    ------
    ConfigError
        An obsid that is not in the build file, no EPIC exposure to check, and what
        :func:`check_exposure` raises.
    """
    chosen = list(config.observations)
    if obsids:
        known = {o.obsid for o in chosen}
        unknown = [o for o in obsids if o not in known]
        if unknown:
            raise ConfigError(
                f"--obsid {unknown[0]}: not in build file {config.path}; its obsids are "
                f"{', '.join(sorted(known))}"
            )
        chosen = [o for o in chosen if o.obsid in set(obsids)]
    epic = []
    for o in chosen:
        if read_event_info(o.events).is_nustar:
            if on_skip is not None:
                on_skip(
                    f"{o.obsid} {o.events.name}: skipped, a NuSTAR list (the pile-up check "
                    "reads EPIC event patterns)"
                )
        else:
            epic.append(o)
    if not epic:
        raise ConfigError(
            f"build file {config.path}: no EPIC (pn, MOS) exposure to check for pile-up; "
            "the check reads EPIC event patterns"
        )
    return [check_exposure(o, options, sas(o) if sas is not None else None) for o in epic]
