"""Run the README's commands verbatim, twice in a row, in this checkout (after ``make demo``).

The README marks each runnable code block with an HTML comment on the line before its
fence, ``<!-- ci: run -->``; other blocks are synopses (``xlcat ls STORE [...]``) or need
what a fresh clone does not have (SAS, a batch system). Runnable blocks:

- ``sh``: each command (``\\`` continuations joined; comments and blank lines skipped);
- ``console``: the lines starting with ``$ `` (the others are output);
- ``python``: the whole block, run by the virtual environment's Python.

Commands run from the checkout's root with ``.venv/bin`` first on PATH, as a reader
who ran ``make demo`` types them. The second pass proves they can be run again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- ci: run -->"
FENCE = re.compile(r"^```(\w+)\s*$")


def blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, language, lines) of every marked block."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        m = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if m is None:
            sys.exit(f"README.md:{i + 1}: {MARK} must be followed by a fenced code block")
        body = []
        for line2 in lines[i + 2 :]:
            if line2.startswith("```"):
                break
            body.append(line2)
        out.append((i + 3, m.group(1), body))
    return out


def commands(lang: str, body: list[str]) -> list[tuple[str, list[str]]]:
    """(kind, argv) to run for one block."""
    if lang == "python":
        return [("python", [str(ROOT / ".venv/bin/python"), "-c", "\n".join(body)])]
    if lang == "console":
        cmds = [ln[2:] for ln in body if ln.startswith("$ ")]
    elif lang in ("sh", "bash"):
        cmds, current = [], ""
        for ln in body:
            stripped = ln.strip()
            if not current and (not stripped or stripped.startswith("#")):
                continue
            current += stripped[:-1] + " " if stripped.endswith("\\") else stripped
            if not stripped.endswith("\\"):
                cmds.append(current)
                current = ""
    else:
        sys.exit(f"README.md: cannot run a {lang!r} block")
    return [("shell", ["bash", "-c", c]) for c in cmds]


def main() -> int:
    text = (ROOT / "README.md").read_text()
    found = blocks(text)
    if not found:
        sys.exit("README.md: no block marked to run")
    env = {**os.environ, "PATH": f"{ROOT / '.venv/bin'}{os.pathsep}{os.environ['PATH']}"}
    for run in (1, 2):
        for lineno, lang, body in found:
            for kind, argv in commands(lang, body):
                shown = argv[-1] if kind == "shell" else f"(python block at README.md:{lineno})"
                print(f"[{run}] README.md:{lineno}: {shown.splitlines()[0]}", flush=True)
                proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
                    print(
                        f"README.md:{lineno}: exit status {proc.returncode} on run {run}: {shown}",
                        file=sys.stderr,
                    )
                    return 1
    print(f"README commands: {len(found)} blocks run twice, every command exited 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
