"""Extraction backends, chosen by name in the build file (``backend = "native"``).

Each backend subclasses :class:`pipeline.extract.backends.base.Backend` and is
registered by name in the ``xlcat.backends`` entry-point group, as xarray finds
its storage backends: xlcat's own ``pyproject.toml`` registers ``native`` and
``sas``, and a third-party package adds one without editing xlcat::

    [project.entry-points."xlcat.backends"]
    mybackend = "mypackage.backend:MyBackend"

The graph never imports or branches on a backend: it asks this registry for the
object by the name the build file gives.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pipeline.extract.backends.base import Backend
from schemas.errors import ConfigError

__all__ = ["ENTRY_POINT_GROUP", "BUILTIN_BACKENDS", "available_backends", "get_backend"]

log = logging.getLogger(__name__)

#: The entry-point group backends register in.
ENTRY_POINT_GROUP = "xlcat.backends"

#: xlcat's own backends, name -> "module:Class" (the same as its entry points; used as
#: well when xlcat runs from a source tree that was never installed).
BUILTIN_BACKENDS: dict[str, str] = {
    "native": "pipeline.extract.backends.native:NativeBackend",
    "sas": "pipeline.extract.backends.sas:SASBackend",
}


def available_backends() -> dict[str, EntryPoint]:
    """Every registered backend, name -> entry point (xlcat's own first).

    Returns
    -------
    dict
        Backend name to its :class:`importlib.metadata.EntryPoint`; nothing is
        imported until :func:`get_backend` loads one.
    """
    found = {
        name: EntryPoint(name, target, ENTRY_POINT_GROUP)
        for name, target in BUILTIN_BACKENDS.items()
    }
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in BUILTIN_BACKENDS:
            if ep.value != BUILTIN_BACKENDS[ep.name]:
                log.warning(
                    "entry point %s = %r ignored: %r is one of xlcat's own backends",
                    ep.name,
                    ep.value,
                    ep.name,
                )
            continue
        found.setdefault(ep.name, ep)
    return found


def get_backend(name: str, options: dict[str, Any] | None = None) -> Backend[Any]:
    """The backend registered under ``name``, constructed with its build-file options.

    Parameters
    ----------
    name : str
        A backend name: ``native``, ``sas`` or one registered in the
        ``xlcat.backends`` entry-point group.
    options : dict, optional
        Backend options from the build file (e.g. its ``[sas]`` table).

    Returns
    -------
    Backend

    Raises
    ------
    ConfigError
        If no backend has that name, or its entry point does not load a
        :class:`~pipeline.extract.backends.base.Backend` subclass.
    """
    registry = available_backends()
    try:
        ep = registry[name]
    except KeyError:
        raise ConfigError(
            f"backend {name!r} is unknown; choose one of {', '.join(sorted(registry))} "
            f"(or install a package registering it in the {ENTRY_POINT_GROUP!r} entry points)"
        ) from None
    try:
        cls = ep.load()
    except Exception as exc:  # noqa: BLE001 - a broken plug-in is a configuration problem
        raise ConfigError(
            f"backend {name!r}: entry point {ep.value!r} failed to load: "
            + f"{type(exc).__name__}: {exc}".splitlines()[0]  # errors are one line
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(
            f"backend {name!r}: entry point {ep.value!r} is not a subclass of "
            "pipeline.extract.backends.base.Backend"
        )
    backend: Backend[Any] = cls(options or {})
    return backend
