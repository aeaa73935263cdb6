"""One file through pipeline.fetch.http against a misbehaving local server: the bytes that
arrive, the ranges asked, and that a final name never holds a partial or bad file."""

from __future__ import annotations

import gzip
import hashlib
import time

import numpy as np
import pytest
from astropy.io import fits

from pipeline.fetch.http import download, finish, new_session, part_path
from pipeline.fetch.verify import check_product
from schemas.errors import ArchiveError
from tests.fetch.archive_server import (
    EVLI_NAME,
    ArchiveServer,
    Route,
    closed_port,
    evli_bytes,
    sha256,
)

PATH = f"/FTP/xmm/data/rev0/0001730201/PPS/{EVLI_NAME}"
EVLI = evli_bytes()


def _get(server, tmp_path, **kw):
    final = tmp_path / EVLI_NAME
    part = part_path(final)
    kw = {"timeout": 5.0, "retries": 3, "backoff": 0.0} | kw
    transfer = download(new_session(), server.url + PATH, part, **kw)
    finish(part, final, lambda p: check_product(p, final.name))
    return final, transfer


def test_plain_download_is_byte_identical(tmp_path):
    with ArchiveServer({PATH: Route(EVLI)}) as server:
        final, transfer = _get(server, tmp_path)
    assert len(EVLI) == 3_699_842
    assert sha256(final.read_bytes()) == sha256(EVLI)
    assert (transfer.size, transfer.total, transfer.attempts) == (len(EVLI), len(EVLI), 1)
    assert server.ranges(PATH) == [None]
    assert not part_path(final).exists()


def test_dropped_connection_resumes_at_the_part_size(tmp_path):
    seen: list[int] = []
    route = Route(EVLI, mode="drop", times=1, cut=1_000_000)
    with ArchiveServer({PATH: route}) as server:
        final, transfer = _get(server, tmp_path, on_bytes=lambda done, total: seen.append(done))
    assert sha256(final.read_bytes()) == sha256(EVLI)
    # the second request asks for the rest, from exactly the bytes the part held when the
    # connection dropped (whole 64 KiB reads of the 1,000,000 bytes sent: 15 x 65,536)
    held = max(d for d in seen if d <= 1_000_000)
    assert held == 983_040
    assert server.ranges(PATH) == [None, f"bytes={held}-"]
    assert transfer.resumed_from == (held,) and transfer.attempts == 2
    assert seen[-1] == len(EVLI)


def test_interrupted_run_resumes_from_an_existing_part(tmp_path):
    (tmp_path / (EVLI_NAME + ".part")).write_bytes(EVLI[:123_457])
    with ArchiveServer({PATH: Route(EVLI)}) as server:
        final, _ = _get(server, tmp_path)
    assert server.ranges(PATH) == ["bytes=123457-"]
    assert sha256(final.read_bytes()) == sha256(EVLI)


def test_complete_part_is_finished_without_a_body(tmp_path):
    (tmp_path / (EVLI_NAME + ".part")).write_bytes(EVLI)
    with ArchiveServer({PATH: Route(EVLI)}) as server:
        final, transfer = _get(server, tmp_path)
    assert server.ranges(PATH) == [f"bytes={len(EVLI)}-"]  # answered 416 bytes */size
    assert transfer.size == len(EVLI)
    assert sha256(final.read_bytes()) == sha256(EVLI)


def test_server_ignoring_range_restarts_the_part_cleanly(tmp_path):
    (tmp_path / (EVLI_NAME + ".part")).write_bytes(b"\x00" * 5000)  # not the file's bytes
    with ArchiveServer({PATH: Route(EVLI, mode="ignore_range")}) as server:
        final, transfer = _get(server, tmp_path)
    assert server.ranges(PATH) == ["bytes=5000-"]
    assert transfer.attempts == 1
    assert sha256(final.read_bytes()) == sha256(EVLI)


def test_not_found_is_one_line_naming_the_url(tmp_path):
    with ArchiveServer({}) as server:
        with pytest.raises(ArchiveError) as err:
            _get(server, tmp_path)
    msg = str(err.value)
    assert msg == f"{server.url}{PATH}: not found (HTTP 404); check the obsid and the archive"
    assert server.ranges(PATH) == [None]  # a 404 is not retried
    assert list(tmp_path.iterdir()) == []


