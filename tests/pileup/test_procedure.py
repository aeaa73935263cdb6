"""The pile-up check and the annulus growth on simulated piled-up and unpiled sources, and on
the real pn file (faint: clean).

The simulated sources are soft (N_H = 1e21 cm^-2, many 0.5-2 keV counts), 2 ks, no flares or
gaps, seed 12; the piled-up one is 40 cts/s read out frame by frame with pile-up
(pipeline.simulate.detector.pile_up), the unpiled one the same source without pile-up.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pipeline.pileup.procedure import PileupOptions, check_build, check_exposure, is_piled
from pipeline.simulate import simulate_observation
from schemas.build import load_build
from schemas.errors import ConfigError
from tests.helpers.realfiles import MOS1_CLEAN, PN, PN_ELLIPSE, mos1_circles

BUILD = """
store = "s.zarr"
time_bin = 100.0

[[observations]]
obsid = "{obsid}"
events = "{events}"
regions = "{regions}"

[schemes]
hard = {{ unit = "keV", edges = [2, 10] }}
"""


def _simulated(d: Path, pileup: bool) -> Path:
    simulate_observation(
        d,
        "0000000001",
        exposure=2000.0,
        source_rate=40.0,
        mjd=55000.25,
        seed=12,
        flares=False,
        ccd_gaps=False,
        pileup=pileup,
        nh_22=0.1,
    )
    build = d / "b.toml"
    build.write_text(
        BUILD.format(
            obsid="0000000001",
            events="0000000001/pn_events.fits",
            regions="0000000001/ds9.reg",
        )
    )
    return build


@pytest.fixture(scope="module")
def piled(tmp_path_factory):
    return load_build(_simulated(tmp_path_factory.mktemp("piled"), True))


@pytest.fixture(scope="module")
def unpiled(tmp_path_factory):
    return load_build(_simulated(tmp_path_factory.mktemp("unpiled"), False))


def test_piled_source_grows_to_a_clean_annulus(piled):
    (check,) = check_build(piled, PileupOptions(method="native"))
    radii = [s.r_in_arcsec for s in check.steps]
    # no excision, then 3", then 0.5" steps until clean: 6.5"
    assert radii == [0.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5]
    assert [s.r_in for s in check.steps] == [20 * r for r in radii]  # physical: 20 px per arcsec
    assert check.status == "clean" and check.chosen is check.steps[-1]
    assert check.message == 'clean with the core excised: annulus r_in = 6.5"'
    first, last = check.steps[0], check.steps[-1]
    # flagged at r_in = 0 by SAS's rule: singles below 1, doubles above 1
    assert first.s.value == pytest.approx(0.96584, abs=5e-5)  # 22,026 singles, 22,805 expected
    assert first.s.error == pytest.approx(0.00617, abs=5e-5)
    assert first.d.value == pytest.approx(1.04956, abs=5e-5)
    assert first.d.error == pytest.approx(0.02080, abs=5e-5)
    assert (first.s.observed, round(first.s.expected, 2)) == (22026.0, 22805.08)
    assert first.s.deviation() < -3 and first.piled_sas and not first.piled_reference
    assert all(s.piled_sas for s in check.steps[:-1])
    # the ratios move towards 1 as the core goes
    s_values = [s.s.value for s in check.steps]
    assert s_values == sorted(s_values)
    assert last.s.value == pytest.approx(0.98311, abs=5e-5)
    assert last.s.error == pytest.approx(0.00592, abs=5e-5)  # -2.85 sigma: clean
    assert last.d.value == pytest.approx(1.02443, abs=5e-5)
    assert last.s.deviation() > -3 and last.d.deviation() < 3 and not last.piled_sas
    assert first.n_band == 31_456 and last.n_band == 23_414
    assert check.r_ref == 400.0  # reference annulus 20"-40"


def test_unpiled_source_is_clean_without_excision(unpiled):
    (check,) = check_build(unpiled, PileupOptions(method="native"))
    (step,) = check.steps
    assert check.status == "clean" and step.r_in == 0
    assert abs(step.s.deviation()) < 3 and abs(step.d.deviation()) < 3
    assert step.s.value == pytest.approx(0.99403, abs=5e-5)
    assert step.s.error == pytest.approx(0.00648, abs=5e-5)
    assert step.d.value == pytest.approx(1.00940, abs=5e-5)
    assert step.n_band == 50_600  # no events lost to pile-up (31,456 with it)


def test_reference_workflow_rule_is_the_inverse(piled):
    """The study's test (s > 1 + 3 sigma or d < 1 - 3 sigma) never flags a piled-up source."""
    sas = check_build(piled, PileupOptions(method="native"))[0]
    compat = check_build(piled, PileupOptions(method="native", rule="reference-workflow"))[0]
    (step,) = compat.steps
    assert compat.status == "clean" and step.r_in == 0
    assert step.s == sas.steps[0].s and step.d == sas.steps[0].d
    assert step.piled_sas and not step.piled_reference
    for s, d in ((0.95, 1.0), (1.0, 1.05), (1.05, 1.0), (1.0, 0.95), (1.0, 1.0)):
        from pipeline.pileup.fractions import Ratio

        rs, rd = Ratio(s, 0.01, math.nan, math.nan), Ratio(d, 0.01, math.nan, math.nan)
        mirrored = Ratio(2 - s, 0.01, math.nan, math.nan), Ratio(2 - d, 0.01, math.nan, math.nan)
        assert is_piled(rs, rd, "sas") == is_piled(*mirrored, "reference-workflow")
    assert is_piled(Ratio(0.95, 0.01, 0, 0), Ratio(1, 0.01, 0, 0), "sas")
    assert not is_piled(Ratio(0.95, 0.01, 0, 0), Ratio(1, 0.01, 0, 0), "reference-workflow")
    assert is_piled(Ratio(1, 0.01, 0, 0), Ratio(0.95, 0.01, 0, 0), "reference-workflow")
    assert not is_piled(Ratio(0.98, 0.01, 0, 0), Ratio(1.02, 0.01, 0, 0), "sas")  # 2 sigma


