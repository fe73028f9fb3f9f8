"""The layout's promises that no single module can keep: no import cycle in the project's packages,
and each side of the file contract imports nothing from the other."""

from __future__ import annotations

from pathlib import Path

from pipelines.bundles import imported_modules

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pipelines", "infra", "review")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """module -> the project modules it imports (anywhere in it: top level, functions, TYPE_CHECKING)."""
    files = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py")) if "lambdas" not in p.parts]
    modules = {module_name(p, root): p for p in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = imported_modules(path, root)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 60  # the scan sees the packages
    assert cycles(graph) == []


def test_a_cycle_would_be_found(tmp_path: Path) -> None:
    """As local.py and local_registry.py were: one imports the other at the top, the other it back
    under TYPE_CHECKING."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "local.py").write_text("from pkg import registry\n")
    (tmp_path / "pkg" / "registry.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.local import Run\n")
    (tmp_path / "pkg" / "other.py").write_text("from pkg.registry import x\n")
    assert cycles(import_graph(tmp_path, ("pkg",))) == [["pkg.local", "pkg.registry"]]


def test_the_pipeline_side_imports_no_training_code() -> None:
    """pipelines/ runs training_code/'s scripts as processes (the file contract), never imports them."""
    code = {p.stem for p in (ROOT / "training_code").glob("*.py")} | {
        p.parent.name for p in (ROOT / "training_code").glob("*/__init__.py")}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            bad = {m for m in imported_modules(path, ROOT) if m.split(".")[0] in code}
            assert not bad, (path, bad)
