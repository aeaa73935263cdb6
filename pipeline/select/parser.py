"""The syntax of selectlib-style selection expressions: tokeniser and recursive-descent parser.

Used for the ``#XMMEA_EP``-style macros that event files carry in their headers (e.g.
``XMMEA_EM = '(FLAG & 0x766ba000) == 0'`` [ref 25]) and for similar user expressions. The text
is tokenised and parsed by recursive descent into a tree of tuples; nothing is ever handed to
Python's ``eval`` or ``ast``. Grammar, lowest precedence first (docs/semantics.md §10, [ref 6]):

    or      := and  (('||' | '.or.')  and)*
    and     := not  (('&&' | '.and.') not)*
    not     := ('!' | '.not.') not | compare
    compare := bitor [('==' '!=' '<' '<=' '>' '>=' | .eq. .ne. .lt. .le. .gt. .ge.) bitor]
             | bitor 'in' interval (',' interval)*
    bitor   := bitand ('|' bitand)*
    bitand  := unary ('&' unary)*
    unary   := '-' unary | primary
    primary := integer (decimal or 0x hex) | float | COLUMN | '(' or ')' | '#MACRO'

``&`` and ``|`` bind tighter than comparisons (unlike C), so ``FLAG & 0x10 == 0`` means
``(FLAG & 0x10) == 0``. Comparisons do not chain. Numbers in a logical context mean "!= 0" (C).
Intervals [ref 8]: ``[lo:hi]`` or ``lo:hi`` lo <= x <= hi; ``[lo:hi)``; ``(lo:hi]``; ``(lo:hi)``;
``val`` x == val; ``lo:`` x >= lo; ``:hi`` x <= hi; a comma list is OR-ed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from schemas.errors import InputFileError, XlcatError

__all__ = ["SelectionParser", "Tree"]

_INT64_MAX = 2**63 - 1
_MAX_DEPTH = 40
_FORTRAN = {
    "and": "&&",
    "or": "||",
    "not": "!",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
}
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<fortran>\.(?:and|or|not|eq|ne|lt|le|gt|ge)\.)
      | (?P<hex>0[xX][0-9a-fA-F]+)
      | (?P<int>\d+(?=\.(?:and|or|not|eq|ne|lt|le|gt|ge)\.))
      | (?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
      | (?P<dec>\d+)
      | (?P<macro>\#[A-Za-z_][A-Za-z0-9_]*)
      | (?P<name>[A-Za-z][A-Za-z0-9_]*)
      | (?P<op>\|\||&&|==|!=|<=|>=|[<>!|&\-()\[\]:,])
    """,
    re.VERBOSE | re.IGNORECASE,
)
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


