"""The backend plug-in registry (entry points), and the Backend base class's defaults.

Third-party backends are registered through real entry points: each test writes a
``*.dist-info`` folder (METADATA and entry_points.txt) into a temporary folder and puts
that folder on ``sys.path``, which is all ``importlib.metadata`` needs to find an
installed distribution.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import catalog
from pipeline.cli.main import main
from pipeline.extract.backends import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    available_backends,
    get_backend,
)
from pipeline.extract.backends.base import Backend
from pipeline.extract.backends.native import NativeBackend
from pipeline.extract.backends.sas import SASBackend
from pipeline.extract.jobs import BandCurves, ObservationJob, ObservationSummary
from schemas.build import SchemeOptions
from schemas.energy import Band
from schemas.errors import ConfigError
from tests.extract.backends.conformance import BackendConformance
from tests.extract.backends.observation import OBSID, write_observation
from tests.helpers.eventfiles import REGION_TEXT
from tests.helpers.toy_backend import ToyBackend

TOY = "tests.helpers.toy_backend:ToyBackend"


def write_dist(
    root: Path, name: str, entry_points: dict[str, str], group: str = ENTRY_POINT_GROUP
) -> Path:
    """An installed distribution ``name`` 0.1 with entry points in ``group``, in ``root``."""
    dist = root / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{group}]\n{lines}")
    return dist


@pytest.fixture
def toy_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy backend registered as ``toy`` by an installed distribution ``toy-backend``."""
    site = tmp_path / "site"
    write_dist(site, "toy-backend", {"toy": TOY})
    monkeypatch.syspath_prepend(str(site))
    return site


# -- discovery ------------------------------------------------------------------------------
def test_entry_point_backend_is_found(toy_installed: Path) -> None:
    registry = available_backends()
    assert list(registry)[:2] == ["native", "sas"]  # xlcat's own first
    assert registry["toy"].value == TOY and registry["toy"].group == ENTRY_POINT_GROUP
    backend = get_backend("toy")
    assert type(backend) is ToyBackend and backend.name == "toy"
    assert type(get_backend("toy", {})) is ToyBackend
    with pytest.raises(ConfigError, match="the toy backend takes no options, got colour"):
        get_backend("toy", {"colour": "red"})


def test_not_installed_is_not_found() -> None:
    assert "toy" not in available_backends()
    with pytest.raises(ConfigError) as info:
        get_backend("toy")
    assert str(info.value).startswith("backend 'toy' is unknown; choose one of native, sas ")


def test_unknown_name_lists_the_available_ones(toy_installed: Path) -> None:
    with pytest.raises(ConfigError) as info:
        get_backend("nativ")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("backend 'nativ' is unknown; choose one of native, sas, toy ")
    assert ENTRY_POINT_GROUP in text


@pytest.mark.parametrize(
    ("target", "module_text", "what"),
    [
        ("xlcat_no_such_plugin:Backend", None, "ModuleNotFoundError: No module named"),
        ("xlcat_broken_plugin:Backend", "raise RuntimeError('first line\\nsecond line')\n", ""),
        ("xlcat_bad_syntax_plugin:Backend", "def (:\n", "SyntaxError"),
        (f"{TOY.split(':')[0]}:NoSuchClass", None, "AttributeError"),
    ],
    ids=["missing-module", "raises-on-import", "syntax-error", "missing-attribute"],
)
def test_plugin_that_fails_to_load_is_a_one_line_config_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    module_text: str | None,
    what: str,
) -> None:
    site = tmp_path / "site"
    write_dist(site, "broken-backend", {"broken": target})
    if module_text is not None:
        (site / f"{target.split(':')[0]}.py").write_text(module_text)
    monkeypatch.syspath_prepend(str(site))
    assert "broken" in available_backends()  # listed: nothing is imported until it is used
    with pytest.raises(ConfigError) as info:
        get_backend("broken")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"backend 'broken': entry point {target!r} failed to load: ")
    assert what in text


