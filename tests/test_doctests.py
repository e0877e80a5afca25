"""Every worked example in a coursekit docstring runs: an example nobody runs is a claim nobody checks.

Each module's ``>>>`` examples run as ``doctest.testmod`` does (standard flags, so
``python -m doctest coursekit/<module>.py`` agrees); a failure prints doctest's own report.
"""

import ast
import doctest
import functools
import importlib
import importlib.util
import inspect
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


def _used_names(examples):
    """Names an example calls (``f(...)``, ``x.f(...)``) and names it reads (``x.attr``, ``NAME``)."""
    called, read = set(), set()
    for example in examples:
        for node in ast.walk(ast.parse(example.source)):
            if isinstance(node, ast.Call):
                func = node.func
                called.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", None))
            elif isinstance(node, ast.Attribute):
                read.add(node.attr)
            elif isinstance(node, ast.Name):
                read.add(node.id)
    return called, read


def _public_names(module):
    """What a module offers: its public functions, classes and constants (a package's re-exports and submodules
    included), not what it imported from elsewhere (``json``, ``Path``)."""
    def ours(value):
        origin = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        return origin is None or origin.startswith("coursekit")  # a constant (dict, str) has no __module__

    names = {name for name, value in vars(module).items() if not name.startswith("_") and ours(value)}
    return names | {m.name for m in pkgutil.iter_modules(getattr(module, "__path__", []))}


def example_problems(module):
    """One line per docstring whose examples do not exercise what they document or show no expected output."""
    problems = []
    for test in doctest.DocTestFinder().find(module):
        if not test.examples:
            continue
        if not any(e.want.strip() or e.exc_msg for e in test.examples):
            problems.append(f"{test.name}: no example shows an expected output (a bare `>>> f(x)` checks nothing)")
        called, read = _used_names(test.examples)
        if test.name == module.__name__:
            if not (called | read) & _public_names(module):
                problems.append(f"{test.name}: the module's examples use nothing the module defines")
            continue
        short = test.name.rsplit(".", 1)[-1]
        owner = module
        for part in test.name.removeprefix(module.__name__ + ".").split(".")[:-1]:
            owner = getattr(owner, part)
        is_property = isinstance(inspect.getattr_static(owner, short, None), property | functools.cached_property)
        if short not in called and not (is_property and short in read):
            problems.append(f"{test.name}: its examples never call {short}()")
    return problems


# Problems allowed to stay, per module: none. A fix belongs in the module itself.
# The gate fails on any new problem and on an entry here that is fixed.
NOT_YET_FIXED: dict[str, list[str]] = {}


@pytest.mark.parametrize("name", MODULES)
def test_every_example_exercises_what_it_documents(name):
    problems = example_problems(importlib.import_module(f"coursekit.{name}"))
    assert problems == NOT_YET_FIXED.get(name, []), f"coursekit.{name}: {problems}"


def test_the_example_gate_rejects_hollow_examples(tmp_path):
    source = '''
"""A toy.

>>> 1
1
"""
def double(x: int) -> int:
    """Twice x.

    >>> 1 + 1
    2
    """
    return 2 * x


def half(x: int) -> float:
    """Half x.

    >>> y = half(4)
    """
    return x / 2


class Box:
    """A box.

    >>> Box().size
    3
    """
    @property
    def size(self) -> int:
        """Its size.

        >>> Box().size
        3
        """
        return 3
'''
    (tmp_path / "coursekit_toy.py").write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("coursekit_toy", tmp_path / "coursekit_toy.py")
    toy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy)
    problems = example_problems(toy)
    assert problems == ["coursekit_toy: the module's examples use nothing the module defines",
                        "coursekit_toy.double: its examples never call double()",
                        "coursekit_toy.half: no example shows an expected output (a bare `>>> f(x)` checks nothing)"
                        ], problems
