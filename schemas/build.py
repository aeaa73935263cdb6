"""The build file: TOML declaring observations, screening, flare filter, time bin, energy schemes.

Minimal example (paths are relative to the build file)::

    store = "ngc5506.zarr"
    time_bin = 128.0

    [[observations]]
    obsid = "0201830201"
    events = "0201830201/pn_filtered.fits"
    regions = "0201830201/ds9.reg"

    [schemes]
    1a   = { unit = "keV",  edges = [2, 10] }
    8ch  = { unit = "chan", lin = [400, 2000, 8] }

Top-level ``screening`` and ``flare`` tables are defaults that an observation's
own ``screening`` / ``flare`` replace (``flare = false`` switches it off for one
observation). ``presets = ["ngc5506"]`` adds a preset's schemes.

Without any ``screening`` table an observation gets its camera's default screening
(:data:`DEFAULT_SCREENING`: pn ``PATTERN<=4 && #XMMEA_EP``, MOS ``PATTERN<=12 && #XMMEA_EM``),
and flare-filter keys the build file leaves out take the camera's defaults
(:data:`DEFAULT_FLARE`); the camera is known once the event file is read
(docs/semantics.md §1, §9).

NuSTAR FPMA/FPMB cleaned lists (docs/semantics.md §20) get no screening and no flare filter:
build-wide ``screening``/``flare`` tables are not applied to them and an observation's own are
refused (:mod:`pipeline.build.plan`). Their observation may name the module's housekeeping
file, ``hk = "nu<obsid>A_fpm.hk"``, whose LIVETIME column gives the live time per second. A
scheme's ``instruments = ["FPMA", "FPMB"]`` limits it to some instruments.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.errors import ConfigError
from schemas.names import is_obsid
from schemas.schemes import EnergyScheme, load_preset, scheme_from_spec

__all__ = [
    "Screening",
    "DefaultScreening",
    "DEFAULT_SCREENING",
    "DEFAULT_FLARE",
    "default_screening",
    "flare_defaults_for",
    "FlareFilter",
    "ObservationSpec",
    "SASOptions",
    "BuildFile",
    "SchemeOptions",
    "Observation",
    "BuildConfig",
    "load_build",
    "parse_build",
]

_Strict = ConfigDict(extra="forbid", frozen=True)


class Screening(BaseModel):
    """Event screening: ``PATTERN <= pattern_max && FLAG == 0 && PI IN [pi[0]:pi[1]]``.

    Attributes
    ----------
    pattern_max : int
        Largest PATTERN kept (4: singles and doubles).
    flag_zero : bool
        Keep only FLAG == 0 events.
    pi : [int, int]
        Inclusive PI range in eV (SAS ``PI IN [200:12000]``).
    expression : str or None
        An extra selection in SAS selectlib syntax, AND-ed (e.g. ``"#XMMEA_EP"``).
    """

    model_config = _Strict
    pattern_max: Annotated[int, Field(ge=0, le=12)] = 4
    flag_zero: bool = True
    pi: tuple[Annotated[int, Field(ge=0, le=20479)], Annotated[int, Field(ge=0, le=20479)]] = (
        200,
        12000,
    )
    expression: str | None = None

    @field_validator("pi")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] > v[1]:
            raise ValueError(f"lower PI {v[0]} is above upper PI {v[1]}")
        return v


class DefaultScreening(Screening):
    """The screening of an observation whose build file sets none: its camera's defaults.

    Made with the pn defaults and ``instrument=None``; once the event file's camera is
    known, :func:`default_screening` gives the camera's values with ``instrument`` set, so
    the input hash sees the screening actually applied (docs/semantics.md §1).

    Attributes
    ----------
    instrument : str or None
        ``"PN"``, ``"M1"``, ``"M2"`` once resolved; None before.
    """

    instrument: str | None = None
    pattern_max: Annotated[int, Field(ge=0, le=12)] = 4
    flag_zero: bool = False
    expression: str | None = "#XMMEA_EP"


#: Default screening per EPIC camera (docs/semantics.md §1): the SAS threads' light-curve
#: selections, ``#XMMEA_EP && PATTERN<=4`` (pn) and ``#XMMEA_EM && PATTERN<=12`` (MOS), with
#: the project's PI range 200..12000 eV. A header without the macro gets ``(FLAG==0)``, noted.
DEFAULT_SCREENING: dict[str, dict[str, Any]] = {
    "PN": {"pattern_max": 4, "flag_zero": False, "pi": (200, 12000), "expression": "#XMMEA_EP"},
    "M1": {"pattern_max": 12, "flag_zero": False, "pi": (200, 12000), "expression": "#XMMEA_EM"},
    "M2": {"pattern_max": 12, "flag_zero": False, "pi": (200, 12000), "expression": "#XMMEA_EM"},
    # NuSTAR cleaned lists are screened by nupipeline already: no PATTERN, FLAG or macro
    # (the lists have none of these columns; docs/semantics.md §20), the whole PI range
    "FPMA": {"pattern_max": 12, "flag_zero": False, "pi": (0, 4095), "expression": None},
    "FPMB": {"pattern_max": 12, "flag_zero": False, "pi": (0, 4095), "expression": None},
}

#: Default flare filter per EPIC camera (docs/semantics.md §9), the SAS thread "How to filter
#: EPIC event lists for flaring particle background": pn 10-12 keV singles, 0.4 counts/s; MOS
#: ``PI > 10000`` singles (PI in [10001:32767] for the 16-bit PI column), 0.35 counts/s.
DEFAULT_FLARE: dict[str, dict[str, Any]] = {
    "PN": {
        "threshold": 0.4,
        "pi": (10000, 12000),
        "pattern": 0,
        "bin": 100.0,
        "expression": "#XMMEA_EP",
    },
    "M1": {
        "threshold": 0.35,
        "pi": (10001, 32767),
        "pattern": 0,
        "bin": 100.0,
        "expression": "#XMMEA_EM",
    },
    "M2": {
        "threshold": 0.35,
        "pi": (10001, 32767),
        "pattern": 0,
        "bin": 100.0,
        "expression": "#XMMEA_EM",
    },
}


def default_screening(instrument: str) -> DefaultScreening:
    """The default screening of an EPIC camera (``"PN"``, ``"M1"``, ``"M2"``).

    Raises
    ------
    ConfigError
        For another camera name.
    """
    if instrument not in DEFAULT_SCREENING:
        raise ConfigError(
            f"screening: no default for camera {instrument!r}; use PN, M1, M2, FPMA or FPMB"
        )
    return DefaultScreening(instrument=instrument, **DEFAULT_SCREENING[instrument])


class FlareFilter(BaseModel):
    """Soft-proton flare filter, as the reference workflow ran it with evselect + tabgtigen.

    A ``bin``-second rate curve of the whole detector with
    ``PI IN [pi[0]:pi[1]] && PATTERN == pattern && <expression>`` is made; bins with
    ``RATE < threshold`` (or ``RATE <= threshold`` with ``comparison = "<="``) become
    good time (tabgtigen, prefraction = postfraction = 0.5). Keys the build file leaves out
    take the camera's defaults (:data:`DEFAULT_FLARE`, :func:`flare_defaults_for`); the class
    defaults below are the pn ones.

    Attributes
    ----------
    threshold : float
        Rate threshold in counts/s (default 0.4 for pn, 0.35 for MOS: the SAS thread's; the
        reference study used 0.7 for light curves).
    comparison : {"<", "<="}
        How RATE is compared with the threshold, as in tabgtigen's expression
        (``RATE<0.4`` or ``RATE<=0.4``; the default ``<`` is the reference workflow's).
    pi : [int, int]
        Inclusive PI range (10-12 keV).
    pattern : int
        PATTERN value selected (0: singles).
    bin : float
        Rate-curve bin in seconds.
    expression : str
        Extra selection; ``#XMMEA_EP`` is read from the EVENTS header (FLAG == 0 if
        the file lacks the keyword, recorded in provenance).
    """

    model_config = _Strict
    threshold: Annotated[float, Field(gt=0)] = 0.4
    comparison: Literal["<", "<="] = "<"
    pi: tuple[int, int] = (10000, 12000)
    pattern: Annotated[int, Field(ge=0, le=12)] = 0
    bin: Annotated[float, Field(gt=0)] = 100.0
    expression: str = "#XMMEA_EP"

    def rate_expression(self, threshold_text: str | None = None) -> str:
        """tabgtigen's expression, e.g. ``RATE<=0.4`` (``threshold_text``: the number as text)."""
        return f"RATE{self.comparison}{threshold_text or repr(self.threshold)}"

    def good(self, rate: Any) -> Any:
        """Which samples of a rate curve (array of counts/s) are good time."""
        return rate <= self.threshold if self.comparison == "<=" else rate < self.threshold


