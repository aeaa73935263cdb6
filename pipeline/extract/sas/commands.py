"""The exact argument lists the SAS backend runs (never through a shell).

Every light curve is made on the observation's explicit grid (``withtimeranges=yes
timemin timemax timebinsize``, docs/semantics.md §3 and §11.1), with a parenthesised
selection (§2)::

    (PI in [lo:hi)) && <screening> && (<region shapes OR-ed>) && <GTI term>

where the GTI term judges each CCD's events by that CCD's own GTI, as epiclccorr's
selection does (docs/semantics.md §4)::

    ((CCDNR==4&&gti(gti.fits:GTICCD04,TIME))||(CCDNR==5&&gti(gti.fits:GTICCD05,TIME)))

Output and GTI files are named relative to the task's own folder (the working
directory of the command), so the argument lists depend only on the inputs and can
be compared (golden tests) and hashed (the band cache). Without a background region
there is no background evselect and epiclccorr runs with ``withbkgset=no``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pipeline.extract.binning import TimeGrid
from pipeline.extract.observation import flare_text, screening_text
from pipeline.select.regions import RegionSet
from pipeline.select.shapes import format_number
from schemas.build import FlareFilter, Screening
from schemas.energy import Band
from schemas.errors import ConfigError

__all__ = [
    "GTI_FILE",
    "SOURCE_CURVE",
    "BACKGROUND_CURVE",
    "CORRECTED_CURVE",
    "FLARE_CURVE",
    "FLARE_GTI",
    "OUTPUT_OF",
    "band_expression",
    "gti_expression",
    "ccd_gti_extension",
    "rate_curve_command",
    "epiclccorr_command",
    "band_commands",
    "flare_commands",
    "spectrum_command",
    "backscale_command",
    "rmfgen_command",
    "arfgen_command",
    "SPECTRUM_FILES",
    "spectrum_commands",
]

#: File names inside a task folder.
GTI_FILE = "gti.fits"
SOURCE_CURVE = "lc__s.fits"
BACKGROUND_CURVE = "lc__b.fits"
CORRECTED_CURVE = "lc.fits"
FLARE_CURVE = "flare_rate.fits"
FLARE_GTI = "flare_gti.fits"
#: The output file of each command of a band task.
OUTPUT_OF = {
    "evselect (source)": SOURCE_CURVE,
    "evselect (background)": BACKGROUND_CURVE,
    "epiclccorr": CORRECTED_CURVE,
}


def ccd_gti_extension(ccd: int) -> str:
    """The extension of :data:`GTI_FILE` holding CCD ``ccd``'s GTI (``GTICCD04``)."""
    return f"GTICCD{ccd:02d}"


def gti_expression(ccds: Sequence[int] | None = None, gti_file: str = GTI_FILE) -> str:
    """The GTI term of a selection.

    Parameters
    ----------
    ccds : sequence of int, optional
        CCDs each judged by its own GTI, extension :func:`ccd_gti_extension` of
        ``gti_file``; without them one GTI (extension STDGTI) applies to every event.
    gti_file : str

    Returns
    -------
    str
        ``gti(gti.fits,TIME)``, or
        ``((CCDNR==4&&gti(gti.fits:GTICCD04,TIME))||(CCDNR==5&&gti(gti.fits:GTICCD05,TIME)))``.
    """
    if not ccds:
        return f"gti({gti_file},TIME)"
    terms = [f"(CCDNR=={c}&&gti({gti_file}:{ccd_gti_extension(c)},TIME))" for c in ccds]
    return f"({'||'.join(terms)})"


def band_expression(
    band: Band,
    screening: Screening,
    regions: RegionSet,
    which: Literal["source", "background"],
    gti_file: str = GTI_FILE,
    ccds: Sequence[int] | None = None,
) -> str:
    """The selection of one band in one region, in selectlib syntax.

    Parameters
    ----------
    band : Band
        Selects ``pi_lo <= PI < pi_hi``.
    screening : Screening
        Pattern, flag and PI screening (and any extra expression).
    regions : RegionSet
    which : {"source", "background"}
    gti_file : str
        GTI file applied with ``gti(file,TIME)`` (START <= TIME < STOP).
    ccds : sequence of int, optional
        CCDs judged each by its own GTI (:func:`gti_expression`).

    Returns
    -------
    str
        e.g. ``(PI in [2000:4000)) && (PATTERN<=4)&&(FLAG==0)&&(PI in [200:12000])
        && ((X,Y) IN circle(1000,1000,100)) && ((CCDNR==4&&gti(gti.fits:GTICCD04,TIME)))``.

    Raises
    ------
    ConfigError
        For ``"background"`` when the regions have no background shape.
    """
    region = regions.sas_expression(which)
    if region is None:
        raise ConfigError(f"regions {regions.path}: no {which} shape to select with")
    return (
        f"(PI in [{band.pi_lo}:{band.pi_hi})) && {screening_text(screening)} && "
        f"{region} && {gti_expression(ccds, gti_file)}"
    )


