"""The extraction-backend base class that the Dask graph is written against.

A backend turns one observation and a set of energy bands into light curves on
the observation's explicit time grid. The graph never branches on a backend's
name, nor asks what it can do with ``getattr``: every hook below exists on the
base class, with a default where one makes sense (as xarray's
``BackendEntrypoint`` does for storage formats). The graph asks the backend to
``prepare`` each observation (one task each), to ``partition`` a scheme's bands
into extraction units (all bands at once for the native one-pass backend, one
band per task for SAS), to ``extract`` each unit, and it writes the assembled
bands of each (obsid, scheme) through ``catalog``.

A new backend subclasses :class:`Backend`, implements :meth:`Backend.prepare`,
:meth:`Backend.summary` and :meth:`Backend.extract`, and registers itself under
a name in the ``xlcat.backends`` entry-point group (see
:mod:`pipeline.extract.backends`). Everything passed between tasks is a frozen,
picklable value (:mod:`pipeline.extract.jobs`).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from pipeline.extract.jobs import BandCurves, ObservationJob, ObservationSummary
from schemas.build import SchemeOptions
from schemas.energy import Band
from schemas.errors import ConfigError

if TYPE_CHECKING:  # catalog.layout imports xarray, which the planner does not need
    from catalog.layout import SpectrumPart

__all__ = ["Backend", "PreparedT"]

#: What a backend's ``prepare`` returns and its other hooks take back (backend-specific).
PreparedT = TypeVar("PreparedT")


class Backend(ABC, Generic[PreparedT]):
    """An extraction backend (see the module docstring).

    Subclasses must be picklable (they are shipped to Dask workers) and their
    hooks pure functions of their arguments, so a failed task can be retried.

    Parameters
    ----------
    options : dict, optional
        The backend's table of the build file (``[sas]`` for the SAS backend). The
        default constructor accepts none.

    Raises
    ------
    ConfigError
        If options are given to a backend that takes none.

    Attributes
    ----------
    name : str
        The name the build file selects the backend by (``backend = "native"``).
    applies_abscorr : bool
        True when the backend can apply the absolute corrections (vignetting, PSF,
        QE, filter) a scheme asks for with ``abscorr = true``; the groups record
        whether they were applied.
    one_task_per_exposure : bool
        True when the build should run prepare, every scheme's extraction and the
        write of an exposure as one task (the prepared observation never leaves the
        worker); False for backends whose bands are independent jobs worth spreading
        over the cluster (SAS: one task per band).
    """

    name: ClassVar[str]
    applies_abscorr: ClassVar[bool] = False
    one_task_per_exposure: ClassVar[bool] = True

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        if options:
            raise ConfigError(
                f"the {self.name} backend takes no options, got {', '.join(sorted(options))}"
            )

    # -- hooks with defaults -----------------------------------------------------------------
    def check(self, jobs: list[ObservationJob]) -> dict[str, Any]:
        """Check the environment before any task runs; return provenance (versions...).

        Runs once, at plan time, before anything is written. The default needs
        nothing external. A key ``identity`` in the result, when present, enters every
        group's input hash (what the environment contributes to the numbers).

        Parameters
        ----------
        jobs : list of ObservationJob
            Every observation of the build.

        Returns
        -------
        dict
            JSON-able facts stored with every group as ``backend_info``.

        Raises
        ------
        XlcatError
            If the environment cannot run the build (with what to fix).
        """
        return {"backend": self.name}

    def for_store(self, store: str | os.PathLike[str]) -> Backend[PreparedT]:
        """The backend bound to the store it builds into.

        Backends that keep files beside the store (the SAS logs and band cache)
        return a copy that knows where; the default keeps nothing and returns itself.
        """
        return self

    def partition(self, bands: tuple[Band, ...]) -> list[tuple[Band, ...]]:
        """Split a scheme's bands into extraction units, one Dask task each.

        The default extracts every band of a scheme in one task.
        """
        return [tuple(bands)]

    def spectrum(self, prepared: PreparedT) -> SpectrumPart | None:
        """The exposure's source and background PI spectra to store, or None.

        The default makes none; the group then keeps the spectra it holds when they
        were made from the same inputs.
        """
        return None

    def reference_spectrum(self, prepared: PreparedT) -> tuple[NDArray[np.float64], int]:
        """Net counts per 5 eV channel and the first channel, for equal-count schemes.

        Raises
        ------
        ConfigError
            By default: the backend cannot make a spectrum, so equal-count schemes
            must be extracted by another backend.
        """
        raise ConfigError(
            f"the {self.name} backend makes no spectra, so it cannot resolve equal-count "
            'schemes; give those schemes backend = "native"'
        )

    # -- hooks every backend implements ----------------------------------------------------------
    @abstractmethod
    def prepare(self, job: ObservationJob) -> PreparedT:
        """Per-observation work shared by all bands (one task per observation)."""

    @abstractmethod
    def summary(self, prepared: PreparedT) -> ObservationSummary:
        """The grid, GTIs and provenance of a prepared observation."""

    @abstractmethod
    def extract(
        self, prepared: PreparedT, bands: tuple[Band, ...], options: SchemeOptions
    ) -> BandCurves:
        """Light curves of ``bands`` on the observation's grid."""
