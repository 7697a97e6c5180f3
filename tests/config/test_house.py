"""The house rules that tools can check: no name that starts with an underscore is imported from
another module (make it public, or move it: shared/STYLE.md), and no test file imports from
another test file (shared helpers live in a conftest.py or a helpers.py).

ruff has a rule for the first (PLC2701, import-private-name), but it is a preview rule and it
does not flag imports inside one top-level package (billing.lifecycle importing
billing.services._invoice_issue passes it), which is the case that matters here: hence this
reading of the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_SOURCE = {".venv", ".git", "node_modules", "var", "static", "templates", "docs", "migrations", "__pycache__"}



def python_files(root: Path = ROOT):
    for path in sorted(root.rglob("*.py")):
        if not NOT_SOURCE.intersection(path.relative_to(root).parts):
            yield path


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_of(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported_from(node: ast.ImportFrom, path: Path, root: Path) -> str:
    """The absolute name of the module a `from ... import` reads from."""
    if not node.level:
        return node.module or ""
    package = _module_of(path, root)
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_names_imported(root: Path = ROOT) -> list[str]:
    """Every private name imported from another module, as "file:line: module._name"."""
    found = []
    for path in python_files(root):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = _imported_from(node, path, root)
                names = [alias.name for alias in node.names if _private(alias.name)]
            elif isinstance(node, ast.Import):
                module = ""
                names = [alias.name for alias in node.names if any(map(_private, alias.name.split(".")[1:]))]
            else:
                continue
            where = path.relative_to(root)
            found += [f"{where}:{node.lineno}: {module + '.' if module else ''}{name}" for name in names]
    return found


def test_no_private_name_is_imported_from_another_module():
    violations = private_names_imported()
    assert violations == [], "make these names public (drop the underscore) or move them:\n" + "\n".join(violations)


def test_no_test_file_imports_from_another_test_file():
    tests = ROOT / "tests"
    found = []
    for path in python_files(tests):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                modules = [_imported_from(node, path, ROOT)]
                modules += [f"{modules[0]}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            if any(module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_") for module in modules):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "move what these import to a conftest.py or a helpers.py:\n" + "\n".join(found)


def test_the_checker_sees_private_imports_in_every_form(tmp_path):
    """The checker itself: absolute, relative and lazy imports of a private name are found;
    dunders, public names and a module's own names are not."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("from ._impl import _hidden\n")
    (tmp_path / "app" / "_impl.py").write_text("_hidden = 1\npublic = 2\n")
    (tmp_path / "app" / "user.py").write_text(
        "from __future__ import annotations\n"
        "from app._impl import public\n"
        "from app import _impl\n"
        "import app._impl\n"
        "def f():\n"
        "    from .._x import _y\n"
        "    from .user import __version__\n"
    )
    assert private_names_imported(tmp_path) == [
        "app/__init__.py:1: app._impl._hidden",
        "app/user.py:3: app._impl",
        "app/user.py:4: app._impl",
        "app/user.py:6: _x._y",
    ]
