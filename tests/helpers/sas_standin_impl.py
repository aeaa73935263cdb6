"""Stand-ins for the SAS tasks evselect, epiclccorr, tabgtigen and sasversion.

They exist to test how xlcat handles processes (argument lists, working folders,
timeouts, non-zero exits, missing outputs, retries, logs kept), never SAS's
numbers: they write *plausible* outputs in the layouts that docs/semantics.md
§11.2 describes (tests/helpers/sas_fixtures.py). evselect really selects events with the
expression it is given (its ``&&`` terms: region shapes, ``gti(file,TIME)`` and
column tests through xlcat's selectlib evaluator) and counts them on the grid it
is given, so a build through the stand-ins can be compared with the native one;
epiclccorr applies the formulas of §6 with a made-up area ratio (0.25) and a
made-up absolute correction (x1.1), which real SAS does not.

Behaviour is steered by environment variables:
``XLCAT_STANDIN_RULES``  JSON list of {"task", "match" (substring of the joined argv,
                         optional), "action": "fail" | "hang" | "hang-child" |
                         "no-output" | "off-grid"}; the first matching rule applies.
``XLCAT_STANDIN_LOG``    file receiving one JSON line per call (task, argv, cwd).
``XLCAT_STANDIN_TIMEPIXR`` TIMEPIXR written by evselect (default "absent": none, TIME at
                         bin centres, as real evselect and epiclccorr write it,
                         docs/semantics.md §17.1; a number writes that keyword).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

RATIO = 0.25
C_ABS = 1.1
#: Made-up EXPOSURE of the stand-in spectra, and BACKSCAL that backscale writes per file.
STANDIN_EXPOSURE = 876.5
STANDIN_BACKSCAL = {"src.pha": 31000.0, "bkg.pha": 124000.0}


def _backscale(a: dict[str, str]) -> int:
    from astropy.io import fits

    with fits.open(a["spectrumset"], mode="update") as h:
        h["SPECTRUM"].header["BACKSCAL"] = STANDIN_BACKSCAL.get(Path(a["spectrumset"]).name, 1.0)
    return 0


def _rmfgen(a: dict[str, str]) -> int:
    """A diagonal RMF on the spectrum's channels (5 eV wide; the lowest edge 0.1 eV, not 0,
    which gammapy's logarithmic energy axes cannot hold)."""
    import numpy as np
    from astropy.io import fits

    with fits.open(a["spectrumset"]) as h:
        n = len(h["SPECTRUM"].data)
    lo = np.arange(n) * 0.005
    chan = np.arange(n, dtype=np.int32)
    matrix = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=np.maximum(lo, 1e-4)),
            fits.Column("ENERG_HI", "E", unit="keV", array=lo + 0.005),
            fits.Column("N_GRP", "I", array=np.ones(n, np.int16)),
            fits.Column("F_CHAN", "PJ()", array=[np.array([c], np.int32) for c in chan]),
            fits.Column("N_CHAN", "PJ()", array=[np.ones(1, np.int32) for _ in chan]),
            fits.Column("MATRIX", "PE()", array=[np.ones(1, np.float32) for _ in chan]),
        ],
        name="MATRIX",
    )
    ebounds = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=chan),
            fits.Column("E_MIN", "E", unit="keV", array=np.maximum(lo, 1e-4)),
            fits.Column("E_MAX", "E", unit="keV", array=lo + 0.005),
        ],
        name="EBOUNDS",
    )
    for hdu in (matrix, ebounds):
        hdu.header["DETCHANS"] = n
        hdu.header["TLMIN4" if hdu is matrix else "TLMIN1"] = 0
        hdu.header["TLMAX4" if hdu is matrix else "TLMAX1"] = n - 1
        hdu.header["CHANTYPE"] = "PI"
        hdu.header["HDUCLASS"] = "OGIP"
    matrix.header["LO_THRES"] = 0.0
    fits.HDUList([fits.PrimaryHDU(), matrix, ebounds]).writeto(a["rmfset"])
    return 0


