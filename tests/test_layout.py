"""The architecture the folders promise: imports point one way.

``schemas`` imports neither of the others, ``catalog`` imports ``schemas``,
``pipeline`` imports both; inside ``pipeline`` the steps of the data's journey
import only earlier steps (read, select -> extract -> build -> cli). Every
import statement of the packages is read with :mod:`ast`, including those inside
functions, so a lazy import cannot hide an upward edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Package (dotted prefix) -> prefixes it may import from xlcat's own code.
ALLOWED: dict[str, tuple[str, ...]] = {
    "schemas": ("schemas",),
    "catalog": ("schemas", "catalog"),
    "pipeline.read": ("schemas", "catalog", "pipeline.read"),
    "pipeline.select": ("schemas", "catalog", "pipeline.select"),
    "pipeline.extract": (
        "schemas",
        "catalog",
        "pipeline.read",
        "pipeline.select",
        "pipeline.extract",
    ),
    "pipeline.simulate": ("schemas", "pipeline.simulate"),
    "pipeline.fetch": ("schemas", "catalog", "pipeline.fetch"),
    "pipeline.pileup": (
        "schemas",
        "catalog",
        "pipeline.read",
        "pipeline.select",
        "pipeline.extract",
        "pipeline.pileup",
    ),
    "pipeline.build": (
        "schemas",
        "catalog",
        "pipeline.read",
        "pipeline.select",
        "pipeline.extract",
        "pipeline.build",
    ),
    "pipeline.cli": ("schemas", "catalog", "pipeline"),
}
OWN = ("schemas", "catalog", "pipeline")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in OWN]


def _package(module: str) -> str:
    return max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


SOURCES = sorted(p for top in OWN for p in (ROOT / top).rglob("*.py"))


def test_every_module_belongs_to_a_known_step() -> None:
    modules = [_module_name(p) for p in SOURCES]
    assert len(modules) > 50
    bare = [m for m in modules if m.count(".") == 1 and m.startswith("pipeline.")]
    # no flat modules left in pipeline/: every module sits in a step's package
    assert all(
        m.split(".")[1]
        in {"read", "select", "extract", "build", "cli", "simulate", "fetch", "pileup"}
        for m in bare
    ), bare
    for m in modules:
        if m != "pipeline":
            _package(m)  # raises ValueError (max of nothing) for a module outside ALLOWED


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    module = _module_name(path)
    if module == "pipeline":
        return
    allowed = ALLOWED[_package(module)]
    upward = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imports(path)
        if not any(_within(name, prefix) for prefix in allowed)
    ]
    assert not upward, upward


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule itself: a select module importing the graph is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from pipeline.build.graph import run_build\n")
    names = [name for _, name in _imports(bad)]
    assert names == ["pipeline.build.graph"]
    assert not any(_within(names[0], p) for p in ALLOWED["pipeline.select"])
