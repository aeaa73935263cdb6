"""Tests of schemas.energy: bands, schemes, the ngc5506 preset, equal-count edges, validation."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from schemas.energy import Band, chan_to_pi, equal_count_edges, kev_to_pi
from schemas.errors import ConfigError, XlcatError
from schemas.schemes import EnergyScheme, load_preset, preset_names, scheme_from_spec

PUBLISHED = Path(__file__).resolve().parents[1] / "data" / "ngc5506_schemes.json"
PRESET_NAMES = (
    "1a 3a 4a 8a 8ch 8lch 12a 12ch 12lch 12cch 16a 16ch 16lch 24a 24ch 24lch 24cch "
    "32a 32ch 32lch 32cch 48lch 48cch 16a_lin"
).split()
# the preset's name -> the data file's name
JSON_NAME = {"16a_lin": "16a_second_definition"}


@pytest.fixture(scope="module")
def published() -> dict:
    if not PUBLISHED.exists():
        pytest.skip(f"reference data {PUBLISHED} (published NGC 5506 scheme edges) is not present")
    return json.loads(PUBLISHED.read_text())["schemes"]


def published_pi(published: dict, name: str) -> list[int]:
    """The published edges in PI: keV * 1000 rounded, channels * 5 (project convention)."""
    entry = published[JSON_NAME.get(name, name)]
    if entry["unit"] == "keV":
        return [round(e * 1000) for e in entry["edges"]]
    assert entry["unit"] == "chans"
    return [5 * int(c) for c in entry["edges"]]


def edges_of(spec: dict, name: str = "s") -> list[int]:
    return list(scheme_from_spec(name, spec).pi_edges)


# --------------------------------------------------------------------------- preset
def test_preset_names_and_contents():
    assert "ngc5506" in preset_names()
    assert list(load_preset("ngc5506")) == PRESET_NAMES


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_reproduces_published_edges(published, name):
    spec = load_preset("ngc5506")[name]
    scheme = scheme_from_spec(name, spec, source="preset 'ngc5506'")
    assert scheme.is_resolved
    assert list(scheme.pi_edges) == published_pi(published, name)
    assert spec["abscorr"] is published[JSON_NAME.get(name, name)]["abscorr"]
    assert "abscorr" not in scheme.spec and "note" not in scheme.spec


@pytest.mark.parametrize("name", ["12cch", "24cch", "32cch", "48cch", "48lch", "16a_lin"])
def test_preset_explicit_schemes_carry_a_note(name):
    assert len(load_preset("ngc5506")[name]["note"]) > 40


def test_preset_48cch_has_31_bands_and_16a_lin_is_linear(published):
    presets = load_preset("ngc5506")
    assert len(scheme_from_spec("48cch", presets["48cch"]).bands) == 31
    assert edges_of(presets["16a_lin"]) == list(range(2000, 10001, 500))


def test_unknown_preset_lists_available():
    with pytest.raises(ConfigError, match=r"'nope' does not exist; available: .*ngc5506"):
        load_preset("nope")


# --------------------------------------------------------------------------- rules vs published
@pytest.mark.parametrize("n", [8, 12, 16, 24, 32])
def test_log_snap_chan_rule(published, n):
    spec = {"unit": "keV", "log": [2, 10, n], "snap": "chan"}
    assert edges_of(spec) == published_pi(published, f"{n}lch")


def test_log_snap_chan_rule_differs_for_48lch_at_sixth_edge(published):
    # 2 * 5**(5/48) keV = channel 473.009: the ceil rule gives 474; the study's edges came from
    # the response EBOUNDS (argmin |E_centre - E| + 1, docs/semantics.md §12) and have 473.
    rule = edges_of({"unit": "keV", "log": [2, 10, 48], "snap": "chan"})
    pub = published_pi(published, "48lch")
    assert [i for i, (a, b) in enumerate(zip(rule, pub, strict=True)) if a != b] == [5]
    assert (rule[5], pub[5]) == (5 * 474, 5 * 473)
    assert math.isclose(2 * 5 ** (5 / 48) * 200, 473.009, abs_tol=1e-3)


@pytest.mark.parametrize("n", [8, 12, 16, 24, 32])
def test_lin_chan_rule(published, n):
    assert edges_of({"unit": "chan", "lin": [400, 2000, n]}) == published_pi(published, f"{n}ch")


@pytest.mark.parametrize("n", [8, 12, 16, 24, 32])
def test_log_round_rule_is_nearest(published, n):
    # round = 0.1 rounds to the nearest 0.1 keV: reproduces all five published *a lists.
    assert edges_of({"unit": "keV", "log": [2, 10, n], "round": 0.1}) == published_pi(
        published, f"{n}a"
    )
    # floor and ceil to 0.1 keV would not (independent computation from the formula):
    raw = [2 * 5 ** (k / n) for k in range(n + 1)]
    floor = [100 * math.floor(e * 10 + 1e-9) for e in raw]
    ceil = [100 * math.ceil(e * 10 - 1e-9) for e in raw]
    assert floor != published_pi(published, f"{n}a") != ceil


def test_lin_kev_rule_second_16a(published):
    assert edges_of({"unit": "keV", "lin": [2, 10, 16]}) == published_pi(published, "16a_lin")


@pytest.mark.parametrize(
    ("edges", "pi"),
    [
        ([2, 4, 10], [2000, 4000, 10000]),  # already on channel edges: stays (800, not 801)
        ([2.001, 4.0049, 4.0051], [2005, 4005, 4010]),
        ([1.1, 2.4, 0.2 + 9.8], [1100, 2400, 10000]),
    ],
)
def test_snap_chan_on_explicit_kev_edges(edges, pi):
    assert edges_of({"unit": "keV", "edges": edges, "snap": "chan"}) == pi


def test_chan_lin_log_snap_up():
    assert edges_of({"unit": "chan", "lin": [400, 2000, 3]}) == [2000, 4670, 7335, 10000]
    # log in channels: 400 * 5**(k/2) = 400, 894.4, 2000 -> ceil
    assert edges_of({"unit": "chan", "log": [400, 2000, 2]}) == [2000, 4475, 10000]


# --------------------------------------------------------------------------- conversions, bands
@pytest.mark.parametrize(
    ("kev", "pi"),
    [
        (1.1, 1100),
        (2.4, 2400),
        (0.2, 200),
        (10, 10000),
        (0.001, 1),
        (4.3, 4300),
        (0.1 * 3, 300),
        (2.0004, 2000),
        (2.0006, 2001),
        (np.float64(8.2), 8200),
    ],
)
def test_kev_to_pi(kev, pi):
    got = kev_to_pi(kev)
    assert got == pi and type(got) is int


def test_kev_to_pi_rejects_nan():
    with pytest.raises(ValueError, match="not finite"):
        kev_to_pi(float("nan"))


def test_chan_to_pi():
    assert [chan_to_pi(c) for c in (0, 400, 1999, 4096)] == [0, 2000, 9995, 20480]


def test_band_properties_and_contains():
    b = Band(2000, 2400)
    assert (b.e_lo, b.e_hi, b.label) == (2.0, 2.4, "2.000-2.400 keV")
    pi = np.arange(1990, 2410)
    assert np.array_equal(b.contains(pi), np.array([2000 <= p < 2400 for p in pi]))
    assert sorted([Band(3000, 4000), Band(2000, 5000), Band(2000, 3000)]) == [
        Band(2000, 3000),
        Band(2000, 5000),
        Band(3000, 4000),
    ]
    with pytest.raises(ValueError):
        Band(2400, 2400)


def test_scheme_bands_and_pickle():
    s = scheme_from_spec("3a", {"unit": "keV", "edges": [2, 6, 7, 10], "abscorr": True})
    assert s.bands == (Band(2000, 6000), Band(6000, 7000), Band(7000, 10000))
    s2 = pickle.loads(pickle.dumps(s))
    assert s2 == s and s2.hash == s.hash and hash(s2) == hash(s)
    assert pickle.loads(pickle.dumps(s.bands)) == s.bands


# --------------------------------------------------------------------------- identity
def test_hash_definition():
    s = scheme_from_spec("1a", {"unit": "keV", "edges": [2, 10]})
    text = '{"kind":"edges","pi_edges":[2000,10000]}'
    assert s.canonical == {"kind": "edges", "pi_edges": [2000, 10000]}
    assert s.hash == hashlib.sha256(text.encode()).hexdigest()[:16]


def test_hash_rule_equals_explicit_edges():
    rule = scheme_from_spec("8ch", {"unit": "chan", "lin": [400, 2000, 8]})
    kev = scheme_from_spec("x", {"unit": "keV", "edges": [2, 3, 4, 5, 6, 7, 8, 9, 10]})
    chans = scheme_from_spec("y", {"unit": "chan", "edges": list(range(400, 2001, 200))})
    assert rule.hash == kev.hash == chans.hash
    other = scheme_from_spec("z", {"unit": "keV", "edges": [2, 3, 4, 5, 6, 7, 8, 9, 10.005]})
    assert other.hash != rule.hash


def test_hash_ignores_options_and_name():
    a = scheme_from_spec("a", {"unit": "keV", "log": [2, 10, 8], "round": 0.1})
    b = scheme_from_spec(
        "b",
        {
            "unit": "keV",
            "log": [2, 10, 8],
            "round": 0.1,
            "abscorr": True,
            "backend": "sas",
            "note": "anything",
        },
    )
    assert a.hash == b.hash and a.spec == b.spec == {"unit": "keV", "log": [2, 10, 8], "round": 0.1}


def test_equal_counts_identity_and_resolve():
    spec = {"unit": "keV", "equal_counts": {"reference": "0201830201", "n": 4, "lo": 2, "hi": 10}}
    s = scheme_from_spec("4cc", spec)
    assert not s.is_resolved and s.reference == "0201830201"
    assert s.canonical == {
        "kind": "equal_counts",
        "reference": "0201830201",
        "n": 4,
        "pi_lo": 2000,
        "pi_hi": 10000,
        "min_width_chan": 1,
    }
    same_in_chan = scheme_from_spec(
        "c",
        {
            "unit": "chan",
            "equal_counts": {
                "reference": "0201830201",
                "n": 4,
                "lo": 400,
                "hi": 2000,
                "min_width": 1,
            },
        },
    )
    assert same_in_chan.hash == s.hash
    spec2 = {"unit": "keV", "equal_counts": {**spec["equal_counts"], "reference": "0761220101"}}
    assert scheme_from_spec("4cc", spec2).hash != s.hash
    with pytest.raises(ValueError, match="not yet resolved"):
        _ = s.bands
    rng = np.random.default_rng(5)
    counts = rng.poisson(20.0, 4096).astype(float)
    r = s.resolve(counts[100:], chan0=100)
    expected = equal_count_edges(counts[400:2000], 400, 2000, 4)
    assert r.pi_edges == tuple(5 * c for c in expected) and r.hash == s.hash and r.is_resolved
    assert pickle.loads(pickle.dumps(r)) == r
    with pytest.raises(ConfigError, match=r"covers channels \[500, 4096\).*needs \[400, 2000\)"):
        s.resolve(counts[500:], chan0=500)
    with pytest.raises(ConfigError, match="'4cc'.*0201830201.*no positive net counts"):
        s.resolve(np.zeros(4096), chan0=0)


# --------------------------------------------------------------------------- equal counts
def brute_force_edges(counts, lo, hi, n, min_width=1):
    """Straight loops over the definition in equal_count_edges' docstring."""
    c = [max(0.0, float(x)) for x in counts]
    cum = [0.0]
    for x in c:
        cum.append(cum[-1] + x)
    total = cum[-1]
    edges = [lo]
    for k in range(1, n):
        target = k * total / n
        best_j, best_d = 0, float("inf")
        for j, cj in enumerate(cum):
            if abs(cj - target) < best_d:
                best_j, best_d = j, abs(cj - target)
        if lo + best_j not in edges and lo + best_j != hi:
            edges.append(lo + best_j)
    kept = [lo]
    for e in sorted(edges)[1:]:
        if e - kept[-1] >= min_width:
            kept.append(e)
    if len(kept) > 1 and hi - kept[-1] < min_width:
        kept.pop()
    return kept + [hi]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "min_width"), [(1, 1), (7, 1), (12, 1), (48, 1), (48, 30), (32, 10)])
