"""training_code/'s layout: thin entry scripts at the root, the code in packages, no script imported.

SageMaker, Azure ML and the local runner start `python <script>.py` with training_code/ as the
working directory. A script imported by another module runs outside that contract (and two copies of
one module can load, `__main__` and its name), so only packages are imported, by anything.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CODE = Path(__file__).resolve().parents[2] / "training_code"


def packages(root: Path) -> set[str]:
    return {p.parent.name for p in root.glob("*/__init__.py")}


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import, `importlib.import_module("...")` and `__import__("...")`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")):
            found.append((node.lineno, node.args[0].value))
    return found


def layout_problems(root: Path) -> list[str]:
    """What breaks the layout: a script imported anywhere, a relative import, an entry script importing
    anything but the standard library and training_code's packages, a package named like a script."""
    scripts = {p.stem for p in root.glob("*.py")}
    pkgs = packages(root)
    problems = [f"{name}/: a package named like the script {name}.py shadows it" for name in sorted(pkgs & scripts)]
    modules = sorted(root.glob("*.py")) + sorted(p for pkg in pkgs for p in (root / pkg).rglob("*.py"))
    for path in modules:
        where = path.relative_to(root)
        for line, name in imported(ast.parse(path.read_text(), str(path))):
            top = name.split(".")[0]
            if name.startswith("."):
                problems.append(f"{where}:{line}: relative import {name!r}; import from training_code's root")
            elif top in scripts:
                problems.append(f"{where}:{line}: imports the entry script {top}.py; import its package instead")
            elif path.parent == root and top not in pkgs and top not in sys.stdlib_module_names:
                problems.append(f"{where}:{line}: entry script imports {name!r}; only its package may")
    return problems


def test_no_entry_script_is_imported_and_scripts_import_only_packages() -> None:
    assert layout_problems(CODE) == []
    assert {"common", "spark_etl", "tabular", "image", "monitoring"} <= packages(CODE)


@pytest.mark.parametrize(("path", "source", "problem"), [
    ("tabular/evaluate.py", "import train\n", "imports the entry script train.py"),
    ("tabular/evaluate.py", "from train import load_split\n", "imports the entry script train.py"),
    ("tabular/evaluate.py", "def f() -> None:\n    import train as t\n", "imports the entry script train.py"),
    ("tabular/evaluate.py", "import importlib\nimportlib.import_module('train')\n", "imports the entry script"),
    ("evaluate.py", "import train\n", "imports the entry script train.py"),
    ("tabular/evaluate.py", "from . import train\n", "relative import"),
    ("evaluate.py", "import numpy\n", "entry script imports 'numpy'"),
    ("evaluate/__init__.py", "", "shadows it"),
])
def test_the_check_catches_an_imported_script(tmp_path: Path, path: str, source: str, problem: str) -> None:
    (tmp_path / "tabular").mkdir()
    (tmp_path / "tabular" / "__init__.py").write_text('"""The workload."""\n')
    (tmp_path / "tabular" / "train.py").write_text("def main() -> int:\n    return 0\n")
    (tmp_path / "train.py").write_text("import sys\n\nfrom tabular.train import main\n\nsys.exit(main())\n")
    (tmp_path / "evaluate.py").write_text("from tabular.evaluate import main\n")
    (tmp_path / "tabular" / "evaluate.py").write_text("def main() -> int:\n    return 0\n")
    assert layout_problems(tmp_path) == []
    (tmp_path / path).parent.mkdir(exist_ok=True)
    (tmp_path / path).write_text(source)
    (found,) = layout_problems(tmp_path)
    assert problem in found
