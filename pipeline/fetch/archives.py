"""Where the XMM-Newton pipeline products are: the XSA's AIO interface and HEASARC's tree.

The products a light curve needs, per EPIC camera (XMM-Newton Data Files Handbook, PPS
product names ``P<obsid><camera><S|U|X><nnn><product><nnnn>.FTZ``):

- the calibrated event list, ``PIEVLI`` (pn) or ``MIEVLI`` (MOS), one per exposure;
- the flare background time series, ``FBKTSR`` (the pipeline's >10 keV rate curve).

**XSA.** The XMM-Newton Science Archive's "AIO" URL interface (the one
``astroquery.esa.xmm_newton.XMMNewton.download_data`` uses) returns the files matching its
parameters: ``<base>?obsno=<obsid>&level=PPS&instname=<PN|M1|M2>&name=<product>&extension=FTZ``.
One matching file comes back as itself, several as a tar archive (members
``<obsid>/pps/<file>``); the file name is the ``Content-Disposition``'s. A ``text/*`` answer is
the archive's message (no such data, proprietary), not a product.

**HEASARC.** The mirror's HTTPS tree ``<base>/<obsid>/PPS/`` lists the files as an HTML
index; the products are picked from it by name.

The base URLs default to the archives' and are overridden by ``--base-url`` or the
environment (:data:`BASE_URL_ENV`), e.g. to point at a local server.
"""

from __future__ import annotations

import os
import re
import tarfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from schemas.errors import ArchiveError, ConfigError

__all__ = [
    "ARCHIVES",
    "DEFAULT_BASE_URL",
    "BASE_URL_ENV",
    "CAMERAS",
    "FLARE_SERIES",
    "Product",
    "PPS_FILE",
    "base_url",
    "products",
    "xsa_url",
    "heasarc_folder",
    "parse_listing",
    "pick_files",
    "tar_products",
]

#: Archives ``xlcat fetch`` knows.
ARCHIVES: tuple[str, ...] = ("xsa", "heasarc")
#: Their default base URLs.
DEFAULT_BASE_URL: dict[str, str] = {
    "xsa": "https://nxsa.esac.esa.int/nxsa-sl/servlet/data-action-aio",
    "heasarc": "https://heasarc.gsfc.nasa.gov/FTP/xmm/data/rev0",
}
#: Environment variables overriding them.
BASE_URL_ENV: dict[str, str] = {"xsa": "XLCAT_XSA_URL", "heasarc": "XLCAT_HEASARC_URL"}
#: Camera (command-line name) -> (PPS instrument code, event-list product).
CAMERAS: dict[str, tuple[str, str]] = {
    "pn": ("PN", "PIEVLI"),
    "mos1": ("M1", "MIEVLI"),
    "mos2": ("M2", "MIEVLI"),
}
#: The flare background time series product.
FLARE_SERIES = "FBKTSR"
#: A PPS product file name.
PPS_FILE = re.compile(
    r"^P(?P<obsid>\d{10})(?P<inst>PN|M1|M2)(?P<exp>[SUX]\d{3})(?P<name>[A-Z0-9]{6})"
    r"(?P<rest>\w*)\.FTZ$",
    re.IGNORECASE,
)
_OBSID = re.compile(r"^\d{10}$")


@dataclass(frozen=True)
class Product:
    """One product of one camera of one observation.

    Attributes
    ----------
    obsid : str
        The 10-digit obsid.
    camera : str
        ``pn``, ``mos1`` or ``mos2``.
    name : str
        The PPS product (``PIEVLI``, ``MIEVLI``, ``FBKTSR``).
    """

    obsid: str
    camera: str
    name: str

    @property
    def inst(self) -> str:
        """The PPS instrument code (``PN``, ``M1``, ``M2``)."""
        return CAMERAS[self.camera][0]

    @property
    def label(self) -> str:
        """``<obsid> <camera> <product>``, for messages."""
        return f"{self.obsid} {self.camera} {self.name}"

    def matches(self, filename: str) -> bool:
        """True when ``filename`` is a PPS file of this product."""
        m = PPS_FILE.match(filename)
        return bool(
            m
            and m.group("obsid") == self.obsid
            and m.group("inst").upper() == self.inst
            and m.group("name").upper() == self.name
        )


