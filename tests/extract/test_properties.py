"""Laws of the one-pass binning, checked with hypothesis on random events and random bands."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.extract.backends.native import bin_observation
from pipeline.extract.jobs import ObservationJob
from pipeline.select.regions import parse_regions
from schemas.build import Screening
from schemas.energy import Band
from tests.helpers.eventfiles import T0, FileSpec, random_events, write_event_file

REGIONS = """physical
circle(1000,1000,100)
circle(3000,1000,200) # background
circle(1000,3000,150) # background
"""


def _binned(tmp_path_factory, seed: int):
    path = write_event_file(
        tmp_path_factory.mktemp("p") / "ev.fits",
        random_events(6000, seed),
        FileSpec(ccd_gtis={4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]}),
    )
    job = ObservationJob(
        "0123456789", path, parse_regions(REGIONS, "p.reg"), None, Screening(), None, 64.0
    )
    return bin_observation(job).binned


_CACHE: dict[int, object] = {}


def _get(tmp_path_factory, seed):
    if seed not in _CACHE:
        _CACHE[seed] = _binned(tmp_path_factory, seed)
    return _CACHE[seed]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.sampled_from([1, 2]),
    cuts=st.lists(st.integers(201, 12000), min_size=1, max_size=30, unique=True),
)
def test_bands_of_a_scheme_add_up_to_its_range(tmp_path_factory, seed, cuts):
    binned = _get(tmp_path_factory, seed)
    edges = [200, *sorted(cuts), 12001]
    bands = tuple(Band(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True))
    src, bkg = binned.band_counts(bands)
    whole_src, whole_bkg = binned.band_counts((Band(200, 12001),))
    np.testing.assert_array_equal(src.sum(axis=0), whole_src[0])
    np.testing.assert_array_equal(bkg.sum(axis=0), whole_bkg[0])


@settings(max_examples=60, deadline=None)
@given(lo=st.integers(200, 11000), width=st.integers(2, 1000), frac=st.floats(0.01, 0.99))
def test_splitting_a_band_adds_up(tmp_path_factory, lo, width, frac):
    binned = _get(tmp_path_factory, 1)
    hi = min(lo + width, 12001)
    mid = lo + max(1, min(hi - lo - 1, int((hi - lo) * frac)))
    parts, _ = binned.band_counts((Band(lo, mid), Band(mid, hi)))
    whole, _ = binned.band_counts((Band(lo, hi),))
    np.testing.assert_array_equal(parts.sum(axis=0), whole[0])
