"""fetch_observations against a local stand-in of each archive: the files that land in
<folder>/<obsid>/pps, what a re-run asks again, and the one-line failures."""

from __future__ import annotations

import pytest

from pipeline.fetch import Product, fetch_observations
from pipeline.fetch.archives import parse_listing, xsa_url
from schemas.errors import ArchiveError, ConfigError
from tests.fetch.archive_server import (
    EVLI_NAME,
    FBKTSR_NAME,
    OBSID,
    ArchiveServer,
    Route,
    evli_bytes,
    fbktsr_bytes,
    listing_html,
    sha256,
    tar_of,
)

EVLI, FBKTSR = evli_bytes(), fbktsr_bytes()
FOLDER = f"/FTP/xmm/data/rev0/{OBSID}/PPS/"
#: What a HEASARC PPS folder lists besides the two products (other cameras' other products).
OTHERS = [
    f"P{OBSID}M1S002IMAGE_8000.FTZ",
    f"P{OBSID}PNS003PIEVLI0000.FTZ.md5",
    f"P{OBSID}M2S003MIEVLI0000.FTZ",
    f"P{OBSID}OBX000SUMMAR0000.HTM",
]


def _heasarc_routes() -> dict[str, Route]:
    names = sorted([EVLI_NAME, FBKTSR_NAME, *OTHERS])
    return {
        FOLDER: Route(listing_html(FOLDER, names), content_type="text/html"),
        FOLDER + EVLI_NAME: Route(EVLI),
        FOLDER + FBKTSR_NAME: Route(FBKTSR),
    }


def _run(server, tmp_path, archive="heasarc", **kw):
    base = server.url + ("/FTP/xmm/data/rev0" if archive == "heasarc" else "/nxsa-sl/aio")
    kw = {"cameras": ["mos1"], "backoff": 0.0, "timeout": 5.0} | kw
    return fetch_observations([OBSID], tmp_path / "data", archive=archive, base=base, **kw)


def test_listing_keeps_the_folder_files_only():
    html = listing_html(FOLDER, ["a.FTZ", "b c.FTZ"]).decode()
    url = "http://h" + FOLDER
    assert parse_listing(html, url) == {"a.FTZ": url + "a.FTZ", "b c.FTZ": url + "b%20c.FTZ"}


def test_heasarc_fetches_the_products_then_skips_them(tmp_path):
    with ArchiveServer(_heasarc_routes()) as server:
        report = _run(server, tmp_path, jobs=2)
        pps = tmp_path / "data" / OBSID / "pps"
        assert sorted(p.name for p in pps.iterdir()) == sorted([EVLI_NAME, FBKTSR_NAME])
        assert sha256((pps / EVLI_NAME).read_bytes()) == sha256(EVLI)
        assert sha256((pps / FBKTSR_NAME).read_bytes()) == sha256(FBKTSR)
        assert (report.downloaded, report.bytes) == (2, len(EVLI) + len(FBKTSR))
        assert [f.product.name for f in report.files] == ["FBKTSR", "MIEVLI"]
        first = list(server.requests)
        again = _run(server, tmp_path)
    assert sorted(p for p, _ in first) == sorted([FOLDER, FOLDER + EVLI_NAME, FOLDER + FBKTSR_NAME])
    # the re-run reads the listing only: both files are complete under their names
    assert server.requests[len(first) :] == [(FOLDER, None)]
    assert again.downloaded == 0 and len(again.files) == 2


def test_heasarc_without_the_camera_names_it(tmp_path):
    with ArchiveServer(_heasarc_routes()) as server:
        with pytest.raises(ArchiveError) as err:
            _run(server, tmp_path, cameras=["mos1", "pn"])
    assert str(err.value) == (
        f"obsid {OBSID}: {server.url}{FOLDER} lists no PIEVLI file of pn "
        f"(P{OBSID}PN...PIEVLI...FTZ); drop --instrument pn if the camera did not observe"
    )
    assert not (tmp_path / "data" / OBSID / "pps" / EVLI_NAME).exists()


def test_heasarc_unknown_obsid(tmp_path):
    with ArchiveServer({}) as server:
        with pytest.raises(ArchiveError, match=rf"^obsid {OBSID}: .* not found \(HTTP 404\)"):
            _run(server, tmp_path)