def test_truncated_body_is_retried_then_refused_without_a_final_file(tmp_path):
    # Content-Length says the whole (rest of the) file, half of it arrives, every time
    seen: list[int] = []
    with ArchiveServer({PATH: Route(EVLI, mode="drop")}) as server:
        with pytest.raises(ArchiveError) as err:
            _get(server, tmp_path, retries=2, on_bytes=lambda done, total: seen.append(done))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{server.url}{PATH}: connection dropped after ")
    assert msg.endswith("(3 attempts); check the network and the archive, then re-run to resume")
    ranges = server.ranges(PATH)
    assert len(ranges) == 3 and ranges[0] is None
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    # each retry asks from the part's size then: the last byte count reported before it
    assert all(s in seen for s in starts) and 0 < starts[0] < starts[1] < len(EVLI)
    assert not (tmp_path / EVLI_NAME).exists()
    part = part_path(tmp_path / EVLI_NAME)
    assert part.read_bytes() == EVLI[: seen[-1]] and seen[-1] < len(EVLI)


def test_short_body_then_resume_on_the_next_run(tmp_path):
    with ArchiveServer({PATH: Route(EVLI, mode="drop", times=2)}) as server:
        with pytest.raises(ArchiveError):
            _get(server, tmp_path, retries=1)
        assert not (tmp_path / EVLI_NAME).exists()
        held = part_path(tmp_path / EVLI_NAME).stat().st_size
        final, _ = _get(server, tmp_path, retries=0)
    assert server.ranges(PATH)[-1] == f"bytes={held}-"
    assert sha256(final.read_bytes()) == sha256(EVLI)


def test_slow_answer_times_out_and_is_retried(tmp_path):
    with ArchiveServer({PATH: Route(EVLI, mode="slow", times=1, delay=1.5)}) as server:
        t0 = time.monotonic()
        final, transfer = _get(server, tmp_path, timeout=0.3)
    assert time.monotonic() - t0 < 1.4  # did not wait for the slow answer
    assert transfer.attempts == 2
    assert sha256(final.read_bytes()) == sha256(EVLI)


def test_always_slow_fails_naming_the_timeout(tmp_path):
    with ArchiveServer({PATH: Route(EVLI, mode="slow", delay=1.0)}) as server:
        with pytest.raises(ArchiveError) as err:
            _get(server, tmp_path, timeout=0.2, retries=1)
    assert str(err.value).startswith(f"{server.url}{PATH}: read timed out (2 attempts)")
    assert len(server.ranges(PATH)) == 2
    assert not (tmp_path / EVLI_NAME).exists()


def test_server_errors_are_retried(tmp_path):
    with ArchiveServer({PATH: Route(EVLI, mode="status", status=503, times=2)}) as server:
        final, transfer = _get(server, tmp_path)
    assert transfer.attempts == 3
    assert sha256(final.read_bytes()) == sha256(EVLI)


def test_unreachable_server(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}{PATH}"
    with pytest.raises(ArchiveError) as err:
        download(new_session(), url, tmp_path / "x.part", retries=1, backoff=0.0, timeout=2.0)
    assert str(err.value) == (
        f"{url}: connection refused (2 attempts); check the network and the archive, then "
        "re-run to resume"
    )
    assert list(tmp_path.iterdir()) == []


def test_garbled_gzip_is_refused_and_removed(tmp_path):
    bad = bytearray(EVLI)
    bad[2_000_000] ^= 0xFF  # one flipped byte in the deflate stream
    with ArchiveServer({PATH: Route(bytes(bad))}) as server:
        with pytest.raises(ArchiveError, match=r"gzip stream fails its check"):
            _get(server, tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither a final file nor a part to resume from


def test_fits_checksum_mismatch_is_refused(tmp_path):
    hdu = fits.BinTableHDU.from_columns([fits.Column("TIME", "D", array=np.arange(1000.0))])
    hdu.name = "EVENTS"
    src = tmp_path / "src.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(src, checksum=True)
    good = src.read_bytes()
    raw = bytearray(good)
    raw[-8] ^= 0x01  # a data byte of the table: DATASUM no longer matches
    src.unlink()
    with ArchiveServer({PATH: Route(gzip.compress(bytes(raw)))}) as server:
        with pytest.raises(ArchiveError) as err:
            _get(server, tmp_path)
    assert str(err.value) == (
        f"{EVLI_NAME}: FITS checksum fails (Checksum verification failed for HDU ('EVENTS', 1); "
        "1 of the 2 HDUs fail); the download is corrupt, re-run to fetch it again"
    )
    assert list(tmp_path.iterdir()) == []
    # the intact file passes the same checks
    with ArchiveServer({PATH: Route(gzip.compress(good))}) as server:
        final, _ = _get(server, tmp_path)
    assert hashlib.sha256(gzip.decompress(final.read_bytes())).digest() == (
        hashlib.sha256(good).digest()
    )
