"""The folder layouts ``xlcat import`` reads, as constants (light: the CLI imports them).

:mod:`pipeline.build.importer` describes the layouts and reads them.
"""

from __future__ import annotations

__all__ = ["LAYOUTS", "FOLDER_PATTERNS", "PATTERN_OPTIONS"]

#: Layouts ``xlcat import`` reads.
LAYOUTS: tuple[str, ...] = ("reference", "folder")

#: File-name patterns of the folder layout (EXOD ``scripts/lightcurve.sh``): ``{name}``
#: stands for any text, ``{dt}`` for the time bin written as a number.
FOLDER_PATTERNS: dict[str, str] = {
    "source": "{name}_lc_{dt}_src.lc",
    "background": "{name}_lc_{dt}_bgd.lc",
    "corrected": "{name}_lccorr_{dt}.lc",
    "regions": "{name}_region.txt",
}

#: The ``xlcat import`` option that sets each pattern.
PATTERN_OPTIONS: dict[str, str] = {
    "source": "--src-pattern",
    "background": "--bkg-pattern",
    "corrected": "--corrected-pattern",
    "regions": "--region-pattern",
}
