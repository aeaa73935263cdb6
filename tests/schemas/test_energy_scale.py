"""PI scales per instrument: NuSTAR's E = 1.6 + 0.04 PI keV (docs/semantics.md §20)."""

from __future__ import annotations

import pytest

from schemas.energy import NUSTAR_SCALE, XMM_SCALE, energy_scale, scale_from_record
from schemas.errors import ConfigError
from schemas.schemes import instrument_scheme, scheme_from_spec


def test_two_kev_is_channel_ten_not_nine():
    """The reference workflow's int(floor((2.0 - 1.6) / 0.04)) gives 9; the edge is 10."""
    assert int((2.0 - 1.6) / 0.04) == 9  # the float-floor pitfall itself
    assert NUSTAR_SCALE.pi_edges((2000, 10000), "s") == ((10, 210), [])
    # the other energies the floor puts one channel low, and the ends of the range
    edges, notes = NUSTAR_SCALE.pi_edges((1600, 3000, 4800, 19000, 22000, 79000), "s")
    assert edges == (0, 35, 80, 435, 510, 1935) and notes == []


def test_every_grid_energy_on_a_channel_boundary_maps_exactly():
    """All 0.1 keV-grid energies from 1.6 to 79 keV that are channel boundaries (every 0.2 keV)
    map to (E - 1.6) / 0.04 exactly, with no note."""
    grid = [e for e in range(1600, 79001, 100) if (e - 1600) % 40 == 0]
    assert len(grid) == 388
    edges, notes = NUSTAR_SCALE.pi_edges(tuple(grid), "s")
    assert list(edges) == [(e - 1600) // 40 for e in grid] and notes == []
    assert [NUSTAR_SCALE.kev(p) for p in edges] == [e / 1000 for e in grid]


def test_an_edge_between_boundaries_goes_to_the_nearest_and_is_noted():
    # 6.9 keV is channel 132.5: a tie goes up (133, the boundary at 6.92 keV)
    assert NUSTAR_SCALE.pi_edges((3000, 6900), "s")[0] == (35, 133)
    assert NUSTAR_SCALE.pi_edges((3000, 6919), "s")[0] == (35, 133)
    assert NUSTAR_SCALE.pi_edges((3000, 6899), "s")[0] == (35, 132)
    _, notes = NUSTAR_SCALE.pi_edges((3000, 6900), "scheme 'x' on FPMA")
    assert notes == [
        "scheme 'x' on FPMA: edge 6.9 keV is not a NuSTAR channel boundary; used the nearest, "
        "6.92 keV (PI 133)"
    ]


def test_edges_nustar_cannot_take_are_refused_in_one_line():
    with pytest.raises(ConfigError) as err:
        NUSTAR_SCALE.pi_edges((500, 2000), "scheme 'soft' on FPMB")
    assert str(err.value) == (
        "scheme 'soft' on FPMB: edge 0.5 keV is below NuSTAR's lowest energy 1.6 keV (PI 0); "
        "start the scheme at or above it, or limit the scheme to other instruments with "
        "instruments = [...]"
    )
    with pytest.raises(ConfigError, match=r"edge 80 keV is above NuSTAR's upper limit 79 keV"):
        NUSTAR_SCALE.pi_edges((3000, 80000), "s")
    with pytest.raises(ConfigError, match=r"narrower than one 40 eV NuSTAR channel"):
        NUSTAR_SCALE.pi_edges((3000, 3010), "s")


def test_epic_is_the_identity_and_the_default():
    assert XMM_SCALE.pi_edges((500, 2000, 10000), "s") == ((500, 2000, 10000), [])
    assert energy_scale("PN") is XMM_SCALE and energy_scale("M2") is XMM_SCALE
    assert energy_scale("FPMA") is NUSTAR_SCALE and energy_scale(None) is XMM_SCALE
    assert scale_from_record(None) is XMM_SCALE
    assert scale_from_record({"offset_kev": 1.6, "kev_per_pi": 0.04}) is NUSTAR_SCALE
    assert XMM_SCALE.kev(1100) == 1.1 and NUSTAR_SCALE.kev(10) == 2.0


def test_a_scheme_keeps_its_identity_across_instruments():
    scheme = scheme_from_spec("nu", {"unit": "keV", "edges": [3, 10, 79], "instruments": ["FPMA"]})
    mapped, scale, notes = instrument_scheme(scheme, "FPMA")
    assert mapped.pi_edges == (35, 210, 1935) and scale is NUSTAR_SCALE and notes == []
    assert scheme.pi_edges == (3000, 10000, 79000)
    assert "instruments" not in scheme.spec  # not part of the identity
    same = scheme_from_spec("nu", {"unit": "keV", "edges": [3, 10, 79], "instruments": ["FPMB"]})
    assert same.hash == scheme.hash


def test_scheme_instruments_are_validated():
    with pytest.raises(
        ConfigError,
        match="edges: PI edges 3000..79000 leave the pn range 0..20480"
        " eV; a NuSTAR-only scheme may reach 79 keV: add instruments = ",
    ):
        scheme_from_spec("nu", {"unit": "keV", "edges": [3, 79]})
    with pytest.raises(ConfigError, match="instruments: must name at least one instrument"):
        scheme_from_spec("nu", {"unit": "keV", "edges": [3, 10], "instruments": []})
    with pytest.raises(ConfigError, match="an instrument is listed twice"):
        scheme_from_spec("nu", {"unit": "keV", "edges": [3, 10], "instruments": ["PN", "PN"]})


def test_equal_count_schemes_are_epic_only():
    ec = scheme_from_spec(
        "ec",
        {"unit": "keV", "equal_counts": {"reference": "0201830201", "n": 4, "lo": 2, "hi": 10}},
    )
    with pytest.raises(ConfigError, match="an equal_counts scheme takes its edges from an EPIC"):
        instrument_scheme(ec, "FPMA")
    assert instrument_scheme(ec, "PN")[0] is ec
