"""Golden tests of the exact SAS argument lists (bands, regions, grids, flare, epiclccorr).

No SAS runs here: the lists are compared with literal expected lists written out by hand
from docs/semantics.md §2, §3, §9, §10 and §11.1.
"""

from __future__ import annotations

import pytest

from pipeline.extract.binning import TimeGrid
from pipeline.extract.sas import commands as cmd
from pipeline.select.regions import parse_regions
from pipeline.select.shapes import format_number
from schemas.build import FlareFilter, Screening
from schemas.energy import Band
from schemas.schemes import scheme_from_spec

EVT = "/data/0201830201/pn_filtered.fits"
SCREEN = "(PATTERN<=4)&&(FLAG==0)&&(PI in [200:12000])"

REGIONS = {
    "circle": (
        "physical\ncircle(25000,26000,800)\ncircle(25000,20000,1000) # background\n",
        "((X,Y) IN circle(25000,26000,800))",
        "((X,Y) IN circle(25000,20000,1000))",
    ),
    "annulus": (
        "physical\nannulus(25000,26000,60,800)\nannulus(25000,26000,1200,2000) # background\n",
        "((X,Y) IN annulus(25000,26000,60,800))",
        "((X,Y) IN annulus(25000,26000,1200,2000))",
    ),
    "several background shapes": (
        "physical\ncircle(1000.5,1000,100)\ncircle(3000,1000,200) # background\n"
        "box(1000,3000,300,200,0) # background\nellipse(5000,5000,300,200,30) # background\n",
        "((X,Y) IN circle(1000.5,1000,100))",
        "((X,Y) IN circle(3000,1000,200) || (X,Y) IN box(1000,3000,150,100,0) || "
        "(X,Y) IN ellipse(5000,5000,300,200,30))",
    ),
}


def _grid_args(t0: str, t1: str, dt: str) -> list[str]:
    return [f"timebinsize={dt}", "withtimeranges=yes", f"timemin={t0}", f"timemax={t1}"]


@pytest.mark.parametrize("kind", sorted(REGIONS))
@pytest.mark.parametrize(
    ("band", "pi_text"),
    [
        (Band(2000, 4000), "[2000:4000)"),  # 2-4 keV
        (Band(1100, 1200), "[1100:1200)"),  # 1.1 keV -> PI 1100, never 1100.0000000000002
        (Band(2000, 2005), "[2000:2005)"),  # one 5 eV channel, chan 400
    ],
)
def test_band_commands_golden(kind, band, pi_text):
    text, src, bkg = REGIONS[kind]
    regions = parse_regions(text, "r.reg")
    grid = TimeGrid(t0=300000000.0, dt=128.0, n_bins=117)
    got = cmd.band_commands(EVT, regions, Screening(), grid, band, abscorr=True)
    head = ["evselect", f"table={EVT}:EVENTS", "withrateset=yes"]
    tail = [
        "maketimecolumn=yes",
        "makeratecolumn=yes",
        *_grid_args("300000000", "300014976", "128"),
        "energycolumn=PI",
    ]
    gti = "gti(gti.fits,TIME)"
    assert got == {
        "evselect (source)": [
            *head,
            "rateset=lc__s.fits",
            *tail,
            f"expression=(PI in {pi_text}) && {SCREEN} && {src} && {gti}",
        ],
        "evselect (background)": [
            *head,
            "rateset=lc__b.fits",
            *tail,
            f"expression=(PI in {pi_text}) && {SCREEN} && {bkg} && {gti}",
        ],
        "epiclccorr": [
            "epiclccorr",
            "srctslist=lc__s.fits",
            f"eventlist={EVT}",
            "outset=lc.fits",
            "withbkgset=yes",
            "bkgtslist=lc__b.fits",
            "applyabsolutecorrections=yes",
        ],
    }


def test_keV_and_channel_edges_give_the_pi_of_the_conventions():
    kev = scheme_from_spec("k", {"unit": "keV", "edges": [1.1, 2, 10]})
    chan = scheme_from_spec("c", {"unit": "chan", "edges": [400, 2000]})
    regions = parse_regions(REGIONS["circle"][0], "r.reg")
    grid = TimeGrid(3e8, 100.0, 10)
    exprs = [
        cmd.band_commands(EVT, regions, Screening(), grid, b, False)["evselect (source)"][-1]
        for b in (*kev.bands, *chan.bands)
    ]
    assert [e.split(" && ")[0] for e in exprs] == [
        "expression=(PI in [1100:2000))",
        "expression=(PI in [2000:10000))",
        "expression=(PI in [2000:10000))",
    ]