@pytest.mark.parametrize("target", ["collections:OrderedDict", "os:sep", "builtins:len"])
def test_plugin_that_is_not_a_backend_is_a_one_line_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    site = tmp_path / "site"
    write_dist(site, "odd-backend", {"odd": target})
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ConfigError) as info:
        get_backend("odd")
    assert str(info.value) == (
        f"backend 'odd': entry point {target!r} is not a subclass of "
        "pipeline.extract.backends.base.Backend"
    )


@pytest.mark.parametrize("name", ["native", "sas"])
def test_third_party_cannot_replace_xlcat_backends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    site = tmp_path / "site"
    write_dist(site, "impostor", {name: TOY, "toy": TOY})
    monkeypatch.syspath_prepend(str(site))
    caplog.set_level(logging.WARNING, logger="pipeline.extract.backends")
    registry = available_backends()
    assert registry[name].value == BUILTIN_BACKENDS[name]
    assert registry["toy"].value == TOY  # the distribution's other backend is still found
    assert type(get_backend(name)) is {"native": NativeBackend, "sas": SASBackend}[name]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "pipeline.extract.backends" and r.levelno == logging.WARNING
    ]
    assert f"entry point {name} = {TOY!r} ignored: {name!r} is one of xlcat's own backends" in (
        warnings
    )


def test_xlcat_own_entry_points_are_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    """xlcat's installed entry points name the same classes: no warning about them."""
    caplog.set_level(logging.WARNING, logger="pipeline.extract.backends")
    registry = available_backends()
    assert {n: registry[n].value for n in BUILTIN_BACKENDS} == BUILTIN_BACKENDS
    assert not [r for r in caplog.records if r.name == "pipeline.extract.backends"]


# -- an end-to-end build through a plug-in ----------------------------------------------------
BUILD = """
store = "toy.zarr"
time_bin = 100.0
backend = "toy"

[[observations]]
obsid = "0123456789"
events = "obs/0123456789/pn/pn_events.fits"
regions = "obs/ds9.reg"

[schemes]
3b = { unit = "keV", edges = [2, 4, 7, 10] }
3b_native = { unit = "keV", edges = [2, 4, 7, 10], backend = "native" }
4ec = { unit = "keV", equal_counts = { reference = "0123456789", n = 4, lo = 2, hi = 10 } }

[schemes.4ec_native]
unit = "keV"
backend = "native"
equal_counts = { reference = "0123456789", n = 4, lo = 2, hi = 10 }
"""


