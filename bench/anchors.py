"""The two anchors the build is measured against: a plain numpy one pass, and a stingray loop.

Both do the build's event work for the light curves of every band of every scheme, on the
observations of a build file, and nothing else (no writes, no rates):

1. read the EVENTS columns (numpy memmap of the FITS table, one pass);
2. screening as the build file says (``PATTERN <= p``, ``FLAG == 0``, ``PI`` in the screening
   range, both ends included, and a flag expression), or, without a screening table, the
   pn default ``PATTERN <= 4 && #XMMEA_EP`` (the simulator writes pn lists);
3. circle tests for the source and background regions of the observation's ds9 file
   (borders included, background shapes tagged ``# background``);
4. the GTI: [TSTART, TSTOP] intersected with the STDGTInn of the CCDs holding screened
   region events, the user GTI file and, when the build has a flare filter, the flare GTI
   (a ``bin`` s curve of ``PI in [lo:hi] && PATTERN == p && <expression>`` over the whole
   detector, good where ``RATE < threshold``, tabgtigen's half-sample rule); an event is
   good when ``START <= t < STOP`` (docs/semantics.md §4, §9);
5. the grid: t0 = TSTART, ``ceil((TSTOP - TSTART) / dt)`` bins (docs/semantics.md §3).

Then

- :func:`numpy_anchor` makes one ``np.bincount`` per region over (time bin x PI column),
  with the PI axis cut at the union of every scheme's band edges, and sums columns into the
  bands of every scheme;
- :func:`stingray_loop` does what a user would write instead: per band of every scheme,
  select the band's events from the arrays already in memory, and
  ``stingray.EventList(...).to_lc(dt)`` for the source and for the background. That is slow
  for hundreds of bands, so a sample of bands per observation is timed and the time is
  extrapolated linearly to all bands.

Plain numpy means the anchors do not call xlcat's extraction code (``pipeline.read``,
``pipeline.select``, ``pipeline.extract``, ``catalog.gti``): the region files, GTIs and the
flare expression are read here, so a test comparing the anchor's counts with the store
checks xlcat against an independent implementation. Only the build file is parsed with
xlcat's loader (``schemas.build.load_build``), for the observations, screening and schemes.
The anchors support what the simulator writes: pn lists, circles, and a screening or flare
expression that is ``FLAG==0`` or a ``#MACRO`` whose header text is ``(FLAG & MASK) == 0``
(``FLAG==0`` when the header lacks it); anything else is refused with a ConfigError.

CPU is measured with :func:`time.process_time` (user + system of every thread of this
process); the anchors start no process.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from numpy.typing import NDArray
from stingray import EventList

from schemas.build import BuildConfig, FlareFilter, Observation
from schemas.errors import ConfigError

__all__ = [
    "SelectedEvents",
    "NumpyAnchorRun",
    "StingrayLoopRun",
    "read_ds9_circles",
    "scheme_bands",
    "union_edges",
    "select_events",
    "numpy_band_counts",
    "numpy_anchor",
    "stingray_band_counts",
    "stingray_loop",
]

_COLUMNS = ("TIME", "X", "Y", "PI", "PATTERN", "FLAG", "CCDNR")
_CIRCLE = re.compile(r"^\s*circle\(\s*([^,()]+),([^,()]+),([^,()]+)\)\s*(#.*)?$", re.IGNORECASE)
_FLAG_MASK = re.compile(r"^\(*\s*FLAG\s*&\s*(0x[0-9a-fA-F]+|\d+)\s*\)?\s*==\s*0\s*\)*$")
_FLAG_ZERO = re.compile(r"^\(*\s*FLAG\s*==\s*0\s*\)*$")

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


# -- inputs -------------------------------------------------------------------------------------
def read_ds9_circles(path: str | Path) -> tuple[Floats, Floats]:
    """Source and background circles of a ds9 region file in physical coordinates.

    Parameters
    ----------
    path : str or Path
        ds9 file: a ``physical`` line, ``circle(x,y,r)`` lines; a circle whose comment holds
        ``background`` is a background circle.

    Returns
    -------
    (ndarray, ndarray)
        Source and background circles, shape (n, 3): x, y, r in sky pixels.

    Raises
    ------
    ConfigError
        For a shape other than a circle, or a side without circles.
    """
    src: list[tuple[float, float, float]] = []
    bkg: list[tuple[float, float, float]] = []
    for n, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("global") or line == "physical":
            continue
        m = _CIRCLE.match(line)
        if m is None:
            raise ConfigError(
                f"regions file {path} line {n}: the numpy anchor reads only circle(x,y,r) in "
                "physical coordinates; use circles for the benchmark"
            )
        xyr = (float(m.group(1)), float(m.group(2)), float(m.group(3)))
        (bkg if m.group(4) and "background" in m.group(4) else src).append(xyr)
    if not src or not bkg:
        raise ConfigError(
            f"regions file {path}: give at least one source and one background circle"
        )
    return np.array(src, np.float64), np.array(bkg, np.float64)


def scheme_bands(config: BuildConfig) -> dict[str, Ints]:
    """PI limits of every band of every scheme of a build, shape (n_bands, 2) per scheme.

    Raises
    ------
    ConfigError
        For an equal-count scheme (its edges come from a spectrum the anchors do not make).
    """
    out: dict[str, Ints] = {}
    for name, scheme in config.schemes.items():
        if not scheme.is_resolved:
            raise ConfigError(
                f"build file {config.path} scheme {name}: the anchors need fixed edges; give "
                "the equal-count scheme's edges"
            )
        out[name] = np.array([(b.pi_lo, b.pi_hi) for b in scheme.bands], np.int64)
    return out


def union_edges(bands: dict[str, Ints]) -> Ints:
    """Sorted union of every band edge of every scheme: the PI columns of the anchor."""
    return np.unique(np.concatenate([b.ravel() for b in bands.values()]))


def _read_events(path: Path) -> tuple[dict[str, NDArray[Any]], fits.Header, dict[int, Floats]]:
    """The EVENTS columns through a numpy memmap of the table, the header and the STDGTInn."""
    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        i = hdul.index_of("EVENTS")
        hdu = hdul[i]
        header = hdu.header.copy()
        offset = int(hdul.fileinfo(i)["datLoc"])
        dtype = hdu.columns.dtype.newbyteorder(">")  # FITS tables are big-endian
        scaling = {c.name.upper(): (c.bscale, c.bzero) for c in hdu.columns}
        names = {c.name.upper(): c.name for c in hdu.columns}
        ccd_gtis: dict[int, Floats] = {}
        for h in hdul[1:]:
            m = re.fullmatch(r"STDGTI(\d\d)", h.name)
            if m:
                ccd_gtis[int(m.group(1))] = np.column_stack(
                    [
                        np.asarray(h.data["START"], np.float64),
                        np.asarray(h.data["STOP"], np.float64),
                    ]
                ).reshape(-1, 2)
    n = int(header["NAXIS2"])
    table = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=(n,))
    cols: dict[str, NDArray[Any]] = {}
    for c in _COLUMNS:
        if c not in names:
            raise ConfigError(f"events file {path} EVENTS: column {c} is missing")
        a = np.asarray(table[names[c]])
        a = a.astype(a.dtype.newbyteorder("="))  # one native-order copy: the read
        scale, zero = scaling[c]
        if scale not in (None, 1) or zero not in (None, 0):
            a = a * (scale or 1) + (zero or 0)
        cols[c] = a
    del table
    return cols, header, ccd_gtis


def _read_gti_file(path: Path) -> Floats:
    """START, STOP of a user GTI file: extension GTI or STDGTI, else the first with both."""
    with fits.open(path) as hdul:
        tables = [
            h
            for h in hdul[1:]
            if h.data is not None and {"START", "STOP"} <= set(c.upper() for c in h.columns.names)
        ]
        if not tables:
            raise ConfigError(f"GTI file {path}: no table with START and STOP")
        pick = next((h for h in tables if h.name in ("GTI", "STDGTI")), tables[0])
        return np.column_stack(
            [np.asarray(pick.data["START"], np.float64), np.asarray(pick.data["STOP"], np.float64)]
        ).reshape(-1, 2)


# -- GTI arithmetic (plain numpy) -----------------------------------------------------------------
def _contains_any(table: Floats, t: Floats) -> NDArray[np.bool_]:
    """``start <= t < stop`` for some row of a small, possibly unsorted table."""
    if len(table) == 0:
        return np.zeros(t.shape, bool)
    inside: NDArray[np.bool_] = np.any((table[:, :1] <= t) & (t < table[:, 1:]), axis=0)
    return inside


def _intersect(tables: Iterable[Floats]) -> Floats:
    """The instants good in every table, as a sorted, disjoint ``[start, stop)`` table.

    The boundaries of all tables cut time into segments; a segment is good when its midpoint
    lies in every table; runs of good segments merge.
    """
    tabs = [np.asarray(t, np.float64).reshape(-1, 2) for t in tables]
    pts = np.unique(np.concatenate([t.ravel() for t in tabs]))
    if len(pts) < 2:
        return np.empty((0, 2))
    lo, hi = pts[:-1], pts[1:]
    mid = 0.5 * (lo + hi)
    good = np.ones(len(mid), bool)
    for t in tabs:
        good &= _contains_any(t, mid)
    change = np.diff(np.concatenate([[0], good.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(change == 1), np.flatnonzero(change == -1) - 1
    return np.column_stack([lo[starts], hi[stops]])


def _good(gti: Floats, t: Floats) -> NDArray[np.bool_]:
    """``START <= t < STOP`` against a sorted, disjoint table."""
    if len(gti) == 0:
        return np.zeros(t.shape, bool)
    k = np.searchsorted(gti[:, 0], t, side="right") - 1
    kk = np.maximum(k, 0)
    good: NDArray[np.bool_] = (k >= 0) & (t < gti[kk, 1])
    return good


def _n_bins(tstart: float, tstop: float, dt: float) -> int:
    ratio = (tstop - tstart) / dt
    return max(1, math.ceil(ratio - 1e-9 * max(1.0, abs(ratio))))


def _flag_mask(
    flag: NDArray[Any], expression: str, header: fits.Header, path: Path, what: str
) -> NDArray[np.bool_]:
    """Events passing ``FLAG==0``, ``(FLAG & MASK) == 0`` or a ``#MACRO`` holding either.

    A macro the header lacks is ``FLAG==0``, as xlcat's fallback (docs/semantics.md §8).
    """
    text = expression.strip()
    if text.startswith("#"):
        body = header.get(text[1:])
        text = "FLAG==0" if body is None else str(body).strip()
    m = _FLAG_MASK.match(text)
    if m:
        masked: NDArray[np.bool_] = (flag & int(m.group(1), 0)) == 0
        return masked
    if _FLAG_ZERO.match(text):
        zero: NDArray[np.bool_] = flag == 0
        return zero
    raise ConfigError(
        f"events file {path}: the numpy anchor reads only a {what} expression FLAG==0 or "
        f"(FLAG & MASK) == 0, not {expression!r}"
    )


def _flare_mask(
    cols: dict[str, NDArray[Any]], flare: FlareFilter, header: fits.Header, path: Path
) -> NDArray[np.bool_]:
    pi = cols["PI"]
    sel: NDArray[np.bool_] = (pi >= flare.pi[0]) & (pi <= flare.pi[1])
    sel &= cols["PATTERN"] == flare.pattern
    sel &= _flag_mask(cols["FLAG"], flare.expression, header, path, "flare")
    return sel


def _flare_gti(
    time_: Floats, sel: NDArray[np.bool_], flare: FlareFilter, tstart: float, tstop: float
) -> Floats:
    """tabgtigen on the flare curve: runs of RATE < threshold, half a sample either side."""
    n = _n_bins(tstart, tstop, flare.bin)
    edges = tstart + flare.bin * np.arange(n + 1, dtype=np.float64)
    k = np.searchsorted(edges, time_[sel], side="right") - 1
    counts = np.bincount(k[(k >= 0) & (k < n)], minlength=n)
    good = counts / flare.bin < flare.threshold
    if n == 1 or not good.any():
        return np.empty((0, 2))
    t = 0.5 * (edges[:-1] + edges[1:])
    spacing = np.diff(t)
    before = np.concatenate([[spacing[0]], spacing])
    after = np.concatenate([spacing, [spacing[-1]]])
    change = np.diff(np.concatenate([[0], good.astype(np.int8), [0]]))
    a, b = np.flatnonzero(change == 1), np.flatnonzero(change == -1) - 1
    return np.column_stack([t[a] - 0.5 * before[a], t[b] + 0.5 * after[b]])


# -- the shared selection -------------------------------------------------------------------------
@dataclass(frozen=True)
class SelectedEvents:
    """Screened events of one observation inside the GTI and the grid, per region.

    Attributes
    ----------
    obsid : str
    t0, dt : float
        Grid start (TSTART) and bin, seconds.
    n_bins : int
    gti : ndarray, shape (n, 2)
        The GTI applied.
    mjdref : float
    n_events : int
        Rows of the EVENTS table read.
    src_time, src_pi, bkg_time, bkg_pi : ndarray
        TIME and PI of the selected source and background events.
    """

    obsid: str
    t0: float
    dt: float
    n_bins: int
    gti: Floats
    mjdref: float
    n_events: int
    src_time: Floats
    src_pi: Ints
    bkg_time: Floats
    bkg_pi: Ints

    @property
    def edges(self) -> Floats:
        """Grid edges ``t0 + k dt``."""
        return self.t0 + self.dt * np.arange(self.n_bins + 1, dtype=np.float64)


def _in_circles(x: Floats, y: Floats, circles: Floats) -> NDArray[np.bool_]:
    inside = np.zeros(x.shape, bool)
    for cx, cy, r in circles:
        dx, dy = x - cx, y - cy
        inside |= dx * dx + dy * dy <= r * r
    return inside


def select_events(obs: Observation, time_bin: float) -> SelectedEvents:
    """Read one observation once and keep its screened, region, in-GTI events.

    Parameters
    ----------
    obs : schemas.build.Observation
        Event file, region file, GTI file, screening and flare filter.
    time_bin : float
        Light-curve bin, seconds.

    Returns
    -------
    SelectedEvents

    Raises
    ------
    ConfigError
        For inputs beyond what the anchor reads (see the module docstring).
    """
    cols, header, ccd_gtis = _read_events(obs.events)
    tstart, tstop = float(header["TSTART"]), float(header["TSTOP"])
    n_bins = _n_bins(tstart, tstop, time_bin)
    stop = tstart + time_bin * n_bins
    scr = obs.screening
    pi = cols["PI"]
    ok = (cols["PATTERN"] <= scr.pattern_max) & (pi >= scr.pi[0]) & (pi <= scr.pi[1])
    if scr.flag_zero:
        ok &= cols["FLAG"] == 0
    if scr.expression:  # the pn default #XMMEA_EP, a build file's own flag selection
        ok &= _flag_mask(cols["FLAG"], scr.expression, header, obs.events, "screening")
    t_all = cols["TIME"]
    ok &= (t_all >= tstart) & (t_all < stop)
    idx = np.flatnonzero(ok)
    x = cols["X"][idx].astype(np.float64)
    y = cols["Y"][idx].astype(np.float64)
    src_c, bkg_c = read_ds9_circles(obs.regions)
    in_src, in_bkg = _in_circles(x, y, src_c), _in_circles(x, y, bkg_c)
    ccds = np.unique(cols["CCDNR"][idx[in_src | in_bkg]]).tolist()
    parts: list[Floats] = [np.array([[tstart, tstop]])]
    if ccd_gtis:
        for c in ccds:
            if int(c) not in ccd_gtis:
                raise ConfigError(f"events file {obs.events}: no STDGTI{int(c):02d} for CCD {c}")
            parts.append(ccd_gtis[int(c)])
    if obs.gti is not None:
        parts.append(_read_gti_file(obs.gti))
    if obs.flare is not None:
        sel = _flare_mask(cols, obs.flare, header, obs.events)
        parts.append(_flare_gti(t_all, sel, obs.flare, tstart, tstop))
    gti = _intersect(parts)
    t = t_all[idx]
    good = _good(gti, t)
    s, b = idx[in_src & good], idx[in_bkg & good]
    return SelectedEvents(
        obsid=obs.obsid,
        t0=tstart,
        dt=float(time_bin),
        n_bins=n_bins,
        gti=gti,
        mjdref=float(header.get("MJDREF", 0.0)),
        n_events=len(t_all),
        src_time=t_all[s],
        src_pi=pi[s].astype(np.int64),
        bkg_time=t_all[b],
        bkg_pi=pi[b].astype(np.int64),
    )


# -- anchor 1: numpy, one pass ---------------------------------------------------------------------
def numpy_band_counts(
    sel: SelectedEvents, edges: Ints, bands: dict[str, Ints]
) -> dict[str, tuple[Ints, Ints]]:
    """Source and background counts per band and time bin of every scheme.

    One ``np.bincount`` per region over (time bin x PI column), the PI columns cut at
    ``edges``; each band is then a difference of cumulative column sums.

    Returns
    -------
    dict
        Scheme name to (src, bkg), each of shape (n_bands, n_bins).
    """
    n_col = len(edges) - 1
    grid = sel.edges
    out: dict[str, list[Ints]] = {name: [] for name in bands}
    for t, pi in ((sel.src_time, sel.src_pi), (sel.bkg_time, sel.bkg_pi)):
        k = np.searchsorted(grid, t, side="right") - 1
        col = np.searchsorted(edges, pi, side="right") - 1
        m = (col >= 0) & (col < n_col)
        cube = np.bincount(k[m] * n_col + col[m], minlength=sel.n_bins * n_col)
        cum = np.zeros((sel.n_bins, n_col + 1), np.int64)
        np.cumsum(cube.reshape(sel.n_bins, n_col), axis=1, out=cum[:, 1:])
        for name, b in bands.items():
            j = np.searchsorted(edges, b)
            out[name].append((cum[:, j[:, 1]] - cum[:, j[:, 0]]).T)
    return {name: (v[0], v[1]) for name, v in out.items()}


@dataclass
class NumpyAnchorRun:
    """The numpy anchor over a build's observations.

    Attributes
    ----------
    cpu_s : float
        CPU seconds of the whole anchor (reading included).
    n_events : int
        Event rows read.
    n_columns : int
        PI columns of the (time bin x PI) counts.
    counts : dict
        obsid -> scheme -> (src, bkg) counts, shape (n_bands, n_bins) each.
    cpu_per_observation : dict
        obsid -> CPU seconds.
    """

    cpu_s: float = 0.0
    n_events: int = 0
    n_columns: int = 0
    counts: dict[str, dict[str, tuple[Ints, Ints]]] = field(default_factory=dict)
    cpu_per_observation: dict[str, float] = field(default_factory=dict)


def numpy_anchor(config: BuildConfig, obsids: Iterable[str] | None = None) -> NumpyAnchorRun:
    """Run the numpy one-pass anchor over the build's observations (or some of them).

    Parameters
    ----------
    config : BuildConfig
        The loaded build file.
    obsids : iterable of str, optional
        Observations to run (default all).

    Returns
    -------
    NumpyAnchorRun
    """
    bands = scheme_bands(config)
    edges = union_edges(bands)
    run = NumpyAnchorRun(n_columns=len(edges) - 1)
    chosen = set(obsids) if obsids is not None else None
    for obs in config.observations:
        if chosen is not None and obs.obsid not in chosen:
            continue
        c0 = time.process_time()
        sel = select_events(obs, config.time_bin)
        run.counts[obs.obsid] = numpy_band_counts(sel, edges, bands)
        cpu = time.process_time() - c0
        run.cpu_per_observation[obs.obsid] = cpu
        run.cpu_s += cpu
        run.n_events += sel.n_events
    return run


# -- anchor 2: a stingray loop over bands ------------------------------------------------------
def stingray_band_counts(sel: SelectedEvents, pi_lo: int, pi_hi: int) -> tuple[Ints, Ints]:
    """One band's source and background counts per bin, with ``EventList.to_lc``.

    The band's events are picked from the arrays in memory (``pi_lo <= PI < pi_hi``), made
    into a ``stingray.EventList`` with the observation's GTI and MJDREF, and binned with
    ``to_lc(dt, tstart=t0, tseg=n_bins dt)``: the grid of the build. A region with no event
    in the band gets zeros (stingray cannot bin an empty event list).

    Returns
    -------
    (ndarray, ndarray)
        Source and background counts, shape (n_bins,) each.
    """
    out = []
    for t, pi in ((sel.src_time, sel.src_pi), (sel.bkg_time, sel.bkg_pi)):
        m = (pi >= pi_lo) & (pi < pi_hi)
        if not m.any():  # stingray cannot bin an empty event list; a user's loop skips it
            out.append(np.zeros(sel.n_bins, np.int64))
            continue
        ev = EventList(time=t[m], gti=sel.gti, mjdref=sel.mjdref)
        lc = ev.to_lc(sel.dt, tstart=sel.t0, tseg=sel.n_bins * sel.dt)
        out.append(np.asarray(lc.counts, np.int64))
    return out[0], out[1]


@dataclass
class StingrayLoopRun:
    """The stingray per-band loop, timed on a sample of bands and extrapolated.

    Attributes
    ----------
    cpu_s : float
        Extrapolated CPU seconds for every band of every observation: the reading and
        selection of each observation (measured) plus its per-band CPU (measured on the
        sample) times its number of bands.
    cpu_selection_s : float
        Measured CPU of reading and selecting the events, all observations.
    cpu_sample_s : float
        Measured CPU of the sampled bands, all observations.
    bands_sampled, bands_total : int
        Bands timed, and bands the loop would run (per observation, summed).
    sample_per_observation : int
    counts : dict
        obsid -> list of (scheme, band index, src counts, bkg counts) of the sampled bands.
    """

    cpu_s: float = 0.0
    cpu_selection_s: float = 0.0
    cpu_sample_s: float = 0.0
    bands_sampled: int = 0
    bands_total: int = 0
    sample_per_observation: int = 0
    counts: dict[str, list[tuple[str, int, Ints, Ints]]] = field(default_factory=dict)


def stingray_loop(
    config: BuildConfig, sample_per_observation: int = 20, obsids: Iterable[str] | None = None
) -> StingrayLoopRun:
    """Time the per-band stingray loop on ``sample_per_observation`` bands per observation.

    The sample is spread evenly over the list of every band of every scheme (in build
    order), so every part of the energy range and every scheme width is represented.

    Parameters
    ----------
    config : BuildConfig
    sample_per_observation : int
        Bands timed per observation (all bands when larger than their number).
    obsids : iterable of str, optional
        Observations to run (default all).

    Returns
    -------
    StingrayLoopRun
    """
    bands = scheme_bands(config)
    every = [
        (name, i, int(lo), int(hi)) for name, b in bands.items() for i, (lo, hi) in enumerate(b)
    ]
    n = len(every)
    pick = np.unique(np.linspace(0, n - 1, min(sample_per_observation, n)).round().astype(int))
    run = StingrayLoopRun(sample_per_observation=len(pick))
    chosen = set(obsids) if obsids is not None else None
    warm = True
    for obs in config.observations:
        if chosen is not None and obs.obsid not in chosen:
            continue
        c0 = time.process_time()
        sel = select_events(obs, config.time_bin)
        c1 = time.process_time()
        got = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if warm:  # first calls fill stingray's caches: not part of the per-band cost
                stingray_band_counts(sel, *every[pick[0]][2:])
                c1 = time.process_time()
                warm = False
            for j in pick:
                name, i, lo, hi = every[j]
                src, bkg = stingray_band_counts(sel, lo, hi)
                got.append((name, i, src, bkg))
        c2 = time.process_time()
        run.counts[obs.obsid] = got
        run.cpu_selection_s += c1 - c0
        run.cpu_sample_s += c2 - c1
        run.cpu_s += (c1 - c0) + (c2 - c1) / len(pick) * n
        run.bands_sampled += len(pick)
        run.bands_total += n
    return run
