"""Paths to the real instrument files copied into tests/data/real, and small readers of them.

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
#: EPIC MOS1 imaging, flare-filtered (EMOS1, IMAGING, EXPIDSTR S001), 36,824 events.
MOS1_CLEAN = MOS1 / "M1_clean.fits"
MOS1_GTI = MOS1 / "M1_gti.fits"
MOS1_RATE = MOS1 / "M1_rate.fits"
MOS1_CURVES = MOS1 / "lcurve_100_M1_1"
#: The physical source and background circles used with it (EXOD's text format, not ds9).
MOS1_REGIONS = MOS1_CURVES / "J173442-323451_region.txt"
#: EPIC-pn imaging, gzip FITS (EPN, IMAGING, EXPIDSTR S003): one source ellipse, no background.
PN = REAL / "xmm_0201160101_pn" / "rxj_pnevtlist_0310kev_baryc.ds.gz"
#: NuSTAR FPMA event list whose X/Y column WCS has string TCRVL13/TCRVL14.
NUSTAR_EVENTS = REAL / "nustar_90410111001_fpma" / "nu90410111001A06_cl_sunpos.evt"

#: The pn source ellipse (extension REG00107 of PN): x, y, semi-axes, angle.
PN_ELLIPSE = (22001.65, 37288.64, 400.0, 200.0, 33.0)
#: Spin period of RX J0146.9+6121, s.
PN_SPIN_S = 1396.0


def mos1_curve(kind: str) -> Path:
    """``lc_100_src``, ``lc_2.604_bgd``, ``lccorr_2.604``, ``region`` ... of lcurve_100_M1_1."""
    suffix = ".txt" if kind == "region" else ".lc"
    (path,) = MOS1_CURVES.glob(f"*_{kind}{suffix}")
    return path


def mos1_circles() -> dict[str, tuple[float, float, float]]:
    """The source and background circles of MOS1_REGIONS, read from the file's text."""
    out = {}
    for line in MOS1_REGIONS.read_text().splitlines():
        if "CIRCLE(" in line:
            role = "source" if line.lower().startswith("source") else "background"
            x, y, r = (float(v) for v in line.split("CIRCLE(")[1].rstrip(")").split(","))
            out[role] = (x, y, r)
    return out


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
