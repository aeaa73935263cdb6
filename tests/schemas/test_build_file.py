"""The build file: the minimal form as written, defaults and overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from schemas.build import (
    DEFAULT_FLARE,
    DefaultScreening,
    FlareFilter,
    default_screening,
    flare_defaults_for,
    parse_build,
)
from schemas.errors import ConfigError

MINIMAL = """
store = "ngc5506.zarr"
time_bin = 128.0

[[observations]]
obsid = "0201830201"
events = "0201830201/pn_filtered.fits"
regions = "0201830201/ds9.reg"

[schemes]
1a   = { unit = "keV",  edges = [2, 10] }
8ch  = { unit = "chan", lin = [400, 2000, 8] }
8lch = { unit = "keV",  log = [2, 10, 8], snap = "chan" }
12cch = { unit = "keV", equal_counts = { reference = "0201830201", n = 12, lo = 2, hi = 10 } }
"""

SECOND_OBS = """
[[observations]]
obsid = "0201830301"
events = "/data/0201830301/pn.fits"
regions = "0201830301/ds9.reg"
gti = "0201830301/user_gti.fits"
screening = { pattern_max = 0, pi = [500, 11000] }
flare = false
"""


def test_minimal_form_as_written(tmp_path):
    cfg = parse_build(MINIMAL, tmp_path / "build.toml")
    assert cfg.store == tmp_path / "ngc5506.zarr" and cfg.time_bin == 128.0
    obs = cfg.observation("0201830201")
    assert obs.events == tmp_path / "0201830201/pn_filtered.fits"
    # no screening table: the camera's default, bound once the event file is read
    assert isinstance(obs.screening, DefaultScreening) and obs.screening.instrument is None
    assert (obs.screening.pattern_max, obs.screening.pi) == (4, (200, 12000))
    assert obs.flare is None and obs.gti is None and cfg.backend == "native"
    assert cfg.schemes["1a"].pi_edges == (2000, 10000)
    assert cfg.schemes["8ch"].pi_edges == tuple(range(2000, 10001, 1000))
    assert cfg.schemes["8lch"].pi_edges == tuple(
        5 * c for c in (400, 490, 599, 732, 895, 1094, 1338, 1636, 2000)
    )
    assert cfg.schemes["12cch"].reference == "0201830201" and not cfg.schemes["12cch"].is_resolved


def test_defaults_and_per_observation_overrides(tmp_path):
    text = MINIMAL.replace("[schemes]", "[flare]\nthreshold = 0.7\n" + SECOND_OBS + "\n[schemes]")
    text = text.replace("12cch =", "#")
    cfg = parse_build(text, tmp_path / "b.toml")
    first, second = cfg.observations
    assert first.flare is not None and first.flare.threshold == 0.7
    assert (first.flare.pi, first.flare.pattern, first.flare.bin, first.flare.expression) == (
        (10000, 12000),
        0,
        100.0,
        "#XMMEA_EP",
    )
    assert second.flare is None
    assert second.screening.pattern_max == 0 and second.screening.pi == (500, 11000)
    assert second.events == Path("/data/0201830301/pn.fits")
    assert second.gti == tmp_path / "0201830301/user_gti.fits"


@pytest.mark.parametrize(("line", "comparison"), [("", "<"), ('comparison = "<="', "<=")])
def test_flare_comparison_as_tabgtigen_takes_it(tmp_path, line, comparison):
    """``RATE<thr`` stays the default (existing build files keep their meaning); ``<=`` as the
    real SAS files used (tabgtigen expression=RATE<=0.4)."""
    text = MINIMAL.replace("[schemes]", f"[flare]\nthreshold = 0.4\n{line}\n[schemes]")
    flare = parse_build(text, tmp_path / "b.toml").observations[0].flare
    assert flare is not None and flare.comparison == comparison
    assert flare.rate_expression() == f"RATE{comparison}0.4"
    assert flare.good(np.array([0.39, 0.4, 0.41])).tolist() == [True, comparison == "<=", False]


def test_presets_add_schemes(tmp_path):
    text = MINIMAL.replace("time_bin = 128.0", 'time_bin = 128.0\npresets = ["ngc5506"]')
    text = text.split("[schemes]")[0]
    cfg = parse_build(text, tmp_path / "b.toml")
    assert len(cfg.schemes) == 24 and cfg.scheme_options["8a"].abscorr is True
    assert cfg.scheme_options["8ch"].abscorr is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('"0201830201"\nevents', '"20183020"\nevents'),
            "observations[0].obsid: '20183020' is not a 10-digit XMM-Newton obsid",
        ),
        (("time_bin = 128.0", "time_bin = -1"), "time_bin: Input should be greater than 0"),
        (("time_bin = 128.0", "time_bin = 128.0\nstorage = 1"), "storage: unknown key"),
        (('regions = "0201830201/ds9.reg"', ""), "observations[0].regions: is required"),
        (
            ('reference = "0201830201"', 'reference = "0201830299"'),
            "schemes.12cch.equal_counts.reference: observation 0201830299 is not among",
        ),
        (
            ("time_bin = 128.0", 'time_bin = 128.0\npresets = ["ngc5506"]'),
            "scheme '1a' is defined twice",
        ),
        (
            ("time_bin = 128.0", "time_bin = 128.0\n[screening]\npi = [2500, 12000]"),
            "scheme '1a' spans PI [2000, 10000), outside observation 0201830201's screening",
        ),
        (("edges = [2, 10]", "edges = [10, 2]"), "scheme '1a'"),
        (("store =", "store = = "), "not valid TOML"),
        (
            ("[schemes]", '[flare]\nthreshold = 0.4\ncomparison = "=<"\n[schemes]'),
            "flare.comparison: Input should be '<' or '<='",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path, change, message):
    path = tmp_path / "bad.toml"
    with pytest.raises(ConfigError) as err:
        parse_build(MINIMAL.replace(*change), path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_camera_defaults(tmp_path):
    """docs/semantics.md §1 and §9: the default screening and flare filter of each camera."""
    pn, m1 = default_screening("PN"), default_screening("M1")
    assert (pn.pattern_max, pn.flag_zero, pn.pi, pn.expression) == (
        4,
        False,
        (200, 12000),
        "#XMMEA_EP",
    )
    assert (m1.pattern_max, m1.flag_zero, m1.expression, m1.instrument) == (
        12,
        False,
        "#XMMEA_EM",
        "M1",
    )
    assert default_screening("M2").model_dump(exclude={"instrument"}) == m1.model_dump(
        exclude={"instrument"}
    )
    # every camera screens the PI range of the unbound default, which the PI binning uses
    assert {default_screening(c).pi for c in DEFAULT_FLARE} == {DefaultScreening().pi}
    with pytest.raises(ConfigError, match="no default for camera 'RGS1'"):
        default_screening("RGS1")
    # an empty [flare] table: every key from the camera's defaults
    text = MINIMAL.replace("[schemes]", "[flare]\n\n[schemes]")
    flare = parse_build(text, tmp_path / "b.toml").observations[0].flare
    assert flare is not None and flare.model_fields_set == set()
    for camera, threshold, pi in (("PN", 0.4, (10000, 12000)), ("M2", 0.35, (10001, 32767))):
        bound, defaulted = flare_defaults_for(flare, camera)
        assert (bound.threshold, bound.pi, bound.pattern, bound.bin) == (threshold, pi, 0, 100.0)
        assert defaulted == ["bin", "expression", "pattern", "pi", "threshold"]
        assert flare_defaults_for(bound, camera) == (bound, [])  # bound once for all
    written = FlareFilter.model_validate({"threshold": 0.7, "pi": [10000, 14000]})
    bound, defaulted = flare_defaults_for(written, "M1")
    assert (bound.threshold, bound.pi, bound.expression) == (0.7, (10000, 14000), "#XMMEA_EM")
    assert defaulted == ["bin", "expression", "pattern"]


def test_screening_table_is_taken_as_written(tmp_path):
    """A build file that sets screening keeps it exactly (no camera default is mixed in)."""
    text = MINIMAL.replace("[schemes]", "[screening]\npi = [300, 11000]\n\n[schemes]")
    scr = parse_build(text, tmp_path / "b.toml").observations[0].screening
    assert type(scr).__name__ == "Screening"
    assert (scr.pattern_max, scr.flag_zero, scr.pi, scr.expression) == (4, True, (300, 11000), None)
    bad = MINIMAL.replace("[schemes]", '[screening]\ninstrument = "M1"\n\n[schemes]')
    with pytest.raises(ConfigError, match="screening.instrument: unknown key"):
        parse_build(bad, tmp_path / "b.toml")
