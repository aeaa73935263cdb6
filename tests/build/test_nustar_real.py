"""The real NuSTAR FPMA list (tests/data/real/nustar_90410111001_fpma): it reads and builds
with a physical region; a sky (fk5) region is refused in one line naming the file and the
malformed keyword (TCRVL13 = '0.0'). No hk file comes with it: the live time is the header's
LIVETIME/ONTIME."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from catalog.query import Catalog
from pipeline.cli.main import main
from schemas.errors import InputFileError
from tests.helpers.realfiles import NUSTAR_EVENTS

BUILD = """store = "real.zarr"
time_bin = 10.0
[[observations]]
obsid = "90410111001"
events = "{events}"
regions = "{regions}"
[schemes]
nu = {{ unit = "keV", edges = [2, 3, 10], instruments = ["FPMA"] }}
"""


def _write(tmp_path: Path, region: str) -> Path:
    (tmp_path / "src.reg").write_text(region)
    build = tmp_path / "real.toml"
    build.write_text(BUILD.format(events=NUSTAR_EVENTS, regions=tmp_path / "src.reg"))
    return build


def test_physical_region_builds(tmp_path, capsys):
    region = "physical\ncircle(1150,1600,100)\ncircle(1500,1200,100) # background\n"
    build = _write(tmp_path, region)
    argv = ["build", str(build), "--threads", "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert "built 1 groups, 0 up to date, 0 failed" in capsys.readouterr().out
    ds = Catalog(tmp_path / "real.zarr", attrs="python").lightcurves("90410111001", "nu")
    assert ds.attrs["expid"] == "FPMA06" and ds.pi_lo.values.tolist() == [10, 35]
    assert ds.e_lo.values.tolist() == [2.0, 3.0] and ds.e_hi.values.tolist() == [3.0, 10.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        data = fits.getdata(NUSTAR_EVENTS, "EVENTS")
    x, y, pi = data["X"].astype(float), data["Y"].astype(float), data["PI"]
    src = (x - 1150) ** 2 + (y - 1600) ** 2 <= 100**2
    for band, (lo, hi) in enumerate([(10, 35), (35, 210)]):
        assert float(ds.src_counts.values[band].sum()) == np.sum(src & (pi >= lo) & (pi < hi))
    assert float(ds.src_counts.values.sum()) > 100
    # 101 s of GTI with a live fraction LIVETIME/ONTIME = 0.6934: 70.03 s of exposure
    assert float(ds.fracexp.values[0].sum() * 10.0) == pytest.approx(70.0321908915824, rel=1e-9)
    assert ds.attrs["provenance"]["fracexp_method"]["0"].startswith(
        "GTI overlap x LIVETIME/ONTIME = 0.693388029 (no housekeeping (hk) file given)"
    )


def test_fk5_region_is_refused_in_one_line(tmp_path, capsys):
    build = _write(tmp_path, 'fk5\ncircle(185.1188,-2.226,60")\n')
    assert main(["build", str(build), "--threads", "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        f"xlcat: error: events file {NUSTAR_EVENTS} EVENTS header: keyword "
        "TCRVL13 = '0.0' is not a number"
    )


def test_reader_refuses_a_missing_hk_table(tmp_path):
    from pipeline.read.events import read_event_info

    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="TIME", format="D", array=np.zeros(2))], name="HK1FPM"
            ),
        ]
    ).writeto(tmp_path / "nu90410111001A_fpm.hk")
    with pytest.raises(InputFileError) as err:
        read_event_info(NUSTAR_EVENTS, hk=tmp_path / "nu90410111001A_fpm.hk")
    assert str(err.value) == (
        f"housekeeping file {tmp_path / 'nu90410111001A_fpm.hk'}: no table with TIME and "
        f"LIVETIME columns; give the module's nu<obsid><A|B>_fpm.hk file for events file "
        f"{NUSTAR_EVENTS}"
    )
