"""The real SAS event lists read as they are: headers, per-CCD GTIs, exposure steps, gzip.

Files and provenance: tests/data/real/README.md.
"""

from __future__ import annotations

import gzip
import shutil
import tracemalloc

import numpy as np
import pytest
from astropy.io import fits

from catalog import gti as gtilib
from pipeline.read.events import iter_event_chunks, iter_exposure_steps, read_event_info
from pipeline.read.fitsio import decompressed, is_gzip
from schemas.errors import InputFileError
from tests.helpers.eventfiles import FileSpec, random_events, write_event_file
from tests.helpers.realfiles import MOS1_CLEAN, MOS1_RAW, PN

COLUMNS = ["TIME", "X", "Y", "PI", "PATTERN", "FLAG", "CCDNR"]


def test_filtered_mos1_list_keeps_one_filter_gti_per_ccd():
    info = read_event_info(MOS1_CLEAN)
    assert not info.compressed and info.instrume == "EMOS1" and info.warnings == ()
    assert sorted(info.ccd_gtis) == list(range(1, 8))
    for ccd in range(1, 8):
        filt, tables = info.time_filter(ccd)
        assert tables == [f"GTI{ccd - 1:03d}04"] and filt is not None
        # ONTIMEnn is that of the filter GTI, not of STDGTInn (which is the unfiltered one)
        assert info.ontime[ccd] == pytest.approx(gtilib.total(filt), abs=1e-6)
        assert gtilib.total(info.ccd_gtis[ccd]) > info.ontime[ccd] + 4000
        assert gtilib.total(gtilib.intersect(filt, info.ccd_gtis[ccd])) == pytest.approx(
            gtilib.total(filt), abs=1e-6
        )
    assert len(info.time_filter(1)[0]) == 11
    assert info.live_fraction[1] == pytest.approx(11807.1423120499 / 11950.6420090646)
    exp = info.exposures[1]
    assert (exp.extname, exp.n_rows, exp.timedel_column) == ("EXPOSU01", 4596, True)
    assert (exp.timesys, exp.timeref) == ("TT", "LOCAL")


def test_exposure_steps_are_centred_frames():
    info = read_event_info(MOS1_CLEAN)
    parts = list(iter_exposure_steps(MOS1_CLEAN, info.exposures[1], chunk_rows=1000))
    assert len(parts) == 5
    centre, start, stop, frac = (np.concatenate(p) for p in zip(*parts, strict=True))
    assert len(centre) == 4596
    np.testing.assert_allclose(0.5 * (start + stop), centre, rtol=0, atol=1e-6)
    # the first step: TIMEDEL 2.6422253, FRACEXP 0.9937177 (epiclccorr's second 2.604 s bin)
    assert stop[0] - start[0] == pytest.approx(2.6422253, abs=1e-6)
    assert frac[0] == pytest.approx(0.9937177, abs=1e-7)
    assert frac.min() == pytest.approx(0.94393945) and frac.max() == pytest.approx(0.9979581)


def test_pn_list_headers_as_written():
    """12 STDGTInn, only EXPOSU10 (TIMEDEL a keyword), TDB barycentred events, TT exposure."""
    info = read_event_info(PN)
    assert info.compressed and info.instrume == "EPN" and info.obs_id == "0201160101"
    assert sorted(info.ccd_gtis) == list(range(1, 13))
    assert [len(info.ccd_gtis[c]) for c in (1, 7, 10)] == [9, 12, 15]
    assert (info.timesys, info.timeref) == ("TDB", "SOLARSYSTEM")
    assert list(info.exposures) == [10]
    exp = info.exposures[10]
    assert (exp.n_rows, exp.timedel_column, exp.timedel) == (530185, False, 0.0687022)
    assert (exp.timesys, exp.timeref) == ("TT", "LOCAL")
    assert info.frmtime == pytest.approx(0.073)
    assert info.macro("XMMEA_EP") == "(FLAG & 0xfa0000) == 0"
    assert info.live_fraction[10] == pytest.approx(3.51674138895150e4 / 3.88970285591781e4)
    # the time filter of CCD 10's subspace component is STDGTI10 itself
    filt, tables = info.time_filter(10)
    assert tables == ["STDGTI10"]
    np.testing.assert_array_equal(filt, info.ccd_gtis[10])
    # barycentring moved TIME and the GTIs but not TSTART: 444 events lie before TSTART
    times = np.concatenate([c["TIME"] for c in iter_event_chunks(PN, ["TIME"], 10_000)])
    assert len(times) == 33712 and int((times < info.tstart).sum()) == 444
    assert info.ccd_gtis[10][0, 0] < info.tstart


