"""Writing the chosen annulus into the regions file a build reads.

The source line of the regions file, ``circle(x,y,r)`` (or an earlier ``annulus``), becomes
``annulus(x,y,r_in,r)`` with the same centre and outer radius as written, in the file's own
coordinate system: sky pixels for ``physical``, arcsec (``4.5"``) for a celestial system, whose
centre and outer radius are kept as written. Everything else in the file stays as it is; a
comment line above the shape says what changed and what the line was.

The regions file is changed in place, so the build file needs no edit and the next
``xlcat build`` sees new regions (their hash changes) and rebuilds that exposure. Safety:

- the original is first copied to ``<file>.orig`` (or ``.orig.1``, ``.orig.2``, ... when a
  backup exists: a backup is never overwritten);
- the new text is parsed with the project's region parser before it is written, and must give
  the annulus asked for;
- it is written to a temporary file in the same folder and renamed over the original
  (``os.replace``, atomic on one filesystem): no reader ever sees a half-written file.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from pipeline.select.regions import parse_regions
from pipeline.select.shapes import Annulus, format_number
from pipeline.select.sky import SKY_FRAMES, SkyShape
from schemas.errors import ConfigError, InputFileError

__all__ = ["annulus_text", "write_annulus", "backup_path"]

_SHAPE = re.compile(r"([+-]?\s*)(circle|annulus)\s*\(([^)]*)\)", re.IGNORECASE)
_SYSTEMS = {"physical", *SKY_FRAMES}


def annulus_text(shape_args: list[str], r_in: float, system: str) -> str:
    """``annulus(x,y,r_in,r_out)`` from a circle's or annulus's arguments as written.

    Parameters
    ----------
    shape_args : list of str
        The written arguments: ``[x, y, r]`` or ``[x, y, r_in, r_out]``.
    r_in : float
        New inner radius: sky pixels for ``physical``, arcsec otherwise.
    system : str
        ``physical`` or a celestial system name.
    """
    x, y, r_out = shape_args[0].strip(), shape_args[1].strip(), shape_args[-1].strip()
    inner = format_number(r_in) if system == "physical" else f'{format_number(r_in)}"'
    return f"annulus({x},{y},{inner},{r_out})"


def backup_path(path: Path) -> Path:
    """``<file>.orig``, or the first of ``.orig.1``, ``.orig.2``, ... that does not exist."""
    candidate = path.with_name(path.name + ".orig")
    n = 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.orig.{n}")
    return candidate


def _source_line(text: str, path: Path) -> tuple[int, str, str]:
    """Index of the line holding the one source circle/annulus, its shape text and system."""
    system: str | None = None
    found: list[tuple[int, str, str]] = []
    for i, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line or line.startswith("#") or re.match(r"global\b", line, re.IGNORECASE):
            continue
        command, _, props = line.partition("#")
        for item in (p.strip() for p in command.split(";")):
            if not item:
                continue
            if item.lower() in _SYSTEMS or item.lower() in ("image", "wcs"):
                system = item.lower()
                continue
            if "background" in props.lower().split():
                continue
            if system is not None:
                found.append((i, item, system))
    if len(found) != 1:
        raise ConfigError(
            f"regions file {path}: the pile-up annulus needs exactly one source circle; found "
            f"{len(found)} source shapes; leave one"
        )
    if not _SHAPE.fullmatch(found[0][1]):
        raise ConfigError(
            f"regions file {path}: the source shape '{found[0][1]}' is not a circle or an "
            "annulus; the pile-up annulus replaces a circle"
        )
    return found[0]


def write_annulus(path: str | os.PathLike[str], r_in: float, comment: str) -> Path:
    """Make the source circle of a regions file an annulus of inner radius ``r_in``.

    Parameters
    ----------
    path : str or os.PathLike
        The regions file (read by the build).
    r_in : float
        Inner radius in the file's system: sky pixels (``physical``) or arcsec (celestial).
    comment : str
        What the comment line above the shape says (one line).

    Returns
    -------
    Path
        The backup of the original.

    Raises
    ------
    ConfigError
        The file has not exactly one source circle or annulus.
    InputFileError
        The file cannot be read or written, or the new text would not parse to the annulus.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"regions file {p}: cannot be read ({exc.strerror or exc})") from None
    index, item, system = _source_line(text, p)
    m = _SHAPE.fullmatch(item)
    assert m is not None
    args = m.group(3).split(",")
    new_item = annulus_text(args, r_in, system)
    lines = text.splitlines()
    old_line = lines[index]
    new_line = old_line.replace(item, new_item, 1)
    note = f"# xlcat pileup: {comment.strip()}; was: {old_line.strip()}"
    lines[index : index + 1] = [note, new_line]
    new_text = "\n".join(lines) + ("\n" if text.endswith("\n") else "")
    parsed = parse_regions(new_text, str(p))
    (src,) = parsed.source
    size_in = src.sizes[0] * 3600.0 if isinstance(src, SkyShape) else getattr(src, "r_in", None)
    is_annulus = isinstance(src, Annulus) or (isinstance(src, SkyShape) and src.kind == "annulus")
    if not is_annulus or size_in is None or abs(size_in - r_in) > 1e-9 * max(1.0, r_in):
        raise InputFileError(
            f"regions file {p}: the rewritten source line '{new_line.strip()}' does not read "
            "back as the annulus asked for; the file was not changed"
        )
    backup = backup_path(p)
    _write_atomic(backup, text, p.parent)
    shutil.copymode(p, backup)
    _write_atomic(p, new_text, p.parent)
    return backup


def _write_atomic(target: Path, text: str, folder: Path) -> None:
    """Write ``text`` to a temporary file in ``folder`` and rename it to ``target``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputFileError(
            f"regions file {target}: cannot be written ({exc.strerror or exc}); nothing changed"
        ) from None