@pytest.mark.parametrize(
    ("t0", "dt", "n", "expected"),
    [
        (300000000.0, 128.0, 117, ("300000000", "300014976", "128")),
        (123456789.125, 100.0, 3, ("123456789.125", "123457089.125", "100")),
        (250000000.5, 0.5, 4, ("250000000.5", "250000002.5", "0.5")),
        (3e8, 2.5, 1, ("300000000", "300000002.5", "2.5")),
    ],
)
def test_grid_arguments(t0, dt, n, expected):
    argv = cmd.rate_curve_command("e.fits", "o.fits", "X", TimeGrid(t0, dt, n))
    assert argv[6:10] == _grid_args(expected[0], expected[1], expected[2])
    # the text reads back as exactly the grid's numbers
    assert float(expected[0]) == t0 and float(expected[1]) == t0 + n * dt


def test_grid_of_an_exposure_is_the_native_one():
    grid = TimeGrid.for_exposure(300000000.0, 300014900.0, 128.0)
    argv = cmd.rate_curve_command("e.fits", "o.fits", "X", grid)
    assert grid.n_bins == 117  # ceil(14900 / 128)
    assert argv[8:10] == ["timemin=300000000", "timemax=300014976"]


def test_abscorr_no_and_screening_expression():
    regions = parse_regions(REGIONS["circle"][0], "r.reg")
    s = Screening(pattern_max=0, flag_zero=False, pi=(500, 10000), expression="#XMMEA_EP")
    got = cmd.band_commands(EVT, regions, s, TimeGrid(3e8, 100.0, 2), Band(500, 1000), False)
    assert got["epiclccorr"][-1] == "applyabsolutecorrections=no"
    assert got["evselect (source)"][-1] == (
        "expression=(PI in [500:1000)) && (PATTERN<=0)&&(PI in [500:10000])&&(#XMMEA_EP) && "
        "((X,Y) IN circle(25000,26000,800)) && gti(gti.fits,TIME)"
    )


def test_each_ccd_selected_with_its_own_gti():
    """One GTI extension per CCD, each CCD's events judged by it (docs/semantics.md §4)."""
    assert cmd.gti_expression(None) == "gti(gti.fits,TIME)"
    assert cmd.gti_expression([4]) == "((CCDNR==4&&gti(gti.fits:GTICCD04,TIME)))"
    regions = parse_regions(REGIONS["circle"][0], "r.reg")
    got = cmd.band_commands(
        EVT, regions, Screening(), TimeGrid(3e8, 100.0, 2), Band(500, 1000), False, ccds=[1, 12]
    )
    assert got["evselect (background)"][-1] == (
        f"expression=(PI in [500:1000)) && {SCREEN} && ((X,Y) IN circle(25000,20000,1000)) && "
        "((CCDNR==1&&gti(gti.fits:GTICCD01,TIME))||(CCDNR==12&&gti(gti.fits:GTICCD12,TIME)))"
    )


@pytest.mark.parametrize(("comparison", "text"), [("<", "RATE<0.4"), ("<=", "RATE<=0.4")])
def test_flare_comparison_reaches_tabgtigen(comparison, text):
    f = FlareFilter(threshold=0.4, comparison=comparison)
    grid = TimeGrid.for_exposure(3e8, 3e8 + 1050.0, f.bin)
    assert cmd.flare_commands(EVT, f, "#XMMEA_EP", grid)["tabgtigen"][2] == f"expression={text}"


def test_flare_commands_golden():
    f = FlareFilter(threshold=0.7)
    grid = TimeGrid.for_exposure(3e8, 3e8 + 1050.0, f.bin)
    got = cmd.flare_commands(EVT, f, "#XMMEA_EP", grid)
    assert got == {
        "evselect (flare curve)": [
            "evselect",
            f"table={EVT}:EVENTS",
            "withrateset=yes",
            "rateset=flare_rate.fits",
            "maketimecolumn=yes",
            "makeratecolumn=yes",
            *_grid_args("300000000", "300001100", "100"),
            "energycolumn=PI",
            "expression=(PI in [10000:12000])&&(PATTERN==0)&&(#XMMEA_EP)",
        ],
        "tabgtigen": [
            "tabgtigen",
            "table=flare_rate.fits",
            "expression=RATE<0.7",
            "gtiset=flare_gti.fits",
        ],
    }


def test_spectrum_command_golden():
    assert cmd.spectrum_command(EVT, "src.pha", "E") == [
        "evselect",
        f"table={EVT}:EVENTS",
        "withspectrumset=yes",
        "spectrumset=src.pha",
        "energycolumn=PI",
        "spectralbinsize=5",
        "withspecranges=yes",
        "specchannelmin=0",
        "specchannelmax=20479",
        "expression=E",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(128.0, "128"), (128, "128"), (0.7, "0.7"), (300000000.5, "300000000.5"), (1e-3, "0.001")],
)
def test_number_text_reads_back_exactly(value, text):
    assert format_number(value) == text
    assert float(text) == value
