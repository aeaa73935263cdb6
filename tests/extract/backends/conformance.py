"""What every extraction backend must do, as tests a backend's test class inherits.

Modelled on zarr-python's ``StoreTests`` (zarr/testing/store.py): a backend's test
module subclasses :class:`BackendConformance` and provides the hooks below; every
``test_*`` method then runs against that backend::

    class TestNativeBackend(BackendConformance):
        backend_cls = NativeBackend

The class name has no ``Test`` prefix, so pytest does not collect it by itself.

The observation is a small hand-made event file with events on every edge
(:mod:`tests.extract.backends.observation`). Every count is checked against
:func:`tests.helpers.eventfiles.brute_force_counts`, a literal loop over events.

Hooks (class attributes and class methods a subclass sets or overrides):

``backend_cls``
    The backend class.
``backend_options()``
    Its build-file options (default none).
``backend_environment``
    A class-scoped autouse fixture preparing the environment (the SAS tests put
    the stand-in executables on PATH); the default does nothing.
``make_job(folder)``
    The ObservationJob of the conformance observation written into ``folder``
    (the SAS tests add a ``ccf.cif`` beside the event file).
``bands``
    Bands of the shared extraction, sorted; include a triple [a, b), [b, c), [a, c).
``recovers_counts``
    Whether ``src_counts``/``bkg_counts`` are the raw counts (else all NaN).
``makes_spectra``
    Whether ``reference_spectrum`` gives a spectrum (else ConfigError, the default).
``float_rtol``
    Relative tolerance of floating-point outputs (SAS files hold real32 values).
``rate_area_ratio(job)``, ``abscorr_factor(abscorr)``
    The background scaling and absolute-correction factor the backend's rates
    follow (the SAS stand-ins' epiclccorr uses a made-up ratio and correction).
"""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from astropy.io import fits
from numpy.typing import NDArray

from pipeline.extract.backends import available_backends, get_backend
from pipeline.extract.backends.base import Backend
from pipeline.extract.jobs import BandCurves, ObservationJob, combine_curves
from pipeline.select.regions import parse_regions
from schemas.build import SchemeOptions, Screening
from schemas.energy import Band
from schemas.errors import ConfigError
from tests.extract.backends.observation import (
    BKG,
    DEFAULT_BANDS,
    DT,
    EXPECTED_GTI,
    EXPECTED_GTIS,
    FULL_CHANNELS,
    N_BINS,
    OBSID,
    SCREEN_PI,
    SRC,
    conformance_events,
    gti_overlap,
    write_observation,
)
from tests.helpers.eventfiles import REGION_TEXT, T0, EventSet, brute_force_counts

__all__ = ["BackendConformance", "extract_all"]


def extract_all(
    backend: Backend[Any], prepared: Any, bands: tuple[Band, ...], options: SchemeOptions
) -> BandCurves:
    """Extract every unit of ``backend.partition(bands)`` and combine them, as the graph does.

    The units run concurrently on threads, as Dask runs them on a worker's threads.
    """
    units = backend.partition(bands)
    with ThreadPoolExecutor(max_workers=4) as pool:
        parts = list(pool.map(lambda u: backend.extract(prepared, u, options), units))
    return combine_curves(parts)


def _arrays(c: BandCurves) -> dict[str, NDArray[np.float64]]:
    names = ("rate", "error", "backv", "backe", "fracexp", "src_counts", "bkg_counts")
    return {n: getattr(c, n) for n in names}


