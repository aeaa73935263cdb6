"""Finding SAS and the calibration index (CCF) for the ``sas`` backend.

SAS is found from ``SAS_DIR`` (set by the SAS setup script, ``setsas.sh`` or
``sasinit``), or from the build file's ``[sas] sas_dir`` whose ``bin`` folder is
then put first on PATH; its tasks (``evselect``, ``epiclccorr``, ``tabgtigen``,
``sasversion``) must be executables on that PATH. The calibration index file is
``[sas] ccf``, else ``$SAS_CCF``, else the first ``ccf.cif`` in the event file's
folder, ``..``, ``../..`` or ``../../odf`` (the places the reference workflow
searched, docs/semantics.md §11.3).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.extract.sas.runner import run_command
from schemas.build import SASOptions
from schemas.errors import SASError

__all__ = ["SAS_TASKS", "SASEnvironment", "discover", "find_ccf", "ccf_candidates"]

#: SAS executables the backend runs.
SAS_TASKS: tuple[str, ...] = ("sasversion", "evselect", "epiclccorr", "tabgtigen")

_SETUP_HINT = (
    "run the SAS setup first (e.g. 'source $SAS_DIR/setsas.sh' or 'sasinit'), "
    'or set [sas] sas_dir in the build file, or use backend = "native"'
)


@dataclass(frozen=True)
class SASEnvironment:
    """A SAS installation as seen from this process.

    Attributes
    ----------
    sas_dir : str
        The installation folder.
    version : str
        First line of ``sasversion``'s output.
    version_output : str
        Its whole output.
    executables : dict
        Task name to the executable found on PATH.
    overrides : dict
        Environment variables set for every SAS command (besides ``SAS_CCF``).
    """

    sas_dir: str
    version: str
    version_output: str
    executables: dict[str, str]
    overrides: dict[str, str] = field(default_factory=dict)

    def process_env(self, ccf: str | os.PathLike[str] | None) -> dict[str, str]:
        """The environment of a SAS command: this process's, the overrides and ``SAS_CCF``."""
        env = dict(os.environ)
        env.update(self.overrides)
        if ccf is not None:
            env["SAS_CCF"] = str(ccf)
        return env

    def summary(self) -> dict[str, Any]:
        """JSON-able description, for provenance."""
        return {
            "sas_dir": self.sas_dir,
            "sas_version": self.version,
            "sasversion_output": self.version_output,
            "executables": dict(self.executables),
            "environment_overrides": dict(self.overrides),
        }


def _overrides(options: SASOptions) -> dict[str, str]:
    if not options.sas_dir:
        return {}
    sas_dir = str(options.sas_dir)
    path = os.pathsep.join([str(Path(sas_dir) / "bin"), os.environ.get("PATH", "")])
    return {"SAS_DIR": sas_dir, "PATH": path}


#: ``sasversion`` output per (SAS_DIR, PATH, executable), so it runs once per process.
_VERSIONS: dict[tuple[Any, ...], tuple[str, str]] = {}


def discover(options: SASOptions, tasks: Iterable[str] = SAS_TASKS) -> SASEnvironment:
    """Find SAS and its tasks, and run ``sasversion`` (once per process and installation).

    Parameters
    ----------
    options : SASOptions
        The build's ``[sas]`` table (``sas_dir``, ``timeout``).
    tasks : iterable of str
        Executables that must be on PATH (``sasversion`` always).

    Returns
    -------
    SASEnvironment

    Raises
    ------
    SASError
        If ``SAS_DIR`` is unset or not a folder, a task is not on PATH, or
        ``sasversion`` fails.
    """
    overrides = _overrides(options)
    env = dict(os.environ)
    env.update(overrides)
    sas_dir = env.get("SAS_DIR")
    if not sas_dir:
        raise SASError(f"SAS is not set up: SAS_DIR is not set; {_SETUP_HINT}")
    if not Path(sas_dir).is_dir():
        raise SASError(f"SAS_DIR={sas_dir}: not a folder; {_SETUP_HINT}")
    found = {}
    for name in dict.fromkeys(("sasversion", *tasks)):
        exe = shutil.which(name, path=env.get("PATH", ""))
        if exe is None:
            raise SASError(f"SAS task {name} is not on PATH (SAS_DIR={sas_dir}); {_SETUP_HINT}")
        found[name] = exe
    key = (sas_dir, env.get("PATH"), found["sasversion"])
    if key not in _VERSIONS:
        rec = run_command(
            "sasversion", ["sasversion"], cwd=None, env=env, timeout=min(options.timeout, 120.0)
        )
        if not rec.ok:
            raise SASError(
                f"SAS_DIR={sas_dir}: 'sasversion' failed ({rec.status_text}); stderr: "
                f"{rec.last_stderr_line or '(empty)'}; {_SETUP_HINT}"
            )
        text = rec.stdout.strip() or rec.stderr.strip()
        _VERSIONS[key] = (text.splitlines()[0].strip() if text else "unknown", text)
    version, text = _VERSIONS[key]
    return SASEnvironment(sas_dir, version, text, found, overrides)


def ccf_candidates(events: str | os.PathLike[str]) -> list[Path]:
    """Where ``ccf.cif`` is looked for: the event folder, ``..``, ``../..``, ``../../odf``."""
    d = Path(events).resolve().parent
    return [
        d / "ccf.cif",
        d.parent / "ccf.cif",
        d.parent.parent / "ccf.cif",
        d.parent.parent / "odf" / "ccf.cif",
    ]


def find_ccf(
    events: str | os.PathLike[str], options: SASOptions, environ: Mapping[str, str] | None = None
) -> tuple[Path, str]:
    """The calibration index file for one event file, and how it was found.

    Parameters
    ----------
    events : str or os.PathLike
    options : SASOptions
        ``[sas] ccf`` wins over everything else.
    environ : mapping, optional
        Environment (default ``os.environ``); ``SAS_CCF`` wins over the search.

    Returns
    -------
    (pathlib.Path, str)
        The file and ``"[sas] ccf"``, ``"SAS_CCF"`` or ``"found next to the event file"``.

    Raises
    ------
    SASError
        If the given file does not exist, or no ccf.cif is found.
    """
    environ = os.environ if environ is None else environ
    for given, how in ((options.ccf, "[sas] ccf"), (environ.get("SAS_CCF"), "SAS_CCF")):
        if given:
            p = Path(given)
            if not p.is_file():
                raise SASError(
                    f"{how}={given}: no such file; run cifbuild and point {how} at its ccf.cif"
                )
            return p, how
    candidates = ccf_candidates(events)
    for c in candidates:
        if c.is_file():
            return c, "found next to the event file"
    raise SASError(
        f"events file {events}: no calibration index: SAS_CCF is not set and there is no "
        f"ccf.cif in {', '.join(str(c.parent) for c in candidates)}; run cifbuild and set "
        "SAS_CCF (or [sas] ccf in the build file)"
    )
