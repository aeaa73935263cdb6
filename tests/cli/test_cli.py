"""The xlcat command line: build, ls, query, plot, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import catalog
from pipeline.cli.main import main, parse_range
from schemas.errors import ConfigError
from tests.helpers.eventfiles import (
    REGION_TEXT,
    T0,
    EventSet,
    FileSpec,
    edge_events,
    random_events,
    write_event_file,
)
from tests.helpers.processes import run_python

BUILD = """
store = "cli.zarr"
time_bin = 200.0

[[observations]]
obsid = "0123456789"
events = "obs/ev.fits"
regions = "obs/ds9.reg"

[schemes]
2a = { unit = "keV", edges = [2, 5, 10] }
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "obs").mkdir()
    ev = EventSet.concat([edge_events(), random_events(5000, seed=7)])
    write_event_file(
        d / "obs" / "ev.fits", ev, FileSpec(ccd_gtis={4: [(T0, T0 + 1000)], 5: [(T0, T0 + 1000)]})
    )
    (d / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (d / "build.toml").write_text(BUILD)
    assert (
        main(["build", str(d / "build.toml"), "--threads", "--workers", "1", "--no-progress"]) == 0
    )
    return d


def test_build_again_is_up_to_date(built, capsys):
    assert main(["build", str(built / "build.toml"), "--threads", "--workers", "1"]) == 0
    assert "0 groups to build, 1 up to date" in capsys.readouterr().out


def test_a_no_op_build_loads_no_astropy(built):
    """An unchanged build binds its camera defaults from the store's record of the event file."""
    code = (
        "import sys\n"
        "from pipeline.cli.main import main\n"
        f"assert main(['build', {str(built / 'build.toml')!r}, '--no-progress']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'astropy'))\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert "0 groups to build, 1 up to date" in lines[0] and lines[-1] == "[]"


def test_ls_lists_groups_and_bands(built, capsys):
    assert main(["ls", str(built / "cli.zarr")]) == 0
    out = capsys.readouterr().out
    assert "1 observation, 1 exposure, 1 scheme, 2 bands" in out
    assert "per scheme" in out and out.strip().splitlines()[-1].split()[:6] == [
        "2a",
        "2",
        "2.0",
        "10.0",
        "1",
        "1",
    ]
    assert main(["ls", str(built / "cli.zarr"), "--bands"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[1].split()[:8] == [
        "0123456789",
        "PN",
        "2a",
        "0",
        "2.0",
        "5.0",
        "2000",
        "5000",
    ]


def test_query_csv_equals_store(built, capsys):
    assert (
        main(
            [
                "query",
                str(built / "cli.zarr"),
                "--scheme",
                "2a",
                "--obsid",
                "0123456789",
                "--energy",
                "5-10",
                "--time",
                f"{T0}-{T0 + 600}",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    ds = catalog.open(built / "cli.zarr").lightcurves("0123456789", "2a")
    assert [float(r["time"]) for r in rows] == [T0 + 100, T0 + 300, T0 + 500]
    assert {r["band"] for r in rows} == {"1"} and rows[0]["e_lo"] == "5"
    np.testing.assert_array_equal([float(r["rate"]) for r in rows], ds.rate.values[1, :3])
    np.testing.assert_array_equal(
        [float(r["src_counts"]) for r in rows], ds.src_counts.values[1, :3]
    )


def test_query_json(built, capsys, tmp_path):
    out = tmp_path / "q.json"
    assert (
        main(
            ["query", str(built / "cli.zarr"), "--scheme", "2a", "--format", "json", "-o", str(out)]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    ds = catalog.open(built / "cli.zarr").lightcurves("0123456789", "2a")
    assert doc[0]["bands"][0] == {"band": 0, "e_lo": 2.0, "e_hi": 5.0, "pi_lo": 2000, "pi_hi": 5000}
    np.testing.assert_array_equal(np.array(doc[0]["error"], float), ds.error.values)
    assert doc[0]["time"] == ds.time.values.tolist()


def test_plot_writes_png(built, tmp_path, capsys):
    out = tmp_path / "lc.png"
    assert (
        main(
            [
                "plot",
                str(built / "cli.zarr"),
                "--obsid",
                "0123456789",
                "--scheme",
                "2a",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ls", "nowhere.zarr"], "store nowhere.zarr: not found"),
        (["query", "{store}", "--scheme", "zz"], "no scheme zz (schemes: 2a)"),
        (["query", "{store}", "--scheme", "2a", "--energy", "4-2"], "--energy '4-2': give LO-HI"),
        (
            ["plot", "{store}", "--obsid", "0000000001", "--scheme", "2a", "-o", "x.png"],
            "no light curves for obsid 0000000001, scheme 2a",
        ),
    ],
)
def test_errors_are_one_line_exit_2(built, capsys, argv, message):
    argv = [a.format(store=built / "cli.zarr") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("xlcat: error: ") and message in err


def test_bad_build_file_names_file_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(BUILD.replace("time_bin = 200.0", "time_bin = 200.0\ntimebin = 3"))
    assert main(["build", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"build file {bad}: timebin: unknown key" in err and err.count("\n") == 1
    bad.write_text(BUILD.replace('"0123456789"', '"12345"'))
    assert main(["build", str(bad)]) == 2
    assert (
        "observations[0].obsid: '12345' is not a 10-digit XMM-Newton obsid"
        in capsys.readouterr().err
    )


def test_parse_range():
    assert parse_range("2-4", "energy") == (2.0, 4.0)
    assert parse_range("3.0e8:3.1e8", "time") == (3.0e8, 3.1e8)
    with pytest.raises(ConfigError):
        parse_range("2", "energy")


def test_build_on_a_running_scheduler(built, tmp_path, capsys):
    """--scheduler ADDRESS: the build runs on an existing Dask cluster (here a local TCP one)."""
    from distributed import LocalCluster

    (tmp_path / "b.toml").write_text(
        BUILD.replace('store = "cli.zarr"', f'store = "{tmp_path / "sched.zarr"}"').replace(
            '"obs/', f'"{built}/obs/'
        )
    )
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        dashboard_address="127.0.0.1:0",  # None would still ask for port 8787
        scheduler_kwargs={"dashboard": False},
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        assert (
            main(
                [
                    "build",
                    str(tmp_path / "b.toml"),
                    "--scheduler",
                    cluster.scheduler_address,
                    "--no-progress",
                ]
            )
            == 0
        )
    assert "built 1 groups" in capsys.readouterr().out
    a = catalog.open(tmp_path / "sched.zarr").lightcurves("0123456789", "2a")
    b = catalog.open(built / "cli.zarr").lightcurves("0123456789", "2a")
    np.testing.assert_array_equal(a.rate.values, b.rate.values)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"DATAMODE": "TIMING"}, "DATAMODE = 'TIMING' is not supported"),
        ({"DATAMODE": "BURST"}, "DATAMODE = 'BURST' is not supported"),
        ({"INSTRUME": "EPICRGS"}, "INSTRUME = 'EPICRGS' is not an XMM-Newton EPIC camera"),
    ],
)
def test_a_list_the_build_cannot_extract_is_refused_when_planned(tmp_path, capsys, header, message):
    """TIMING/BURST lists and other cameras: one line naming the file and keyword, exit 2."""
    (tmp_path / "obs").mkdir()
    events = tmp_path / "obs" / "ev.fits"
    spec = FileSpec(ccd_gtis={4: [(T0, T0 + 1000)]}, header=header)
    write_event_file(events, random_events(200, seed=3), spec)
    (tmp_path / "obs" / "ds9.reg").write_text(REGION_TEXT)
    (tmp_path / "build.toml").write_text(BUILD)
    assert main(["build", str(tmp_path / "build.toml"), "--threads", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"events file {events} EVENTS header: {message}" in err
    assert not (tmp_path / "cli.zarr").exists()  # refused before the store was made


def test_ls_imports_no_dask_astropy_or_matplotlib(built):
    """xlcat ls reads group metadata only: none of the heavy libraries a prompt waits for."""
    code = (
        "import sys\n"
        "from pipeline.cli.main import main\n"
        f"assert main(['ls', {str(built / 'cli.zarr')!r}]) == 0\n"
        "print(sorted(m for m in ('dask', 'distributed', 'astropy', 'matplotlib', 'zarr')"
        " if m in sys.modules))\n"
    )
    run = run_python(code)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


def test_interrupted_command_that_cannot_unwind_ends_what_it_started(tmp_path):
    """Should closing the cluster hang after Ctrl-C, xlcat still ends, and ends its children."""
    pidfile = tmp_path / "child.pid"
    code = (
        "import subprocess, sys, time\n"
        "import pipeline.cli.main as m\n"
        "m.STUCK_AFTER = 0.5\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "m._exit_if_stuck(130, 'xlcat: interrupted')\n"
        "time.sleep(60)  # an unwinding that never ends\n"
    )
    run = run_python(code, timeout=30)
    assert run.returncode == 130
    assert run.stderr.startswith("xlcat: interrupted (closing the cluster took over 0.5 s")
    import psutil

    pid = int(pidfile.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