def base_url(archive: str, given: str | None = None) -> str:
    """The archive's base URL: ``given``, else its environment variable, else the default.

    Raises
    ------
    ConfigError
        Unknown archive, or a base URL that is not http(s).
    """
    if archive not in ARCHIVES:
        raise ConfigError(f"--archive {archive}: use one of {', '.join(ARCHIVES)}")
    url = given or os.environ.get(BASE_URL_ENV[archive]) or DEFAULT_BASE_URL[archive]
    if urlsplit(url).scheme not in ("http", "https"):
        source = "--base-url" if given else BASE_URL_ENV[archive]
        raise ConfigError(f"{source} {url!r}: give an http:// or https:// URL")
    return url


def products(obsids: list[str], cameras: list[str], *, flare_series: bool = True) -> list[Product]:
    """The products to fetch, per obsid and camera.

    Raises
    ------
    ConfigError
        An obsid is not 10 digits, or a camera is unknown.
    """
    for obsid in obsids:
        if not _OBSID.match(obsid):
            raise ConfigError(
                f"obsid {obsid!r}: give the 10-digit XMM-Newton obsid, e.g. 0001730201"
            )
    for camera in cameras:
        if camera not in CAMERAS:
            raise ConfigError(f"--instrument {camera}: use one of {', '.join(CAMERAS)}")
    out = []
    for obsid in dict.fromkeys(obsids):
        for camera in dict.fromkeys(cameras):
            out.append(Product(obsid, camera, CAMERAS[camera][1]))
            if flare_series:
                out.append(Product(obsid, camera, FLARE_SERIES))
    return out


def xsa_url(base: str, product: Product) -> str:
    """The AIO request for one product's files (all exposures of the camera)."""
    query = urlencode(
        {
            "obsno": product.obsid,
            "level": "PPS",
            "instname": product.inst,
            "name": product.name,
            "extension": "FTZ",
        }
    )
    return f"{base.rstrip('?&')}{'&' if '?' in base else '?'}{query}"


def heasarc_folder(base: str, obsid: str) -> str:
    """The HEASARC folder of an observation's pipeline products (ends with ``/``)."""
    return f"{base.rstrip('/')}/{obsid}/PPS/"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag.lower() == "a":
            self.hrefs += [v for k, v in attrs if k.lower() == "href" and v]


def parse_listing(html: str, folder_url: str) -> dict[str, str]:
    """File name -> URL of the files a directory index links to, inside ``folder_url``."""
    parser = _Links()
    parser.feed(html)
    files: dict[str, str] = {}
    for href in parser.hrefs:
        url = urljoin(folder_url, href)
        path = urlsplit(url).path
        if not url.startswith(folder_url) or path.endswith("/"):
            continue  # sorting links, the parent folder, sub-folders
        name = unquote(path.rsplit("/", 1)[-1])
        if name and "?" not in href:
            files.setdefault(name, url)
    return files


def pick_files(listing: dict[str, str], product: Product, folder_url: str) -> dict[str, str]:
    """The listing's files of one product (all its exposures).

    Raises
    ------
    ArchiveError
        The folder lists none.
    """
    found = {name: url for name, url in sorted(listing.items()) if product.matches(name)}
    if not found:
        hint = (
            f"drop --instrument {product.camera} if the camera did not observe"
            if product.name != FLARE_SERIES
            else "add --no-flare-series to fetch the event lists without it"
        )
        raise ArchiveError(
            f"obsid {product.obsid}: {folder_url} lists no {product.name} file of "
            f"{product.camera} (P{product.obsid}{product.inst}...{product.name}...FTZ); {hint}"
        )
    return found


def tar_products(tar_path: Path, product: Product) -> list[tarfile.TarInfo]:
    """The members of an AIO tar archive that are files of ``product``.

    Raises
    ------
    ArchiveError
        The file is not a tar archive, or holds none of the product's files.
    """
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            members = [
                m for m in tar.getmembers() if m.isfile() and product.matches(Path(m.name).name)
            ]
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(
            f"{product.label}: the archive's answer is neither a product nor a readable tar "
            f"archive ({' '.join(str(exc).split())})"
        ) from None
    if not members:
        raise ArchiveError(f"{product.label}: the archive's tar holds no {product.name} file")
    return members