def test_equal_count_edges_brute_force(seed, n, min_width):
    rng = np.random.default_rng(seed)
    energy = np.arange(400, 2000) * 0.005
    src = rng.poisson(300.0 * energy**-1.7)
    net = src - rng.poisson(2.0, energy.size)  # net counts, some channels negative
    got = equal_count_edges(net, 400, 2000, n, min_width)
    assert got == brute_force_edges(net, 400, 2000, n, min_width)
    assert got[0] == 400 and got[-1] == 2000
    assert min(np.diff(got)) >= min_width and len(got) - 1 <= n


@pytest.mark.parametrize("n", [3, 12, 24])
def test_equal_count_edges_within_one_channel_of_target(n):
    rng = np.random.default_rng(11)
    counts = rng.poisson(40.0, 1600).astype(float)
    edges = equal_count_edges(counts, 400, 2000, n)
    assert len(edges) == n + 1
    cum = np.concatenate(([0.0], np.cumsum(counts)))
    for k, e in enumerate(edges[1:-1], start=1):
        target = k * cum[-1] / n
        straddle = int(np.searchsorted(cum, target)) - 1  # channel whose counts span the target
        assert abs(cum[e - 400] - target) <= 0.5 * counts[straddle]


def test_equal_count_edges_vs_spec_2_ebins():
    # spec_2_ebins (aztools misc.py @ed675ec): argmin |cumsum(counts) - k T/n| + i0 gives the last
    # channel *inside* the cumulative sum: one below our boundary, and 1999 at the top.
    rng = np.random.default_rng(3)
    counts = rng.poisson(50.0, 1600).astype(float) + 1
    csum = np.cumsum(counts)
    theirs = [400 + int(np.argmin(np.abs(csum - k * csum[-1] / 12))) for k in range(13)]
    ours = equal_count_edges(counts, 400, 2000, 12)
    assert theirs[-1] == 1999 and ours[-1] == 2000
    assert ours[1:-1] == [t + 1 for t in theirs[1:-1]]


