"""The SAS backend's spectra, RMF and ARF: argument lists (golden), the parsing of their
outputs, and the spectra exported as PHA and read back by gammapy's OGIP reader.

SAS is not installed here: the stand-ins (tests/helpers/sas_standin_impl.py) write
plausible files (evselect really selects; backscale writes made-up BACKSCAL values,
rmfgen a diagonal RMF, arfgen a flat 100 cm^2 ARF). Their numbers are not SAS's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from catalog.export import write_ogip_pha
from catalog.layout import exposure_dataset, spectrum_view
from pipeline.extract.backends.native import NativeBackend
from pipeline.extract.backends.sas import SASBackend
from pipeline.extract.jobs import ObservationJob
from pipeline.extract.sas import commands as cmd
from pipeline.extract.sas.outputs import read_sas_spectrum
from pipeline.select.regions import parse_regions
from schemas.build import Screening
from schemas.errors import InputFileError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    edge_events,
    random_events,
    write_event_file,
)
from tests.helpers.sas_standin_impl import STANDIN_BACKSCAL, STANDIN_EXPOSURE
from tests.helpers.sas_standins import install

EVT = "/data/0201830201/pn_filtered.fits"
SCREEN = "(PATTERN<=4)&&(FLAG==0)&&(PI in [200:12000])"
CCD_GTIS = {4: [(T0, T0 + 400), (T0 + 430, T0 + 1000)], 5: [(T0, T0 + 600), (T0 + 650, T0 + 1000)]}


@pytest.fixture
def standins(tmp_path, monkeypatch):
    return install(tmp_path, monkeypatch)


def test_spectrum_commands_golden():
    regions = parse_regions(
        "physical\ncircle(25000,26000,800)\ncircle(25000,20000,1000) # background\n", "r.reg"
    )
    got = cmd.spectrum_commands(EVT, regions, Screening(), 11999, [1, 2])
    gti = "((CCDNR==1&&gti(gti.fits:GTICCD01,TIME))||(CCDNR==2&&gti(gti.fits:GTICCD02,TIME)))"
    spec = ["withspectrumset=yes"]
    ranges = ["energycolumn=PI", "spectralbinsize=5", "withspecranges=yes", "specchannelmin=0",
              "specchannelmax=11999"]  # fmt: skip
    assert got == {
        "evselect (source spectrum)": [
            "evselect", f"table={EVT}:EVENTS", *spec, "spectrumset=src.pha", *ranges,
            f"expression={SCREEN} && ((X,Y) IN circle(25000,26000,800)) && {gti}",
        ],
        "backscale (source)": ["backscale", "spectrumset=src.pha", f"badpixlocation={EVT}"],
        "evselect (background spectrum)": [
            "evselect", f"table={EVT}:EVENTS", *spec, "spectrumset=bkg.pha", *ranges,
            f"expression={SCREEN} && ((X,Y) IN circle(25000,20000,1000)) && {gti}",
        ],
        "backscale (background)": ["backscale", "spectrumset=bkg.pha", f"badpixlocation={EVT}"],
        "rmfgen": ["rmfgen", "spectrumset=src.pha", "rmfset=src.rmf"],
        "arfgen": [
            "arfgen", "spectrumset=src.pha", "arfset=src.arf", "withrmfset=yes",
            "rmfset=src.rmf", f"badpixlocation={EVT}", "detmaptype=psf",
        ],
    }  # fmt: skip
    # source only: no background commands
    only = parse_regions("physical\ncircle(25000,26000,800)\n", "r.reg")
    names = list(cmd.spectrum_commands(EVT, only, Screening(), 20479))
    assert names == ["evselect (source spectrum)", "backscale (source)", "rmfgen", "arfgen"]


def _pha(path: Path, counts, channels=None, **header) -> Path:
    chan = np.arange(len(counts)) if channels is None else np.asarray(channels)
    hdu = fits.BinTableHDU.from_columns(
        [fits.Column("CHANNEL", "J", array=chan), fits.Column("COUNTS", "J", array=counts)],
        name="SPECTRUM",
    )
    for k, v in header.items():
        hdu.header[k] = v
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def test_read_sas_spectrum(tmp_path):
    counts = np.arange(2400) % 7
    p = _pha(tmp_path / "a.pha", counts, EXPOSURE=1234.5, BACKSCAL=5.5e4, AREASCAL=1.0)
    got, facts = read_sas_spectrum(p, 2400)
    np.testing.assert_array_equal(got, counts)
    assert facts == {"EXPOSURE": 1234.5, "BACKSCAL": 5.5e4, "AREASCAL": 1.0, "rows_outside": 0}
    # rows outside the channel range are counted, not stored
    p = _pha(tmp_path / "b.pha", [3, 4, 5], channels=[0, 1, 4096], EXPOSURE=1.0, BACKSCAL=2.0)
    got, facts = read_sas_spectrum(p, 4096)
    assert got[:2].tolist() == [3, 4] and got.sum() == 7 and facts["rows_outside"] == 1
    # backscale did not run: one line naming the file and the keyword
    p = _pha(tmp_path / "c.pha", [1, 2], EXPOSURE=1.0)
    with pytest.raises(InputFileError, match=r"c\.pha: keyword BACKSCAL missing"):
        read_sas_spectrum(p, 2)


@pytest.fixture
def obs(tmp_path) -> ObservationJob:
    d = tmp_path / "obs"
    d.mkdir()
    ev = EventSet.concat([edge_events(), random_events(3000, seed=3)])
    events = write_event_file(d / "pn_filtered.fits", ev, FileSpec(ccd_gtis=CCD_GTIS))
    (d / "ccf.cif").write_text("stand-in calibration index")
    return ObservationJob(
        obsid="0123456789",
        events=events,
        regions=parse_regions(REGION_TEXT, "t.reg"),
        gti_file=None,
        screening=Screening(),
        flare=None,
        time_bin=100.0,
    )


def test_sas_spectra_responses_and_pha_through_gammapy(standins, obs, tmp_path):
    from gammapy.datasets import SpectrumDatasetOnOff

    store = tmp_path / "cat.zarr"
    store.mkdir()
    b = SASBackend({}).for_store(store)
    prepared = b.prepare(obs)
    part = b.spectrum(prepared)
    native = NativeBackend().spectrum(NativeBackend().prepare(obs))
    assert part is not None and native is not None
    # the stand-in evselect selects as SAS would: the same events per channel as the native
    # pass (channels inside the screening; channel 2400 holds PI 12000, which the native
    # light-curve columns end at)
    np.testing.assert_array_equal(part.src[:2400], native.src[:2400])
    assert part.bkg is not None and native.bkg is not None
    np.testing.assert_array_equal(part.bkg[:2400], native.bkg[:2400])
    a = part.attrs
    assert (a["exposure"], a["src_backscal"], a["bkg_backscal"]) == (
        STANDIN_EXPOSURE, STANDIN_BACKSCAL["src.pha"], STANDIN_BACKSCAL["bkg.pha"]
    )  # fmt: skip
    rel = "responses/0123456789/PN/0123456789_PN"
    assert a["responses"] == {"rmf": f"{rel}.rmf", "arf": f"{rel}.arf"}
    assert (store / f"{rel}.rmf").is_file() and (store / f"{rel}.arf").is_file()
    ran = [c["argv"][0] for c in standins.calls() if c["argv"][0] != "sasversion"]
    assert ran[-6:] == ["evselect", "backscale", "evselect", "backscale", "rmfgen", "arfgen"]
    # stored, read back, exported: gammapy's OGIP reader follows BACKFILE, RESPFILE, ANCRFILE
    attrs = {"obsid": "0123456789", "expid": "PN", "instrument": "PN", "dt": 100.0,
             "tstart": T0, "tstop": T0 + 1000, "MJDREF": 50814.0, "TIMESYS": "TT",
             "TIMEREF": "LOCAL", "inputs": {}, "fingerprint_hash": "f", "regions": {},
             "backends": {}}  # fmt: skip
    ds = exposure_dataset(prepared.summary.time, [], attrs, part)
    spec = spectrum_view(ds, "test")
    paths = write_ogip_pha(spec, tmp_path / "out", store=store)
    assert sorted(p.name for p in paths.values()) == [
        "0123456789_PN.arf", "0123456789_PN.rmf", "0123456789_PN_bkg.pha",
        "0123456789_PN_src.pha",
    ]  # fmt: skip
    d = SpectrumDatasetOnOff.read(paths["src"])
    np.testing.assert_array_equal(d.counts.data.ravel(), part.src)
    np.testing.assert_array_equal(d.counts_off.data.ravel(), part.bkg)
    np.testing.assert_allclose(d.acceptance.data.ravel(), STANDIN_BACKSCAL["src.pha"])
    np.testing.assert_allclose(d.acceptance_off.data.ravel(), STANDIN_BACKSCAL["bkg.pha"])
    assert d.exposure.meta["livetime"].to_value("s") == STANDIN_EXPOSURE
    # exposure map = ARF (100 cm^2) x EXPOSURE
    np.testing.assert_allclose(d.exposure.quantity.to_value("cm2 s")[5], 100.0 * STANDIN_EXPOSURE)
    with fits.open(paths["src"]) as h:
        hdr = h["SPECTRUM"].header
        assert (hdr["BACKFILE"], hdr["RESPFILE"], hdr["ANCRFILE"]) == (
            "0123456789_PN_bkg.pha", "0123456789_PN.rmf", "0123456789_PN.arf"
        )  # fmt: skip
