"""The reviewer is generic: `review/` imports nothing from the project it happens to live in.

Read statically (each module's import statements, `ast`), so a lazy import inside a function is
caught as well as one at the top; and at run time, as a second net for anything indirect.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "review"
# training_code/ holds flat scripts imported by bare name (`import etl`): those names count too.
FORBIDDEN = frozenset({"pipelines", "infra", "training_code"}
                      | ({p.stem for p in (ROOT / "training_code").glob("*.py")} - set(sys.stdlib_module_names)))


def imported(source: str) -> set[str]:
    """Top-level names of every absolute import in `source`, `importlib.import_module("x.y")` included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")):
            names.add(node.args[0].value)
    return {name.split(".")[0] for name in names}


def forbidden_imports(package: Path = PACKAGE) -> dict[str, set[str]]:
    found = {str(p.relative_to(package)): imported(p.read_text()) & FORBIDDEN for p in sorted(package.rglob("*.py"))}
    return {module: names for module, names in found.items() if names}


def test_review_modules_import_nothing_from_the_project() -> None:
    modules = {p.name for p in PACKAGE.rglob("*.py")}
    assert {"__init__.py", "compare.py", "report.py", "synth.py"} <= modules  # the scan looks where the code is
    assert forbidden_imports() == {}


def test_the_check_sees_every_kind_of_import() -> None:
    source = ("import json\nfrom . import cost\nfrom review.values import render\nimport infra.app\n"
              "def f():\n    from pipelines import paths\n    import etl\n"
              "    return importlib.import_module('training_code.train')\n")
    assert imported(source) & FORBIDDEN == {"infra", "pipelines", "etl", "training_code"}


def test_importing_the_reviewer_loads_no_project_module() -> None:
    code = ("import sys, review.compare, review.report\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(FORBIDDEN)!r})))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
