"""The exceptions xlcat raises.

Every error a user can cause derives from :class:`XlcatError`. The message names
the file, the key or column, the offending value, and what to do about it; the
CLI prints it as one line on stderr and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "XlcatError",
    "ConfigError",
    "InputFileError",
    "StoreError",
    "SASError",
    "ArchiveError",
]


class XlcatError(Exception):
    """Base class of every error xlcat raises on purpose."""


class ConfigError(XlcatError):
    """The build file (or a preset, or a command-line option) is invalid."""


class InputFileError(XlcatError):
    """An input file (events, regions, GTI, light curve) is missing or malformed."""


class StoreError(XlcatError):
    """The Zarr store is missing, of another format, or refuses a write."""


class SASError(XlcatError):
    """SAS is missing, misconfigured, or one of its tasks failed."""


class ArchiveError(XlcatError):
    """A data archive cannot be reached, lacks a file, or sends one that fails its checks."""