Tree = tuple[Any, ...]
"""A parsed expression node: ``(kind, *operands)``, operands being nodes or values."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", "macro", "op", "end"
    value: Any
    pos: int


def _tokenise(text: str, fail: Callable[[str, int], NoReturn]) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            char = text[pos]
            if char == "=":
                hint = "use == to compare"
            elif char in ".'\"":
                hint = "attribute access and strings are not part of the language"
            else:
                hint = (
                    "only columns, numbers, #macros and the operators "
                    "|| && ! == != < <= > >= | & - ( ) in [a:b) are allowed"
                )
            fail(f"unexpected character {char!r} ({hint})", pos)
        kind, tok = m.lastgroup, m.group()
        if kind == "fortran":
            tokens.append(_Token("op", _FORTRAN[tok[1:-1].lower()], pos))
        elif kind == "hex":
            tokens.append(_Token("num", int(tok, 16), pos))
        elif kind in ("int", "dec"):
            tokens.append(_Token("num", int(tok), pos))
        elif kind == "float":
            tokens.append(_Token("num", float(tok), pos))
        elif kind == "macro":
            tokens.append(_Token("macro", tok[1:].upper(), pos))
        elif kind == "name":
            upper = tok.upper()
            tokens.append(_Token("op", "in", pos) if upper == "IN" else _Token("name", upper, pos))
        elif kind == "op":
            tokens.append(_Token("op", tok, pos))
        if (
            tokens
            and tokens[-1].kind == "num"
            and isinstance(tokens[-1].value, int)
            and tokens[-1].value > _INT64_MAX
        ):
            fail(f"integer {tok} does not fit in 64 bits", pos)
        pos = m.end()
    tokens.append(_Token("end", None, len(text)))
    return tokens


class SelectionParser:
    """Recursive descent over one text (the top-level text or one macro body)."""

    def __init__(
        self,
        text: str,
        where: str,
        error: type[XlcatError],
        macros: Callable[[str], str | None] | None,
        stack: tuple[str, ...],
    ) -> None:
        self.text, self.where, self.error = text, where, error
        self.macros, self.stack = macros, stack
        self.tokens = _tokenise(text, self.fail)
        self.i = 0
        self.depth = 0
        self.columns: set[str] = set()
        self.expansions: list[tuple[int, int, str]] = []  # (start, end, "(expanded body)")

    def fail(self, msg: str, pos: int) -> NoReturn:
        at = "end of text" if pos >= len(self.text) else f"character {pos + 1}"
        raise self.error(f"{self.where}: {msg} (at {at} of '{self.text}')")

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self, *ops: str) -> _Token | None:
        if self.tok.kind == "op" and self.tok.value in ops:
            self.i += 1
            return self.tokens[self.i - 1]
        return None

    def expect(self, op: str, what: str) -> _Token:
        tok = self.take(op)
        if tok is None:
            self.fail(f"expected {what}, found {self.describe()}", self.tok.pos)
        return tok

    def describe(self) -> str:
        t = self.tok
        if t.kind == "end":
            return "the end"
        return f"'{self.text[t.pos : self.tokens[self.i + 1].pos].strip()}'"

    def parse(self) -> Tree:
        tree = self.or_()
        if self.tok.kind != "end":
            self.fail(f"unexpected {self.describe()} after a complete expression", self.tok.pos)
        return tree

    def expanded_text(self) -> str:
        out, last = [], 0
        for start, end, body in self.expansions:
            out += [self.text[last:start], body]
            last = end
        return "".join(out) + self.text[last:]

    # ---- grammar, lowest precedence first
    def or_(self) -> Tree:
        items = [self.and_()]
        while self.take("||"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else ("or", tuple(items))

    def and_(self) -> Tree:
        items = [self.not_()]
        while self.take("&&"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else ("and", tuple(items))

    def not_(self) -> Tree:
        if self.take("!"):
            self.enter()
            tree = ("not", self.not_())
            self.depth -= 1
            return tree
        return self.compare()

    def compare(self) -> Tree:
        left = self.bitor()
        op = self.take(*_COMPARE)
        tree: Tree
        if op is not None:
            tree = ("cmp", op.value, left, self.bitor())
        elif self.take("in"):
            intervals = [self.interval()]
            while self.take(","):
                intervals.append(self.interval())
            tree = ("in", left, tuple(intervals))
        else:
            return left
        if self.tok.kind == "op" and (self.tok.value in _COMPARE or self.tok.value == "in"):
            self.fail("comparisons do not chain; join them with && or ||", self.tok.pos)
        return tree

    def bitor(self) -> Tree:
        items = [self.bitand()]
        while self.take("|"):
            items.append(self.bitand())
        return items[0] if len(items) == 1 else ("bitor", tuple(items))

    def bitand(self) -> Tree:
        items = [self.unary()]
        while self.take("&"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else ("bitand", tuple(items))

    def unary(self) -> Tree:
        if self.take("-"):
            self.enter()
            tree = self.unary()
            self.depth -= 1
            return ("num", -tree[1]) if tree[0] == "num" else ("neg", tree)
        return self.primary()

    def primary(self) -> Tree:
        tok = self.tok
        if tok.kind == "num":
            self.i += 1
            return ("num", tok.value)
        if tok.kind == "name":
            self.i += 1
            if self.tok.kind == "op" and self.tok.value == "(":
                self.fail(
                    f"function calls such as {tok.value.lower()}(...) are not supported", tok.pos
                )
            self.columns.add(tok.value)
            return ("col", tok.value)
        if tok.kind == "macro":
            self.i += 1
            return self.macro(tok)
        if self.take("("):
            self.enter()
            tree = self.or_()
            self.depth -= 1
            self.expect(")", "')'")
            return tree
        self.fail(f"expected a number, a column, '(' or a #macro, found {self.describe()}", tok.pos)
        raise AssertionError  # fail() always raises

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.fail(f"nesting deeper than {_MAX_DEPTH} levels", self.tok.pos)

    def bound(self) -> float | int | None:
        sign = -1 if self.take("-") else 1
        if self.tok.kind != "num":
            if sign == -1:
                self.fail(f"expected a number after '-', found {self.describe()}", self.tok.pos)
            return None
        self.i += 1
        value: float | int = self.tokens[self.i - 1].value
        return sign * value

    def interval(self) -> Tree:
        """One interval as (lo, lo_closed, hi, hi_closed); None for a missing bound."""
        start = self.tok.pos
        opener = self.take("[", "(")
        lo = self.bound()
        if self.take(":") is None:
            if opener is not None or lo is None:
                self.fail("expected an interval such as [lo:hi), lo:hi, lo:, :hi or a value", start)
            return (lo, True, lo, True)
        hi = self.bound()
        closer = self.take("]", ")") if opener is not None else None
        if opener is not None and closer is None:
            self.fail(
                f"expected ']' or ')' to close the interval, found {self.describe()}", self.tok.pos
            )
        if lo is None and hi is None:
            self.fail("an interval needs at least one bound", start)
        lo_closed = opener is None or opener.value == "["
        hi_closed = closer is None or closer.value == "]"
        empty = (
            lo is not None
            and hi is not None
            and (lo > hi or (lo == hi and not (lo_closed and hi_closed)))
        )
        if empty:
            self.fail(f"interval from {lo} to {hi} selects nothing; give lo < hi", start)
        return (lo, lo_closed, hi, hi_closed)

    def macro(self, tok: _Token) -> Tree:
        name = tok.value
        if name in self.stack:
            chain = " -> ".join(f"#{n}" for n in self.stack + (name,))
            self.fail(f"macro cycle {chain}", tok.pos)
        body = self.macros(name) if self.macros is not None else None
        if body is None:
            self.fail(
                f"macro #{name} is not defined (no header keyword {name}); write the "
                "selection explicitly, e.g. (FLAG & 0x...) == 0",
                tok.pos,
            )
        sub = SelectionParser(
            str(body),
            f"{self.where}: macro #{name}",
            InputFileError,
            self.macros,
            self.stack + (name,),
        )
        self.enter()
        sub.depth = self.depth
        tree = sub.parse()
        self.depth -= 1
        self.columns |= sub.columns
        self.expansions.append((tok.pos, tok.pos + 1 + len(name), f"({sub.expanded_text()})"))
        return tree
