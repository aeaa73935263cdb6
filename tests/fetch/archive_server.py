"""A local stand-in archive: an HTTP server on 127.0.0.1 that serves fixture bytes and
misbehaves on purpose (dropped connections, short bodies, slow answers, ignored ranges,
error statuses), recording every request's path and ``Range`` header."""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import socket
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

from tests.helpers.realfiles import MOS1_RATE, MOS1_RAW

OBSID = "0001730201"
#: The archive (PPS) names of the two MOS1 products the fixtures stand for.
EVLI_NAME = f"P{OBSID}M1S002MIEVLI0000.FTZ"
FBKTSR_NAME = f"P{OBSID}M1S002FBKTSR0000.FTZ"


def evli_bytes() -> bytes:
    """The real MOS1 PPS event list (tests/data/real), 3,699,842 bytes, as the archive has it."""
    return MOS1_RAW.read_bytes()


def fbktsr_bytes() -> bytes:
    """A flare time series stand-in: the real MOS1 >10 keV rate curve (M1_rate.fits), gzipped
    (the PPS FBKTSR is the same kind of curve, and .FTZ files are gzip streams)."""
    return gzip.compress(MOS1_RATE.read_bytes(), compresslevel=6, mtime=0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listing_html(folder: str, names: list[str]) -> bytes:
    """An Apache-style directory index of ``names``."""
    rows = "\n".join(
        f'<tr><td><a href="{quote(n)}">{html.escape(n)}</a></td><td>2019-01-01</td></tr>'
        for n in names
    )
    return (
        f"<html><head><title>Index of {folder}</title></head><body><h1>Index of {folder}</h1>"
        '<table><tr><th><a href="?C=N;O=D">Name</a></th></tr>'
        f'<tr><td><a href="../">Parent Directory</a></td></tr>\n{rows}</table></body></html>'
    ).encode()


def tar_of(members: dict[str, bytes]) -> bytes:
    """A tar archive of ``members`` (name -> bytes), like the XSA's AIO answers."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class Route:
    """What the server answers at one path (with its query string).

    ``mode``: ``ok``; ``drop`` (send the headers of the full answer, then only ``cut`` bytes
    (default half) of the body and close); ``slow`` (wait ``delay`` s before answering);
    ``ignore_range`` (always 200 with the whole body); ``status`` (answer ``status`` with a
    short text). The misbehaviour lasts for the first ``times`` requests, then ``ok``.
    """

    body: bytes
    mode: str = "ok"
    times: int = 1_000_000
    cut: int | None = None
    delay: float = 0.0
    status: int = 200
    content_type: str = "application/octet-stream"
    filename: str | None = None
    served: int = 0


@dataclass
class ArchiveServer:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def ranges(self, path: str) -> list[str | None]:
        """The Range header of every request of ``path``, in order."""
        return [r for p, r in self.requests if p == path]

    def __enter__(self) -> ArchiveServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                route = server.routes.get(self.path)
                if route is None:
                    self._plain(404, b"Not Found")
                    return
                route.served += 1
                mode = route.mode if route.served <= route.times else "ok"
                if mode == "status":
                    self._plain(route.status, b"archive says no")
                    return
                if mode == "slow":
                    time.sleep(route.delay)
                body, start = route.body, 0
                asked = self.headers.get("Range")
                if asked and mode != "ignore_range":
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                if route.filename:
                    self.send_header(
                        "Content-Disposition", f'attachment; filename="{route.filename}"'
                    )
                self.end_headers()
                part = body[start:]
                if mode == "drop":
                    cut = route.cut if route.cut is not None else len(part) // 2
                    self.wfile.write(part[:cut])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(part)

            def _plain(self, code: int, text: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that gave up (timeout) breaks the pipe: expected here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.httpd is not None
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
