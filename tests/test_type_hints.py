"""The public API is typed: every public function and method in coursekit annotates its parameters and return."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "coursekit"


def _public_functions(tree: ast.Module) -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            found.append((node.name, node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            found += [(f"{node.name}.{f.name}", f) for f in node.body if isinstance(f, ast.FunctionDef)
                      and (not f.name.startswith("_") or f.name == "__init__")]
    return found


def missing_hints(source: str) -> list[str]:
    """``name: what is missing`` for each public function of ``source`` that lacks an annotation."""
    problems = []
    for name, fn in _public_functions(ast.parse(source)):
        params = [a for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs if a.arg not in ("self", "cls")]
        params += [a for a in (fn.args.vararg, fn.args.kwarg) if a is not None]
        missing = [a.arg for a in params if a.annotation is None] + (["return"] if fn.returns is None else [])
        if missing:
            problems.append(f"{name}: {', '.join(missing)}")
    return problems


def test_the_checker_catches_a_missing_hint():
    src = "def ok(a: int) -> int: ...\ndef bad(a, b: int): ...\nclass C:\n    def m(self, x) -> None: ...\n"
    assert missing_hints(src) == ["bad: a, return", "C.m: x"]


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_public_api_is_annotated(path):
    assert missing_hints(path.read_text(encoding="utf-8")) == []