class BackendConformance:
    """The tests every extraction backend passes (see the module docstring for the hooks)."""

    backend_cls: ClassVar[type[Backend[Any]]]
    bands: ClassVar[tuple[Band, ...]] = DEFAULT_BANDS
    recovers_counts: ClassVar[bool] = True
    makes_spectra: ClassVar[bool] = True
    float_rtol: ClassVar[float] = 1e-12

    # -- hooks (class methods: the class-scoped fixtures call them) ---------------------
    @classmethod
    def backend_options(cls) -> dict[str, Any]:
        """The backend's build-file options."""
        return {}

    @classmethod
    def make_job(cls, folder: Path) -> ObservationJob:
        """The job of the conformance observation, its files written into ``folder``."""
        return ObservationJob(
            obsid=OBSID,
            events=write_observation(folder),
            regions=parse_regions(REGION_TEXT, str(folder / "ds9.reg")),
            gti_file=None,
            screening=Screening(),
            flare=None,
            time_bin=DT,
        )

    @classmethod
    def rate_area_ratio(cls, job: ObservationJob) -> float:
        """The A_src / A_bkg the backend's rates scale the background with."""
        return job.regions.area_ratio

    @classmethod
    def abscorr_factor(cls, abscorr: bool) -> float:
        """The factor the backend's absolute corrections multiply net rates by."""
        return 1.0

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def backend_environment(cls) -> Iterator[None]:
        """Whatever the backend needs around it while the class runs (default: nothing)."""
        yield

    # -- shared fixtures -------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def backend(
        cls, backend_environment: None, tmp_path_factory: pytest.TempPathFactory
    ) -> Backend[Any]:
        """The backend bound to a store in a temporary folder."""
        store = tmp_path_factory.mktemp("store") / "cat.zarr"
        return cls.backend_cls(cls.backend_options()).for_store(store)

    @pytest.fixture(scope="class")
    @classmethod
    def job(
        cls, backend_environment: None, tmp_path_factory: pytest.TempPathFactory
    ) -> ObservationJob:
        folder = tmp_path_factory.mktemp("obs") / OBSID / "pn"
        folder.mkdir(parents=True)
        return cls.make_job(folder)

    @pytest.fixture(scope="class")
    @classmethod
    def events(cls) -> EventSet:
        return conformance_events()

    @pytest.fixture(scope="class")
    @classmethod
    def prepared(cls, backend: Backend[Any], job: ObservationJob) -> Any:
        return backend.prepare(job)

    @pytest.fixture(scope="class")
    @classmethod
    def curves(cls, backend: Backend[Any], prepared: Any) -> BandCurves:
        """The shared extraction of ``bands`` (abscorr off)."""
        return extract_all(backend, prepared, cls.bands, SchemeOptions(abscorr=False))

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls, events: EventSet) -> dict[Band, tuple[NDArray[np.int64], NDArray[np.int64]]]:
        """Brute-force source and background counts per bin of every band."""
        out = {}
        for band in cls.bands:
            lohi = (band.pi_lo, band.pi_hi)
            out[band] = (
                brute_force_counts(events, SRC, lohi, EXPECTED_GTIS, T0, DT, N_BINS),
                brute_force_counts(events, BKG, lohi, EXPECTED_GTIS, T0, DT, N_BINS),
            )
        return out

    def _reference_arrays(
        self, reference: dict[Band, tuple[NDArray[np.int64], NDArray[np.int64]]]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        src = np.array([reference[b][0] for b in self.bands], dtype=np.float64)
        bkg = np.array([reference[b][1] for b in self.bands], dtype=np.float64)
        return src, bkg

    # -- registry and shipping -----------------------------------------------------------------
    def test_registered_under_its_name(self, backend: Backend[Any]) -> None:
        name = self.backend_cls.name
        assert backend.name == name
        registry = available_backends()
        assert name in registry
        assert registry[name].load() is self.backend_cls
        again = get_backend(name, self.backend_options())
        assert type(again) is self.backend_cls

    def test_backend_and_prepared_pickle_round_trip(
        self, backend: Backend[Any], prepared: Any, curves: BandCurves
    ) -> None:
        shipped = pickle.loads(pickle.dumps(backend))
        assert type(shipped) is type(backend) and vars(shipped) == vars(backend)
        p2 = pickle.loads(pickle.dumps(prepared))
        s1, s2 = backend.summary(prepared), shipped.summary(p2)
        assert (s2.obsid, s2.t0, s2.dt, s2.n_bins) == (s1.obsid, s1.t0, s1.dt, s1.n_bins)
        np.testing.assert_array_equal(s2.gti, s1.gti)
        unit = backend.partition(self.bands)[0]
        again = shipped.extract(p2, unit, SchemeOptions(abscorr=False))
        rows = [self.bands.index(b) for b in unit]
        assert again.bands == unit
        for name, arr in _arrays(curves).items():
            np.testing.assert_array_equal(getattr(again, name), arr[rows], err_msg=name)

    def test_check_returns_json_provenance(
        self, backend: Backend[Any], job: ObservationJob
    ) -> None:
        info = backend.check([job])
        assert isinstance(info, dict)
        assert json.loads(json.dumps(info, allow_nan=False)) == info
        assert info["backend"] == self.backend_cls.name

    # -- grid and GTI ---------------------------------------------------------------------------
    def test_summary_grid_and_gti(
        self, backend: Backend[Any], prepared: Any, job: ObservationJob
    ) -> None:
        header = fits.getheader(job.events, "EVENTS")
        tstart, tstop = float(header["TSTART"]), float(header["TSTOP"])
        s = backend.summary(prepared)
        assert s.obsid == job.obsid
        assert s.t0 == tstart and s.dt == job.time_bin
        assert s.n_bins == math.ceil((tstop - tstart) / job.time_bin) == N_BINS
        np.testing.assert_allclose(
            s.time, tstart + job.time_bin * (np.arange(s.n_bins) + 0.5), rtol=0, atol=1e-9
        )
        gti = np.asarray(s.gti, dtype=np.float64)
        assert gti.ndim == 2 and gti.shape[1] == 2
        assert np.all(gti[:, 0] < gti[:, 1])
        assert np.all(gti[1:, 0] > gti[:-1, 1])  # sorted, not overlapping nor touching
        assert gti[0, 0] >= tstart and gti[-1, 1] <= tstop
        np.testing.assert_array_equal(gti, np.array(EXPECTED_GTI))
        assert (s.mjdref, s.timesys, s.timeref) == (50814.0, "TT", "LOCAL")

    # -- partition and extraction ------------------------------------------------------------
    @pytest.mark.parametrize("n", [1, 3, 8])
    def test_partition_keeps_every_band_in_order(self, backend: Backend[Any], n: int) -> None:
        bands = tuple(Band(2000 + 500 * i, 2500 + 500 * i) for i in range(n))
        units = backend.partition(bands)
        assert all(len(u) > 0 for u in units)
        assert tuple(b for u in units for b in u) == bands

    def test_counts_equal_brute_force(
        self,
        curves: BandCurves,
        prepared: Any,
        backend: Backend[Any],
        reference: dict[Band, tuple[NDArray[np.int64], NDArray[np.int64]]],
    ) -> None:
        n_bins = backend.summary(prepared).n_bins
        assert curves.bands == self.bands
        assert curves.rate.shape == (len(self.bands), n_bins)
        if not self.recovers_counts:
            assert np.isnan(curves.src_counts).all() and np.isnan(curves.bkg_counts).all()
            return
        src, bkg = self._reference_arrays(reference)
        assert src.sum() > 0 and bkg.sum() > 0
        np.testing.assert_array_equal(curves.src_counts, src)
        np.testing.assert_array_equal(curves.bkg_counts, bkg)

    def test_bands_add_up(self, curves: BandCurves) -> None:
        index = {b: i for i, b in enumerate(curves.bands)}
        triples = [
            (index[a], index[b], index[Band(a.pi_lo, b.pi_hi)])
            for a in curves.bands
            for b in curves.bands
            if a.pi_hi == b.pi_lo and Band(a.pi_lo, b.pi_hi) in index
        ]
        assert triples, "bands must include some [a, b), [b, c) and [a, c)"
        f = curves.fracexp
        for i, j, k in triples:
            if self.recovers_counts:
                np.testing.assert_array_equal(
                    curves.src_counts[i] + curves.src_counts[j], curves.src_counts[k]
                )
                np.testing.assert_array_equal(
                    curves.bkg_counts[i] + curves.bkg_counts[j], curves.bkg_counts[k]
                )
            ok = f[k] > 0
            for name in ("rate", "backv"):
                v = getattr(curves, name)
                np.testing.assert_allclose(
                    v[i][ok] + v[j][ok], v[k][ok], rtol=10 * self.float_rtol, atol=1e-9
                )
            np.testing.assert_array_equal(f[i], f[k])

    def test_fracexp_and_nan_only_without_exposure(self, curves: BandCurves) -> None:
        f = curves.fracexp
        assert np.all((f >= 0) & (f <= 1))
        expected = np.broadcast_to(gti_overlap(T0, DT, N_BINS), f.shape)
        np.testing.assert_allclose(f, expected, rtol=0, atol=max(self.float_rtol, 1e-12))
        no_exposure = f == 0
        assert no_exposure[:, 7].all() and no_exposure.sum() == len(self.bands)
        for name in ("rate", "error"):
            v = getattr(curves, name)
            np.testing.assert_array_equal(np.isnan(v), no_exposure, err_msg=name)
            assert np.isfinite(v[~no_exposure]).all()

    def test_negative_net_rates_are_kept(
        self,
        curves: BandCurves,
        job: ObservationJob,
        reference: dict[Band, tuple[NDArray[np.int64], NDArray[np.int64]]],
    ) -> None:
        src, bkg = self._reference_arrays(reference)
        exposed = curves.fracexp > 0
        net = src - self.rate_area_ratio(job) * bkg
        negative = exposed & (net < -1e-9)
        # the background-only stretch makes bins 8 and 9 negative in every wide band
        wide = np.array([b.pi_hi - b.pi_lo >= 1000 for b in self.bands])
        assert wide.any() and negative[wide][:, 8:].all()
        assert (curves.rate[negative] < 0).all() and np.isfinite(curves.rate[negative]).all()
        assert (curves.rate[exposed & (src == 0) & (bkg > 0)] < 0).all()
        assert (curves.rate[exposed & (net > 1e-9)] > 0).all()

    @pytest.mark.parametrize("abscorr", [False, True], ids=["abscorr-off", "abscorr-on"])
    def test_rates_follow_the_net_rate_formulas(
        self,
        backend: Backend[Any],
        prepared: Any,
        curves: BandCurves,
        job: ObservationJob,
        reference: dict[Band, tuple[NDArray[np.int64], NDArray[np.int64]]],
        abscorr: bool,
    ) -> None:
        if abscorr:
            unit = backend.partition(self.bands)[0]
            got = backend.extract(prepared, unit, SchemeOptions(abscorr=True))
        else:
            unit, got = self.bands, curves
        rows = [self.bands.index(b) for b in unit]
        src, bkg = (a[rows] for a in self._reference_arrays(reference))
        r, c = self.rate_area_ratio(job), self.abscorr_factor(abscorr)
        if not self.backend_cls.applies_abscorr:
            assert c == 1.0  # a backend that applies no corrections has none in its rates
        f = got.fracexp
        expo = np.where(f > 0, DT * f, np.nan)
        expected = {
            "rate": c * (src - r * bkg) / expo,
            "error": c * np.sqrt(src + r * r * bkg) / expo,
            "backv": r * bkg / expo,
            "backe": r * np.sqrt(bkg) / expo,
        }
        for name, want in expected.items():
            np.testing.assert_allclose(
                getattr(got, name), want, rtol=self.float_rtol, atol=1e-9, err_msg=name
            )

    def test_extraction_is_deterministic(
        self, backend: Backend[Any], prepared: Any, curves: BandCurves
    ) -> None:
        unit = backend.partition(self.bands)[0]
        once = backend.extract(prepared, unit, SchemeOptions(abscorr=False))
        rows = [self.bands.index(b) for b in unit]
        assert once.bands == unit
        for name, arr in _arrays(curves).items():
            np.testing.assert_array_equal(getattr(once, name), arr[rows], err_msg=name)

    # -- reference spectrum ------------------------------------------------------------------
    def test_reference_spectrum(
        self, backend: Backend[Any], prepared: Any, job: ObservationJob, events: EventSet
    ) -> None:
        if not self.makes_spectra:
            with pytest.raises(ConfigError, match=f"the {self.backend_cls.name} backend"):
                backend.reference_spectrum(prepared)
            return
        counts, chan0 = backend.reference_spectrum(prepared)
        counts = np.asarray(counts, dtype=np.float64)
        chans = chan0 + np.arange(len(counts))
        lo, hi = FULL_CHANNELS
        inside = (chans >= lo) & (chans < hi)
        assert inside.sum() == hi - lo
        assert np.isfinite(counts[inside]).all()
        ratio = job.regions.area_ratio

        def net(pi_lo: int, pi_hi: int) -> float:
            band = (pi_lo, pi_hi)
            s = brute_force_counts(events, SRC, band, EXPECTED_GTIS, T0, DT, N_BINS).sum()
            b = brute_force_counts(events, BKG, band, EXPECTED_GTIS, T0, DT, N_BINS).sum()
            return float(s - ratio * b)

        total = net(5 * lo, 5 * hi)
        assert total != 0
        assert counts[inside].sum() == pytest.approx(total, rel=1e-9, abs=1e-6)
        # channels on the screening limits and the band edges of the edge events
        for c in (lo, 399, 400, 1999, 2000, hi - 1):
            assert counts[c - chan0] == pytest.approx(net(5 * c, 5 * c + 5), abs=1e-6), c
        # below the screening range nothing; channel hi holds only PI 12000 (or is left out)
        below = chans < lo
        np.testing.assert_array_equal(counts[below], 0.0)
        above = chans > hi
        np.testing.assert_array_equal(counts[above], 0.0)
        if (chans == hi).any() and np.isfinite(counts[chans == hi]).all():
            partial = net(SCREEN_PI[1], SCREEN_PI[1] + 1)
            assert counts[chans == hi][0] == pytest.approx(partial, abs=1e-6)
