"""The PI channel grid of the stored source and background spectra (store format 3).

An exposure group's spectra have one channel per ``pi_per_channel`` PI values,
channel ``c`` holding ``c * pi_per_channel <= PI < (c + 1) * pi_per_channel``, as SAS
``evselect ... energycolumn=PI spectralbinsize=5 withspecranges=yes specchannelmin=0
specchannelmax=<max>`` bins them (EPIC-pn: PI 0..20479, 4096 channels; MOS: PI
0..11999, 2400 channels). Channel energies are ``offset_kev + kev_per_pi * PI``
(:func:`schemas.energy.energy_scale`): XMM EPIC PI is in eV (offset 0, 0.001 keV per PI).
NuSTAR FPMA/FPMB have 4096 channels of one PI each, E = 1.6 + 0.04 PI keV.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas.energy import energy_scale

__all__ = ["ChannelGrid", "channel_grid"]


@dataclass(frozen=True)
class ChannelGrid:
    """Spectral channels of one instrument.

    Attributes
    ----------
    instrument : str
    pi_per_channel : int
        PI values per channel (SAS ``spectralbinsize``).
    n_channels : int
        Channels 0 .. n_channels - 1 (``(specchannelmax + 1) / spectralbinsize``).
    offset_kev, kev_per_pi : float
        The instrument's PI energy scale (:func:`schemas.energy.energy_scale`).
    """

    instrument: str
    pi_per_channel: int
    n_channels: int
    offset_kev: float
    kev_per_pi: float

    @property
    def pi_max(self) -> int:
        """SAS ``specchannelmax``: the largest PI of the last channel."""
        return self.pi_per_channel * self.n_channels - 1

    @property
    def pi_lo(self) -> NDArray[np.int64]:
        """First PI of each channel (inclusive)."""
        return np.arange(self.n_channels, dtype=np.int64) * self.pi_per_channel

    @property
    def pi_hi(self) -> NDArray[np.int64]:
        """PI just above each channel (exclusive)."""
        return self.pi_lo + self.pi_per_channel

    @property
    def e_lo(self) -> NDArray[np.float64]:
        """Lower energy edge of each channel, keV."""
        return self.offset_kev + self.kev_per_pi * self.pi_lo.astype(np.float64)

    @property
    def e_hi(self) -> NDArray[np.float64]:
        """Upper energy edge of each channel, keV."""
        return self.offset_kev + self.kev_per_pi * self.pi_hi.astype(np.float64)

    def describe(self) -> dict[str, object]:
        """JSON-able record of the grid (stored in the group's ``spectrum`` attribute)."""
        return {
            "instrument": self.instrument,
            "pi_per_channel": self.pi_per_channel,
            "n_channels": self.n_channels,
            "specchannelmin": 0,
            "specchannelmax": self.pi_max,
            "offset_kev": self.offset_kev,
            "kev_per_pi": self.kev_per_pi,
            "rule": f"channel c holds {self.pi_per_channel} c <= PI < "
            f"{self.pi_per_channel} (c + 1); E = {self.offset_kev:g} + {self.kev_per_pi:g} PI keV",
        }


#: (PI per channel, number of channels) per instrument: SAS spectralbinsize and
#: (specchannelmax + 1) / spectralbinsize (pn 0..20479, MOS 0..11999); NuSTAR's 4096
#: PI channels of 40 eV each, as its RMFs have them.
_GRIDS: dict[str, tuple[int, int]] = {
    "PN": (5, 4096),
    "M1": (5, 2400),
    "M2": (5, 2400),
    "FPMA": (1, 4096),
    "FPMB": (1, 4096),
}


def channel_grid(instrument: str) -> ChannelGrid:
    """The spectral channel grid of an instrument (EPIC-pn's for an unknown one).

    Parameters
    ----------
    instrument : str
        ``PN``, ``M1``, ``M2``, ``FPMA`` or ``FPMB``.

    Returns
    -------
    ChannelGrid
    """
    per, n = _GRIDS.get(instrument.upper(), _GRIDS["PN"])
    scale = energy_scale(instrument.upper())
    return ChannelGrid(instrument.upper(), per, n, scale.offset_kev, scale.kev_per_pi)
