"""Download XMM-Newton pipeline products from the archives (``xlcat fetch``).

:func:`fetch_observations` puts each observation's calibrated event lists and flare time
series in ``<folder>/<obsid>/pps/``, where ``xlcat init`` finds them. The package imports
only :mod:`schemas` (and :mod:`catalog`): it knows nothing of the build. Importing it is
light (the command line's start-up): the HTTP client and astropy load with
:mod:`pipeline.fetch.run`, on first use of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipeline.fetch.archives import ARCHIVES, BASE_URL_ENV, CAMERAS, DEFAULT_BASE_URL, Product

if TYPE_CHECKING:
    from pipeline.fetch.run import FetchedFile, FetchReport, fetch_observations, obs_folder

__all__ = [
    "ARCHIVES",
    "BASE_URL_ENV",
    "CAMERAS",
    "DEFAULT_BASE_URL",
    "Product",
    "FetchedFile",
    "FetchReport",
    "fetch_observations",
    "obs_folder",
]

_FROM_RUN = ("FetchedFile", "FetchReport", "fetch_observations", "obs_folder")


def __getattr__(name: str) -> Any:
    if name in _FROM_RUN:
        from pipeline.fetch import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