def _arfgen(a: dict[str, str]) -> int:
    """A flat 100 cm^2 ARF on the RMF's energy grid."""
    import numpy as np
    from astropy.io import fits

    with fits.open(a["rmfset"]) as h:
        lo, hi = h["MATRIX"].data["ENERG_LO"], h["MATRIX"].data["ENERG_HI"]
    arf = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", unit="keV", array=lo),
            fits.Column("ENERG_HI", "E", unit="keV", array=hi),
            fits.Column("SPECRESP", "E", unit="cm**2", array=np.full(len(lo), 100.0)),
        ],
        name="SPECRESP",
    )
    fits.HDUList([fits.PrimaryHDU(), arf]).writeto(a["arfset"])
    return 0


def _args(argv: list[str]) -> dict[str, str]:
    out = {}
    for a in argv:
        k, _, v = a.partition("=")
        out[k] = v
    return out


def _rule(task: str, argv: list[str]) -> str | None:
    joined = " ".join(argv)
    for r in json.loads(os.environ.get("XLCAT_STANDIN_RULES", "[]")):
        if r["task"] == task and r.get("match", "") in joined:
            return r["action"]
    return None


def _split_and(expr: str) -> list[str]:
    terms, depth, cur, i = [], 0, "", 0
    while i < len(expr):
        ch = expr[i]
        depth += ch in "([" and 1 or 0
        depth -= ch in ")]" and 1 or 0
        if depth == 0 and expr.startswith("&&", i):
            terms.append(cur.strip())
            cur, i = "", i + 2
            continue
        cur += ch
        i += 1
    terms.append(cur.strip())
    return [t for t in terms if t]


def _read_gti(path: str):
    """``file`` (its first START/STOP table) or ``file:EXTNAME``."""
    import numpy as np
    from astropy.io import fits

    path, _, ext = path.partition(":")
    with fits.open(path) as hdul:
        t = hdul[ext] if ext else next(h for h in hdul[1:] if "START" in h.columns.names)
        return np.column_stack([t.data["START"], t.data["STOP"]]).astype(float)


_CCD_GTI = re.compile(r"CCDNR==(\d+)&&gti\(([^,]+),TIME\)")


def _in_gti(t, gti):
    import numpy as np

    return np.any((t[:, None] >= gti[:, 0]) & (t[:, None] < gti[:, 1]), axis=1)


def _select(expr: str, cols: dict, header):
    import numpy as np

    from pipeline.select.expression import compile_expression
    from pipeline.select.shapes import Annulus, Box, Circle, Ellipse

    shapes = {"circle": Circle, "annulus": Annulus, "ellipse": Ellipse, "box": Box}
    ok = np.ones(len(cols["TIME"]), bool)
    for term in _split_and(expr):
        g = re.fullmatch(r"gti\(([^,]+),TIME\)", term)
        if g:
            ok &= _in_gti(cols["TIME"], _read_gti(g.group(1)))
            continue
        per_ccd = _CCD_GTI.findall(term)
        if per_ccd:  # ((CCDNR==c&&gti(file:EXT,TIME))||...): each CCD with its own GTI
            inside = np.zeros(len(ok), bool)
            for ccd, ref in per_ccd:
                mine = cols["CCDNR"] == int(ccd)
                inside |= mine & _in_gti(cols["TIME"], _read_gti(ref))
            ok &= inside
            continue
        found = re.findall(r"\(X,Y\) IN (\w+)\(([^)]*)\)", term)
        if found:
            inside = np.zeros(len(ok), bool)
            for name, vals in found:
                v = [float(x) for x in vals.split(",")]
                if name == "box":  # SAS box takes half-widths; xlcat's Box full widths
                    v = [v[0], v[1], 2 * v[2], 2 * v[3], v[4]]
                inside |= shapes[name](*v).contains(cols["X"], cols["Y"])
            ok &= inside
            continue

        def macro(name: str, _h=header):
            return str(_h[name]) if name in _h else None

        e = compile_expression(term, macros=macro)
        ok &= e.evaluate(cols)
    return ok