def rate_curve_command(
    events: str | Path, rateset: str, expression: str, grid: TimeGrid
) -> list[str]:
    """evselect in light-curve mode on an explicit grid.

    Parameters
    ----------
    events : str or Path
        Event file (its EVENTS table is read).
    rateset : str
        Output rate set.
    expression : str
        Selection.
    grid : TimeGrid
        Bins ``[t0 + k dt, t0 + (k+1) dt)``, k < n_bins: ``timemin = t0``,
        ``timemax = t0 + n_bins dt``, ``timebinsize = dt`` (seconds).

    Returns
    -------
    list of str
    """
    return [
        "evselect",
        f"table={events}:EVENTS",
        "withrateset=yes",
        f"rateset={rateset}",
        "maketimecolumn=yes",
        "makeratecolumn=yes",
        f"timebinsize={format_number(grid.dt)}",
        "withtimeranges=yes",
        f"timemin={format_number(grid.t0)}",
        f"timemax={format_number(grid.stop)}",
        "energycolumn=PI",
        f"expression={expression}",
    ]


def epiclccorr_command(
    source: str, background: str | None, events: str | Path, outset: str, abscorr: bool
) -> list[str]:
    """epiclccorr with a background series, or ``withbkgset=no`` without (docs/semantics.md §11.1).

    Parameters
    ----------
    source, background : str
        evselect rate sets of the source and background regions (same grid); background
        None for source-only curves.
    events : str or Path
        The event file both were made from.
    outset : str
        Corrected output.
    abscorr : bool
        ``applyabsolutecorrections=yes`` (vignetting, PSF, QE, filter) or ``no``.

    Returns
    -------
    list of str
    """
    return [
        "epiclccorr",
        f"srctslist={source}",
        f"eventlist={events}",
        f"outset={outset}",
        *(["withbkgset=yes", f"bkgtslist={background}"] if background else ["withbkgset=no"]),
        f"applyabsolutecorrections={'yes' if abscorr else 'no'}",
    ]


def band_commands(
    events: str | Path,
    regions: RegionSet,
    screening: Screening,
    grid: TimeGrid,
    band: Band,
    abscorr: bool,
    ccds: Sequence[int] | None = None,
) -> dict[str, list[str]]:
    """The three commands of one (observation, band) task, in the order they run.

    ``ccds``: the CCDs judged each by its own GTI (:func:`gti_expression`).

    Returns
    -------
    dict
        ``"evselect (source)"``, ``"evselect (background)"`` (only with a background region),
        ``"epiclccorr"`` to argument lists; their outputs are :data:`OUTPUT_OF`.
    """
    commands = {
        "evselect (source)": rate_curve_command(
            events,
            SOURCE_CURVE,
            band_expression(band, screening, regions, "source", ccds=ccds),
            grid,
        ),
    }
    if regions.has_background:
        commands["evselect (background)"] = rate_curve_command(
            events,
            BACKGROUND_CURVE,
            band_expression(band, screening, regions, "background", ccds=ccds),
            grid,
        )
    commands["epiclccorr"] = epiclccorr_command(
        SOURCE_CURVE,
        BACKGROUND_CURVE if regions.has_background else None,
        events,
        CORRECTED_CURVE,
        abscorr,
    )
    return commands


def flare_commands(
    events: str | Path, flare: FlareFilter, expression: str, grid: TimeGrid
) -> dict[str, list[str]]:
    """The flare curve and its GTI (docs/semantics.md §9, on an explicit grid).

    Parameters
    ----------
    events : str or Path
    flare : FlareFilter
        PI range, PATTERN, bin (s), rate threshold (counts/s) and comparison
        (``RATE<thr`` or ``RATE<=thr``).
    expression : str
        The flare filter's extra selection with header macros already checked
        (``#XMMEA_EP``, or ``(FLAG==0)`` when the file lacks the keyword).
    grid : TimeGrid
        The flare curve's grid (t0 = TSTART, dt = flare bin).

    Returns
    -------
    dict
        ``"evselect (flare curve)"`` and ``"tabgtigen"`` to argument lists; outputs
        :data:`FLARE_CURVE` and :data:`FLARE_GTI`.
    """
    return {
        "evselect (flare curve)": rate_curve_command(
            events, FLARE_CURVE, flare_text(flare, expression), grid
        ),
        "tabgtigen": [
            "tabgtigen",
            f"table={FLARE_CURVE}",
            f"expression={flare.rate_expression(format_number(flare.threshold))}",
            f"gtiset={FLARE_GTI}",
        ],
    }