def test_a_failed_file_leaves_no_final_name_and_the_next_run_resumes(tmp_path):
    routes = _heasarc_routes()
    routes[FOLDER + EVLI_NAME] = Route(EVLI, mode="drop", times=2)
    with ArchiveServer(routes) as server:
        with pytest.raises(ArchiveError, match="connection dropped after"):
            _run(server, tmp_path, retries=1, jobs=1)
        pps = tmp_path / "data" / OBSID / "pps"
        # the event list failed; the flare series, queued behind it, was stopped unstarted
        assert sorted(p.name for p in pps.iterdir()) == [EVLI_NAME + ".part"]
        held = (pps / (EVLI_NAME + ".part")).stat().st_size
        assert 0 < held < len(EVLI)
        report = _run(server, tmp_path, retries=0)
    assert server.ranges(FOLDER + EVLI_NAME)[-1] == f"bytes={held}-"
    assert sha256((pps / EVLI_NAME).read_bytes()) == sha256(EVLI)
    assert report.downloaded == 2
    assert not list(pps.glob("*.part"))


def _xsa_routes() -> dict[str, Route]:
    base = "/nxsa-sl/aio"
    evli = xsa_url(base, Product(OBSID, "mos1", "MIEVLI"))
    fbk = xsa_url(base, Product(OBSID, "mos1", "FBKTSR"))
    return {
        # one matching file: the file itself, named by Content-Disposition
        evli: Route(EVLI, filename=EVLI_NAME, content_type="application/octet-stream"),
        # the AIO's tar answer (members <obsid>/pps/<file>)
        fbk: Route(
            tar_of({f"{OBSID}/pps/{FBKTSR_NAME}": FBKTSR}),
            filename=f"{OBSID}.tar",
            content_type="application/x-tar",
        ),
    }


def test_xsa_single_file_and_tar_answers(tmp_path):
    with ArchiveServer(_xsa_routes()) as server:
        report = _run(server, tmp_path, archive="xsa")
        pps = tmp_path / "data" / OBSID / "pps"
        visible = sorted(p.name for p in pps.iterdir() if not p.name.startswith("."))
        assert visible == sorted([EVLI_NAME, FBKTSR_NAME])
        assert sha256((pps / EVLI_NAME).read_bytes()) == sha256(EVLI)
        assert sha256((pps / FBKTSR_NAME).read_bytes()) == sha256(FBKTSR)
        assert report.downloaded == 2
        n = len(server.requests)
        again = _run(server, tmp_path, archive="xsa")
    assert sorted(p for p, _ in server.requests) == sorted(_xsa_routes())
    assert "obsno=0001730201&level=PPS&instname=M1&name=MIEVLI&extension=FTZ" in (
        server.requests[0][0] + server.requests[1][0]
    )
    assert len(server.requests) == n  # the re-run asks nothing: the answers are remembered
    assert again.downloaded == 0 and len(again.files) == 2


def test_xsa_text_answer_is_the_archive_message(tmp_path):
    routes = _xsa_routes()
    evli = next(iter(routes))
    routes[evli] = Route(b"No data found for this request\n", content_type="text/plain")
    with ArchiveServer(routes) as server:
        with pytest.raises(ArchiveError) as err:
            _run(server, tmp_path, archive="xsa", flare_series=False)
    assert str(err.value) == (
        f"{server.url}{evli}: the archive answered with text, not a file: "
        "'No data found for this request'"
    )


def test_xsa_answer_of_another_product_is_refused(tmp_path):
    routes = _xsa_routes()
    evli = next(iter(routes))
    routes[evli] = Route(EVLI, filename=FBKTSR_NAME)
    with ArchiveServer(routes) as server:
        with pytest.raises(ArchiveError, match=f"the archive sent {FBKTSR_NAME}, not a MIEVLI"):
            _run(server, tmp_path, archive="xsa", flare_series=False)
    assert not list((tmp_path / "data" / OBSID / "pps").iterdir())


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"obsids": ["173020"]}, "obsid '173020': give the 10-digit XMM-Newton obsid"),
        ({"cameras": ["rgs1"]}, "--instrument rgs1: use one of pn, mos1, mos2"),
        ({"archive": "ftp"}, "--archive ftp: use one of xsa, heasarc"),
        ({"base": "ftp://x"}, "--base-url 'ftp://x': give an http:// or https:// URL"),
    ],
)
def test_bad_arguments(tmp_path, kw, message):
    args = {"obsids": [OBSID], "cameras": ["pn"], "archive": "xsa"} | kw
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        fetch_observations(args.pop("obsids"), tmp_path, **args)
    assert not list(tmp_path.iterdir())
