"""Named energy-binning schemes: their identity, their resolution, and the shipped presets.

An :class:`EnergyScheme` is built by :func:`scheme_from_spec` from one declaration
(syntax and validation in :mod:`schemas.scheme_spec`; PI conventions in
:mod:`schemas.energy`). Presets are ready-made ``[schemes]`` tables shipped in
``schemas/presets/*.toml`` (:func:`preset_names`, :func:`load_preset`).

The identity of a scheme (:attr:`EnergyScheme.canonical`, :attr:`EnergyScheme.hash`)
is its PI edges for static schemes, so the same edges written as a rule or as an
explicit list are the same scheme; equal-count schemes are identified by their
definition (reference observation, n, range, minimum width), since their edges
come from data. Extraction options (``abscorr``, ``backend``) and ``note`` are not
part of the identity; read them from :class:`~schemas.scheme_spec.SchemeSpec`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from schemas.energy import (
    PI_PER_CHAN,
    Band,
    EnergyScale,
    chan_to_pi,
    energy_scale,
    equal_count_edges,
)
from schemas.errors import ConfigError
from schemas.names import NAME_RULE, SCHEME_NAME, is_name
from schemas.scheme_spec import EqualCountsSpec, SchemeSpec, validation_message

__all__ = [
    "EnergyScheme",
    "scheme_applies",
    "instrument_scheme",
    "load_preset",
    "preset_names",
    "scheme_from_spec",
]

_OPTIONS = ("abscorr", "backend", "note", "instruments")  # not part of a scheme's identity


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
    spec: dict[str, Any]
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
    def resolved_pi_edges(self) -> tuple[int, ...]:
        """The PI edges of a resolved scheme.

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
        return self.pi_edges

    @property
    def bands(self) -> tuple[Band, ...]:
        """The bands, low to high.

        Raises
        ------
        ValueError
            If the scheme is data-dependent and not yet resolved (call :meth:`resolve`).
        """
        e = self.resolved_pi_edges
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
        pi_lo, pi_hi = ec.pi_range(unit)
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
        c_lo, c_hi = (pi // PI_PER_CHAN for pi in ec.pi_range(unit))
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
    if not is_name(name, SCHEME_NAME):
        shown = (
            repr(name)
            if len(repr(name)) <= 80
            else repr(name)[:60] + f"... ({len(name)} characters)"
        )
        raise ConfigError(
            f"{source}: scheme name {shown} is invalid; " + NAME_RULE.format(n=64, chars="_ . + -")
        )
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f'{where}: must be a table such as {{ unit = "keV", edges = [2, 10] }}, got {spec!r}'
        )
    try:
        model = SchemeSpec.model_validate(dict(spec))
    except ValidationError as exc:
        msg = validation_message(exc)
        raise ConfigError(f"{where}: {msg}") from None
    ident = {k: copy.deepcopy(v) for k, v in spec.items() if k not in _OPTIONS}
    ref = model.equal_counts.reference if model.equal_counts is not None else None
    return EnergyScheme(name=name, spec=ident, pi_edges=model.static_pi_edges(), reference=ref)


def scheme_applies(scheme: EnergyScheme, instrument: str, instruments: list[str] | None) -> bool:
    """Whether a scheme is made for an instrument (its ``instruments`` key; None: all)."""
    return instruments is None or instrument in instruments


def instrument_scheme(
    scheme: EnergyScheme, instrument: str
) -> tuple[EnergyScheme, EnergyScale, list[str]]:
    """The scheme with its edges in an instrument's PI units, the scale, and notes.

    A scheme's edges are energies (eV). On EPIC (PI in eV) the scheme comes back as it is;
    on NuSTAR each edge becomes a 40 eV channel boundary by
    :meth:`schemas.energy.EnergyScale.pi_edges` (nearest boundary, noted when moved). The
    copy keeps the name, spec and reference; its identity (:attr:`EnergyScheme.hash`) must be
    taken from the original.

    Parameters
    ----------
    scheme : EnergyScheme
        A resolved scheme.
    instrument : str
        ``PN``, ``M1``, ``M2``, ``FPMA`` or ``FPMB``.

    Returns
    -------
    (EnergyScheme, EnergyScale, list of str)

    Raises
    ------
    ConfigError
        An equal-count scheme on a non-EPIC instrument (its edges are 5 eV pn channels from a
        pn spectrum), or an edge the instrument cannot take (below 1.6 or above 79 keV for
        NuSTAR, two edges on one channel boundary): one line naming the scheme and the edge.
    """
    scale = energy_scale(instrument)
    if scale.is_ev:
        return scheme, scale, []
    where = f"scheme {scheme.name!r} on {instrument}"
    if scheme.reference is not None:
        raise ConfigError(
            f"{where}: an equal_counts scheme takes its edges from an EPIC spectrum and is not "
            f'made for {scale.name}; limit it with instruments = ["PN", "M1", "M2"]'
        )
    edges, notes = scale.pi_edges(scheme.resolved_pi_edges, where)
    return replace(scheme, pi_edges=edges), scale, notes


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
