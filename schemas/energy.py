"""Energy bands and energy-binning schemes of EPIC-pn light curves.

A *scheme* is a named list of band edges. It is declared in a build file (or a
preset) as one inline TOML table::

    8lch  = { unit = "keV",  log = [2, 10, 8], snap = "chan" }
    12cch = { unit = "keV",  equal_counts = { reference = "0201830201", n = 12, lo = 2, hi = 10 } }

and turned into PI edges (pn PI is in eV) by the project's conventions: a band
selects ``pi_lo <= PI < pi_hi``; keV edges become PI by ``round(keV * 1000)``;
channel edges become PI = 5 * channel (5 eV pn spectral channels, the standard
0:20479:5 binning of SAS pn spectra).

The identity of a scheme (:attr:`EnergyScheme.canonical`, :attr:`EnergyScheme.hash`)
is its PI edges for static schemes, so the same edges written as a rule or as an
explicit list are the same scheme; equal-count schemes are identified by their
definition (reference observation, n, range, minimum width), since their edges
come from data. Extraction options (``abscorr``, ``backend``) and ``note`` are not
part of the identity; read them from :class:`SchemeSpec`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.errors import ConfigError

__all__ = [
    "PI_PER_CHAN",
    "PI_MAX",
    "Band",
    "EnergyScheme",
    "EqualCountsSpec",
    "SchemeSpec",
    "chan_to_pi",
    "equal_count_edges",
    "kev_to_pi",
    "load_preset",
    "preset_names",
    "scheme_from_spec",
]

PI_PER_CHAN = 5
"""Width of one pn spectral channel in PI units (eV)."""
PI_MAX = 20480
"""Upper end of the pn PI range (channels 0..4095 cover PI 0..20479)."""

_TOL = 1e-6  # channels / rounding steps: a value this close to an integer counts as that integer
_KINDS = ("edges", "lin", "log", "equal_counts")
_OPTIONS = ("abscorr", "backend", "note")  # not part of a scheme's identity
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def kev_to_pi(e: float) -> int:
    """Convert an energy in keV to pn PI (eV), rounded to the nearest eV.

    Parameters
    ----------
    e : float
        Energy in keV.

    Returns
    -------
    int
        ``round(e * 1000)``, so 1.1 keV gives 1100 (not 1100.0000000000002).

    Raises
    ------
    ValueError
        If `e` is not finite.
    """
    x = float(e) * 1000.0
    if not math.isfinite(x):
        raise ValueError(f"energy {e!r} keV is not finite")
    return int(round(x))


def chan_to_pi(c: int) -> int:
    """Convert a pn spectral channel boundary to PI (eV): PI = 5 * channel.

    Parameters
    ----------
    c : int
        Channel number (5 eV channels; channel c covers PI [5c, 5c + 5)).

    Returns
    -------
    int
        PI of the lower boundary of channel `c`.
    """
    return PI_PER_CHAN * int(c)


def _ceil_tol(x: float) -> int:
    """Ceil, except that a value within ``_TOL`` of an integer is that integer."""
    r = round(x)
    return int(r) if abs(x - r) <= _TOL else math.ceil(x)


def _rule(lo: float, hi: float, n: int, kind: str) -> list[float]:
    """n + 1 linearly (lo + k (hi - lo)/n) or logarithmically (lo (hi/lo)^(k/n)) spaced edges."""
    if kind == "lin":
        vals = [lo + (hi - lo) * k / n for k in range(n + 1)]
    else:
        vals = [lo * (hi / lo) ** (k / n) for k in range(n + 1)]
    vals[0], vals[-1] = lo, hi  # exact end points
    return vals


# --------------------------------------------------------------------------- value types
@dataclass(frozen=True, order=True)
class Band:
    """One energy band, ``pi_lo <= PI < pi_hi`` with PI in eV.

    Parameters
    ----------
    pi_lo, pi_hi : int
        Band edges in PI (eV); ``0 <= pi_lo < pi_hi``.
    """

    pi_lo: int
    pi_hi: int

    def __post_init__(self) -> None:
        if not 0 <= int(self.pi_lo) < int(self.pi_hi):
            raise ValueError(f"Band needs 0 <= pi_lo < pi_hi, got [{self.pi_lo}, {self.pi_hi})")
        object.__setattr__(self, "pi_lo", int(self.pi_lo))
        object.__setattr__(self, "pi_hi", int(self.pi_hi))

    @property
    def e_lo(self) -> float:
        """Lower edge in keV (pi_lo / 1000)."""
        return self.pi_lo / 1000.0

    @property
    def e_hi(self) -> float:
        """Upper edge in keV (pi_hi / 1000)."""
        return self.pi_hi / 1000.0

    @property
    def label(self) -> str:
        """Human-readable label, e.g. ``"2.000-2.400 keV"``."""
        return f"{self.e_lo:.3f}-{self.e_hi:.3f} keV"

    def contains(self, pi: NDArray[np.integer]) -> NDArray[np.bool_]:
        """Boolean mask of the PI values inside the band (``pi_lo <= pi < pi_hi``).

        Parameters
        ----------
        pi : NDArray
            PI values (eV).

        Returns
        -------
        NDArray of bool
        """
        pi = np.asarray(pi)
        return (pi >= self.pi_lo) & (pi < self.pi_hi)


@dataclass(frozen=True)
class EnergyScheme:
    """A named energy-binning scheme.

    Build it with :func:`scheme_from_spec`. Static schemes have their PI edges at once;
    an ``equal_counts`` scheme has ``pi_edges = None`` until :meth:`resolve` is given the
    net spectrum of its reference observation.

    Parameters
    ----------
    name : str
        Scheme name, e.g. ``"8lch"``.
    spec : dict
        The declared spec, JSON-able, without ``abscorr``/``backend``/``note`` (provenance
        only; treat it as read-only).
    pi_edges : tuple of int or None
        Strictly increasing PI (eV) band edges; None while data-dependent and unresolved.
    reference : str or None
        Observation id of the reference spectrum for ``equal_counts``, else None.
    """

    name: str
    spec: dict
    pi_edges: tuple[int, ...] | None
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.pi_edges is not None:
            edges = tuple(int(p) for p in self.pi_edges)
            if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
                raise ValueError(f"scheme {self.name!r}: pi_edges {edges} not strictly increasing")
            object.__setattr__(self, "pi_edges", edges)
        elif self.reference is None:
            raise ValueError(f"scheme {self.name!r}: pi_edges is None but there is no reference")

    def __hash__(self) -> int:
        return hash((self.name, self.hash, self.pi_edges))

    @property
    def is_resolved(self) -> bool:
        """True when the PI edges are known."""
        return self.pi_edges is not None

    @property
    def bands(self) -> tuple[Band, ...]:
        """The bands, low to high.

        Raises
        ------
        ValueError
            If the scheme is data-dependent and not yet resolved (call :meth:`resolve`).
        """
        if self.pi_edges is None:
            raise ValueError(
                f"scheme {self.name!r} is an equal_counts scheme not yet resolved; "
                f"call resolve() with the net spectrum of {self.reference}"
            )
        e = self.pi_edges
        return tuple(Band(a, b) for a, b in zip(e[:-1], e[1:], strict=True))

    def _equal_counts(self) -> EqualCountsSpec:
        return SchemeSpec.model_validate(self.spec).equal_counts  # type: ignore[return-value]

    @property
    def canonical(self) -> dict[str, Any]:
        """The identity of the scheme, a JSON-able dict.

        ``{"kind": "edges", "pi_edges": [...]}`` for static schemes; for equal-count schemes
        ``{"kind": "equal_counts", "reference", "n", "pi_lo", "pi_hi", "min_width_chan"}``
        (resolving does not change it). The name is not part of the identity.
        """
        if self.reference is None:
            return {"kind": "edges", "pi_edges": list(self.pi_edges or ())}
        ec = self._equal_counts()
        unit = SchemeSpec.model_validate(self.spec).unit
        pi_lo, pi_hi = (_ec_pi(ec.lo, unit), _ec_pi(ec.hi, unit))
        return {
            "kind": "equal_counts",
            "reference": ec.reference,
            "n": ec.n,
            "pi_lo": pi_lo,
            "pi_hi": pi_hi,
            "min_width_chan": ec.min_width,
        }

    @property
    def hash(self) -> str:
        """First 16 hex digits of sha256 of the compact, key-sorted JSON of :attr:`canonical`."""
        text = json.dumps(self.canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def resolve(self, net_counts_per_chan: NDArray[np.floating], chan0: int) -> EnergyScheme:
        """Fix the edges of an ``equal_counts`` scheme from the reference net spectrum.

        Parameters
        ----------
        net_counts_per_chan : NDArray
            Net (background-subtracted) counts per 5 eV channel; element i is channel chan0 + i.
            It must cover the scheme's channel range.
        chan0 : int
            Channel number of the first element.

        Returns
        -------
        EnergyScheme
            A resolved copy (same name, spec, reference and identity); `self` for static schemes.

        Raises
        ------
        ConfigError
            If the spectrum does not cover the range or has no net counts in it.
        """
        if self.reference is None:
            return self
        ec = self._equal_counts()
        unit = SchemeSpec.model_validate(self.spec).unit
        c_lo, c_hi = _ec_pi(ec.lo, unit) // PI_PER_CHAN, _ec_pi(ec.hi, unit) // PI_PER_CHAN
        counts = np.asarray(net_counts_per_chan, dtype=float)
        i0, i1 = c_lo - int(chan0), c_hi - int(chan0)
        where = f"scheme {self.name!r}: equal_counts: spectrum of {self.reference}"
        if counts.ndim != 1 or i0 < 0 or i1 > counts.size:
            raise ConfigError(
                f"{where} covers channels [{chan0}, {chan0 + counts.size}), the "
                f"scheme needs [{c_lo}, {c_hi}); pass a full 0-4095 channel spectrum"
            )
        try:
            chans = equal_count_edges(counts[i0:i1], c_lo, c_hi, ec.n, ec.min_width)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return replace(self, pi_edges=tuple(chan_to_pi(c) for c in chans))


# --------------------------------------------------------------------------- equal counts
def equal_count_edges(
    counts: NDArray[np.floating], chan_lo: int, chan_hi: int, n: int, min_width: int = 1
) -> list[int]:
    """Channel boundaries splitting a net spectrum into `n` bands of nearly equal counts.

    Edges are channel *boundaries* (band k is channels [edge_k, edge_k+1)):
    edge_0 = chan_lo, edge_n = chan_hi and edge_k = chan_lo + argmin_j |C_j - k T / n|, where
    C_j is the net count below boundary j (C_0 = 0, C_m = T, m = chan_hi - chan_lo; the first
    j wins a tie). Negative net counts in a channel (background over-subtraction) are clipped
    to 0 here, so C is non-decreasing. Duplicate edges are dropped; then, walking up from the
    low end, an edge is kept only if it is at least `min_width` channels above the last kept
    edge, and if the last band ends up narrower than `min_width` the last interior edge is
    dropped. Fewer than `n` bands may result.

    Differences from the reference workflow's ``spec_2_ebins`` (aztools misc.py @ed675ec):
    it returns ``argmin|cumsum(counts) - k T/n|``, the index of the channel whose *inclusive*
    cumulative sum is nearest the target, so its interior edges sit one channel lower than
    the boundary used here for the same cumulative count, and its top edge is the last
    channel's index (1999 for 2-10 keV instead of the boundary 2000; used with
    ``PI in [5 lo : 5 hi)`` that leaves channel 1999 out). It neither clips negative counts
    nor enforces a minimum width.

    Parameters
    ----------
    counts : NDArray
        Net counts per channel; counts[i] is channel chan_lo + i, length chan_hi - chan_lo.
    chan_lo, chan_hi : int
        Channel range [chan_lo, chan_hi).
    n : int
        Requested number of bands (>= 1).
    min_width : int, optional
        Minimum band width in channels (default 1).

    Returns
    -------
    list of int
        Strictly increasing channel boundaries from chan_lo to chan_hi.

    Raises
    ------
    ValueError
        If the arguments are inconsistent (length, n < 1, min_width < 1).
    ConfigError
        If the spectrum has no positive net counts in [chan_lo, chan_hi).
    """
    c = np.asarray(counts, dtype=float)
    m = int(chan_hi) - int(chan_lo)
    if c.ndim != 1 or c.size != m or m < 1:
        raise ValueError(f"counts must be 1-d of length chan_hi - chan_lo = {m}, got {c.shape}")
    if n < 1 or min_width < 1:
        raise ValueError(f"n ({n}) and min_width ({min_width}) must be >= 1")
    cum = np.concatenate(([0.0], np.cumsum(np.clip(np.nan_to_num(c), 0.0, None))))
    total = cum[-1]
    if not total > 0:
        raise ConfigError(
            f"no positive net counts in channels [{chan_lo}, {chan_hi}); "
            "choose another reference observation or range"
        )
    inner = [int(chan_lo) + int(np.argmin(np.abs(cum - k * total / n))) for k in range(1, n)]
    edges = sorted(set([int(chan_lo), *inner, int(chan_hi)]))
    kept = [edges[0]]
    for e in edges[1:-1]:
        if e - kept[-1] >= min_width:
            kept.append(e)
    if len(kept) > 1 and chan_hi - kept[-1] < min_width:
        kept.pop()
    return [*kept, int(chan_hi)]


# --------------------------------------------------------------------------- validation
def _ec_pi(value: float, unit: str) -> int:
    return kev_to_pi(value) if unit == "keV" else chan_to_pi(int(round(value)))


class EqualCountsSpec(BaseModel):
    """``equal_counts`` table: reference obsid, n bands over [lo, hi) in the scheme's unit."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    reference: str
    n: int = Field(ge=1)
    lo: float
    hi: float
    min_width: int = Field(default=1, ge=1)

    @field_validator("reference")
    @classmethod
    def _obsid(cls, v: str) -> str:
        if not re.fullmatch(r"\d{10}", v):
            raise ValueError(
                f"{v!r} is not a 10-digit observation id; write it as a quoted "
                'string, e.g. "0761220101"'
            )
        return v

    @model_validator(mode="after")
    def _range(self) -> EqualCountsSpec:
        if not 0 < self.lo < self.hi:
            raise ValueError(f"need 0 < lo < hi, got lo ({self.lo:g}) and hi ({self.hi:g})")
        return self