def flare_defaults_for(flare: FlareFilter, instrument: str) -> tuple[FlareFilter, list[str]]:
    """The flare filter with every key the build file left out set to the camera's default.

    Parameters
    ----------
    flare : FlareFilter
        As validated from the build file (``model_fields_set`` holds the keys written).
    instrument : {"PN", "M1", "M2"}

    Returns
    -------
    (FlareFilter, list of str)
        The filter with every field set (resolving it again changes nothing), and the keys
        taken from the defaults (empty when the file set them all).
    """
    if instrument not in DEFAULT_FLARE:
        raise ConfigError(f"flare: no default for camera {instrument!r}; use PN, M1 or M2")
    written = set(flare.model_fields_set)
    defaulted = sorted(set(DEFAULT_FLARE[instrument]) - written)
    values = {**DEFAULT_FLARE[instrument], **flare.model_dump(include=written)}
    return FlareFilter(**values), defaulted


class ObservationSpec(BaseModel):
    """One exposure of an observation (one event list) as written in the build file."""

    model_config = _Strict
    obsid: str
    events: str
    regions: str
    gti: str | None = None
    hk: str | None = None
    screening: Screening | None = None
    flare: FlareFilter | Literal[False] | None = None
    obsid_check: bool = True

    @field_validator("hk")
    @classmethod
    def _hk(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError(
                "is empty; give the NuSTAR housekeeping file (nu<obsid>A_fpm.hk) or leave hk out"
            )
        return v

    @field_validator("obsid", mode="before")
    @classmethod
    def _obsid(cls, v: Any) -> str:
        if not is_obsid(v):
            raise ValueError(
                f"{v!r} is not a 10-digit XMM-Newton obsid (ten ASCII digits 0-9) nor an "
                '11-digit NuSTAR one; write it as a quoted string, e.g. "0201830201"'
            )
        return str(v)


class SASOptions(BaseModel):
    """The build file's ``[sas]`` table: how the SAS backend runs its tasks.

    Paths are relative to the build file. Only the keys written in the file are
    passed on (and hashed into the groups' input hashes).

    Attributes
    ----------
    sas_dir : str or None
        SAS installation to use instead of ``$SAS_DIR``; its ``bin`` folder is put
        first on PATH for every SAS command. The SAS setup (``setsas.sh``) must still
        have been sourced for the libraries SAS needs.
    ccf : str or None
        Calibration index file (``ccf.cif``) for every observation, instead of
        ``$SAS_CCF`` or the ``ccf.cif`` found next to or above each event file.
    timeout : float
        Seconds one SAS command may run before it is killed (default 3600).
    keep_temp : bool
        Keep each task's temporary folder (outputs and logs) after success too.
    tmp_dir : str or None
        Folder for the temporary task folders (default: the system's temporary folder).
    cache : bool
        Reuse the outputs of band tasks that already succeeded with identical inputs
        (a content-addressed cache beside the store).
    spectra : bool
        Also make each exposure's source and background spectra, RMF and ARF
        (evselect, backscale, rmfgen, arfgen; one task per exposure) and store them.
    """

    model_config = _Strict
    sas_dir: str | None = None
    ccf: str | None = None
    timeout: Annotated[float, Field(gt=0)] = 3600.0
    keep_temp: bool = False
    tmp_dir: str | None = None
    cache: bool = True
    spectra: bool = True


class BuildFile(BaseModel):
    """The whole build file as written (before paths and schemes are resolved)."""

    model_config = _Strict
    store: str
    time_bin: Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
    backend: str = "native"
    presets: list[str] = []
    screening: Screening | None = None
    flare: FlareFilter | None = None
    observations: Annotated[list[ObservationSpec], Field(min_length=1)]
    schemes: dict[str, dict[str, Any]] = {}
    sas: SASOptions = SASOptions()

    @model_validator(mode="after")
    def _unique_observations(self) -> BuildFile:
        # one obsid may list several exposures (pn, MOS1, MOS2): one event file each
        seen: set[tuple[str, str]] = set()
        for i, obs in enumerate(self.observations):
            if (obs.obsid, obs.events) in seen:
                raise ValueError(
                    f"observations[{i}]: obsid {obs.obsid} with events {obs.events} is listed twice"
                )
            seen.add((obs.obsid, obs.events))
        return self


@dataclass(frozen=True)
class SchemeOptions:
    """Extraction options attached to a scheme in a build (not part of its identity)."""

    abscorr: bool | None = None
    backend: str | None = None
    instruments: tuple[str, ...] | None = None

    def applies_to(self, instrument: str) -> bool:
        """Whether the scheme is made for ``instrument`` (no ``instruments`` key: every one)."""
        return self.instruments is None or instrument in self.instruments


@dataclass(frozen=True)
class Observation:
    """An observation with absolute paths and its effective screening and flare filter.

    ``screening`` is a :class:`DefaultScreening` (not yet bound to a camera) when the build
    file sets none; ``flare`` keeps the keys the file wrote (``model_fields_set``) so that
    the others can take the camera's defaults.
    """

    obsid: str
    events: Path
    regions: Path
    gti: Path | None
    screening: Screening
    flare: FlareFilter | None
    obsid_check: bool = True
    hk: Path | None = None
    own_screening: bool = False
    own_flare: bool = False


@dataclass(frozen=True)
class BuildConfig:
    """A validated build: what to extract, where to put it."""

    path: Path
    store: Path
    time_bin: float
    backend: str
    observations: tuple[Observation, ...]
    schemes: dict[str, EnergyScheme]
    scheme_options: dict[str, SchemeOptions]
    backend_options: dict[str, dict[str, Any]]
    text_sha256: str

    def scheme_backend(self, scheme: str) -> str:
        """The backend that extracts ``scheme`` (its own ``backend`` key, else the build's)."""
        return self.scheme_options[scheme].backend or self.backend

    def observation(self, obsid: str) -> Observation:
        """The observation with this obsid."""
        for obs in self.observations:
            if obs.obsid == obsid:
                return obs
        raise KeyError(obsid)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys the build-file format allows beside the last part of ``loc``."""
    models: dict[str, type[BaseModel]] = {
        "": BuildFile,
        "observations": ObservationSpec,
        "screening": Screening,
        "flare": FlareFilter,
        "sas": SASOptions,
    }
    parent = next((str(p) for p in reversed(loc[:-1]) if isinstance(p, str)), "")
    model = models.get(parent)
    return [] if model is None else [f.alias or k for k, f in model.model_fields.items()]


def _first_error(exc: ValidationError, source: str) -> ConfigError:
    """Every problem of a failed validation, in one line: unknown keys first, with the
    closest valid name; a required key that an unknown one misspells is not repeated."""
    errors = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if p not in ("FlareFilter", "literal[False]"))
        errors.append((loc, err))
    unknown = [(loc, e) for loc, e in errors if e["type"] == "extra_forbidden"]
    meant: set[tuple[Any, ...]] = set()
    parts = []
    for loc, _ in unknown:
        allowed = _allowed_keys(loc)
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        if close:
            hint = f"unknown key; did you mean {close[0]}?"
            meant.add((*loc[:-1], close[0]))
        elif allowed:
            hint = f"unknown key; allowed keys are {', '.join(allowed)}"
        else:
            hint = "unknown key (check the spelling against the README's build-file format)"
        parts.append(f"{_loc(loc)}: {hint}")
    for loc, err in errors:
        if err["type"] == "extra_forbidden" or (err["type"] == "missing" and loc in meant):
            continue
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            msg = "is required"
        parts.append(f"{_loc(loc)}: {msg}")
    return ConfigError(f"build file {source}: " + "; ".join(parts))


def parse_build(text: str, path: str | os.PathLike[str]) -> BuildConfig:
    """Validate build-file text and resolve paths and schemes.

    Parameters
    ----------
    text : str
        TOML text.
    path : str or os.PathLike
        Where the text came from; relative paths inside are relative to its folder.

    Returns
    -------
    BuildConfig

    Raises
    ------
    ConfigError
        Naming the file, the key and what is wrong.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"build file {path}: not valid TOML ({exc})") from None
    try:
        spec = BuildFile.model_validate(raw)
    except ValidationError as exc:
        raise _first_error(exc, str(path)) from None
    base = path.parent.resolve()

    def resolve(p: str) -> Path:
        q = Path(os.path.expanduser(p))
        return q if q.is_absolute() else base / q

    schemes: dict[str, EnergyScheme] = {}
    options: dict[str, SchemeOptions] = {}
    declared: list[tuple[str, dict[str, Any], str]] = []
    for preset in spec.presets:
        for name, s in load_preset(preset).items():
            declared.append((name, s, f"preset {preset}"))
    declared += [(name, s, f"build file {path}") for name, s in spec.schemes.items()]
    for name, s, source in declared:
        scheme = scheme_from_spec(name, s, source=source)
        if name in schemes:
            raise ConfigError(
                f"{source}: scheme '{name}' is defined twice (also in an earlier preset or table); "
                "give one of them another name"
            )
        schemes[name] = scheme
        options[name] = SchemeOptions(
            abscorr=s.get("abscorr"),
            backend=s.get("backend"),
            instruments=tuple(s["instruments"]) if s.get("instruments") is not None else None,
        )
    if not schemes:
        raise ConfigError(
            f"build file {path}: schemes: no energy scheme defined (add [schemes] or presets)"
        )
    obsids = {o.obsid for o in spec.observations}
    for name, scheme in schemes.items():
        # OBSID/EXPID may also name a stored spectrum of the store (checked when planning)
        if scheme.reference is not None and "/" not in scheme.reference:
            if scheme.reference not in obsids:
                raise ConfigError(
                    f"build file {path}: schemes.{name}.equal_counts.reference: observation "
                    f"{scheme.reference} is not among the build's observations (or name a "
                    "stored spectrum as OBSID/EXPID)"
                )
    observations = []
    for obs in spec.observations:
        screening = obs.screening or spec.screening or DefaultScreening()
        flare = None if obs.flare is False else (obs.flare or spec.flare)
        observations.append(
            Observation(
                obsid=obs.obsid,
                events=resolve(obs.events),
                regions=resolve(obs.regions),
                gti=resolve(obs.gti) if obs.gti else None,
                screening=screening,
                flare=flare,
                obsid_check=obs.obsid_check,
                hk=resolve(obs.hk) if obs.hk else None,
                own_screening=obs.screening is not None,
                own_flare=obs.flare is not None and obs.flare is not False,
            )
        )
    # schemes against an explicit screening's PI range (eV: EPIC lists; NuSTAR ones refuse
    # their own and skip build-wide screenings); default screenings are checked in
    # pipeline.build.plan, once the camera (its PI units and default) is known
    for name, scheme in schemes.items():
        only = options[name].instruments
        if only is not None and all(i in ("FPMA", "FPMB") for i in only):
            continue
        c = scheme.canonical
        pi_lo, pi_hi = (
            (c["pi_lo"], c["pi_hi"])
            if scheme.pi_edges is None
            else (scheme.pi_edges[0], scheme.pi_edges[-1])
        )
        for resolved in observations:
            if isinstance(resolved.screening, DefaultScreening):
                continue
            lo, hi = resolved.screening.pi
            if pi_lo < lo or pi_hi > hi + 1:
                raise ConfigError(
                    f"build file {path}: scheme '{name}' spans PI [{pi_lo}, {pi_hi}), outside "
                    f"observation {resolved.obsid}'s screening PI range [{lo}, {hi}]; widen "
                    "screening.pi or change the scheme"
                )
    sas_options = spec.sas.model_dump(exclude_unset=True)
    for key in ("sas_dir", "ccf", "tmp_dir"):
        if sas_options.get(key):
            sas_options[key] = str(resolve(sas_options[key]))
    return BuildConfig(
        path=path.resolve(),
        store=resolve(spec.store),
        time_bin=float(spec.time_bin),
        backend=spec.backend,
        observations=tuple(observations),
        schemes=schemes,
        scheme_options=options,
        backend_options={"sas": sas_options},
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
    )


def load_build(path: str | os.PathLike[str]) -> BuildConfig:
    """Read and validate a build file.

    Parameters
    ----------
    path : str or os.PathLike
        TOML build file.

    Returns
    -------
    BuildConfig

    Raises
    ------
    ConfigError
        If the file is missing or invalid.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"build file {p}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"build file {p}: cannot be read ({exc})") from None
    return parse_build(text, p)


def canonical_json(obj: Any) -> str:
    """JSON text with sorted keys and no spaces, used for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
