"""One-pass binning of events into counts per (time bin, PI channel) per region.

The PI axis is the partition of the screening range by every band edge the
build needs (with 5 eV channels over the range of any equal-count scheme, whose
edges come from a spectrum), so every band is a sum of whole columns and the
counts array does not grow with the number of events. The time axis is first
cut into *elementary intervals*: the light-curve grid
edges plus every boundary of every GTI that may apply (each CCD's STDGTI and
data-subspace time filter, the user GTI, the flare-filter bins). Each elementary
interval lies in one time bin and is either wholly inside or wholly outside any GTI
built from those boundaries. Events are counted per (CCD, elementary interval, PI) in
a single pass; once the pass has shown which CCDs the regions' events lie on, each
CCD's GTI is fixed, and each CCD's in-GTI intervals are summed into (time bin, PI)
counts: every event is judged by its own CCD's GTI (docs/semantics.md §4). Every band
of every scheme is then a sum over PI columns.

Everything here is pure computation on arrays: no file or Dask calls.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import sparse

from catalog import gti as gtilib
from schemas.energy import Band
from schemas.spectra import ChannelGrid

__all__ = ["TimeGrid", "RegionCounts", "ObservationBinner", "BinnedObservation", "finalize"]

#: Largest CCD number accepted (pn: 1-12; MOS uses up to 7).
_MAX_CCD = 64


@dataclass(frozen=True)
class TimeGrid:
    """An explicit time grid: bins ``[t0 + k dt, t0 + (k+1) dt)`` for k = 0 .. n_bins - 1.

    Attributes
    ----------
    t0 : float
        Start of the first bin, seconds (MET): TSTART of the EVENTS header.
    dt : float
        Bin width in seconds.
    n_bins : int
        Number of bins, ``ceil((TSTOP - TSTART) / dt)``.
    """

    t0: float
    dt: float
    n_bins: int

    @classmethod
    def for_exposure(cls, tstart: float, tstop: float, dt: float) -> TimeGrid:
        """The grid of an exposure: t0 = TSTART and enough bins to reach TSTOP.

        A ratio within 1e-9 of an integer is taken as that integer, so a
        TSTOP - TSTART of exactly n bins does not gain an empty (n+1)-th bin from
        rounding.
        """
        ratio = (tstop - tstart) / dt
        n = math.ceil(ratio - 1e-9 * max(1.0, abs(ratio)))
        return cls(t0=float(tstart), dt=float(dt), n_bins=max(1, n))

    @property
    def edges(self) -> NDArray[np.float64]:
        """Bin edges, shape (n_bins + 1,)."""
        return self.t0 + self.dt * np.arange(self.n_bins + 1, dtype=np.float64)

    @property
    def centres(self) -> NDArray[np.float64]:
        """Bin centres (the stored ``time`` coordinate), shape (n_bins,)."""
        return self.t0 + self.dt * (np.arange(self.n_bins, dtype=np.float64) + 0.5)

    @property
    def stop(self) -> float:
        """End of the last bin."""
        return self.t0 + self.dt * self.n_bins


#: Largest elementary-interval x PI-column cube, in cells, counted densely (np.bincount) per
#: CCD and region; a larger one (very fine time bins) is accumulated as a sparse matrix.
DENSE_CELLS = 1 << 22

#: A cube of counts per (elementary interval, PI column): dense when small, else sparse.
Cube: TypeAlias = NDArray[np.int64] | sparse.csr_matrix


@dataclass(frozen=True)
class RegionCounts:
    """Counts of one region from the pass, before the GTI is fixed.

    Attributes
    ----------
    cube : numpy.ndarray or scipy.sparse.csr_matrix, shape (n_elementary, n_pi_columns)
        Events per (elementary interval, PI column), all CCDs (a dense array when the
        binner counts densely, see :data:`DENSE_CELLS`).
    ccd_counts : numpy.ndarray, shape (64,)
        Events per CCD number.
    ccd_cubes : dict of int to numpy.ndarray or scipy.sparse.csr_matrix
        The same counts per CCD number (CCDs with events only).
    """

    cube: Cube
    ccd_counts: NDArray[np.int64]
    ccd_cubes: dict[int, Cube] = field(default_factory=dict)


class ObservationBinner:
    """Accumulates one pass over an event file, chunk by chunk.

    Parameters
    ----------
    grid : TimeGrid
        The light-curve grid.
    boundaries : array_like
        Extra time boundaries (GTI starts and stops, flare-bin edges) that must
        be elementary-interval edges.
    pi_edges : array_like of int
        Increasing PI edges; column j counts ``pi_edges[j] <= PI < pi_edges[j+1]``.
        Events outside ``[pi_edges[0], pi_edges[-1])`` are not counted.
    flare_edges : array_like or None
        Edges of the flare-curve bins, if a flare filter is used.
    channels : ChannelGrid, optional
        Also count the regions' events per (CCD, elementary interval, spectral channel)
        (channel ``PI // pi_per_channel``, channels 0 .. n_channels - 1), for the stored
        spectra: :func:`finalize` sums them over each CCD's GTI, the same events the
        light curves count.

    Notes
    -----
    An event's elementary interval is ``searchsorted(edges, TIME, side="right") - 1``
    (fast on time-ordered event lists), its PI column a table look-up by integer PI
    (the same column as ``searchsorted(pi_edges, PI, side="right") - 1``), and the counts
    of a chunk one ``np.bincount`` per CCD over (interval, column) when the cube has at
    most :data:`DENSE_CELLS` cells.
    """

    def __init__(
        self,
        grid: TimeGrid,
        boundaries: ArrayLike,
        pi_edges: ArrayLike,
        flare_edges: ArrayLike | None = None,
        channels: ChannelGrid | None = None,
    ) -> None:
        b = np.asarray(boundaries, dtype=np.float64).ravel()
        b = b[(b > grid.t0) & (b < grid.stop)]
        self.grid = grid
        self.edges = np.union1d(grid.edges, b)
        self.n_elem = len(self.edges) - 1
        self.pi_edges = np.asarray(pi_edges, dtype=np.int64)
        if self.pi_edges.ndim != 1 or len(self.pi_edges) < 2 or np.any(np.diff(self.pi_edges) <= 0):
            raise ValueError("pi_edges must be at least two increasing integers")
        self.n_pi = len(self.pi_edges) - 1
        # column of every integer PI in [pi_edges[0] - 1, pi_edges[-1]]; -1 at both ends
        lo, hi = int(self.pi_edges[0]), int(self.pi_edges[-1])
        self._pi_offset = lo - 1
        self._pi_table = np.full(hi - lo + 2, -1, np.intp)
        self._pi_table[1:-1] = (
            np.searchsorted(self.pi_edges, np.arange(lo, hi, dtype=np.int64), side="right") - 1
        )
        self.dense = self.n_elem * self.n_pi <= DENSE_CELLS
        self._cubes: dict[str, dict[int, Cube]] = {"src": {}, "bkg": {}}
        self._ccd = {"src": np.zeros(_MAX_CCD, np.int64), "bkg": np.zeros(_MAX_CCD, np.int64)}
        self.flare_edges = None if flare_edges is None else np.asarray(flare_edges, np.float64)
        self.flare_counts = (
            None if self.flare_edges is None else np.zeros(len(self.flare_edges) - 1, np.int64)
        )
        self.channels = channels
        self._spec: dict[str, dict[int, list[sparse.csr_matrix]]] = {"src": {}, "bkg": {}}
        self.n_events = 0
        #: Region events (after screening) outside the grid, per region.
        self.outside = {"src": 0, "bkg": 0}

    def pi_columns(self, pi: NDArray[np.number[Any]]) -> NDArray[np.intp]:
        """PI column of each value (``pi_edges[j] <= PI < pi_edges[j+1]``), -1 outside the edges."""
        if not np.issubdtype(pi.dtype, np.integer):
            col = np.searchsorted(self.pi_edges, pi, side="right") - 1
            col[(col < 0) | (col >= self.n_pi)] = -1
            return col
        index = pi.astype(np.intp) - self._pi_offset
        out: NDArray[np.intp] = np.take(self._pi_table, index, mode="clip")
        return out

    def add(
        self,
        time: NDArray[np.float64],
        pi: NDArray[np.integer],
        ccd: NDArray[np.integer],
        src: NDArray[np.bool_],
        bkg: NDArray[np.bool_],
        flare: NDArray[np.bool_] | None = None,
    ) -> None:
        """Count one chunk of events.

        Parameters
        ----------
        time, pi, ccd : numpy.ndarray
            TIME (s), PI (eV) and CCDNR of the chunk's events.
        src, bkg : numpy.ndarray of bool
            Events that pass screening and lie in the source / background region.
        flare : numpy.ndarray of bool, optional
            Events that pass the flare-curve selection.
        """
        self.n_events += len(time)
        if src.any() or bkg.any():
            self._add_regions(time, pi, ccd, src, bkg)
        if flare is not None and self.flare_edges is not None and self.flare_counts is not None:
            k = np.searchsorted(self.flare_edges, time[flare], side="right") - 1
            k = k[(k >= 0) & (k < len(self.flare_counts))]
            self.flare_counts += np.bincount(k, minlength=len(self.flare_counts))

    def _add_regions(
        self,
        time: NDArray[np.float64],
        pi: NDArray[np.integer],
        ccd: NDArray[np.integer],
        src: NDArray[np.bool_],
        bkg: NDArray[np.bool_],
    ) -> None:
        """Count a chunk's source and background events (see :meth:`add`)."""
        elem = np.searchsorted(self.edges, time, side="right") - 1
        in_grid = (elem >= 0) & (elem < self.n_elem)
        col = self.pi_columns(pi)
        counted = in_grid & (col >= 0)
        for name, mask in (("src", src), ("bkg", bkg)):
            self.outside[name] += int(np.count_nonzero(mask & ~in_grid))
            idx = np.flatnonzero(mask & counted)
            if not len(idx):
                continue
            c = ccd[idx].astype(np.int64)
            flat = elem[idx] * self.n_pi + col[idx]
            per_ccd = np.bincount(c, minlength=_MAX_CCD)
            numbers = np.flatnonzero(per_ccd)
            cubes = self._cubes[name]
            for number in numbers:
                key = int(number)
                cells = flat if len(numbers) == 1 else flat[c == number]
                self._accumulate(cubes, key, cells)
            self._ccd[name] += per_ccd[:_MAX_CCD]
        if self.channels is not None:
            self._add_spectra(elem, counted, pi, ccd, src, bkg)

    def _add_spectra(
        self,
        elem: NDArray[np.intp],
        counted: NDArray[np.bool_],
        pi: NDArray[np.integer],
        ccd: NDArray[np.integer],
        src: NDArray[np.bool_],
        bkg: NDArray[np.bool_],
    ) -> None:
        """Count a chunk's region events per (CCD, elementary interval, spectral channel).

        ``counted`` marks the events the (interval, PI column) cubes count (inside the grid
        and the PI columns), so the spectra hold exactly the light curves' events.
        """
        grid = self.channels
        assert grid is not None
        chan = np.floor_divide(np.asarray(pi), grid.pi_per_channel).astype(np.int64)
        ok = counted & (chan >= 0) & (chan < grid.n_channels)
        shape = (self.n_elem, grid.n_channels)
        for name, mask in (("src", src), ("bkg", bkg)):
            idx = np.flatnonzero(mask & ok)
            if not len(idx):
                continue
            c = ccd[idx].astype(np.int64)
            for number in np.unique(c):
                sel = idx[c == number]
                m = sparse.coo_matrix(
                    (np.ones(len(sel), np.int64), (elem[sel], chan[sel])), shape=shape
                ).tocsr()
                parts = self._spec[name].setdefault(int(number), [])
                parts.append(m)
                if len(parts) >= 16:  # keep the pending pieces few
                    parts[:] = [_sum_sparse(parts, shape)]

    def spectrum_cubes(self, name: str) -> dict[int, sparse.csr_matrix]:
        """Events of region ``name`` per (elementary interval, spectral channel), per CCD."""
        if self.channels is None:
            return {}
        shape = (self.n_elem, self.channels.n_channels)
        return {c: _sum_sparse(p, shape) for c, p in sorted(self._spec[name].items())}

    def _accumulate(self, cubes: dict[int, Cube], key: int, cells: NDArray[np.int64]) -> None:
        """Add one event per entry of ``cells`` (flat elementary interval x column) to a cube."""
        shape = (self.n_elem, self.n_pi)
        if self.dense:
            cube = cubes.get(key)
            if cube is None:
                cube = cubes[key] = np.zeros(shape, np.int64)
            flat_cube = cube.reshape(-1)
            if 16 * len(cells) < flat_cube.size:
                np.add.at(flat_cube, cells, 1)
            else:
                flat_cube += np.bincount(cells, minlength=flat_cube.size)
            return
        e, p = np.divmod(cells, self.n_pi)
        chunk = sparse.coo_matrix((np.ones(len(cells), np.int32), (e, p)), shape=shape).tocsr()
        cubes[key] = cubes[key] + chunk if key in cubes else chunk

    def region(self, name: str) -> RegionCounts:
        """The accumulated counts of region ``"src"`` or ``"bkg"``."""
        cubes = {c: m for c, m in sorted(self._cubes[name].items())}
        total: Cube
        if self.dense:
            total = np.zeros((self.n_elem, self.n_pi), np.int64)
            for m in cubes.values():
                total += m
        else:
            total = sparse.csr_matrix((self.n_elem, self.n_pi), dtype=np.int32)
            for m in cubes.values():
                total = total + m
            total = total.tocsr()
        return RegionCounts(cube=total, ccd_counts=self._ccd[name].copy(), ccd_cubes=cubes)

    def ccd_counts(self, name: str) -> NDArray[np.int64]:
        """Events of region ``"src"`` or ``"bkg"`` per CCD number, shape (64,)."""
        return self._ccd[name].copy()

    def ccd_cubes(self, name: str) -> dict[int, Cube]:
        """Counts per (elementary interval, PI column) of region ``name``, per CCD (sorted)."""
        return dict(sorted(self._cubes[name].items()))

    def good_elements(self, gti: ArrayLike) -> NDArray[np.bool_]:
        """Which elementary intervals lie inside ``gti`` (judged at their midpoints).

        Raises
        ------
        ValueError
            If a boundary of ``gti`` inside the grid is not an elementary-interval edge.
        """
        g = gtilib.intersect(gti, [[self.grid.t0, self.grid.stop]])
        inner = g.ravel()[(g.ravel() > self.grid.t0) & (g.ravel() < self.grid.stop)]
        if not np.isin(inner, self.edges).all():
            raise ValueError("a GTI boundary is not an elementary-interval edge of the binner")
        good: NDArray[np.bool_] = gtilib.contains(g, 0.5 * (self.edges[:-1] + self.edges[1:]))
        return good

    def counts_in_gti(self, name: str, ccd_gtis: Mapping[int, ArrayLike]) -> dict[int, int]:
        """Events of region ``name`` per CCD inside that CCD's GTI (CCDs of ``ccd_gtis``)."""
        out = {}
        for c, cube in self._cubes[name].items():
            if c in ccd_gtis:
                rows = np.asarray(cube.sum(axis=1)).ravel()
                out[c] = int(rows[self.good_elements(ccd_gtis[c])].sum())
        return out

    @property
    def flare_times(self) -> NDArray[np.float64] | None:
        """Flare-curve sample times: the bin centres (TIMEPIXR = 0.5)."""
        if self.flare_edges is None:
            return None
        return 0.5 * (self.flare_edges[:-1] + self.flare_edges[1:])


def _sum_sparse(parts: list[sparse.csr_matrix], shape: tuple[int, int]) -> sparse.csr_matrix:
    total = sparse.csr_matrix(shape, dtype=np.int64)
    for m in parts:
        total = total + m
    return sparse.csr_matrix(total, dtype=np.int64)


@dataclass(frozen=True)
class BinnedObservation:
    """Counts per (time bin, PI) of the source and background regions of one exposure.

    This is the native backend's per-observation product: every band of every
    scheme is a sum of PI columns of ``src`` and ``bkg``.

    Attributes
    ----------
    grid : TimeGrid
    gti : numpy.ndarray, shape (n, 2)
        The stored GTI: the union of the GTIs of the CCDs the fractional exposure is
        taken from (with one CCD, that CCD's GTI).
    gti_fraction : numpy.ndarray, shape (n_bins,)
        Fraction of each bin inside ``gti``.
    fracexp : numpy.ndarray, shape (n_bins,)
        Fractional exposure per bin (docs/semantics.md §5), shared by source, background
        and every band.
    pi_edges : numpy.ndarray of int
        PI edges of the columns: column j is ``pi_edges[j] <= PI < pi_edges[j+1]``.
    src, bkg : scipy.sparse.csr_matrix, shape (n_bins, n_pi_columns)
        Counts in the GTIs per (time bin, PI column).
    src_area, bkg_area : float
        Geometric region areas in sky pixels squared (``bkg_area`` 0: no background region).
    channels : ChannelGrid or None
        The spectral channels of ``spec_src`` / ``spec_bkg`` (None: no spectra were counted).
    spec_src, spec_bkg : numpy.ndarray of int64 or None, shape (n_channels,)
        Source and background events per spectral channel inside the GTIs: the events the
        light curves count, summed over time (each CCD's events judged by its own GTI).
    """

    grid: TimeGrid
    gti: NDArray[np.float64]
    gti_fraction: NDArray[np.float64]
    fracexp: NDArray[np.float64]
    pi_edges: NDArray[np.int64]
    src: sparse.csr_matrix
    bkg: sparse.csr_matrix
    src_area: float
    bkg_area: float
    channels: ChannelGrid | None = None
    spec_src: NDArray[np.int64] | None = None
    spec_bkg: NDArray[np.int64] | None = None

    @property
    def exposure(self) -> float:
        """Live exposure in the GTIs, seconds: ``sum(fracexp) * dt`` (the spectra's EXPOSURE)."""
        return float(np.sum(self.fracexp) * self.grid.dt)

    @property
    def area_ratio(self) -> float | None:
        """A_src / A_bkg, the background scaling; None without a background region."""
        return self.src_area / self.bkg_area if self.bkg_area > 0 else None

    def _columns(self, bands: tuple[Band, ...]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Columns [j0, j1) that make up each band's PI [lo, hi); both must be column edges."""
        e = self.pi_edges
        lo = np.array([b.pi_lo for b in bands], dtype=np.int64)
        hi = np.array([b.pi_hi for b in bands], dtype=np.int64)
        j0 = np.searchsorted(e, lo)
        j1 = np.searchsorted(e, hi)
        last = len(e) - 1
        bad = (j0 > last) | (j1 > last)
        bad |= e[np.minimum(j0, last)] != lo
        bad |= e[np.minimum(j1, last)] != hi
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"PI [{bands[i].pi_lo}, {bands[i].pi_hi}) is not a union of the binned PI "
                "columns; the band's edges must be among the edges the observation was binned with"
            )
        return j0, j1

    @cached_property
    def _cumulative(self) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
        """Source and background counts summed over columns 0..j-1, shape (n_pi + 1, n_bins).

        None when the (time bin, PI column) array has more than :data:`DENSE_CELLS` cells:
        bands are then summed as sparse products.
        """
        n_bins, n_cols = self.src.shape
        if n_bins * n_cols > DENSE_CELLS:
            return None

        def cum(m: sparse.csr_matrix) -> NDArray[np.int64]:
            out = np.zeros((n_cols + 1, n_bins), np.int64)
            np.cumsum(m.toarray().T, axis=0, out=out[1:])
            return out

        return cum(self.src), cum(self.bkg)

    def _band_matrix(self, j0: NDArray[np.intp], j1: NDArray[np.intp]) -> sparse.csr_matrix:
        """(PI column x band) ones where the column lies in the band."""
        rows = [np.arange(a, b, dtype=np.int64) for a, b in zip(j0, j1, strict=True)]
        r = np.concatenate(rows) if rows else np.empty(0, np.int64)
        c = np.repeat(np.arange(len(j0)), j1 - j0)
        n_cols = len(self.pi_edges) - 1
        return sparse.csr_matrix((np.ones(len(c), np.int64), (r, c)), shape=(n_cols, len(j0)))

    def band_counts(self, bands: tuple[Band, ...]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Source and background counts per band and time bin (``lo <= PI < hi``).

        Returns
        -------
        src, bkg : numpy.ndarray, shape (n_bands, n_bins)

        Raises
        ------
        ValueError
            If a band edge is not one of the PI edges the observation was binned with.
        """
        j0, j1 = self._columns(tuple(bands))
        table = self._cumulative
        if table is not None:
            src_cum, bkg_cum = table
            return src_cum[j1] - src_cum[j0], bkg_cum[j1] - bkg_cum[j0]
        m = self._band_matrix(j0, j1)
        src = np.asarray((self.src @ m).todense()).T.astype(np.int64)
        bkg = np.asarray((self.bkg @ m).todense()).T.astype(np.int64)
        return src, bkg

    def net_channel_spectrum(self) -> tuple[NDArray[np.float64], int]:
        """Net counts (source minus scaled background) per 5 eV pn channel, over the GTIs.

        Without a background region, the source counts.

        Channel c is PI [5c, 5c+5). Channels the PI columns do not resolve (a
        column spans a channel edge) are NaN.

        Returns
        -------
        counts : numpy.ndarray
            Net counts in channels ``chan0, chan0 + 1, ...``.
        chan0 : int
            First channel.
        """
        edges = self.pi_edges
        chan0 = -(-int(edges[0]) // 5)
        chans = np.arange(chan0, int(edges[-1]) // 5)
        net_cols = np.asarray(self.src.sum(axis=0), dtype=np.float64).ravel()
        if self.area_ratio is not None:
            net_cols = net_cols - self.area_ratio * np.asarray(self.bkg.sum(axis=0)).ravel()
        cum = np.concatenate([[0.0], np.cumsum(net_cols)])
        j0 = np.searchsorted(edges, 5 * chans)
        j1 = np.searchsorted(edges, 5 * chans + 5)
        ok = (j1 < len(edges)) & (edges[np.minimum(j0, len(edges) - 1)] == 5 * chans)
        ok &= edges[np.minimum(j1, len(edges) - 1)] == 5 * chans + 5
        out = np.where(ok, cum[np.minimum(j1, len(cum) - 1)] - cum[j0], np.nan)
        return out, int(chan0)


def finalize(
    binner: ObservationBinner,
    gti: ArrayLike,
    fracexp: float | ArrayLike,
    src_area: float,
    bkg_area: float,
    *,
    ccd_gtis: Mapping[int, ArrayLike] | None = None,
) -> BinnedObservation:
    """Fix the GTIs and sum each CCD's in-GTI elementary intervals into time bins.

    Parameters
    ----------
    binner : ObservationBinner
        The finished pass. Every boundary of ``gti`` and of ``ccd_gtis`` inside the grid
        must be one of its elementary-interval edges.
    gti : array_like, shape (n, 2)
        The stored GTI (its overlap with each bin is ``gti_fraction``).
    fracexp : float or array_like, shape (n_bins,)
        The fractional exposure per bin; a number is a live fraction, and fracexp is
        then ``gti_fraction`` times it.
    src_area, bkg_area : float
        Region areas.
    ccd_gtis : mapping of CCD to GTI, optional
        The GTI that judges each CCD's events (docs/semantics.md §4); by default ``gti``
        judges every CCD. Every CCD holding region events must have one.

    Returns
    -------
    BinnedObservation

    Raises
    ------
    ValueError
        If a GTI boundary is not an elementary-interval edge, a CCD with region events
        has no GTI, or ``fracexp`` has the wrong shape.
    """
    grid = binner.grid
    g = gtilib.intersect(gti, [[grid.t0, grid.stop]])
    lo, hi = binner.edges[:-1], binner.edges[1:]
    elem_bin = np.searchsorted(grid.edges, lo, side="right") - 1

    def aggregator(good: NDArray[np.bool_]) -> sparse.csr_matrix:
        idx = np.flatnonzero(good)
        return sparse.csr_matrix(
            (np.ones(len(idx), np.int64), (elem_bin[idx], idx)), shape=(grid.n_bins, binner.n_elem)
        )

    good_all = binner.good_elements(g)
    aggregators: dict[int, sparse.csr_matrix] = {}

    def counts(name: str) -> sparse.csr_matrix:
        total: Any = (
            np.zeros((grid.n_bins, binner.n_pi), np.int64)
            if binner.dense
            else sparse.csr_matrix((grid.n_bins, binner.n_pi), dtype=np.int64)
        )
        for c, cube in binner.ccd_cubes(name).items():
            if c not in aggregators:
                if ccd_gtis is None:
                    aggregators[c] = aggregator(good_all)
                elif c in ccd_gtis:
                    aggregators[c] = aggregator(binner.good_elements(ccd_gtis[c]))
                else:
                    raise ValueError(f"region events lie on CCD {c}, which has no GTI")
            if binner.dense:
                total += aggregators[c] @ cube
            else:
                total = total + aggregators[c] @ cube
        return sparse.csr_matrix(total, dtype=np.int64)

    def spectrum(name: str) -> NDArray[np.int64] | None:
        if binner.channels is None:
            return None
        out = np.zeros(binner.channels.n_channels, np.int64)
        for c, cube in binner.spectrum_cubes(name).items():
            if c not in aggregators:  # a CCD with events outside the PI columns only
                if ccd_gtis is None:
                    aggregators[c] = aggregator(good_all)
                elif c in ccd_gtis:
                    aggregators[c] = aggregator(binner.good_elements(ccd_gtis[c]))
                else:
                    raise ValueError(f"region events lie on CCD {c}, which has no GTI")
            good = np.asarray(aggregators[c].sum(axis=0)).ravel().astype(np.int64)
            out += np.asarray(cube.T @ good, dtype=np.int64).ravel()
        return out

    good_time = np.bincount(elem_bin[good_all], weights=(hi - lo)[good_all], minlength=grid.n_bins)
    gti_fraction = np.clip(good_time / grid.dt, 0.0, 1.0)
    if np.ndim(fracexp) == 0:
        f = gti_fraction * float(fracexp)  # type: ignore[arg-type]
    else:
        f = np.asarray(fracexp, dtype=np.float64).copy()
        if f.shape != (grid.n_bins,):
            raise ValueError(f"fracexp has shape {f.shape}, expected ({grid.n_bins},)")
    return BinnedObservation(
        grid=grid,
        gti=g,
        gti_fraction=gti_fraction,
        fracexp=f,
        pi_edges=binner.pi_edges.copy(),
        src=counts("src"),
        bkg=counts("bkg"),
        src_area=float(src_area),
        bkg_area=float(bkg_area),
        channels=binner.channels,
        spec_src=spectrum("src"),
        spec_bkg=spectrum("bkg") if bkg_area > 0 else None,
    )