def _events(table: str):
    import numpy as np
    from astropy.io import fits

    path = table.split(":")[0]
    with fits.open(path) as hdul:
        ev = hdul["EVENTS"]
        cols = {
            n.upper(): np.asarray(ev.data[n]).astype(np.int64 if n != "TIME" else float)
            for n in ev.columns.names
        }
        return cols, ev.header.copy()


def _evselect(a: dict[str, str], action: str | None) -> int:
    import numpy as np

    from tests.helpers.sas_fixtures import write_raw

    cols, header = _events(a["table"])
    ok = _select(a.get("expression", ""), cols, header)
    if a.get("withspectrumset") == "yes":
        from astropy.io import fits

        n_chan = (int(a.get("specchannelmax", "20479")) + 1) // 5
        chan = cols["PI"][ok] // 5
        counts = np.bincount(chan[(chan >= 0) & (chan < n_chan)], minlength=n_chan)
        hdu = fits.BinTableHDU.from_columns(
            [
                fits.Column("CHANNEL", "J", array=np.arange(n_chan)),
                fits.Column("COUNTS", "J", array=counts),
            ],
            name="SPECTRUM",
        )
        hdu.header["EXPOSURE"] = STANDIN_EXPOSURE  # made up (real evselect: live time)
        fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(a["spectrumset"])
        return 0
    t0, t1, dt = float(a["timemin"]), float(a["timemax"]), float(a["timebinsize"])
    n = math.ceil((t1 - t0) / dt - 1e-9)
    t = cols["TIME"][ok]
    k = np.floor((t - t0) / dt).astype(np.int64)
    counts = np.bincount(k[(k >= 0) & (k < n)], minlength=n)[:n]
    tp = os.environ.get("XLCAT_STANDIN_TIMEPIXR", "absent")
    timepixr = None if tp == "absent" else float(tp)
    if action == "off-grid":
        t0 += dt / 3
    # the rate set carries the GTI of the CCD holding most selected events (ties: the lowest
    # CCD), which the stand-in epiclccorr takes its FRACEXP from
    refs = re.findall(r"CCDNR==(\d+)&&gti\(([^,]+),TIME\)", a.get("expression", ""))
    g = re.search(r"gti\(([^,]+),TIME\)", a.get("expression", ""))
    gti = None
    if refs:
        n_ccd = [(-int(np.sum(cols["CCDNR"][ok] == int(c))), int(c), ref) for c, ref in refs]
        gti = _read_gti(min(n_ccd)[2])
    elif g:
        gti = _read_gti(g.group(1))
    write_raw(
        Path(a["rateset"]),
        counts,
        t0,
        dt,
        timepixr=timepixr,
        rate_format="D",
        gti=gti,
        expression=a.get("expression", ""),
    )
    print(f"evselect (stand-in): {int(ok.sum())} events selected, {n} bins")
    return 0


