"""Issue 10 cases 1-5: bad event files refused at plan time with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tests.bad_inputs.conftest import BUILD, Workspace
from tests.helpers.eventfiles import T0, random_events


@pytest.mark.parametrize("extension", ["EVENTS", "STDGTI05"])
def test_a_truncated_event_file_is_refused(ws: Workspace, extension: str) -> None:
    with fits.open(ws.events) as hdul:
        cut = hdul[extension].fileinfo()["datLoc"] + 10
    ws.events.write_bytes(ws.events.read_bytes()[:cut])
    ws.build_refused(f"events file {ws.events}: truncated: extension {extension} needs")


@pytest.mark.parametrize("key", ["MJDREF", "LIVETI04", "ONTIME04", "FRMTIME", "TSTART", "TSTOP"])
def test_a_non_numeric_header_keyword_is_refused(ws: Workspace, key: str) -> None:
    header: dict[str, object] = {key: "abc"}
    ws.write_events(header=header)
    ws.build_refused(f"events file {ws.events} EVENTS header", f"{key}='abc' is not a finite")


def test_an_infinite_tstop_is_refused(ws: Workspace) -> None:
    ws.write_events(header={"TSTOP": "inf"})
    ws.build_refused("TSTOP='inf' is not a finite number")


def _replace_column(path: Path, name: str, fmt: str, values: object) -> None:
    """Rewrite the event list with EVENTS column ``name`` in another format."""
    with fits.open(path) as hdul:
        events = hdul["EVENTS"]
        cols = [fits.Column(name, fmt, array=values)]
        cols += [c for c in events.columns if c.name != name]
        new = fits.BinTableHDU.from_columns(cols, header=events.header)
        rest = [h.copy() for h in hdul[2:]]
        fits.HDUList([hdul[0].copy(), new, *rest]).writeto(path, overwrite=True)


@pytest.mark.parametrize("column", ["time", "x", "y"])
def test_non_finite_time_x_y_are_counted_and_refused(ws: Workspace, column: str) -> None:
    ev = random_events(300, seed=3)
    values = np.sort(ev.time) if column == "time" else getattr(ev, column).astype(np.float64)
    values[[3, 50, 70]] = [np.nan, np.inf, -np.inf]
    _replace_column(ws.events, column.upper(), "D", values)
    ws.build_refused(
        f"events file {ws.events} EVENTS: of 300 rows, 3 a non-finite {column.upper()}"
    )


def test_a_nan_gti_bound_is_refused(ws: Workspace) -> None:
    ws.write_events(ccd_gtis={4: [(T0, T0 + 400), (T0 + 500, np.nan)], 5: [(T0, T0 + 1000)]})
    ws.build_refused(f"events file {ws.events} STDGTI04: 1 of 2 intervals have a non-finite")


def test_a_nan_bound_in_a_user_gti_file_is_refused(ws: Workspace) -> None:
    gti = ws.root / "obs" / "gti.fits"
    fits.BinTableHDU.from_columns(
        [
            fits.Column("START", "D", array=[T0, np.nan]),
            fits.Column("STOP", "D", array=[T0 + 9, T0 + 99]),
        ],
        name="GTI",
    ).writeto(gti)
    ws.write_build(
        BUILD.format(extra="").replace(
            'regions = "obs/ds9.reg"', 'regions = "obs/ds9.reg"\ngti = "obs/gti.fits"'
        )
    )
    ws.build_refused(f"GTI file {gti} extension GTI: 1 of 2 intervals have a non-finite")


def test_too_many_bins_per_curve_are_refused(ws: Workspace) -> None:
    ws.write_events(header={"TSTOP": T0 + 1e13})
    ws.build_refused(
        "time_bin = 200 s over the 1e+13 s of events file", "5e+10 bins per light curve"
    )
    ws.write_events()
    ws.write_build(BUILD.format(extra="").replace("time_bin = 200.0", "time_bin = 1e-6"))
    ws.build_refused("time_bin = 1e-06 s over the 1000 s", "1e+09 bins")


@pytest.mark.parametrize("value", ["inf", "nan", '"128"', "0", "-1"])
def test_time_bin_must_be_a_finite_positive_number(ws: Workspace, value: str) -> None:
    ws.write_build(BUILD.format(extra="").replace("time_bin = 200.0", f"time_bin = {value}"))
    ws.build_refused(f"build file {ws.build_file}: time_bin")


def test_time_as_text_is_refused_by_its_column_format(ws: Workspace) -> None:
    ws.write_events()
    with fits.open(ws.events) as hdul:
        cols = hdul["EVENTS"].columns
        text = fits.Column("TIME", "20A", array=[f"{t:.6f}" for t in hdul["EVENTS"].data["TIME"]])
        new = fits.BinTableHDU.from_columns(
            [text] + [c for c in cols if c.name != "TIME"], header=hdul["EVENTS"].header
        )
        fits.HDUList([hdul[0].copy(), new] + [h.copy() for h in hdul[2:]]).writeto(
            ws.events, overwrite=True
        )
    ws.build_refused(f"events file {ws.events} EVENTS: column TIME has format '20A', not a number")


def test_pi_all_outside_the_screening_is_refused(ws: Workspace) -> None:
    ev = random_events(300, seed=3)
    ev.pi = (ev.pi.astype(np.int32) // 1000 + 15000).astype(np.int16)  # keV*1000 slipped
    ws.write_events(ev)
    ws.build_refused("column PI spans 15", "outside the screening's PI range 200-12000")


def test_ccdnr_not_a_ccd_of_the_camera_is_refused(ws: Workspace) -> None:
    ev = random_events(300, seed=3)
    ev.ccd[:] = 200
    ws.write_events(ev)
    ws.build_refused("column CCDNR holds 200, not a CCD of PN (1-12)")


@pytest.mark.parametrize("kept", [0.3, 0.9])
def test_a_truncated_gzip_event_file_is_refused(ws: Workspace, kept: float) -> None:
    import gzip

    packed = gzip.compress(ws.events.read_bytes())
    events = ws.events.with_name("ev.fits.gz")
    events.write_bytes(packed[: int(len(packed) * kept)])
    ws.write_build(BUILD.format(extra="").replace("obs/ev.fits", "obs/ev.fits.gz"))
    ws.build_refused(f"events file {events}", "is not a valid gzip file")