def test_stops_at_the_reference_annulus(piled):
    (check,) = check_build(piled, PileupOptions(method="native", reference_arcsec=4.0))
    assert [s.r_in_arcsec for s in check.steps] == [0.0, 3.0, 3.5]
    assert check.status == "piled-up" and check.chosen is None
    assert check.message.startswith('still piled up at r_in = 3.5" (stopped: the next inner ')
    assert 'radius 4" reaches the reference annulus (4"-40")' in check.message


def test_too_few_reference_counts(piled):
    (check,) = check_build(piled, PileupOptions(method="native", min_counts=20_000))
    assert check.status == "too-few-counts" and len(check.steps) == 1
    assert check.message.startswith('the reference annulus (20"-40") holds 7276 events in 0.5-2')
    assert "fewer than 20000" in check.message


def test_options_are_checked(piled, tmp_path):
    with pytest.raises(ConfigError, match="--reference-radius 50: not inside the source circle"):
        check_build(piled, PileupOptions(reference_arcsec=50.0))
    with pytest.raises(ConfigError, match="--obsid 0000000002: not in build file"):
        check_build(piled, PileupOptions(), ["0000000002"])
    with pytest.raises(ConfigError, match="--rule 'study'"):
        PileupOptions(rule="study")  # type: ignore[arg-type]


def _real_build(d: Path, events: Path, region: str) -> Path:
    (d / "src.reg").write_text(region)
    build = d / "b.toml"
    build.write_text(BUILD.format(obsid="0201160101", events=events, regions="src.reg"))
    return build


def test_real_pn_file_is_clean(tmp_path):
    """The real pn list (a 0.84 cts/s pulsar, PATTERN 0-4 kept): clean without excision.

    The circle is the source ellipse's inscribed circle (10", at its centre).
    """
    x, y, _, b, _ = PN_ELLIPSE
    build = _real_build(tmp_path, PN, f"physical\ncircle({x},{y},{b})\n")
    (check,) = check_build(load_build(build), PileupOptions(method="native"))
    (step,) = check.steps
    assert check.status == "clean" and check.expid == "PNS003" and check.instrument == "PN"
    assert step.n_band == 10_837 and check.reference is not None
    assert int(check.reference.total[1:7].sum()) == 5_322  # 5"-10", 0.5-2 keV
    assert abs(step.s.deviation()) < 3 and abs(step.d.deviation()) < 3
    assert step.s.value == pytest.approx(1.00995, abs=5e-5)  # +1.5 sigma
    assert step.s.error == pytest.approx(0.00658, abs=5e-5)
    assert step.d.value == pytest.approx(0.97790, abs=5e-5)  # -1.6 sigma
    assert step.d.error == pytest.approx(0.01414, abs=5e-5)
    # the file holds PATTERN 0-4 only: singles + doubles are every valid event
    counts = step.counts
    assert np.array_equal(counts.singles + counts.doubles, counts.total)


def test_real_mos1_fk5_region(tmp_path):
    """A celestial source circle: radii from the file's WCS (20 px per arcsec), clean."""
    from astropy.wcs.utils import pixel_to_skycoord

    from pipeline.read.wcs import read_sky_wcs

    x, y, r = mos1_circles()["source"]
    sky = pixel_to_skycoord(x, y, read_sky_wcs(MOS1_CLEAN).wcs, origin=1)
    region = f'fk5\ncircle({sky.ra.deg:.10f},{sky.dec.deg:.10f},{r / 20}")\n'
    build = _real_build(tmp_path, MOS1_CLEAN, region)
    config = load_build(build)
    check = check_exposure(config.observations[0], PileupOptions(method="native", min_counts=50))
    assert check.circle.system == "fk5" and check.expid == "M1S001"
    assert check.circle.px_per_arcsec == pytest.approx(20.0, rel=1e-6)
    assert check.circle.r_out == pytest.approx(r, rel=1e-6)
    assert check.status == "clean" and len(check.steps) == 1


def test_fk5_annulus_written_in_arcsec_reads_back_in_pixels(tmp_path):
    """--write on a celestial circle: r_in in arcsec, the same pixels through the WCS."""
    from astropy.wcs.utils import pixel_to_skycoord

    from pipeline.pileup.regionfile import write_annulus
    from pipeline.read.wcs import read_sky_wcs
    from pipeline.select.regions import read_regions
    from pipeline.select.shapes import Annulus

    x, y, r = mos1_circles()["source"]
    sky = read_sky_wcs(MOS1_CLEAN)
    centre = pixel_to_skycoord(x, y, sky.wcs, origin=1)
    reg = tmp_path / "src.reg"
    reg.write_text(f'fk5\ncircle({centre.ra.deg:.10f},{centre.dec.deg:.10f},{r / 20}")\n')
    write_annulus(reg, 4.5, "test")
    assert f'annulus({centre.ra.deg:.10f},{centre.dec.deg:.10f},4.5",{r / 20}")' in reg.read_text()
    (annulus,) = read_regions(reg).resolve(sky.wcs).physical("source")
    assert isinstance(annulus, Annulus)
    assert (annulus.x, annulus.y) == pytest.approx((x, y), abs=1e-5)  # 10-digit degrees
    assert annulus.r_in == pytest.approx(90.0, rel=1e-6) and annulus.r_out == pytest.approx(r)
