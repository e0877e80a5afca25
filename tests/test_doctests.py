"""Every worked example in a coursekit docstring runs: an example nobody runs is a claim nobody checks.

Each module's ``>>>`` examples run as ``doctest.testmod`` does (standard flags, so
``python -m doctest coursekit/<module>.py`` agrees); a failure prints doctest's own report.
"""

import doctest
import importlib
import pkgutil

import pytest

import coursekit

MODULES = sorted(m.name.removeprefix("coursekit.") for m in pkgutil.walk_packages(coursekit.__path__, "coursekit."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    module = importlib.import_module(f"coursekit.{name}")
    result = doctest.testmod(module, report=False)
    assert result.failed == 0, (f"{result.failed} of {result.attempted} examples in coursekit.{name} failed; "
                                "doctest's report is in the captured stdout")


@pytest.mark.parametrize("name", MODULES)
def test_every_module_carries_a_worked_example(name):
    tests = doctest.DocTestFinder().find(importlib.import_module(f"coursekit.{name}"))
    assert sum(len(t.examples) for t in tests) > 0, f"coursekit.{name} has no >>> example in its docstrings"