@pytest.mark.parametrize(("n", "width"), [(8, 200), (16, 100), (32, 50), (1, 1600)])
def test_equal_count_edges_flat_spectrum(n, width):
    edges = equal_count_edges(np.full(1600, 7.0), 400, 2000, n)
    assert np.all(np.diff(edges) == width)


def test_equal_count_edges_min_width_merges_last_band():
    # all counts in the first channel and one in the last: requested edges collapse to 401;
    # with min_width 5 the interior edge 401 is too close to 400 and is dropped.
    counts = np.zeros(20)
    counts[0], counts[-1] = 100.0, 1.0
    assert equal_count_edges(counts, 400, 420, 4) == [400, 401, 420]
    assert equal_count_edges(counts, 400, 420, 4, min_width=5) == [400, 420]
    # quarters end at boundaries 401, 411, 419; with min_width 2, 401 is merged into the first
    # band and the last band (419-420) is too narrow, so 419 is dropped.
    counts = np.zeros(20)
    counts[[0, 10, 18, 19]] = 10.0
    assert equal_count_edges(counts, 400, 420, 4) == [400, 401, 411, 419, 420]
    assert equal_count_edges(counts, 400, 420, 4, min_width=2) == [400, 411, 420]
    assert equal_count_edges(counts, 400, 420, 4, min_width=20) == [400, 420]


