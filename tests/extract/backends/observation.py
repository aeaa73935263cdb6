"""The observation every backend's conformance tests extract (see :mod:`.conformance`).

A small hand-made event file (:func:`write_observation`): the edge events of
:mod:`tests.helpers.eventfiles` (on region borders, band edges, bin edges, GTI edges
and screening limits), a few more on the GTI edges and TSTOP of this file, seeded
random events, and a stretch of background-only events that makes net rates
negative. Three CCDs have their own GTIs with gaps (one CCD the regions do not
touch, whose GTI must not apply); each event is judged by its own CCD's GTI
(docs/semantics.md §4), and fracexp is that of CCD 4, which holds the source; one bin
lies wholly in a gap of CCD 4 (fracexp 0); TSTOP ends mid-bin. The constants below are
what a correct extraction must find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from schemas.energy import Band
from tests.helpers.eventfiles import (
    T0,
    EventSet,
    FileSpec,
    edge_events,
    random_events,
    write_event_file,
)

__all__ = [
    "BKG",
    "CCD_GTIS",
    "DEFAULT_BANDS",
    "DT",
    "EXPECTED_GTI",
    "EXPECTED_GTIS",
    "FULL_CHANNELS",
    "N_BINS",
    "OBSID",
    "SCREEN_PI",
    "SRC",
    "TSTOP",
    "conformance_events",
    "gti_overlap",
    "write_observation",
]

OBSID = "0123456789"
DT = 100.0
#: TSTOP ends in the middle of the last bin: ceil(950 / 100) = 10 bins.
TSTOP = T0 + 950.0
N_BINS = 10
SRC = [(1000.0, 1000.0, 100.0)]
BKG = [(3000.0, 1000.0, 200.0), (1000.0, 3000.0, 150.0)]
#: CCD 4 holds the source and one background circle, CCD 5 the other background circle;
#: CCD 6 holds no region event, so its GTI must not apply.
CCD_GTIS = {
    4: [(T0, T0 + 400), (T0 + 430, T0 + 690), (T0 + 810, T0 + 1000)],
    5: [(T0, T0 + 600), (T0 + 650, T0 + 1000)],
    6: [(T0, T0 + 10)],
}
#: Each CCD's GTI within [TSTART, TSTOP]: it judges that CCD's events.
EXPECTED_GTIS = {
    4: [(T0, T0 + 400), (T0 + 430, T0 + 690), (T0 + 810, TSTOP)],
    5: [(T0, T0 + 600), (T0 + 650, TSTOP)],
}
#: The stored GTI and the fracexp are those of CCD 4 (the source's); bin 7 lies in its gap.
EXPECTED_GTI = EXPECTED_GTIS[4]
#: Screening PI range of ``Screening()`` (inclusive) and the whole 5 eV channels inside it.
SCREEN_PI = (200, 12000)
FULL_CHANNELS = (40, 2400)

#: Native-cheap default bands: edge bands and two additive triples; sorted.
DEFAULT_BANDS = (
    Band(200, 12001),
    Band(1999, 2001),
    Band(2000, 2400),
    Band(2000, 4000),
    Band(2000, 10000),
    Band(2400, 10000),
    Band(4000, 10000),
    Band(9999, 10001),
)


def conformance_events() -> EventSet:
    """The events of the conformance observation (deterministic)."""
    # source events on this file's own GTI edges and TSTOP (offset, x, y, PI, PATTERN, FLAG, CCD):
    # 689.9999 and 810 kept; 690, 750 (gap) and 809.9999 dropped; 949.9999 kept; 950 = TSTOP not
    # (and the edge events on CCD 4 in CCD 5's gap [600, 650) are kept)
    extra = EventSet.from_rows(
        [
            (t, 1000, 1000, 3000, 0, 0, 4)
            for t in (689.9999, 690.0, 750.0, 809.9999, 810.0, 949.9999, 950.0)
        ]
    )
    # background-only stretch (CCD 4 circle) in [800, 950): net rates there are negative
    rng = np.random.default_rng(2024)
    n = 150
    ang, rad = rng.random(n) * 2 * np.pi, rng.random(n) * 150
    bkg_only = EventSet(
        T0 + 800 + rng.random(n) * 150,
        (3000 + rad * np.cos(ang)).astype(np.int32),
        (1000 + rad * np.sin(ang)).astype(np.int32),
        rng.integers(SCREEN_PI[0], SCREEN_PI[1] + 1, n).astype(np.int16),
        np.zeros(n, np.uint8),
        np.zeros(n, np.int32),
        np.full(n, 4, np.uint8),
    )
    randoms = random_events(4000, seed=31, span=800.0)
    return EventSet.concat([edge_events(), extra, randoms, bkg_only])


def write_observation(folder: Path) -> Path:
    """Write the conformance event file into ``folder``; returns its path."""
    spec = FileSpec(tstart=T0, tstop=TSTOP, ccd_gtis=CCD_GTIS)
    return write_event_file(folder / "pn_events.fits", conformance_events(), spec)


def gti_overlap(t0: float, dt: float, n: int) -> NDArray[np.float64]:
    """Fraction of each bin inside EXPECTED_GTI (CCD 4's), by a double loop."""
    out = np.zeros(n)
    for k in range(n):
        a, b = t0 + k * dt, t0 + (k + 1) * dt
        for s, e in EXPECTED_GTI:
            out[k] += max(0.0, min(b, e) - max(a, s))
    return out / dt