def _check_rule(v: list[float] | None) -> list[float] | None:
    if v is None:
        return v
    if len(v) != 3:
        raise ValueError(f"must be [lo, hi, n], got {len(v)} values")
    lo, hi, n = v
    if n != int(n) or n < 1:
        raise ValueError(f"n ({n:g}) must be an integer >= 1")
    if not lo < hi:
        raise ValueError(f"lo ({lo:g}) must be < hi ({hi:g})")
    if lo < 0:
        raise ValueError(f"lo ({lo:g}) must be >= 0")
    return v


class SchemeSpec(BaseModel):
    """One scheme's declaration as written in a build file or preset (see module docstring)."""

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False, frozen=True, populate_by_name=True
    )
    unit: Literal["keV", "chan"]
    edges: list[float] | None = None
    lin: list[float] | None = None
    log: list[float] | None = None
    equal_counts: EqualCountsSpec | None = None
    snap: Literal["chan"] | None = None
    round_step: float | None = Field(default=None, alias="round", gt=0)
    abscorr: bool | None = None
    backend: str | None = None
    note: str | None = None

    @field_validator("lin")
    @classmethod
    def _lin(cls, v: list[float] | None) -> list[float] | None:
        return _check_rule(v)

    @field_validator("log")
    @classmethod
    def _log(cls, v: list[float] | None) -> list[float] | None:
        v = _check_rule(v)
        if v is not None and v[0] <= 0:
            raise ValueError(f"lo ({v[0]:g}) must be > 0 for logarithmic spacing")
        return v

    @property
    def kind(self) -> str:
        """Which of edges/lin/log/equal_counts is given."""
        return next(k for k in _KINDS if getattr(self, k) is not None)

    @model_validator(mode="after")
    def _consistent(self) -> SchemeSpec:
        given = [k for k in _KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(_KINDS)}; got "
                f"{' and '.join(given) if given else 'none'}"
            )
        kind = given[0]
        for key, val in (("snap", self.snap), ("round", self.round_step)):
            if val is None:
                continue
            if self.unit != "keV":
                raise ValueError(
                    f'{key}: only for unit = "keV" schemes; channel edges are '
                    "already channel boundaries, remove it"
                )
            if kind == "equal_counts":
                raise ValueError(f"{key}: not used with equal_counts, remove it")
        if self.snap is not None and self.round_step is not None:
            raise ValueError("snap and round: give at most one of them")
        if self.round_step is not None:
            step = self.round_step * 1000.0
            if step < 1 - _TOL or abs(step - round(step)) > _TOL:
                raise ValueError(f"round: step ({self.round_step:g} keV) must be whole eV")
        if kind == "equal_counts":
            self._check_equal_counts()
        else:
            self.static_pi_edges()
        return self

    def _check_equal_counts(self) -> None:
        ec = self.equal_counts
        assert ec is not None
        for key, v in (("lo", ec.lo), ("hi", ec.hi)):
            pi = _ec_pi(v, self.unit)
            exact = v * 1000.0 if self.unit == "keV" else v * PI_PER_CHAN
            if abs(exact - pi) > _TOL or pi % PI_PER_CHAN:
                raise ValueError(
                    f"equal_counts: {key} ({v:g} {self.unit}) is not on a 5 eV "
                    "channel boundary; use a multiple of 0.005 keV or a whole channel"
                )
            if pi > PI_MAX:
                raise ValueError(f"equal_counts: {key} (PI {pi}) is above {PI_MAX}")
        width = (_ec_pi(ec.hi, self.unit) - _ec_pi(ec.lo, self.unit)) // PI_PER_CHAN
        if ec.n > width or ec.min_width > width:
            raise ValueError(
                f"equal_counts: n ({ec.n}) and min_width ({ec.min_width}) must not "
                f"exceed the {width} channels in [lo, hi)"
            )

    def static_pi_edges(self) -> tuple[int, ...] | None:
        """PI (eV) edges of a static scheme, None for ``equal_counts``.

        keV values: ``round(keV * 1000)``; with ``snap = "chan"`` snapped up to the next
        channel boundary, ``5 * ceil(E_eV / 5)`` (a value within 1e-6 channel of a boundary
        stays on it); with ``round = s`` rounded to the nearest multiple of s (ties up).
        Channel values: ``lin``/``log`` interior values snap up (ceil, same tolerance);
        explicit channel edges must be whole numbers.

        Raises
        ------
        ValueError
            If edges are not whole channels, not strictly increasing or outside 0..20480.
        """
        kind = self.kind
        if kind == "equal_counts":
            return None
        if kind == "edges":
            vals = list(self.edges or [])
        else:
            lo, hi, n = getattr(self, kind)
            vals = _rule(lo, hi, int(n), kind)
        if self.unit == "chan":
            given = vals if kind == "edges" else [vals[0], vals[-1]]
            bad = [v for v in given if abs(v - round(v)) > _TOL]
            if bad:
                raise ValueError(f"{kind}: channel values must be whole numbers, got {bad[0]:g}")
            pis = [chan_to_pi(_ceil_tol(v)) for v in vals]
        elif self.snap == "chan":
            pis = [chan_to_pi(_ceil_tol(v * 1000.0 / PI_PER_CHAN)) for v in vals]
        elif self.round_step is not None:
            step = kev_to_pi(self.round_step)
            pis = [step * math.floor(v * 1000.0 / step + 0.5 + _TOL) for v in vals]
        else:
            pis = [kev_to_pi(v) for v in vals]
        if len(pis) < 2:
            raise ValueError(f"{kind}: need at least 2 edges, got {len(pis)}")
        if pis[0] < 0 or pis[-1] > PI_MAX:
            raise ValueError(
                f"{kind}: PI edges {pis[0]}..{pis[-1]} leave the pn range 0..{PI_MAX} eV"
            )
        for a, b in zip(pis, pis[1:], strict=False):
            if b <= a:
                how = (
                    f" after round = {self.round_step:g}"
                    if self.round_step
                    else (' after snap = "chan"' if self.snap else "")
                )
                raise ValueError(
                    f"{kind}: must be strictly increasing in PI{how}; PI {a} is followed by {b}"
                )
        return tuple(pis)


