"""Hand-made pn event files for tests, with events placed exactly on the edges that matter.

Independent of the simulator, so extraction is checked against files whose
every event is known. ``brute_force_counts`` is the independent reference: a
plain loop over events applying each rule literally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

T0 = 3.0e8  # TSTART (MET s)
DT = 100.0


@dataclass
class EventSet:
    """Columns of an event list (numpy arrays of equal length)."""

    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    pi: np.ndarray
    pattern: np.ndarray
    flag: np.ndarray
    ccd: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_rows(cls, rows: list[tuple[float, int, int, int, int, int, int]]) -> EventSet:
        """Events from rows ``(t offset from T0, x, y, pi, pattern, flag, ccd)``."""
        a = np.array(rows, dtype=float).reshape(-1, 7)
        return cls(
            T0 + a[:, 0],
            a[:, 1].astype(np.int32),
            a[:, 2].astype(np.int32),
            a[:, 3].astype(np.int16),
            a[:, 4].astype(np.uint8),
            a[:, 5].astype(np.int32),
            a[:, 6].astype(np.uint8),
        )

    @classmethod
    def concat(cls, parts: list[EventSet]) -> EventSet:
        return cls(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("time", "x", "y", "pi", "pattern", "flag", "ccd")
            )
        )


@dataclass
class FileSpec:
    tstart: float = T0
    tstop: float = T0 + 1000.0
    ccd_gtis: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    header: dict[str, object] = field(default_factory=dict)
    #: More extensions written after the STDGTIs (data-subspace GTI tables, EXPOSUnn ...).
    extensions: list[fits.BinTableHDU] = field(default_factory=list)


def write_event_file(path: Path, ev: EventSet, spec: FileSpec) -> Path:
    order = np.argsort(ev.time, kind="stable")
    cols = [
        fits.Column("TIME", "D", array=ev.time[order]),
        fits.Column("X", "J", array=ev.x[order]),
        fits.Column("Y", "J", array=ev.y[order]),
        fits.Column("PI", "I", array=ev.pi[order]),
        fits.Column("PATTERN", "B", array=ev.pattern[order]),
        fits.Column("FLAG", "J", array=ev.flag[order]),
        fits.Column("CCDNR", "B", array=ev.ccd[order]),
    ]
    events = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    h = events.header
    h["TELESCOP"] = "XMM"
    h["INSTRUME"] = "EPN"
    h["TSTART"] = spec.tstart
    h["TSTOP"] = spec.tstop
    h["MJDREF"] = 50814.0
    h["TIMESYS"] = "TT"
    h["TIMEREF"] = "LOCAL"
    for k, v in spec.header.items():
        h[k] = v
    hdus = [fits.PrimaryHDU(), events]
    for ccd, rows in sorted(spec.ccd_gtis.items()):
        arr = np.array(rows, dtype=float).reshape(-1, 2)
        g = fits.BinTableHDU.from_columns(
            [fits.Column("START", "D", array=arr[:, 0]), fits.Column("STOP", "D", array=arr[:, 1])],
            name=f"STDGTI{ccd:02d}",
        )
        g.header["CCDID"] = ccd
        hdus.append(g)
    hdus += spec.extensions
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


REGION_TEXT = """# Region file format: DS9 version 4.1
global color=green
physical
circle(1000,1000,100)
circle(3000,1000,200) # background
circle(1000,3000,150) # background
"""


def edge_events() -> EventSet:
    """Events exactly on region borders, band edges, bin edges and GTI edges."""
    rows = []
    # (t offset, x, y, pi, pattern, flag, ccd)
    for dx, dy in [(100, 0), (-100, 0), (0, 100), (60, 80), (-60, -80), (101, 0), (71, 71), (0, 0)]:
        rows.append((50.5, 1000 + dx, 1000 + dy, 3000, 0, 0, 4))
    for dx, dy in [(200, 0), (120, 160), (201, 0)]:
        rows.append((250.5, 3000 + dx, 1000 + dy, 3000, 0, 0, 4))
    for dx, dy in [(0, 150), (90, 120), (0, 151)]:
        rows.append((250.5, 1000 + dx, 3000 + dy, 3000, 0, 0, 5))
    for pi in [1999, 2000, 2001, 2399, 2400, 9999, 10000, 200, 199, 12000, 12001]:
        rows.append((150.5, 1000, 1000, pi, 0, 0, 4))
    for t in [0.0, 100.0, 200.0, 99.999999, 999.9999, 1000.0, -0.001]:
        rows.append((t, 1000, 1000, 3000, 0, 0, 4))
    # GTI edges of CCD 4 (gap [400, 430)) and CCD 5 (gap [600, 650))
    for t in [400.0, 430.0, 429.9999, 399.9999, 600.0, 650.0, 649.9999]:
        rows.append((t, 1000, 1000, 3000, 0, 0, 4))
    # screening
    for pattern, flag in [(4, 0), (5, 0), (12, 0), (0, 1), (0, 0x10000)]:
        rows.append((350.5, 1000, 1000, 3000, pattern, flag, 4))
    return EventSet.from_rows(rows)


def random_events(n: int, seed: int, tstart: float = T0, span: float = 1000.0) -> EventSet:
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(n) < 0.5, rng.integers(880, 1121, n), rng.integers(2750, 3251, n))
    y = np.where(
        x < 2000,
        np.where(rng.random(n) < 0.6, rng.integers(880, 1121, n), rng.integers(2800, 3201, n)),
        rng.integers(750, 1251, n),
    )
    ccd = np.where(y > 2000, 5, 4)
    return EventSet(
        time=tstart + rng.random(n) * span,
        x=x.astype(np.int32),
        y=y.astype(np.int32),
        pi=rng.integers(150, 12100, n).astype(np.int16),
        pattern=rng.choice([0, 0, 0, 1, 2, 3, 4, 6, 10], n).astype(np.uint8),
        flag=np.where(rng.random(n) < 0.9, 0, rng.choice([1, 4, 0x10000], n)).astype(np.int32),
        ccd=ccd.astype(np.uint8),
    )


def in_gti(t: float, gtis: list[tuple[float, float]]) -> bool:
    return any(a <= t < b for a, b in gtis)


#: GTIs shared by every CCD, or a GTI list per CCD (each event judged by its own CCD's).
GtiSpec = list[tuple[float, float]] | dict[int, list[tuple[float, float]]]


def brute_force_counts(
    ev: EventSet,
    shapes: list[tuple[float, float, float]],
    band: tuple[int, int],
    gtis: GtiSpec,
    t0: float,
    dt: float,
    n_bins: int,
    pattern_max: int = 4,
    pi_range: tuple[int, int] = (200, 12000),
) -> np.ndarray:
    """Counts per bin by a literal loop over events (independent reference).

    ``gtis`` is one GTI list for every event, or a dict CCD -> GTI list: each event is
    then judged by its own CCD's GTI (a CCD missing from the dict has none).
    """
    out = np.zeros(n_bins, dtype=np.int64)
    for i in range(len(ev)):
        t, x, y, pi = float(ev.time[i]), float(ev.x[i]), float(ev.y[i]), int(ev.pi[i])
        if not (
            ev.pattern[i] <= pattern_max and ev.flag[i] == 0 and pi_range[0] <= pi <= pi_range[1]
        ):
            continue
        if not any((x - cx) ** 2 + (y - cy) ** 2 <= r * r for cx, cy, r in shapes):
            continue
        own = gtis.get(int(ev.ccd[i]), []) if isinstance(gtis, dict) else gtis
        if not band[0] <= pi < band[1] or not in_gti(t, own):
            continue
        for k in range(n_bins):
            if t0 + k * dt <= t < t0 + (k + 1) * dt:
                out[k] += 1
                break
    return out
