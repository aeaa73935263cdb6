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

SCHEMES = ("1a", "4cch", "8ch")
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
    """(obsid, scheme) of a "wrote O/S" or "group O/S failed: ..." record."""
    word = message.split()[1]
    obsid, scheme = word.split("/")
    return obsid, scheme


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
    assert total == len(OBSIDS) * len(SCHEMES) == 6
    assert [s.done for s in steps] == list(range(1, total + 1))
    assert {s.total for s in steps} == {total}
    every = sorted((g.obsid, g.scheme) for g in plan.todo)
    assert sorted((s.obsid, s.scheme) for s in steps) == every

    # the broken observation's groups fail; so does the equal-count scheme everywhere
    # when its reference observation is the broken one
    expected_failed = {(bad, s) for s in SCHEMES}
    if bad == OBSIDS[0]:
        expected_failed |= {(o, "4cch") for o in OBSIDS}
    failures = {(s.obsid, s.scheme): s.failure for s in steps if s.failure is not None}
    assert set(failures) == expected_failed
    for (obsid, scheme), f in failures.items():
        assert (f.obsid, f.scheme) == (obsid, scheme)
        if scheme == "4cch" and bad == OBSIDS[0]:
            assert f.message.startswith(f"equal-count scheme 4cch: reference {bad}: ")
        assert "InputFileError: " in f.message and "\n" not in f.message
    assert sorted(failures.values(), key=lambda f: (f.obsid, f.scheme)) == report.failed
    written = {(s.obsid, s.scheme) for s in steps if s.failure is None}
    assert written == set(every) - expected_failed
    assert written == {(g.obsid, g.scheme) for g in report.built}

    records = [r for r in caplog.records if r.name == LOGGER]
    wrote = [r for r in records if r.levelno == logging.INFO and r.getMessage().startswith("wrote")]
    assert sorted(r.getMessage() for r in wrote) == sorted(f"wrote {o}/{s}" for o, s in written)
    warnings = [r for r in records if r.levelno == logging.WARNING]
    assert sorted(r.getMessage() for r in warnings) == sorted(
        f"group {o}/{s} failed: {failures[(o, s)].message}" for o, s in failures
    )
    # one record per group, logged in the order the callback saw the groups
    in_order = [_group_of(r.getMessage()) for r in records if r in wrote or r in warnings]
    assert in_order == [(s.obsid, s.scheme) for s in steps]
    assert [r.getMessage() for r in records if r.levelno == logging.INFO][0] == (
        f"building 6 groups into {workdir / 'test.zarr'} (0 up to date)"
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
    assert plan.todo == [] and steps == [] and len(report.up_to_date) == 6
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert messages == [f"store {workdir / 'test.zarr'}: every group is up to date"]


def test_cli_verbose_logs_on_stderr(
    workdir: Path, capsys: pytest.CaptureFixture[str], library_logging: None
) -> None:
    argv = ["build", str(workdir / "build.toml"), "--workers", "1", "--threads", "--no-progress"]
    assert main(["-v", *argv]) == 0
    out, err = capsys.readouterr()
    assert "built 6 groups, 0 up to date, 0 failed" in out
    lines = err.splitlines()
    prefix = f"xlcat: INFO: {LOGGER}: "
    assert sorted(line for line in lines if line.startswith(prefix + "wrote ")) == sorted(
        f"{prefix}wrote {o}/{s}" for o in OBSIDS for s in SCHEMES
    )
    assert f"{prefix}building 6 groups into {workdir / 'test.zarr'} (0 up to date)" in lines
    # without -v: the same build (forced) logs nothing on stderr
    assert main([*argv, "--force"]) == 0
    out, err = capsys.readouterr()
    assert "built 6 groups, 0 up to date, 0 failed" in out
    assert "xlcat: INFO" not in err and LOGGER not in err and "wrote " not in err
