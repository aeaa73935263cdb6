"""How a running build reports its groups: the progress callback, the log records, ``xlcat -v``.

The build is the one of tests/build/test_build.py: two observations x three schemes
(one of them equal-count, resolved from the first observation's spectrum).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client

from pipeline.build.graph import BuildProgress, run_build
from pipeline.build.plan import plan_build
from pipeline.cli.main import main
from schemas.build import load_build
from tests.build.test_build import BUILD, GTIS, OBSIDS, _events
from tests.helpers.eventfiles import REGION_TEXT, FileSpec, write_event_file

LOGGER = "pipeline.build.graph"
#: The loggers the command line configures.
LIBRARY_LOGGERS = ("pipeline", "catalog", "schemas")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for i, obsid in enumerate(OBSIDS):
        (tmp_path / obsid).mkdir()
        write_event_file(tmp_path / obsid / "ev.fits", _events(i), FileSpec(ccd_gtis=GTIS))
        (tmp_path / obsid / "ds9.reg").write_text(REGION_TEXT)
    (tmp_path / "build.toml").write_text(BUILD)
    return tmp_path


@pytest.fixture
def library_logging() -> Iterator[None]:
    """The library's loggers as logging left them, restored afterwards.

    ``xlcat.main`` sets their levels and adds a stderr handler (on the stream of the
    call); handlers left by earlier command-line tests are set aside meanwhile.
    """
    saved = {}
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers))
        logger.setLevel(logging.NOTSET)
        for h in list(logger.handlers):
            if type(h).__name__ == "_CLIHandler":
                logger.removeHandler(h)
    yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers


def _group_of(message: str) -> tuple[str, str]:
    """(obsid, expid) of a "wrote O/E" or "group O/E failed: ..." record."""
    word = message.split()[1]
    obsid, expid = word.split("/")
    return obsid, expid


@pytest.mark.parametrize("broken", [1, 0], ids=["other-observation", "reference-observation"])
def test_progress_callback_and_log_records(
    workdir: Path,
    dask_client: Client,
    caplog: pytest.LogCaptureFixture,
    library_logging: None,
    broken: int,
) -> None:
    plan = plan_build(load_build(workdir / "build.toml"))
    bad = OBSIDS[broken]
    (workdir / bad / "ev.fits").write_bytes(b"not a FITS file")  # broken after planning
    steps: list[BuildProgress] = []
    caplog.set_level(logging.INFO, logger=LOGGER)
    report = run_build(plan, dask_client, progress=steps.append)

    total = len(plan.todo)
    assert total == len(OBSIDS) == 2  # one group per exposure, every scheme inside
    assert [s.done for s in steps] == list(range(1, total + 1))
    assert {s.total for s in steps} == {total}
    every = sorted((g.obsid, g.expid) for g in plan.todo)
    assert sorted((s.obsid, s.expid) for s in steps) == every

    # the broken observation's group fails; so does every group when the broken one is
    # the reference of the equal-count scheme (every group holds that scheme)
    expected_failed = {(bad, "PN")}
    if bad == OBSIDS[0]:
        expected_failed |= {(o, "PN") for o in OBSIDS}
    failures = {(s.obsid, s.expid): s.failure for s in steps if s.failure is not None}
    assert set(failures) == expected_failed
    for (obsid, expid), f in failures.items():
        assert (f.obsid, f.expid) == (obsid, expid)
        if bad == OBSIDS[0]:
            assert f.message.startswith(f"equal-count scheme 4cch: reference {bad}/PN: ")
        assert "InputFileError: " in f.message and "\n" not in f.message
    assert sorted(failures.values(), key=lambda f: (f.obsid, f.expid)) == report.failed
    written = {(s.obsid, s.expid) for s in steps if s.failure is None}
    assert written == set(every) - expected_failed
    assert written == {(g.obsid, g.expid) for g in report.built}

    records = [r for r in caplog.records if r.name == LOGGER]
    wrote = [r for r in records if r.levelno == logging.INFO and r.getMessage().startswith("wrote")]
    assert sorted(r.getMessage() for r in wrote) == sorted(f"wrote {o}/{e}" for o, e in written)
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert sorted(r.getMessage() for r in warnings) == sorted(
        f"group {o}/{e} failed: {failures[(o, e)].message}" for o, e in failures
    )
    # one record per group, logged in the order the callback saw the groups
    in_order = [_group_of(r.getMessage()) for r in records if r in wrote or r in warnings]
    assert in_order == [(s.obsid, s.expid) for s in steps]
    assert [r.getMessage() for r in records if r.levelno == logging.INFO][0] == (
        f"building 2 groups into {workdir / 'test.zarr'} (0 up to date)"
    )


def test_nothing_to_do_reports_no_progress(
    workdir: Path,
    dask_client: Client,
    caplog: pytest.LogCaptureFixture,
    library_logging: None,
) -> None:
    first = run_build(plan_build(load_build(workdir / "build.toml")), dask_client)
    assert first.ok, first.failed
    plan = plan_build(load_build(workdir / "build.toml"))
    steps: list[BuildProgress] = []
    caplog.set_level(logging.INFO, logger=LOGGER)
    report = run_build(plan, dask_client, progress=steps.append)
    assert plan.todo == [] and steps == [] and len(report.up_to_date) == 2
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert messages == [f"store {workdir / 'test.zarr'}: every group is up to date"]


def test_cli_verbose_logs_on_stderr(
    workdir: Path, capsys: pytest.CaptureFixture[str], library_logging: None
) -> None:
    argv = ["build", str(workdir / "build.toml"), "--workers", "1", "--threads", "--no-progress"]
    assert main(["-v", *argv]) == 0
    out, err = capsys.readouterr()
    assert "built 2 groups, 0 up to date, 0 failed" in out
    lines = err.splitlines()
    prefix = f"xlcat: INFO: {LOGGER}: "
    assert sorted(line for line in lines if line.startswith(prefix + "wrote ")) == sorted(
        f"{prefix}wrote {o}/PN" for o in OBSIDS
    )
    assert f"{prefix}building 2 groups into {workdir / 'test.zarr'} (0 up to date)" in lines
    # without -v: the same build (forced) logs nothing on stderr
    assert main([*argv, "--force"]) == 0
    out, err = capsys.readouterr()
    assert "built 2 groups, 0 up to date, 0 failed" in out
    assert "xlcat: INFO" not in err and LOGGER not in err and "wrote " not in err
