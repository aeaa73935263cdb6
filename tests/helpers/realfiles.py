"""Paths of the real instrument files copied into tests/data/real (see its README.md)."""

from __future__ import annotations

from pathlib import Path

REAL = Path(__file__).resolve().parents[1] / "data" / "real"

#: EPIC MOS1 imaging, flare-filtered (EMOS1, IMAGING, EXPIDSTR S001), 36,824 events.
MOS1_CLEAN = REAL / "xmm_0001730201_mos1" / "M1_clean.fits"
#: The physical source and background circles used with it (EXOD's text format, not ds9).
MOS1_REGIONS = REAL / "xmm_0001730201_mos1" / "lcurve_100_M1_1" / "J173442-323451_region.txt"
#: EPIC-pn imaging, gzip FITS (EPN, IMAGING, EXPIDSTR S003): one source ellipse, no background.
PN_EVENTS = REAL / "xmm_0201160101_pn" / "rxj_pnevtlist_0310kev_baryc.ds.gz"
#: NuSTAR FPMA event list whose X/Y column WCS has string TCRVL13/TCRVL14.
NUSTAR_EVENTS = REAL / "nustar_90410111001_fpma" / "nu90410111001A06_cl_sunpos.evt"

#: The pn source ellipse (extension REG00107 of PN_EVENTS): x, y, semi-axes, angle.
PN_ELLIPSE = (22001.65, 37288.64, 400.0, 200.0, 33.0)
#: Spin period of RX J0146.9+6121, s.
PN_SPIN_S = 1396.0


def mos1_circles() -> dict[str, tuple[float, float, float]]:
    """The source and background circles of MOS1_REGIONS, read from the file's text."""
    out = {}
    for line in MOS1_REGIONS.read_text().splitlines():
        if "CIRCLE(" in line:
            role = "source" if line.lower().startswith("source") else "background"
            x, y, r = (float(v) for v in line.split("CIRCLE(")[1].rstrip(")").split(","))
            out[role] = (x, y, r)
    return out