def spectrum_command(
    events: str | Path, spectrumset: str, expression: str, specchannelmax: int = 20479
) -> list[str]:
    """evselect in spectrum mode: counts per 5 eV channel, PI 0..``specchannelmax``.

    Parameters
    ----------
    events : str or Path
    spectrumset : str
        Output spectrum.
    expression : str
        Selection.
    specchannelmax : int
        20479 for EPIC-pn (4096 channels), 11999 for MOS (2400 channels):
        :attr:`schemas.spectra.ChannelGrid.pi_max`.

    Returns
    -------
    list of str
        ``spectralbinsize=5 withspecranges=yes specchannelmin=0 specchannelmax=...``
        (the standard EPIC binning, docs/semantics.md §1).
    """
    return [
        "evselect",
        f"table={events}:EVENTS",
        "withspectrumset=yes",
        f"spectrumset={spectrumset}",
        "energycolumn=PI",
        "spectralbinsize=5",
        "withspecranges=yes",
        "specchannelmin=0",
        f"specchannelmax={specchannelmax}",
        f"expression={expression}",
    ]


def backscale_command(spectrumset: str, events: str | Path) -> list[str]:
    """backscale: writes the region's area (BACKSCAL, sky pixels²) into the spectrum."""
    return ["backscale", f"spectrumset={spectrumset}", f"badpixlocation={events}"]


def rmfgen_command(spectrumset: str, rmfset: str) -> list[str]:
    """rmfgen: the redistribution matrix for the spectrum's channels."""
    return ["rmfgen", f"spectrumset={spectrumset}", f"rmfset={rmfset}"]


def arfgen_command(spectrumset: str, arfset: str, rmfset: str, events: str | Path) -> list[str]:
    """arfgen with the RMF's energy grid, bad pixels from the event file, a PSF detector map."""
    return [
        "arfgen",
        f"spectrumset={spectrumset}",
        f"arfset={arfset}",
        "withrmfset=yes",
        f"rmfset={rmfset}",
        f"badpixlocation={events}",
        "detmaptype=psf",
    ]


#: Files of the spectrum task (inside its folder).
SPECTRUM_FILES = {"source": "src.pha", "background": "bkg.pha", "rmf": "src.rmf", "arf": "src.arf"}


def spectrum_commands(
    events: str | Path,
    regions: RegionSet,
    screening: Screening,
    specchannelmax: int,
    ccds: Sequence[int] | None = None,
    *,
    responses: bool = True,
) -> dict[str, list[str]]:
    """The commands of one exposure's spectra, in the order they run.

    evselect and backscale for the source and (with a background region) the
    background, each selected with ``<screening> && <region> && <GTI term>``
    (:func:`gti_expression`, each CCD judged by its own GTI); then, with ``responses``,
    rmfgen and arfgen for the source spectrum. Outputs are :data:`SPECTRUM_FILES`.

    Returns
    -------
    dict
        Command name (``"evselect (source spectrum)"``, ``"backscale (source)"``...,
        ``"rmfgen"``, ``"arfgen"``) to argument list.
    """
    out: dict[str, list[str]] = {}
    gti = gti_expression(ccds)
    for which in ("source", "background"):
        region = regions.sas_expression(which)
        if region is None:
            if which == "source":
                raise ConfigError(f"regions {regions.path}: no source shape to select with")
            continue
        name = SPECTRUM_FILES[which]
        expr = f"{screening_text(screening)} && {region} && {gti}"
        out[f"evselect ({which} spectrum)"] = spectrum_command(events, name, expr, specchannelmax)
        out[f"backscale ({which})"] = backscale_command(name, events)
    if responses:
        src, rmf, arf = SPECTRUM_FILES["source"], SPECTRUM_FILES["rmf"], SPECTRUM_FILES["arf"]
        out["rmfgen"] = rmfgen_command(src, rmf)
        out["arfgen"] = arfgen_command(src, arf, rmf, events)
    return out
