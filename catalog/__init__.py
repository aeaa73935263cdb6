"""xlcat's catalogue: open a store, list and query its light curves, hand them to timing tools.

>>> import catalog
>>> cat = catalog.open("ngc5506.zarr")           # doctest: +SKIP
>>> cat.index                                     # doctest: +SKIP
>>> cat.lightcurves(obsid="0201830201", scheme="8lch", energy=(2, 4))   # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catalog.query import Catalog

__all__ = ["Catalog", "open"]


def __getattr__(name: str) -> Any:
    # xarray and pandas are imported on first use, so that ``import catalog.store`` (the
    # build's planner, ``xlcat build`` with nothing to do) stays light
    if name == "Catalog":
        from catalog.query import Catalog

        return Catalog
    raise AttributeError(f"module 'catalog' has no attribute {name!r}")


def open(  # noqa: A001 - the documented entry point
    path: str | os.PathLike[str], *, attrs: str = "netcdf"
) -> Catalog:
    """Open an xlcat store.

    Parameters
    ----------
    path : str or os.PathLike
        The store folder (``*.zarr``) written by ``xlcat build``.
    attrs : {'netcdf', 'python'}, default 'netcdf'
        ``'netcdf'``: every Dataset returned (and every timing result computed from its
        segments) has netCDF-valid attributes (JSON text for the others, named in
        ``json_attrs``; :mod:`catalog.netcdf`), so a plain ``ds.to_netcdf()`` writes
        it; :func:`catalog.netcdf.python_attrs` decodes them. ``'python'``: rich
        Python values (dicts such as ``inputs``, the ``gti`` table, booleans, None).

    Returns
    -------
    Catalog

    Raises
    ------
    schemas.errors.StoreError
        If the path is not an xlcat store.
    """
    from catalog.query import Catalog

    return Catalog(path, attrs=attrs)
