"""The one set of rules for names that become folders or keys of a store.

Every rule is a full match (:meth:`re.Pattern.fullmatch`; a pattern ending in ``$`` would
also match before a final newline) over ASCII characters only (``str.isdigit`` and ``\\d``
accept full-width and superscript digits). Names the store uses itself are reserved.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "OBSID",
    "SCHEME_NAME",
    "PRODUCT_NAME",
    "EXPOSURE_NAME",
    "RESERVED_NAMES",
    "is_obsid",
    "is_name",
    "NAME_RULE",
]

#: An observation id: ten ASCII digits (XMM-Newton) or eleven (NuSTAR).
OBSID = re.compile(r"[0-9]{10,11}")
#: An energy scheme's name: 1-64 characters.
SCHEME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
#: A saved product's name (``--save``): 1-100 characters.
PRODUCT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
#: An exposure group's name (``PNS003``, ``M1``...): 1-64 characters.
EXPOSURE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Names of the store's own files and folders, refused as any name (compared in lower case).
RESERVED_NAMES: frozenset[str] = frozenset({"zarr.json", "products"})
#: The rule in words, for messages: ``NAME_RULE.format(n=64, chars="_ . + -")``.
NAME_RULE = (
    "use 1-{n} ASCII letters, digits or {chars}, starting with a letter or digit, "
    "and not one of the store's own names (" + ", ".join(sorted(RESERVED_NAMES)) + ")"
)


def is_obsid(value: Any) -> bool:
    """Whether ``value`` is a string of ten (XMM-Newton) or eleven (NuSTAR) ASCII digits."""
    return isinstance(value, str) and OBSID.fullmatch(value) is not None


def is_name(value: Any, pattern: re.Pattern[str]) -> bool:
    """Whether ``value`` is a string fully matching ``pattern`` and not a reserved name."""
    return (
        isinstance(value, str)
        and pattern.fullmatch(value) is not None
        and value.lower() not in RESERVED_NAMES
    )