def test_exposu_without_timedel_column_uses_the_keyword():
    info = read_event_info(PN)
    centre, start, stop, _ = next(iter_exposure_steps(PN, info.exposures[10], chunk_rows=10))
    # (differences of times near 1.9e8 s carry about 3e-8 s of rounding)
    np.testing.assert_allclose(stop - start, 0.0687022, rtol=0, atol=1e-7)
    np.testing.assert_allclose(centre - start, 0.0343511, rtol=0, atol=1e-7)


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path):
    assert is_gzip(MOS1_RAW) and is_gzip(PN) and not is_gzip(MOS1_CLEAN)
    renamed = tmp_path / "events.fits"
    shutil.copy(MOS1_RAW, renamed)
    info = read_event_info(renamed)
    assert info.compressed and info.n_rows == 134685
    assert sum(len(c["TIME"]) for c in iter_event_chunks(renamed, ["TIME"], 50_000)) == 134685


def test_decompressed_copy_is_removed_afterwards(tmp_path):
    with decompressed(MOS1_RAW) as plain:
        assert plain != MOS1_RAW and plain.stat().st_size == 5722560
        folder = plain.parent
        with fits.open(plain) as hdul:
            assert hdul["EVENTS"].header["NAXIS2"] == 134685
    assert not folder.exists()
    with decompressed(MOS1_CLEAN) as same:
        assert same == MOS1_CLEAN
    # also after an error inside the block
    with pytest.raises(RuntimeError), decompressed(PN) as plain:
        folder = plain.parent
        raise RuntimeError
    assert not folder.exists()


def test_broken_gzip_is_one_clear_error(tmp_path):
    bad = tmp_path / "broken.FTZ"
    bad.write_bytes(MOS1_RAW.read_bytes()[:100_000])
    with pytest.raises(InputFileError, match=r"broken.FTZ: is not a valid gzip file") as err:
        with decompressed(bad):
            pass
    assert "\n" not in str(err.value)


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reading_a_compressed_list_keeps_memory_bounded(tmp_path):
    """Streaming the FTZ (5.7 MB uncompressed) in 10k-row chunks peaks near 2.4 MB, against
    9.5 MB for astropy's own reading of the compressed table; a 400k-row gzip list (9.6 MB of
    events) peaks no higher: the peak does not grow with the file."""

    def stream(path) -> None:
        n = sum(len(c["TIME"]) for c in iter_event_chunks(path, COLUMNS, 10_000))
        assert n > 0

    def astropy_whole() -> None:
        with fits.open(MOS1_RAW) as hdul:
            assert len(hdul["EVENTS"].data["TIME"]) == 134685

    small = _peak(lambda: stream(MOS1_RAW))
    assert small < 3_000_000
    assert _peak(astropy_whole) > 3 * small
    plain = write_event_file(
        tmp_path / "big.fits", random_events(400_000, seed=2), FileSpec(ccd_gtis={4: [(0, 1)]})
    )
    big = tmp_path / "big.fits.gz"
    with open(plain, "rb") as src, gzip.open(big, "wb", compresslevel=1) as dst:
        shutil.copyfileobj(src, dst)
    assert _peak(lambda: stream(big)) < 3_000_000
    assert _peak(lambda: read_event_info(big)) < 3_000_000
