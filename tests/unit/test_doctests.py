"""The docstring examples of ``vigil.drift`` run, and every public statistic has one."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import vigil.drift
from vigil.drift import stats

MODULES = [
    importlib.import_module(m.name)
    for m in pkgutil.iter_modules(vigil.drift.__path__, "vigil.drift.")
]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


STATISTICS = [
    name
    for name in stats.__all__
    if inspect.isfunction(getattr(stats, name)) and not name.startswith("_")
]


@pytest.mark.parametrize("name", STATISTICS)
def test_every_public_statistic_has_an_example(name: str) -> None:
    tests = doctest.DocTestFinder().find(getattr(stats, name), name, module=stats)
    assert sum(len(t.examples) for t in tests) >= 1, f"stats.{name} has no docstring example"
