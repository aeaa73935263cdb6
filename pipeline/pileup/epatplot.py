"""The pile-up ratios from SAS ``epatplot``, where SAS is installed.

For one extraction annulus two commands run, as argument lists (never a shell), in a task
folder of :class:`pipeline.extract.sas.runner.TaskFolder`:

1. ``evselect`` writes the annulus's events (all patterns; the build's FLAG and extra
   selection) to a filtered event list;
2. ``epatplot`` compares their pattern fractions with the model curves of the calibration
   (QUANTUMEF), plots them, and stores the 0.5-2 keV observed-to-model ratios on the filtered
   list's EVENTS extension as ``SNGL_OTM`` +- ``ESGL_OTM`` (singles) and ``DBLE_OTM`` +-
   ``EDBL_OTM`` (doubles) (docs/semantics.md §15).

:func:`read_otm` reads those keywords back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from astropy.io import fits

from pipeline.extract.sas.runner import TaskFolder
from pipeline.pileup.fractions import RATIO_BAND_EV, Ratio
from schemas.errors import SASError

__all__ = [
    "FILTERED_EVENTS",
    "PLOT_FILE",
    "OTM_KEYWORDS",
    "epatplot_commands",
    "read_otm",
    "run_epatplot",
]

#: File names inside the task folder.
FILTERED_EVENTS = "pileup_events.fits"
PLOT_FILE = "pileup_epatplot.pdf"
#: The keywords epatplot writes: (ratio, error) of singles and of doubles.
OTM_KEYWORDS: dict[str, tuple[str, str]] = {
    "s": ("SNGL_OTM", "ESGL_OTM"),
    "d": ("DBLE_OTM", "EDBL_OTM"),
}


def epatplot_commands(
    events: str | os.PathLike[str],
    expression: str,
    band: tuple[int, int] = RATIO_BAND_EV,
) -> dict[str, list[str]]:
    """The evselect and epatplot argument lists of one extraction annulus.

    Parameters
    ----------
    events : str or os.PathLike
        The exposure's event file.
    expression : str
        selectlib selection of the annulus's events, e.g.
        ``((X,Y) IN annulus(27000,21000,60,800)) && (FLAG==0)``.
    band : (int, int)
        PI range (eV) of the ratios, epatplot's ``pileupnumberenergyrange``.

    Returns
    -------
    dict
        ``"evselect (pile-up events)"`` and ``"epatplot"`` to argument lists, in the order they
        run; outputs :data:`FILTERED_EVENTS` (which receives the keywords) and :data:`PLOT_FILE`.
    """
    return {
        "evselect (pile-up events)": [
            "evselect",
            f"table={os.fspath(events)}:EVENTS",
            "withfilteredset=yes",
            f"filteredset={FILTERED_EVENTS}",
            "destruct=yes",
            "keepfilteroutput=yes",
            f"expression={expression}",
        ],
        "epatplot": [
            "epatplot",
            f"set={FILTERED_EVENTS}",
            f"plotfile={PLOT_FILE}",
            "useplotfile=yes",
            "withbackgroundset=no",
            f"pileupnumberenergyrange={band[0]} {band[1]}",
        ],
    }


def read_otm(header: Mapping[str, Any], where: str) -> tuple[Ratio, Ratio]:
    """The singles and doubles ratios epatplot stored in an EVENTS header.

    Parameters
    ----------
    header : mapping
        The filtered list's EVENTS header (an astropy Header or a dict).
    where : str
        The file, for messages.

    Returns
    -------
    (Ratio, Ratio)
        s and d; ``observed`` and ``expected`` are NaN (epatplot does not store them).

    Raises
    ------
    SASError
        If a keyword is missing or not a finite number.
    """
    out = []
    for value_key, error_key in OTM_KEYWORDS.values():
        values = []
        for key in (value_key, error_key):
            v = header.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise SASError(
                    f"{where} EVENTS header: keyword {key} is "
                    f"{'missing' if v is None else repr(v) + ', not a finite number'}; "
                    "epatplot did not store its ratios (see its log)"
                )
            values.append(float(v))
        out.append(Ratio(values[0], values[1], math.nan, math.nan))
    return out[0], out[1]


def run_epatplot(
    events: str | os.PathLike[str],
    expression: str,
    *,
    env: Mapping[str, str],
    timeout: float,
    where: str,
    tmp_root: str | None = None,
    log_dir: Path | None = None,
) -> tuple[Ratio, Ratio, list[dict[str, Any]]]:
    """Run evselect + epatplot on one annulus and read the ratios back.

    Parameters
    ----------
    events : str or os.PathLike
    expression : str
        The annulus selection (:func:`epatplot_commands`).
    env : mapping
        Environment of the SAS commands (with ``SAS_CCF``).
    timeout : float
        Seconds per command.
    where : str
        What the task is, for messages.
    tmp_root : str, optional
        Parent of the task folder.
    log_dir : Path, optional
        Where a failed task's folder is kept (default: the temporary folder, named).

    Returns
    -------
    (Ratio, Ratio, list of dict)
        s, d, and the commands that ran (JSON-able records).

    Raises
    ------
    SASError
        A command failed or epatplot stored no ratios (the folder and logs are kept).
    """
    task = TaskFolder(where, env=env, timeout=timeout, log_dir=log_dir, tmp_root=tmp_root)
    with task.guard():
        commands = epatplot_commands(events, expression)
        name = "evselect (pile-up events)"
        task.run(name, commands[name], [FILTERED_EVENTS])
        task.run("epatplot", commands["epatplot"])
        filtered = task.path / FILTERED_EVENTS
        with fits.open(filtered) as hdul:
            if "EVENTS" not in hdul:
                raise SASError(f"{filtered}: no EVENTS extension after epatplot")
            header = hdul["EVENTS"].header.copy()
        s, d = read_otm(header, str(filtered))
    records = [r.to_json() for r in task.records]
    task.finish()
    return s, d, records
