"""Declaration syntax of an energy-binning scheme, and its validation.

A *scheme* is a named list of band edges. It is declared in a build file (or a
preset) as one inline TOML table::

    8lch  = { unit = "keV",  log = [2, 10, 8], snap = "chan" }
    12cch = { unit = "keV",  equal_counts = { reference = "0201830201", n = 12, lo = 2, hi = 10 } }
    hard  = { unit = "keV",  edges = [3, 10, 79], instruments = ["FPMA", "FPMB"] }

``instruments`` limits a scheme to some instruments (default: every one); it is not part
of the scheme's identity. Edges are energies: an instrument whose PI is not in eV (NuSTAR)
gets them converted by its scale (:meth:`schemas.energy.EnergyScale.pi_edges`).

:class:`SchemeSpec` validates one such table and computes the PI edges of a static
scheme by the conventions of :mod:`schemas.energy`; :class:`EqualCountsSpec` is its
``equal_counts`` sub-table; :func:`validation_message` turns pydantic's errors into
the one-line messages of a :class:`~schemas.errors.ConfigError`. The scheme built
from a declaration is :class:`schemas.schemes.EnergyScheme`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from schemas.energy import NUSTAR_SCALE, PI_MAX, PI_PER_CHAN, chan_to_pi, kev_to_pi
from schemas.names import EXPOSURE_NAME, is_name, is_obsid

__all__ = ["EqualCountsSpec", "SchemeSpec", "validation_message", "INSTRUMENT_NAMES"]

#: Instrument names a scheme's ``instruments`` key may list (xlcat's short names).
INSTRUMENT_NAMES: tuple[str, ...] = ("PN", "M1", "M2", "FPMA", "FPMB")

#: NuSTAR's upper limit in eV (79 keV: the top of PI 1934).
NUSTAR_MAX_EV = int(round(1000 * NUSTAR_SCALE.kev(NUSTAR_SCALE.pi_max)))
_TOL = 1e-6  # channels / rounding steps: a value this close to an integer counts as that integer
_KINDS = ("edges", "lin", "log", "equal_counts")


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
        obsid, _, expid = v.partition("/")
        if not is_obsid(obsid) or ("/" in v and not is_name(expid, EXPOSURE_NAME)):
            raise ValueError(
                f"{v!r} is neither a 10-digit observation id nor OBSID/EXPID; write it as a "
                'quoted string, e.g. "0761220101" or "0761220101/PNS003" (an exposure of the '
                "build or a stored spectrum of the store)"
            )
        return v

    @model_validator(mode="after")
    def _range(self) -> EqualCountsSpec:
        if not 0 < self.lo < self.hi:
            raise ValueError(f"need 0 < lo < hi, got lo ({self.lo:g}) and hi ({self.hi:g})")
        return self

    def pi_range(self, unit: str) -> tuple[int, int]:
        """PI (eV) range ``[pi_lo, pi_hi)`` of the table.

        Parameters
        ----------
        unit : {'keV', 'chan'}
            The scheme's unit: keV values become ``round(keV * 1000)``, channel values
            ``5 * round(chan)``.

        Returns
        -------
        tuple of int
            (pi_lo, pi_hi) in eV.
        """
        return _ec_pi(self.lo, unit), _ec_pi(self.hi, unit)


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
    instruments: list[str] | None = None

    @field_validator("instruments")
    @classmethod
    def _instruments(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError(
                f"must name at least one instrument ({', '.join(INSTRUMENT_NAMES)}); "
                "leave the key out for every instrument"
            )
        bad = [i for i in v if i not in INSTRUMENT_NAMES]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an instrument; use {', '.join(INSTRUMENT_NAMES)}")
        if len(set(v)) != len(v):
            raise ValueError("an instrument is listed twice")
        return v

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

    def max_ev(self) -> int:
        """Highest edge (eV) the scheme may have: the pn range's 20480 eV, or NuSTAR's 79 keV
        when every instrument the scheme names is a NuSTAR module."""
        if self.instruments and all(i in ("FPMA", "FPMB") for i in self.instruments):
            return NUSTAR_MAX_EV
        return PI_MAX

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
        top = self.max_ev()
        if pis[0] < 0 or pis[-1] > top:
            if top == PI_MAX:
                raise ValueError(
                    f"{kind}: PI edges {pis[0]}..{pis[-1]} leave the pn range 0..{PI_MAX} eV"
                    + (
                        "; a NuSTAR-only scheme may reach 79 keV: add "
                        'instruments = ["FPMA", "FPMB"]'
                        if pis[-1] <= NUSTAR_MAX_EV
                        else ""
                    )
                )
            raise ValueError(
                f"{kind}: edges {pis[0] / 1000:g}..{pis[-1] / 1000:g} keV leave the range "
                f"0..{top / 1000:g} keV of instruments {', '.join(self.instruments or ())}"
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
        model: type[BaseModel] = SchemeSpec
        if loc[:1] == ["equal_counts"]:
            model = EqualCountsSpec
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


def validation_message(exc: ValidationError) -> str:
    """One-line description of every problem of a failed :class:`SchemeSpec` validation.

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error raised by ``SchemeSpec.model_validate``.

    Returns
    -------
    str
        ``"<key>: <problem>"`` per error, joined by ``"; "``, e.g.
        ``"log: lo (0) must be > 0 for logarithmic spacing"``.
    """
    return "; ".join(_format_error(e) for e in exc.errors())
