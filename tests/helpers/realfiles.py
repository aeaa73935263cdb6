"""Paths to the real XMM-Newton files copied into tests/data/real, and small readers of them.

The files and their provenance: tests/data/real/README.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from astropy.io import fits

REAL = Path(__file__).resolve().parents[1] / "data" / "real"
MOS1 = REAL / "xmm_0001730201_mos1"
MOS1_RAW = MOS1 / "P0001730201M1S002MIEVLI.FTZ"
MOS1_CLEAN = MOS1 / "M1_clean.fits"
MOS1_GTI = MOS1 / "M1_gti.fits"
MOS1_RATE = MOS1 / "M1_rate.fits"
MOS1_CURVES = MOS1 / "lcurve_100_M1_1"
PN = REAL / "xmm_0201160101_pn" / "rxj_pnevtlist_0310kev_baryc.ds.gz"


def mos1_curve(kind: str) -> Path:
    """``lc_100_src``, ``lc_2.604_bgd``, ``lccorr_2.604``, ``region`` ... of lcurve_100_M1_1."""
    suffix = ".txt" if kind == "region" else ".lc"
    (path,) = MOS1_CURVES.glob(f"*_{kind}{suffix}")
    return path


def mos1_regions_ds9() -> str:
    """The SAS circles of ``*_region.txt`` (``(X,Y) in CIRCLE(x,y,r)``) as a ds9 region file."""
    text = mos1_curve("region").read_text()
    circles = dict(re.findall(r"(Source|Background)\s*=\s*\(X,Y\) in CIRCLE\(([^)]*)\)", text))
    return (
        "# Region file format: DS9 version 4.1\nphysical\n"
        f"circle({circles['Source']})\ncircle({circles['Background']}) # background\n"
    )


def evselect_counts(path: Path) -> tuple[np.ndarray, float, float]:
    """Counts per bin of an evselect rate set (RATE x TIMEDEL, whole numbers), TSTART, TIMEDEL."""
    with fits.open(path) as hdul:
        h = hdul["RATE"].header
        counts = np.asarray(hdul["RATE"].data["RATE"], dtype=np.float64) * float(h["TIMEDEL"])
    whole = np.rint(counts)
    assert np.abs(counts - whole).max() < 1e-6
    return whole.astype(np.int64), float(h["TSTART"]), float(h["TIMEDEL"])
