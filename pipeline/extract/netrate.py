"""Net (background-subtracted) light curves from source and background counts.

The project's rule (``docs/semantics.md`` §6): with N_s and
N_b the source and background counts in a bin, f its fractional exposure, dt the
bin width and r = A_src / A_bkg the geometric area ratio,

    rate  = N_s / (dt f) - r N_b / (dt f)
    error = sqrt(N_s + r**2 N_b) / (dt f)
    backv = r N_b / (dt f),   backe = r sqrt(N_b) / (dt f)

NaN only where f = 0; negative net rates are kept; a bin with no counts has
error 0 (as epiclccorr gives), never NaN.

Without a background region (``area_ratio`` None) the curves are source-only:
rate = N_s / (dt f), error = sqrt(N_s) / (dt f), and backv, backe are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["NetRate", "net_rate"]


@dataclass(frozen=True)
class NetRate:
    """Net rate, its error, and the scaled background rate and error, in counts/s."""

    rate: NDArray[np.float64]
    error: NDArray[np.float64]
    backv: NDArray[np.float64]
    backe: NDArray[np.float64]


def net_rate(
    src: ArrayLike,
    bkg: ArrayLike | None,
    area_ratio: float | None,
    dt: float,
    fracexp: ArrayLike,
) -> NetRate:
    """Background-subtracted, exposure-corrected rate and Gaussian error.

    Parameters
    ----------
    src, bkg : array_like
        Source and background counts per bin (broadcastable to each other); ``bkg`` is
        not used (and may be None) without a background region.
    area_ratio : float or None
        A_src / A_bkg; None when there is no background region (source-only curves,
        docs/semantics.md §6).
    dt : float
        Bin width, seconds.
    fracexp : array_like
        Fractional exposure per bin, broadcastable to ``src``.

    Returns
    -------
    NetRate
        Arrays of the broadcast shape; NaN where ``fracexp == 0``.
    """
    s = np.asarray(src, dtype=np.float64)
    if area_ratio is None:
        f = np.broadcast_to(np.asarray(fracexp, dtype=np.float64), s.shape)
        expo = np.where(f > 0, dt * f, np.nan)
        nan = np.full(s.shape, np.nan)
        return NetRate(rate=s / expo, error=np.sqrt(s) / expo, backv=nan, backe=nan.copy())
    b = np.asarray(bkg, dtype=np.float64)
    f = np.broadcast_to(
        np.asarray(fracexp, dtype=np.float64), np.broadcast_shapes(s.shape, b.shape)
    )
    expo = np.where(f > 0, dt * f, np.nan)
    r = float(area_ratio)
    backv = r * b / expo
    return NetRate(
        rate=s / expo - backv,
        error=np.sqrt(s + r * r * b) / expo,
        backv=backv,
        backe=r * np.sqrt(b) / expo,
    )