def _epiclccorr(a: dict[str, str]) -> int:
    import numpy as np
    from astropy.io import fits

    from tests.helpers.sas_fixtures import corrected_from_counts, write_corrected

    def read(p):
        with fits.open(p) as hdul:
            h = hdul["RATE"].header
            d = hdul["RATE"].data
            gti = _read_gti(p) if len(hdul) > 2 else None
            counts = np.rint(np.asarray(d["RATE"]) * h["TIMEDEL"])
            return h, np.asarray(d["TIME"], float), counts, gti

    hs, ts, src, gti = read(a["srctslist"])
    if a.get("withbkgset") == "no":  # source-only: no background series (its terms are 0)
        hb, tb, bkg = hs, ts, np.zeros_like(src)
    else:
        hb, tb, bkg, _ = read(a["bkgtslist"])
    if hs["TSTART"] != hb["TSTART"] or hs["TIMEDEL"] != hb["TIMEDEL"] or len(ts) != len(tb):
        print("** epiclccorr: error (BkgTSMismatch): background TS differs", file=sys.stderr)
        return 4
    dt = float(hs["TIMEDEL"])
    tp = float(hs.get("TIMEPIXR", 0.5))  # no TIMEPIXR: TIME is the centre
    start = ts - tp * dt
    if gti is None:
        gti = np.array([[start[0], start[-1] + dt]])
    lo, hi = start[:, None], start[:, None] + dt
    f = np.clip(np.minimum(hi, gti[:, 1]) - np.maximum(lo, gti[:, 0]), 0, None).sum(1) / dt
    c_abs = C_ABS if a.get("applyabsolutecorrections") == "yes" else 1.0
    rate, error, backv, backe = corrected_from_counts(src, bkg, dt, f, RATIO, c_abs)
    write_corrected(
        Path(a["outset"]),
        float(hs["TSTART"]),
        dt,
        rate=rate,
        error=error,
        backv=backv,
        backe=backe,
        fracexp=f,
        timepixr=hs.get("TIMEPIXR"),
        src_gtis=gti,
        bkg_gtis=gti,
        time=ts,
        extra={"BKGRATIO": 1 / RATIO},
    )
    print("epiclccorr (stand-in): done")
    return 0


def _tabgtigen(a: dict[str, str]) -> int:
    import numpy as np
    from astropy.io import fits

    op, thr_text = re.fullmatch(r"RATE(<=?)(.+)", a["expression"]).groups()
    thr = float(thr_text)
    with fits.open(a["table"]) as hdul:
        t = np.asarray(hdul["RATE"].data["TIME"], float)
        rate = np.asarray(hdul["RATE"].data["RATE"], float)
        good = rate <= thr if op == "<=" else rate < thr
    rows = []
    if len(t) > 1 and good.any():
        sp = np.diff(t)
        before, after = np.r_[sp[0], sp], np.r_[sp, sp[-1]]
        ch = np.diff(np.r_[0, good.astype(int), 0])
        s, e = np.flatnonzero(ch == 1), np.flatnonzero(ch == -1) - 1
        rows = np.column_stack([t[s] - 0.5 * before[s], t[e] + 0.5 * after[e]])
    g = np.asarray(rows, float).reshape(-1, 2)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("START", "D", array=g[:, 0]), fits.Column("STOP", "D", array=g[:, 1])],
        name="STDGTI",
    )
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(a["gtiset"])
    return 0


def main(task: str, argv: list[str]) -> int:
    log = os.environ.get("XLCAT_STANDIN_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"task": task, "argv": [task, *argv], "cwd": os.getcwd()}) + "\n")
    action = _rule(task, argv)
    if task == "sasversion" and action is None:
        print("sasversion:- xlcat-standin 0.0 (not SAS)")
        return 0
    print(f"{task} (xlcat stand-in, not SAS) called with {len(argv)} arguments")
    if action == "fail":
        print(f"** {task}: error (StandinFailure): told to fail", file=sys.stderr)
        return 3
    if action == "hang-child":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        action = "hang"
    if action == "hang":
        sys.stdout.flush()
        time.sleep(3600)
        return 0
    if action == "no-output":
        return 0
    a = _args(argv)
    if task == "evselect":
        return _evselect(a, action)
    if task == "epiclccorr":
        return _epiclccorr(a)
    if task == "backscale":
        return _backscale(a)
    if task == "rmfgen":
        return _rmfgen(a)
    if task == "arfgen":
        return _arfgen(a)
    if task == "tabgtigen":
        return _tabgtigen(a)
    print(f"unknown stand-in task {task}", file=sys.stderr)
    return 2