@pytest.mark.parametrize("counts", [np.zeros(1600), np.full(1600, -1.0)])
def test_equal_count_edges_no_counts_raises(counts):
    with pytest.raises(ConfigError, match=r"no positive net counts in channels \[400, 2000\)"):
        equal_count_edges(counts, 400, 2000, 8)


def test_equal_count_edges_length_mismatch():
    with pytest.raises(ValueError, match="length"):
        equal_count_edges(np.ones(10), 400, 2000, 8)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("spec", "pieces"),
    [
        (
            {"unit": "keV", "edges": [2, 10], "lin": [2, 10, 4]},
            ["exactly one of edges, lin, log, equal_counts", "got edges and lin"],
        ),
        ({"unit": "keV"}, ["exactly one of", "got none"]),
        (
            {"unit": "keV", "edges": [2, 10], "foo": 1},
            ["foo: unknown key", "allowed keys are unit"],
        ),
        (
            {"unit": "keV", "edges": [2, 6, 4, 10]},
            ["edges: must be strictly increasing in PI", "6000 is followed by 4000"],
        ),
        ({"unit": "chan", "lin": [400, 2000, 8], "snap": "chan"}, ['snap: only for unit = "keV"']),
        ({"unit": "chan", "edges": [400, 2000], "round": 0.1}, ['round: only for unit = "keV"']),
        ({"unit": "keV", "log": [10, 2, 8]}, ["log: lo (10) must be < hi (2)"]),
        ({"unit": "keV", "log": [0, 10, 8]}, ["log: lo (0) must be > 0"]),
        ({"unit": "keV", "lin": [2, 10, 2.5]}, ["lin: n (2.5) must be an integer >= 1"]),
        ({"unit": "keV", "lin": [2, 10]}, ["lin: must be [lo, hi, n]"]),
        ({"unit": "keV", "edges": [2, 30]}, ["edges: PI edges 2000..30000 leave the pn range"]),
        ({"unit": "keV", "edges": [2, float("inf")]}, ["edges.1: Input should be a finite number"]),
        ({"unit": "kev", "edges": [2, 10]}, ["unit: Input should be 'keV' or 'chan'", "'kev'"]),
        ({"edges": [2, 10]}, ["unit: required key is missing"]),
        ({"unit": "chan", "edges": [400.5, 2000]}, ["edges: channel values must be whole numbers"]),
        (
            {"unit": "keV", "log": [2, 2.1, 8], "round": 0.1},
            ["after round = 0.1", "2000 is followed by 2000"],
        ),
        ({"unit": "keV", "edges": [2, 10], "snap": "chan", "round": 0.1}, ["at most one"]),
        (
            {"unit": "keV", "equal_counts": {"reference": 761220101, "n": 8, "lo": 2, "hi": 10}},
            ["equal_counts.reference: must be a quoted 10-digit obsid"],
        ),
        (
            {"unit": "keV", "equal_counts": {"reference": "0761220101", "n": 0, "lo": 2, "hi": 10}},
            ["equal_counts.n: Input should be greater than or equal to 1"],
        ),
        (
            {
                "unit": "keV",
                "equal_counts": {"reference": "0761220101", "n": 8, "lo": 2.001, "hi": 10},
            },
            ["equal_counts: lo (2.001 keV) is not on a 5 eV channel boundary"],
        ),
        (
            {
                "unit": "keV",
                "equal_counts": {"reference": "0761220101", "n": 8, "lo": 2, "hi": 10},
                "snap": "chan",
            },
            ["snap: not used with equal_counts"],
        ),
    ],
)
def test_validation_messages(spec, pieces):
    with pytest.raises(ConfigError) as info:
        scheme_from_spec("8lch", spec, source="run.toml")
    msg = str(info.value)
    assert msg.startswith("run.toml: scheme '8lch': ") and "\n" not in msg
    for piece in pieces:
        assert piece in msg
    assert isinstance(info.value, XlcatError)


@pytest.mark.parametrize(
    ("name", "spec", "piece"),
    [
        ("bad name", {"unit": "keV", "edges": [2, 10]}, "scheme name 'bad name' is invalid"),
        ("1a", [2, 10], "scheme '1a': must be a table"),
    ],
)
def test_validation_name_and_shape(name, spec, piece):
    with pytest.raises(ConfigError, match=piece):
        scheme_from_spec(name, spec)


def test_energy_scheme_rejects_bad_edges():
    with pytest.raises(ValueError, match="not strictly increasing"):
        EnergyScheme("x", {}, (2000, 2000))
