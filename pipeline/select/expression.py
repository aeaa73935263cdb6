"""A small, safe evaluator for selectlib-style selection expressions over event columns.

Used for the ``#XMMEA_EP``-style macros that event files carry in their headers (e.g.
``XMMEA_EM = '(FLAG & 0x766ba000) == 0'``; docs/semantics.md §8, ref 25) and for similar
user expressions.
:mod:`pipeline.select.parser` turns the text into a tree of tuples (its docstring gives the
grammar); this module evaluates the tree over numpy columns. Nothing is ever handed to
Python's ``eval`` or ``ast``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
from numpy.typing import NDArray

from pipeline.select.parser import SelectionParser, Tree
from schemas.errors import ConfigError, InputFileError, XlcatError

__all__ = ["Expression", "compile_expression"]

# ---- evaluation


def _truth(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value if value.dtype == np.bool_ else value != 0
    return bool(value)


def _integer(value: Any, op: str, fail: Callable[[str], NoReturn]) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype == np.bool_ or np.issubdtype(value.dtype, np.integer):
            return value.astype(np.int64, copy=False)
        fail(f"'{op}' needs integer operands, got {value.dtype} values")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        fail(f"'{op}' needs integer operands, got the float {value!r}")
    return value


def _interval_mask(x: Any, intervals: tuple[Tree, ...]) -> Any:
    result: Any = False
    for lo, lo_closed, hi, hi_closed in intervals:
        inside: Any = True
        if lo is not None:
            inside = (x >= lo) if lo_closed else (x > lo)
        if hi is not None:
            inside = inside & ((x <= hi) if hi_closed else (x < hi))
        result = result | inside
    return result


_CMP = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def _eval(tree: Tree, data: Mapping[str, Any], fail: Callable[[str], NoReturn]) -> Any:
    kind = tree[0]
    if kind == "num":
        return tree[1]
    if kind == "col":
        return data[tree[1]]
    if kind in ("or", "and"):
        values = [_truth(_eval(item, data, fail)) for item in tree[1]]
        return functools.reduce(operator.or_ if kind == "or" else operator.and_, values)
    if kind == "not":
        value = _truth(_eval(tree[1], data, fail))
        return ~value if isinstance(value, np.ndarray) else not value
    if kind == "cmp":
        left, right = _eval(tree[2], data, fail), _eval(tree[3], data, fail)
        return _CMP[tree[1]](left, right)
    if kind == "in":
        return _interval_mask(_eval(tree[1], data, fail), tree[2])
    if kind in ("bitor", "bitand"):
        op = "|" if kind == "bitor" else "&"
        values = [_integer(_eval(item, data, fail), op, fail) for item in tree[1]]
        return functools.reduce(operator.or_ if kind == "bitor" else operator.and_, values)
    if kind == "neg":
        value = _eval(tree[1], data, fail)
        if isinstance(value, np.ndarray) and (value.dtype == np.bool_ or value.dtype.kind == "u"):
            value = value.astype(np.int64)
        return -value
    raise AssertionError(f"unknown node {kind}")


@dataclass(frozen=True)
class Expression:
    """A compiled selection expression.

    Attributes
    ----------
    text : str
        The fully macro-expanded text (for provenance); each macro body appears in parentheses.
    columns : frozenset of str
        Upper-case names of the columns it reads.
    source : str
        Where the text came from (used in messages).
    """

    text: str
    columns: frozenset[str]
    source: str = "expression"
    _tree: Tree | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._tree is None:
            compiled = compile_expression(self.text, source=self.source)
            object.__setattr__(self, "_tree", compiled._tree)
            object.__setattr__(self, "columns", compiled.columns)

    def evaluate(self, columns: Mapping[str, NDArray[Any]]) -> NDArray[np.bool_]:
        """Evaluate over event columns; True where an event is selected.

        Parameters
        ----------
        columns : mapping of column name to 1-d array
            Names are matched case-insensitively.

        Returns
        -------
        numpy.ndarray of bool
            One value per row.

        Raises
        ------
        InputFileError
            If a column it reads is missing, or a bitwise operator meets non-integer values.
        """
        data: dict[str, Any] = {}
        keys = {str(k).upper(): k for k in columns.keys()}
        for name in sorted(self.columns):
            if name not in keys:
                raise InputFileError(
                    f"{self.source}: '{self.text}' reads column {name}, which the table lacks "
                    f"(columns: {', '.join(sorted(keys)) or 'none'}); "
                    "fix the expression or the file"
                )
            data[name] = np.asarray(columns[keys[name]])

        def fail(msg: str) -> NoReturn:
            raise InputFileError(f"{self.source}: '{self.text}': {msg}")

        tree = self._tree
        assert tree is not None  # __post_init__ compiles the text when no tree is given
        result = _truth(_eval(tree, data, fail))
        shapes = [a.shape for a in data.values()]
        if not shapes and keys:
            shapes = [np.shape(columns[next(iter(keys.values()))])]
        shape = np.broadcast_shapes(*shapes)
        return np.broadcast_to(np.asarray(result, dtype=np.bool_), shape).copy()


def compile_expression(
    text: str,
    *,
    macros: Callable[[str], str | None] | None = None,
    source: str = "expression",
    error: type[XlcatError] = ConfigError,
) -> Expression:
    """Parse a selection expression (selectlib subset) into an :class:`Expression`.

    Parameters
    ----------
    text : str
        For example ``PI in [500:2000) && PATTERN <= 4 && #XMMEA_EP``.
    macros : callable, optional
        ``macros(NAME) -> str | None`` gives the text of ``#NAME`` (normally the EVENTS header
        keyword NAME); bodies are expanded recursively with cycle detection.
    source : str
        Where the text came from, named in messages (e.g. "events file x.fits EVENTS header
        keyword XMMEA_EP").
    error : XlcatError subclass
        Raised for problems in ``text`` itself: ConfigError (default) for user text,
        InputFileError for text read from a file. Problems inside a macro body always raise
        InputFileError (macro bodies come from event-file headers).

    Returns
    -------
    Expression

    Raises
    ------
    ConfigError or InputFileError
        With the position of the problem.
    """
    parser = SelectionParser(str(text), source, error, macros, ())
    tree = parser.parse()
    return Expression(parser.expanded_text(), frozenset(parser.columns), source, tree)
