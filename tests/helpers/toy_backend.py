"""A third-party extraction backend for the plug-in tests: registered only by an entry point.

It reuses the native machinery (one pass over the events, the same binning and net-rate
formulas) but extracts one band per task, as the SAS backend does, so a build through it
exercises a partitioned backend that xlcat does not know by name, and its numbers must
equal a native build's. The registry tests install it with a ``*.dist-info`` folder::

    [xlcat.backends]
    toy = tests.helpers.toy_backend:ToyBackend
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from pipeline.extract.backends.base import Backend
from pipeline.extract.backends.native import NativeBackend, NativePrepared, bin_observation
from pipeline.extract.jobs import BandCurves, ObservationJob, ObservationSummary, combine_curves
from schemas.build import SchemeOptions
from schemas.energy import Band

__all__ = ["ToyBackend"]


class ToyBackend(Backend[NativePrepared]):
    """Native numbers, one band per extraction task; no options, no abscorr."""

    name: ClassVar[str] = "toy"

    def prepare(self, job: ObservationJob) -> NativePrepared:
        return bin_observation(job)

    def summary(self, prepared: NativePrepared) -> ObservationSummary:
        return prepared.summary

    def partition(self, bands: tuple[Band, ...]) -> list[tuple[Band, ...]]:
        return [(b,) for b in bands]

    def extract(
        self, prepared: NativePrepared, bands: tuple[Band, ...], options: SchemeOptions
    ) -> BandCurves:
        native = NativeBackend()
        return combine_curves([native.extract(prepared, (b,), options) for b in bands])

    def reference_spectrum(self, prepared: NativePrepared) -> tuple[NDArray[np.float64], int]:
        return prepared.binned.net_channel_spectrum()
