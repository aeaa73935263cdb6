"""Values that travel between the build's tasks: the job of one observation and its results.

These are the types every extraction backend and the observation-level rules
(:mod:`pipeline.extract.observation`) share; they sit below both, so nothing
imports upward from a backend. All are frozen, picklable values (they are shipped
to Dask workers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pipeline.select.regions import RegionSet
from schemas.build import FlareFilter, Screening
from schemas.energy import Band

if TYPE_CHECKING:  # astropy is imported by whoever reads an event file, not by the planner
    from pipeline.read.events import EventFileInfo

__all__ = ["ObservationJob", "ObservationSummary", "BandCurves", "combine_curves"]


@dataclass(frozen=True)
class ObservationJob:
    """Everything a backend needs to extract one observation.

    The planner makes a job with its settings bound to the event file
    (:func:`pipeline.extract.binding.bind_to_event_file`): a default screening is the
    camera's, flare keys the build file left out take the camera's defaults, and regions in a
    celestial system are converted to physical pixels with the file's X/Y column WCS. A job
    made by hand with settings still to bind is bound by the backend that prepares it
    (:func:`pipeline.extract.binding.bind_job`).

    Attributes
    ----------
    obsid : str
    events : pathlib.Path
        Event file.
    expid : str
        The exposure's name in the store: instrument and EXPIDSTR (``PNS003``), or the
        instrument alone for files without exposure keywords (``PN``).
    instrument : str
        ``PN``, ``M1``, ``M2``, ``FPMA`` or ``FPMB``.
    regions : RegionSet
        Parsed ds9 regions.
    gti_file : pathlib.Path or None
        User GTI file.
    screening : Screening
    flare : FlareFilter or None
    time_bin : float
        Light-curve bin, seconds.
    inputs : dict
        Content hashes of the input files (``events_sha256``...), for provenance.
    pi_edges : tuple of int, optional
        PI edges to bin with (every band edge of the build, 5 eV channels over
        equal-count ranges, the screening limits); None bins every PI value.
    options : dict
        Backend-specific build options (the build file's ``[sas]`` table for SAS).
    notes : tuple of str
        What binding to the event file did (camera defaults, macro fallbacks, converted
        regions), for provenance.
    info : EventFileInfo, optional
        The event file's headers as read when the build was planned; a backend reads
        them again when None (not compared, not shown).
    hk_file : pathlib.Path or None
        NuSTAR: the module's housekeeping file (LIVETIME per second), docs/semantics.md §20.
    """

    obsid: str
    events: Path
    regions: RegionSet
    gti_file: Path | None
    screening: Screening
    flare: FlareFilter | None
    time_bin: float
    inputs: dict[str, Any] = field(default_factory=dict)
    expid: str = "PN"
    instrument: str = "PN"
    options: dict[str, Any] = field(default_factory=dict)
    pi_edges: tuple[int, ...] | None = None
    notes: tuple[str, ...] = ()
    info: EventFileInfo | None = field(default=None, compare=False, repr=False)
    hk_file: Path | None = None

    def event_info(self) -> EventFileInfo:
        """The event file's headers (with its hk file's live-time table): :attr:`info`, or read."""
        if self.info is not None:
            return self.info
        from pipeline.read.events import read_event_info

        return read_event_info(self.events, self.hk_file)

    @property
    def label(self) -> str:
        """``obsid/expid``: the exposure's group in the store."""
        return f"{self.obsid}/{self.expid}"


@dataclass(frozen=True)
class ObservationSummary:
    """What the writer needs to know of a prepared observation (small; no counts).

    Attributes
    ----------
    obsid : str
    t0, dt : float
        Grid start and bin width, seconds.
    n_bins : int
    gti : numpy.ndarray, shape (n, 2)
        GTIs applied to the source and background.
    mjdref : float
    timesys, timeref : str
    provenance : dict
        JSON-able facts about how the observation was prepared.
    """

    obsid: str
    t0: float
    dt: float
    n_bins: int
    gti: NDArray[np.float64]
    mjdref: float
    timesys: str
    timeref: str
    provenance: dict[str, Any]

    @property
    def time(self) -> NDArray[np.float64]:
        """Bin centres, seconds (MET)."""
        return self.t0 + self.dt * (np.arange(self.n_bins, dtype=np.float64) + 0.5)


@dataclass(frozen=True)
class BandCurves:
    """Light curves of some bands of one observation, on its grid.

    All arrays have shape (n_bands, n_bins). ``src_counts`` and ``bkg_counts``
    are the raw counts in the source and background regions (NaN where a backend
    cannot recover them); ``rate``/``error`` are the net rate and its error,
    ``backv``/``backe`` the background rate scaled to the source area, all in
    counts/s; ``fracexp`` the fractional exposure.
    """

    bands: tuple[Band, ...]
    rate: NDArray[np.float64]
    error: NDArray[np.float64]
    backv: NDArray[np.float64]
    backe: NDArray[np.float64]
    fracexp: NDArray[np.float64]
    src_counts: NDArray[np.float64]
    bkg_counts: NDArray[np.float64]
    band_provenance: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        shape = (len(self.bands), self.rate.shape[-1] if self.rate.ndim else 0)
        for name in ("rate", "error", "backv", "backe", "fracexp", "src_counts", "bkg_counts"):
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"BandCurves.{name} has shape {arr.shape}, expected {shape}")


def combine_curves(parts: list[BandCurves]) -> BandCurves:
    """Stack the parts of one scheme along the band axis, in band order."""
    ordered = sorted(parts, key=lambda p: p.bands[0] if p.bands else Band(0, 1))
    bands = tuple(b for p in ordered for b in p.bands)
    prov = tuple(d for p in ordered for d in (p.band_provenance or ({},) * len(p.bands)))

    def stack(name: str) -> NDArray[np.float64]:
        return np.concatenate([getattr(p, name) for p in ordered], axis=0)

    return BandCurves(
        bands=bands,
        rate=stack("rate"),
        error=stack("error"),
        backv=stack("backv"),
        backe=stack("backe"),
        fracexp=stack("fracexp"),
        src_counts=stack("src_counts"),
        bkg_counts=stack("bkg_counts"),
        band_provenance=prov,
    )
