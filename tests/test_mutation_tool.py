"""tools/mutation.py: the mutants it makes, and the run that counts which ones a module's tests kill."""

import ast

import pytest
from tool_runs import load_tool

mutation = load_tool("mutation")

CALC = '''"""A toy module: 1 + 1 in a docstring is documentation, not code."""


def add(a: int, b: int = 1) -> int:
    """The sum of 2 numbers."""
    return a + b


def is_positive(x: int) -> bool:
    return x > 0
'''
TEST_ADD = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TEST_SIGN = "from calc import is_positive\n\n\ndef test_sign():\n    assert is_positive(1) and not is_positive(0)\n"


def test_the_mutants_change_code_not_docstrings_or_annotations():
    mutants = mutation.mutants_of(CALC)
    got = [(m.line, m.change) for m in mutants]
    assert got == [(6, "+ -> -"), (6, "return value -> return None"), (4, "1 -> 2"), (10, "0 -> 1"),
                   (10, "> -> >="), (10, "return value -> return None")], got
    clean = ast.unparse(ast.parse(CALC))
    for m in mutants:
        changed = mutation.mutate(CALC, m.index)
        assert changed != clean and ast.get_docstring(ast.parse(changed)) == ast.get_docstring(ast.parse(CALC)), (
            f"mutant {m.index} ({m.change}) must change the code and keep the docstring:\n{changed}")
    assert "return a - b" in mutation.mutate(CALC, 0) and "-> int" in mutation.mutate(CALC, 0)


def test_statements_raises_and_arguments_are_mutated():
    src = "def f(xs, n):\n    if n < 0:\n        raise ValueError(n)\n    xs.append(n)\n    return pow(n, 2)\n"
    changes = [m.change for m in mutation.mutants_of(src)]
    for change in ("remove the raise", "remove the statement", "swap the first two arguments", "< -> <="):
        assert change in changes, f"{change!r} missing from {changes}"


def _toy_repo(tmp_path, tests):
    root = tmp_path / "toy"
    root.mkdir()
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(tests)
    return root


def test_a_full_test_kills_every_mutant(tmp_path):
    full = ("from calc import add, is_positive\n\n\ndef test_add():\n    assert add(2, 3) == 5 and add(2) == 3\n\n\n"
            "def test_sign():\n    assert is_positive(1) and not is_positive(0)\n")
    root = _toy_repo(tmp_path, full)
    mutants = mutation.mutation_run(root, "calc.py", ["test_calc.py"], timeout=60, progress=False)
    assert [m.outcome for m in mutants] == ["killed"] * 6, [(m.line, m.change, m.outcome) for m in mutants]
    assert (root / "calc.py").read_text() == CALC, "the run must not touch the repository it copies"
    assert mutation.summary("calc.py", mutants).startswith("calc.py: 6/6 killed (100%; 0 by timeout)")


def test_a_weak_test_leaves_survivors_listed_with_their_lines(tmp_path):
    root = _toy_repo(tmp_path, TEST_ADD)
    mutants = mutation.mutation_run(root, "calc.py", ["test_calc.py"], timeout=60, progress=False)
    report = mutation.summary("calc.py", mutants)
    assert report.splitlines() == ["calc.py: 2/6 killed (33%; 0 by timeout)",
                                   "- survived: line 4: 1 -> 2",
                                   "- survived: line 10: 0 -> 1", "- survived: line 10: > -> >=",
                                   "- survived: line 10: return value -> return None"], report


def test_bad_inputs_name_the_fix(tmp_path):
    root = _toy_repo(tmp_path, "def test_broken():\n    assert False\n")
    with pytest.raises(SystemExit, match="nope.py: no such file under .*give the module's path"):
        mutation.mutation_run(root, "nope.py", ["test_calc.py"])
    with pytest.raises(SystemExit, match="no tests to run; pass --tests"):
        mutation.mutation_run(root, "calc.py", [])
    with pytest.raises(SystemExit, match="do not pass on the unmutated module .*fix them first"):
        mutation.mutation_run(root, "calc.py", ["test_calc.py"], timeout=60, progress=False)


def test_tests_that_never_import_the_module_are_refused(tmp_path):
    root = _toy_repo(tmp_path, "def test_unrelated():\n    assert sum([2, 3]) == 5\n")
    with pytest.raises(SystemExit, match="pass with the module broken, so they do not import the copy"):
        mutation.mutation_run(root, "calc.py", ["test_calc.py"], timeout=60, progress=False)


def test_the_default_map_names_existing_tests():
    for module in mutation.DEFAULT_TESTS:
        tests = mutation.default_tests(module)
        mutation.check_inputs(mutation.ROOT, module, tests)  # raises SystemExit naming what is missing
        assert tests[-1].startswith("tests/test_doctests.py::test_docstring_examples_pass["), tests