def _format_error(err: Mapping[str, Any]) -> str:
    loc = [str(x) for x in err["loc"]]
    typ = err["type"]
    if typ == "extra_forbidden":
        model = EqualCountsSpec if loc[:1] == ["equal_counts"] else SchemeSpec
        allowed = [f.alias or k for k, f in model.model_fields.items()]
        msg = f"unknown key; allowed keys are {', '.join(allowed)}"
    elif typ == "missing":
        msg = "required key is missing"
    elif loc[-1:] == ["reference"] and typ == "string_type":
        msg = f'must be a quoted 10-digit obsid, e.g. "0761220101" (got {err["input"]!r})'
    elif typ == "value_error":
        msg = str(err["ctx"]["error"])
    else:
        msg = f"{err['msg']} (got {err['input']!r})"
    return f"{'.'.join(loc)}: {msg}" if loc else msg


def scheme_from_spec(
    name: str, spec: Mapping[str, Any], *, source: str = "build file"
) -> EnergyScheme:
    """Validate one scheme declaration and build its :class:`EnergyScheme`.

    Parameters
    ----------
    name : str
        Scheme name (letters, digits, ``_ . + -``; starts with a letter or digit).
    spec : mapping
        The inline table, e.g. ``{"unit": "keV", "log": [2, 10, 8], "snap": "chan"}``.
    source : str, optional
        Where the spec comes from, for error messages (a file name, ``"preset 'ngc5506'"``).

    Returns
    -------
    EnergyScheme
        Resolved for static schemes; unresolved (``pi_edges = None``) for ``equal_counts``.

    Raises
    ------
    ConfigError
        ``"<source>: scheme '<name>': <key>: <problem>"`` for any invalid declaration.
    """
    where = f"{source}: scheme {name!r}"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"{source}: scheme name {name!r} is invalid; use letters, digits, _ . + -"
        )
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f'{where}: must be a table such as {{ unit = "keV", edges = [2, 10] }}, got {spec!r}'
        )
    try:
        model = SchemeSpec.model_validate(dict(spec))
    except ValidationError as exc:
        msg = "; ".join(_format_error(e) for e in exc.errors())
        raise ConfigError(f"{where}: {msg}") from None
    ident = {k: copy.deepcopy(v) for k, v in spec.items() if k not in _OPTIONS}
    ref = model.equal_counts.reference if model.equal_counts is not None else None
    return EnergyScheme(name=name, spec=ident, pi_edges=model.static_pi_edges(), reference=ref)


# --------------------------------------------------------------------------- presets
def preset_names() -> list[str]:
    """Names of the presets shipped in ``schemas/presets/*.toml``, sorted."""
    folder = resources.files("schemas") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> dict[str, dict[str, Any]]:
    """Read the ``[schemes]`` table of a shipped preset, validating every scheme.

    Parameters
    ----------
    name : str
        Preset name, e.g. ``"ngc5506"``.

    Returns
    -------
    dict
        Scheme name -> declaration dict (the same syntax as a build file's ``[schemes]``),
        in file order.

    Raises
    ------
    ConfigError
        If the preset does not exist (the message lists the available ones) or is invalid.
    """
    names = preset_names()
    if name not in names:
        raise ConfigError(f"energy preset {name!r} does not exist; available: {', '.join(names)}")
    source = f"preset {name!r} (schemas/presets/{name}.toml)"
    text = (resources.files("schemas") / "presets" / f"{name}.toml").read_text(encoding="utf-8")
    try:
        schemes = tomllib.loads(text).get("schemes")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if not isinstance(schemes, dict) or not schemes:
        raise ConfigError(f"{source}: no [schemes] table")
    for key, spec in schemes.items():
        scheme_from_spec(key, spec, source=source)
    return schemes
