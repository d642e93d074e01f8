"""The code's shape is a contract: service folders, module size, docstrings, no pickle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists())
MODULES = sorted((ROOT / "libs").rglob("*.py")) + sorted((ROOT / "services").rglob("*.py"))
MAX_LINES = 400


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_every_service_has_the_house_shape(service: Path) -> None:
    present = {p.name for p in service.glob("*.py")}
    assert {"__main__.py", "config.py", "handlers.py"} <= present, sorted(present)
    assert present & {"api.py", "worker.py"}, f"{service.name} has neither api.py nor worker.py"


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_handlers_do_no_io(service: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(_tree(service / "handlers.py")):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"aiokafka", "redis", "httpx", "fastapi", "starlette"}


@pytest.mark.parametrize("module", MODULES, ids=_name)
def test_modules_are_short_and_say_what_they_are_for(module: Path) -> None:
    lines = module.read_text().count("\n")
    assert lines <= MAX_LINES, f"{_name(module)} has {lines} lines"
    if module.name != "__init__.py" or lines:
        assert ast.get_docstring(_tree(module)), f"{_name(module)} has no module docstring"


@pytest.mark.parametrize("module", MODULES, ids=_name)
def test_nothing_is_pickled(module: Path) -> None:
    for node in ast.walk(_tree(module)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        assert not any(n.split(".")[0] in {"pickle", "dill", "cloudpickle"} for n in names)


@pytest.mark.parametrize(
    "module",
    [m for m in MODULES if m.is_relative_to(ROOT / "libs") and m.name != "__main__.py"],
    ids=_name,
)
def test_library_modules_declare_their_api(module: Path) -> None:
    if module.name == "__init__.py" and not any(
        isinstance(n, ast.ImportFrom) for n in _tree(module).body
    ):
        return  # a package that only documents itself
    declared = [
        n
        for n in _tree(module).body
        if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)
    ]
    assert declared, f"{_name(module)} has no __all__"
