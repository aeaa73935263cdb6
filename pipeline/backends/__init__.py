"""Extraction backends, chosen by name in the build file (``backend = "native"``).

Each backend implements :class:`pipeline.backends.base.Backend`. They are
registered here by name so that the graph never imports or branches on one.
"""

from __future__ import annotations

import importlib
from typing import Any

from pipeline.backends.base import Backend
from schemas.errors import ConfigError

__all__ = ["BACKENDS", "get_backend"]

#: Backend name -> "module:Class".
BACKENDS: dict[str, str] = {
    "native": "pipeline.backends.native:NativeBackend",
    "sas": "pipeline.backends.sas:SASBackend",
}


def get_backend(name: str, options: dict[str, Any] | None = None) -> Backend:
    """The backend registered under ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`BACKENDS`.
    options : dict, optional
        Backend options from the build file (e.g. its ``[sas]`` table).

    Raises
    ------
    ConfigError
        If no backend has that name.
    """
    try:
        module, cls = BACKENDS[name].split(":")
    except KeyError:
        raise ConfigError(
            f"backend {name!r} is unknown; choose one of {', '.join(sorted(BACKENDS))}"
        ) from None
    backend_cls = getattr(importlib.import_module(module), cls)
    return backend_cls(options or {})
