"""Pure timing computations on light-curve arrays (no files, Zarr or Dask).

- :mod:`catalog.timing.segments`: good bins, gap filling, continuous segments.
- :mod:`catalog.timing.fourier`: Fourier frequencies, frequency bins, averaged
  periodograms and cross spectra (conventions in its module docstring).
- :mod:`catalog.timing.products`: lag, coherence, rms and covariance formulas.
- :mod:`catalog.timing.selection`: segments or segments Dataset in, subject and
  reference bands.
- :mod:`catalog.timing.spectra`: power and cross spectra as Datasets.
- :mod:`catalog.timing.lags`: lag-frequency and lag-energy Datasets.
- :mod:`catalog.timing.results`: the parts those Datasets share (bins, units, attributes).
- :mod:`catalog.timing.catalogue`: catalogue light curves -> segments Dataset and back.
- :mod:`catalog.timing.plots`: lag-energy and power-spectrum figures.
"""

from catalog.timing.catalogue import (
    as_segments,
    observation_rng,
    provenance_attrs,
    segments_dataset,
)
from catalog.timing.fourier import (
    CrossAverages,
    FrequencyBins,
    average_cross_spectra,
    fourier_frequencies,
    freq_bins,
    segment_frequencies,
    taper_window,
)
from catalog.timing.lags import lag_energy, lag_energy_ranges, lag_frequency
from catalog.timing.products import (
    covariance,
    intrinsic_coherence,
    noise_bias,
    phase_lag,
    power_error,
    raw_coherence,
    rms_amplitude,
    time_lag,
)
from catalog.timing.segments import Segment, good_bins, make_segments
from catalog.timing.selection import Reference, Segments, band_selection
from catalog.timing.spectra import cross_spectrum, power_spectrum

__all__ = [
    "CrossAverages",
    "FrequencyBins",
    "Reference",
    "Segment",
    "Segments",
    "as_segments",
    "average_cross_spectra",
    "band_selection",
    "covariance",
    "cross_spectrum",
    "fourier_frequencies",
    "freq_bins",
    "good_bins",
    "intrinsic_coherence",
    "lag_energy",
    "lag_energy_ranges",
    "lag_frequency",
    "make_segments",
    "noise_bias",
    "observation_rng",
    "phase_lag",
    "power_error",
    "power_spectrum",
    "provenance_attrs",
    "raw_coherence",
    "rms_amplitude",
    "segment_frequencies",
    "segments_dataset",
    "taper_window",
    "time_lag",
]