def _build_dir(root: Path, text: str = BUILD) -> Path:
    folder = root / "obs" / OBSID / "pn"
    folder.mkdir(parents=True)
    write_observation(folder)
    (root / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (root / "build.toml").write_text(text)
    return root / "build.toml"


def test_cli_build_through_a_plugin_equals_native(
    toy_installed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = _build_dir(tmp_path)
    argv = ["build", str(build), "--workers", "1", "--threads", "--no-progress"]
    assert main(argv) == 0
    assert "built 1 groups, 0 up to date, 0 failed" in capsys.readouterr().out
    cat = catalog.open(tmp_path / "toy.zarr", attrs="python")
    idx = cat.index
    backends = idx.groupby("scheme")["backend"].agg(lambda s: sorted(set(s))).to_dict()
    assert backends == {
        "3b": ["toy"],
        "4ec": ["toy"],
        "3b_native": ["native"],
        "4ec_native": ["native"],
    }
    for toy_scheme, native_scheme in (("3b", "3b_native"), ("4ec", "4ec_native")):
        toy = cat.lightcurves(OBSID, toy_scheme)
        nat = cat.lightcurves(OBSID, native_scheme)
        assert toy.attrs["backend"] == "toy" and nat.attrs["backend"] == "native"
        assert toy.attrs["backend_info"] == {"backend": "toy"}
        assert toy.attrs["abscorr"] is False
        assert toy.attrs["gti"] == nat.attrs["gti"]
        np.testing.assert_array_equal(toy.pi_lo.values, nat.pi_lo.values)
        np.testing.assert_array_equal(toy.pi_hi.values, nat.pi_hi.values)
        np.testing.assert_array_equal(toy.time.values, nat.time.values)
        for var in ("rate", "error", "src_counts", "bkg_counts", "backv", "backe", "fracexp"):
            np.testing.assert_array_equal(toy[var].values, nat[var].values, err_msg=var)
        assert toy.sizes == {"band": 3 if toy_scheme == "3b" else 4, "time": 10}
        assert np.nansum(toy.src_counts.values) > 0
    # a re-run finds the plug-in's groups up to date
    assert main(argv) == 0
    assert "0 groups to build, 1 up to date" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("nope", "backend 'nope' is unknown; choose one of broken, native, sas, toy "),
        ("broken", "backend 'broken': entry point 'xlcat_missing_module_x:B' failed to load: "),
    ],
    ids=["unknown", "fails-to-load"],
)
def test_cli_backend_errors_are_one_line(
    toy_installed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backend: str,
    message: str,
) -> None:
    site = tmp_path / "site2"
    write_dist(site, "broken-backend", {"broken": "xlcat_missing_module_x:B"})
    monkeypatch.syspath_prepend(str(site))
    build = _build_dir(tmp_path, BUILD.replace('backend = "toy"', f'backend = "{backend}"'))
    assert main(["build", str(build), "--workers", "1", "--threads", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"xlcat: error: {message}")
    assert not (tmp_path / "toy.zarr").exists()


# -- the toy backend passes the conformance suite too ------------------------------------------
class TestToyBackend(BackendConformance):
    backend_cls = ToyBackend

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def backend_environment(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        """The toy backend registered by an installed distribution while the class runs."""
        site = tmp_path_factory.mktemp("site")
        write_dist(site, "toy-backend", {"toy": TOY})
        with pytest.MonkeyPatch.context() as mp:
            mp.syspath_prepend(str(site))
            yield


# -- the base class's defaults ----------------------------------------------------------------
class Minimal(Backend[int]):
    """Only the abstract hooks; the tests of the defaults never call summary or extract."""

    name: ClassVar[str] = "minimal"

    def prepare(self, job: ObservationJob) -> int:
        return 1

    def summary(self, prepared: int) -> ObservationSummary:
        raise AssertionError("not called by these tests")

    def extract(self, prepared: int, bands: tuple[Band, ...], options: SchemeOptions) -> BandCurves:
        raise AssertionError("not called by these tests")


BANDS = (Band(2000, 4000), Band(4000, 7000), Band(7000, 10000))


def test_base_class_defaults(tmp_path: Path) -> None:
    b = Minimal()
    assert b.check([]) == {"backend": "minimal"}
    assert b.for_store(tmp_path / "cat.zarr") is b
    assert b.for_store(str(tmp_path / "cat.zarr")) is b
    assert b.partition(BANDS) == [BANDS]
    assert b.partition(BANDS[:1]) == [BANDS[:1]]
    assert Minimal.applies_abscorr is False and b.applies_abscorr is False
    with pytest.raises(ConfigError) as info:
        b.reference_spectrum(1)
    assert str(info.value).startswith("the minimal backend makes no spectra")
    assert 'backend = "native"' in str(info.value)
    assert type(pickle.loads(pickle.dumps(b))) is Minimal


def test_base_class_takes_no_options() -> None:
    assert type(Minimal({})) is Minimal and type(Minimal(None)) is Minimal
    with pytest.raises(ConfigError) as info:
        Minimal({"zeta": 1, "alpha": 2})
    assert str(info.value) == "the minimal backend takes no options, got alpha, zeta"


def test_abstract_hooks_must_be_implemented() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Backend()  # type: ignore[abstract]

    class NoExtract(Backend[int]):
        name: ClassVar[str] = "half"

        def prepare(self, job: ObservationJob) -> int:
            return 1

        def summary(self, prepared: int) -> ObservationSummary:
            raise AssertionError("never called: the class cannot be instantiated")

    with pytest.raises(TypeError, match="extract"):
        NoExtract()  # type: ignore[abstract]


def test_backend_objects_of_xlcat_have_their_names() -> None:
    got: dict[str, Any] = {n: type(get_backend(n)) for n in BUILTIN_BACKENDS}
    assert got == {"native": NativeBackend, "sas": SASBackend}
    assert NativeBackend.applies_abscorr is False and SASBackend.applies_abscorr is True
