"""The data-subspace keywords of an event list: the filters its events already went through.

SAS writes into the EVENTS header of every event list it makes the selections the list
went through, as *data-subspace descriptors* (docs/semantics.md §4, §17.3):

- ``DSTYPn`` names the column of descriptor n (``CCDNR``, ``TIME``, ``PI``, ``PATTERN``,
  ``FLAG``, ``POS(X,Y)``);
- ``DSVALn`` gives the values kept: ranges such as ``'500:10000'`` or ``':12'`` (both ends
  included), a single value (``'0'``), a bit pattern for FLAG (``DSFORMn = 'X'``,
  ``'b000x00xxx0x0x...'``: ``0`` a bit that must be clear, ``1`` one that must be set,
  ``x`` either, the last character being bit 0), or ``'TABLE'``;
- ``DSREFn`` names the table that holds the values when ``DSVALn = 'TABLE'``
  (``':GTI00004'``: extension GTI00004 of the same file; a time filter's GTI);
- ``DSUNIn`` and ``DSFORMn`` give the unit and the format.

A file may hold several *components* (SAS writes one per CCD): the keywords of component
m >= 2 carry the prefix ``m`` (``2DSVAL1 = '2'``, ``2DSREF6 = ':GTI00104'``). A component
takes every descriptor it does not restate from component 1: in the filtered MOS1 list
``M1_clean.fits`` component 2 restates only its CCD and its GTI table, and epiclccorr's
selection (``*_lccorr_2.604.lc``, keyword SLCTEXPR) applies the FLAG, PATTERN and PI cuts
of component 1 to every CCD. The data subspace is the union of its components; a
component is the intersection of its descriptors.

Everything here reads header cards and small tables; no event is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Descriptor",
    "Component",
    "DataSubspace",
    "IntRanges",
    "FlagMask",
    "parse_subspace",
    "parse_ranges",
    "parse_bit_pattern",
    "parse_time_ranges",
    "ALL_FLAG_BITS",
]

_KEY = re.compile(r"^(\d*)DS(TYP|VAL|REF|FORM|UNI)(\d+)$")
_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(
    rf"^\s*(?P<open>[\[(])?\s*(?P<lo>{_NUM})?\s*(?P<colon>:)?\s*(?P<hi>{_NUM})?\s*(?P<close>[\])])?\s*$"
)
#: Every bit of a 32-bit FLAG column.
ALL_FLAG_BITS = 0xFFFFFFFF


@dataclass(frozen=True)
class Descriptor:
    """One data-subspace descriptor of one component.

    Attributes
    ----------
    index : int
        n of ``DSTYPn``.
    column : str
        ``DSTYPn``, upper case (``TIME``, ``PI``, ``CCDNR``, ...).
    value : str
        ``DSVALn`` (``''`` when absent).
    ref : str or None
        ``DSREFn``, e.g. ``':GTI00004'``.
    form, unit : str or None
        ``DSFORMn``, ``DSUNIn``.
    """

    index: int
    column: str
    value: str
    ref: str | None = None
    form: str | None = None
    unit: str | None = None

    @property
    def is_table(self) -> bool:
        """Whether the values are held in a table (``DSVALn = 'TABLE'``)."""
        return self.value.upper() == "TABLE"

    @property
    def table(self) -> tuple[str, str] | None:
        """``(file, EXTNAME)`` of the referenced table; file ``''`` means this file."""
        if not self.is_table or not self.ref:
            return None
        file, _, ext = self.ref.rpartition(":")
        return file.strip(), ext.strip().upper()

    def text(self) -> str:
        """The descriptor as one short string (for provenance)."""
        if self.is_table:
            return f"TABLE {self.ref or '?'}"
        return self.value


@dataclass(frozen=True)
class Component:
    """One component of the data subspace: descriptors that all hold (an AND)."""

    number: int
    descriptors: tuple[Descriptor, ...]

    def of(self, column: str) -> tuple[Descriptor, ...]:
        """The descriptors of one column (several are AND-ed)."""
        c = column.upper()
        return tuple(d for d in self.descriptors if d.column == c)

    def ccds(self) -> frozenset[int] | None:
        """The CCD numbers this component covers (``CCDNR`` ranges), None when unrestricted."""
        found: frozenset[int] | None = None
        for d in self.of("CCDNR"):
            ranges = parse_ranges(d.value)
            if ranges is None:
                continue
            ints = frozenset(c for c in range(0, 64) if ranges.contains(c))
            found = ints if found is None else found & ints
        return found

    def describe(self) -> dict[str, str]:
        """Column -> descriptor text (several descriptors of a column joined by ' && ')."""
        out: dict[str, str] = {}
        for d in self.descriptors:
            out[d.column] = f"{out[d.column]} && {d.text()}" if d.column in out else d.text()
        return out


@dataclass(frozen=True)
class IntRanges:
    """A union of closed integer ranges ``[lo, hi]`` (None: unbounded on that side)."""

    ranges: tuple[tuple[int | None, int | None], ...]

    def contains(self, value: int) -> bool:
        """Whether ``value`` lies in one of the ranges."""
        return any(
            (lo is None or value >= lo) and (hi is None or value <= hi) for lo, hi in self.ranges
        )

    def covers(self, lo: int, hi: int) -> bool:
        """Whether every integer of ``[lo, hi]`` lies in the ranges."""
        if lo > hi:
            return True
        for a, b in self._merged():
            if (a is None or a <= lo) and (b is None or b >= hi):
                return True
        return False

    def _merged(self) -> list[tuple[int | None, int | None]]:
        """The ranges sorted and merged where they touch (``[0:4]`` and ``[5:12]`` join)."""
        ordered = sorted(self.ranges, key=lambda r: -math.inf if r[0] is None else r[0])
        out: list[tuple[int | None, int | None]] = []
        for lo, hi in ordered:
            if out:
                plo, phi = out[-1]
                if phi is None or lo is None or lo <= phi + 1:
                    out[-1] = (plo, None if phi is None or hi is None else max(phi, hi))
                    continue
            out.append((lo, hi))
        return out

    def text(self) -> str:
        """selectlib-like text, e.g. ``[500:10000]`` or ``[:12]``."""

        def one(a: int | None, b: int | None) -> str:
            if a is not None and a == b:
                return str(a)
            return f"[{'' if a is None else a}:{'' if b is None else b}]"

        return ",".join(one(a, b) for a, b in self.ranges)

    def intersect(self, other: IntRanges) -> IntRanges:
        """Integers in both (pairwise intersection of ranges)."""
        out = []
        for a, b in self.ranges:
            for c, d in other.ranges:
                lo = a if c is None else (c if a is None else max(a, c))
                hi = b if d is None else (d if b is None else min(b, d))
                if lo is None or hi is None or lo <= hi:
                    out.append((lo, hi))
        return IntRanges(tuple(out))


@dataclass(frozen=True)
class FlagMask:
    """A FLAG bit pattern: bits that must be clear and bits that must be set."""

    clear: int
    set: int = 0

    def text(self) -> str:
        """``(FLAG & 0x...) == 0`` style text."""
        parts = []
        if self.clear:
            parts.append(f"(FLAG & {self.clear:#x}) == 0")
        if self.set:
            parts.append(f"(FLAG & {self.set:#x}) == {self.set:#x}")
        return " && ".join(parts) or "any FLAG"


def parse_ranges(text: str) -> IntRanges | None:
    """Integer ranges of a ``DSVALn`` value; None if the text is not a range list.

    ``'500:10000'``, ``'[500:10000]'`` and ``'500:10000]'`` are ``500 <= v <= 10000``;
    ``':12'`` is ``v <= 12``; ``'0'`` is ``v == 0``; a comma list is a union; an open end
    (``'(0:12)'``) moves the bound by one (integer columns). Real bounds are rounded inwards.
    """
    t = text.strip()
    if not t or t.upper() == "TABLE":
        return None
    out: list[tuple[int | None, int | None]] = []
    for part in t.split(","):
        m = _RANGE.match(part)
        if m is None or (m.group("lo") is None and m.group("hi") is None):
            return None
        lo_s, hi_s = m.group("lo"), m.group("hi")
        if m.group("colon") is None:
            if lo_s is None or hi_s is not None:
                return None
            hi_s = lo_s
        lo: int | None = None
        hi: int | None = None
        if lo_s is not None:
            v = float(lo_s)
            lo = math.ceil(v)
            if m.group("open") == "(" and lo == v:
                lo += 1
        if hi_s is not None:
            v = float(hi_s)
            hi = math.floor(v)
            if m.group("close") == ")" and hi == v:
                hi -= 1
        out.append((lo, hi))
    return IntRanges(tuple(out))


def parse_bit_pattern(text: str) -> FlagMask | None:
    """A FLAG bit pattern ``'b0x1...'`` (last character bit 0); None if not one.

    In ``M1_clean.fits`` the patterns ``b000x00xxx0x0x0x0x0xxxxxxxxxxxxx`` and
    ``b000x00xx00x0x000x0xxxxxxxxxxxxx`` are epiclccorr's ``FLAG&0x762aa000==0`` and
    ``FLAG&0x766ba000==0`` (``*_lccorr_2.604.lc`` SLCTEXPR), so the last character is bit 0.
    """
    t = text.strip()
    if len(t) < 2 or t[0] not in "bB" or any(c not in "01xX" for c in t[1:]):
        return None
    bits = t[1:]
    n = len(bits)
    clear = sum(1 << (n - 1 - i) for i, c in enumerate(bits) if c == "0")
    must = sum(1 << (n - 1 - i) for i, c in enumerate(bits) if c == "1")
    return FlagMask(clear=clear, set=must)


@dataclass(frozen=True)
class DataSubspace:
    """The data subspace of an EVENTS header: its components (empty when none is written)."""

    components: tuple[Component, ...]

    @property
    def empty(self) -> bool:
        """Whether the header has no data-subspace keywords."""
        return not self.components

    def components_for_ccd(self, ccd: int) -> tuple[Component, ...]:
        """Components that cover CCD ``ccd`` (those without a CCDNR descriptor cover all)."""
        out = []
        for comp in self.components:
            ccds = comp.ccds()
            if ccds is None or ccd in ccds:
                out.append(comp)
        return tuple(out)

    def ranges(self, column: str) -> IntRanges | None:
        """The union over components of the ranges ``column`` was cut to; None if uncut.

        A component without a descriptor of ``column`` leaves the column uncut.
        """
        if not self.components:
            return None
        union: list[tuple[int | None, int | None]] = []
        for comp in self.components:
            mine: IntRanges | None = None
            for d in comp.of(column):
                if d.form and d.form.upper() == "X":
                    continue
                r = parse_ranges(d.value)
                if r is not None:
                    mine = r if mine is None else mine.intersect(r)
            if mine is None:
                return None
            union += mine.ranges
        return IntRanges(tuple(dict.fromkeys(union)))

    def flag_masks(self) -> FlagMask | None:
        """The FLAG bits every component requires clear (and set); None if FLAG is uncut.

        A FLAG range of exactly ``0`` (pn ``DSVAL5 = '0'``) clears every bit. The result is
        what all components share (the subspace is their union).
        """
        shared: FlagMask | None = None
        for comp in self.components:
            clear, must = 0, 0
            for d in comp.of("FLAG"):
                pattern = parse_bit_pattern(d.value)
                if pattern is not None:
                    clear |= pattern.clear
                    must |= pattern.set
                    continue
                r = parse_ranges(d.value)
                if r is not None and r.ranges == ((0, 0),):
                    clear |= ALL_FLAG_BITS
            if not clear and not must:
                return None
            mask = FlagMask(clear, must)
            shared = (
                mask
                if shared is None
                else FlagMask(shared.clear & mask.clear, shared.set & mask.set)
            )
        return shared

    def describe(self) -> list[dict[str, str]]:
        """One dict per component, column -> descriptor text (for provenance)."""
        return [c.describe() for c in self.components]


def parse_subspace(header: Mapping[str, Any]) -> DataSubspace:
    """Read the data-subspace descriptors of an EVENTS header.

    Parameters
    ----------
    header : mapping
        Keyword -> value (an astropy Header works). Keys are matched upper case.

    Returns
    -------
    DataSubspace
        Components ordered by number; component m inherits each descriptor it does not
        restate (``mDSVALn``, ``mDSREFn``, ...) from component 1. Descriptors without a
        ``DSTYPn`` are ignored.
    """
    raw: dict[int, dict[int, dict[str, str]]] = {}
    for key, value in header.items():
        m = _KEY.match(str(key).upper())
        if not m:
            continue
        comp = int(m.group(1)) if m.group(1) else 1
        raw.setdefault(comp, {}).setdefault(int(m.group(3)), {})[m.group(2)] = str(value).strip()
    if 1 not in raw:
        return DataSubspace(())
    base = raw[1]
    components = []
    for number in sorted(raw):
        own = raw[number]
        descriptors = []
        for n in sorted(set(base) | set(own)):
            fields = {**base.get(n, {}), **own.get(n, {})} if number != 1 else base[n]
            typ = fields.get("TYP") or base.get(n, {}).get("TYP")
            if not typ:
                continue
            descriptors.append(
                Descriptor(
                    index=n,
                    column=typ.upper(),
                    value=fields.get("VAL", ""),
                    ref=fields.get("REF"),
                    form=fields.get("FORM"),
                    unit=fields.get("UNI"),
                )
            )
        components.append(Component(number, tuple(descriptors)))
    return DataSubspace(tuple(components))


def parse_time_ranges(text: str) -> list[tuple[float, float]] | None:
    """Time ranges of a TIME ``DSVALn`` (``'t1:t2,t3:t4'``, open ends unbounded); None if not.

    Returns
    -------
    list of (start, stop) or None
        Seconds; a missing bound is -inf or +inf.
    """
    t = text.strip()
    if not t or t.upper() == "TABLE":
        return None
    out = []
    for part in t.split(","):
        m = _RANGE.match(part)
        if m is None or m.group("colon") is None:
            return None
        lo = float(m.group("lo")) if m.group("lo") is not None else -math.inf
        hi = float(m.group("hi")) if m.group("hi") is not None else math.inf
        out.append((lo, hi))
    return out
