"""The SAS backend runs the backend conformance suite, with stand-in SAS executables.

The stand-ins (tests/helpers/sas_standin_impl.py) really select and count events, so
counts, GTIs, fracexp and spectra must be exact; their epiclccorr scales the
background by a made-up ratio and multiplies by a made-up absolute correction, which
the rate hooks say. Every band is a real run (no band cache); three bands keep it fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pipeline.extract.backends.sas import SASBackend
from pipeline.extract.jobs import ObservationJob
from schemas.energy import Band
from tests.extract.backends.conformance import BackendConformance
from tests.helpers.sas_standin_impl import C_ABS, RATIO
from tests.helpers.sas_standins import install


class TestSASBackend(BackendConformance):
    backend_cls = SASBackend
    bands: ClassVar[tuple[Band, ...]] = (Band(2000, 4000), Band(2000, 10000), Band(4000, 10000))
    float_rtol: ClassVar[float] = 1e-6  # epiclccorr writes real32 columns

    @classmethod
    def backend_options(cls) -> dict[str, Any]:
        return {"cache": False}

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def backend_environment(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        """Stand-in evselect, epiclccorr and sasversion first on PATH for the whole class."""
        with pytest.MonkeyPatch.context() as mp:
            install(tmp_path_factory.mktemp("sas"), mp)
            yield

    @classmethod
    def make_job(cls, folder: Path) -> ObservationJob:
        job = super().make_job(folder)
        (job.events.parent / "ccf.cif").write_text("stand-in calibration index")
        return job

    @classmethod
    def rate_area_ratio(cls, job: ObservationJob) -> float:
        return RATIO

    @classmethod
    def abscorr_factor(cls, abscorr: bool) -> float:
        return C_ABS if abscorr else 1.0
