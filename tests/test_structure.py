"""The package keeps its shape: no import cycles, entry points only where the map says, small modules and
signatures, and "seed" only ever meaning an RNG seed.

Everything is read with ``ast`` (or as text): no coursekit module is imported, so a broken module fails
its own tests, not these. The map is docs/ARCHITECTURE.md.
"""

import ast
import doctest
import io
import json
import re
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "coursekit"
MODULE_FILES = sorted(PACKAGE.rglob("*.py"))
ENTRY_POINTS = {"finetune", "pretrain", "standin_hub", "warm", "make_data", "course"}  # layer 4: python -m
MAX_LINES = 350
MAX_PARAMETERS = 10
# Exceptions to the size limits, each with its reason: "coursekit/x.py" for a module's length,
# "coursekit/x.py::name" (or "::Class.name") for a function's parameter count.
SIZE_ALLOWED: dict[str, str] = {}


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    """``coursekit/evals/text.py`` -> ``coursekit.evals.text``; a package's ``__init__.py`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in MODULE_FILES}


# ---------------------------------------------------------------- import cycles
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, function-local ones included; ``if TYPE_CHECKING:`` bodies skipped."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    children = node.orelse if isinstance(node, ast.If) and _is_type_checking(node.test) else ast.iter_child_nodes(node)
    for child in children:
        yield from _imports(child)


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module an ``ImportFrom`` names, relative imports resolved against ``importer``."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(source: str, importer: str, known: set[str], is_package: bool = False) -> set[str]:
    """The coursekit modules ``source`` (module ``importer``) imports.

    ``import coursekit.x`` and ``from coursekit.x import y`` are edges to ``coursekit.x``; ``from coursekit
    import x`` (or ``from coursekit.pkg import x``) to ``coursekit.x`` (``coursekit.pkg.x``) when that is a module.

    >>> known = {"coursekit", "coursekit.a", "coursekit.evals", "coursekit.evals.text"}
    >>> src = "from coursekit import a\\nfrom coursekit.evals import text\\ndef f():\\n    import coursekit.a"
    >>> sorted(import_edges(src, "coursekit.b", known))
    ['coursekit.a', 'coursekit.evals', 'coursekit.evals.text']
    """
    edges: set[str] = set()
    for node in _imports(ast.parse(source)):
        if isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names}
            continue
        target = _absolute(node, importer, is_package)
        edges.add(target)
        edges |= {f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in known}
    return {e for e in edges if e in known and e != importer and e != "coursekit"}


def import_graph() -> dict[str, set[str]]:
    known = set(MODULES)
    return {name: import_edges(path.read_text(encoding="utf-8"), name, known, path.name == "__init__.py")
            for name, path in MODULES.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """One shortest cycle, as ``a -> b -> a``, per strongly connected group of modules that import each other.

    >>> find_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    ['a -> b -> a']
    >>> find_cycles({"a": {"b"}, "b": set()})
    []
    """
    cycles, seen = [], set()
    for start in sorted(graph):
        if start in seen:
            continue
        path = _shortest_path_back(graph, start)
        if path:
            seen |= set(path)
            cycles.append(" -> ".join(path))
    return cycles


def _shortest_path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest ``start -> ... -> start`` walk along the graph's edges (breadth first), or None."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    back = [node]
                    while back[-1] != start:
                        back.append(parents[back[-1]])
                    return [*reversed(back), start]
                if nxt not in parents:
                    parents[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def test_the_cycle_finder_sees_a_function_local_import_and_skips_type_checking():
    known = {"coursekit.a", "coursekit.b"}
    a = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from coursekit.b import B\n"
    b = "def f():\n    from coursekit import a\n"
    assert import_edges(a, "coursekit.a", known) == set()
    assert import_edges(b, "coursekit.b", known) == {"coursekit.a"}
    graph = {"coursekit.a": {"coursekit.b"}, "coursekit.b": {"coursekit.a"}}
    assert find_cycles(graph) == ["coursekit.a -> coursekit.b -> coursekit.a"]


def test_no_import_cycle_inside_coursekit():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (a module imports, at last, itself):\n" + "\n".join(cycles)


# docs/ARCHITECTURE.md's layers: a module imports from its own layer or the ones below, never above
LAYERS = {
    0: ("coursekit", "runtime", "quiet", "plots"),
    1: ("hub", "data", "assets"),
    2: ("tinygpt", "objectives", "sampling", "token_budget", "lora", "bpe", "chat", "quant", "memory", "evals",
        "gpt2", "preference", "gpu_fit", "seq_cost"),
    3: ("sft", "dpo", "recipes", "shards", "checkpoints", "distributed", "pretraining", "exercises"),
    4: ("finetune", "pretrain", "standin_hub", "standin", "warm", "make_data", "course"),
}
UPWARD_ALLOWED = {  # (importer, imported concept): why
    ("coursekit.assets", "bpe"): "GPT-2's byte-to-character table is the BPE lesson's; assets reads GPT-2's "
                                 "files with it (a constant table, imported in the one function that needs it)",
    ("coursekit.assets", "chat"): "the tiny random models' tokenizer speaks ChatML, whose template chat owns",
}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if module.count(".") else module
    return next(n for n, names in LAYERS.items() if top in names)


def test_every_module_has_a_layer():
    placed = {name for names in LAYERS.values() for name in names}
    unplaced = [m for m in MODULES if (m.split(".")[1] if "." in m else m) not in placed]
    assert not unplaced, f"modules in no layer of docs/ARCHITECTURE.md (add them to LAYERS): {unplaced}"


def test_imports_go_down_the_layers():
    upward = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})" for a, targets in import_graph().items()
              for b in targets if layer_of(b) > layer_of(a) and (a, b.split(".")[1]) not in UPWARD_ALLOWED]
    assert not upward, "imports that go up a layer:\n" + "\n".join(sorted(upward))


# ---------------------------------------------------------------- entry points
def _is_main_guard(node: ast.AST) -> bool:
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.comparators) == 1):
        return False
    sides = [node.test.left, node.test.comparators[0]]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return isinstance(node.test.ops[0], ast.Eq) and names == {"__name__"} and values == {"__main__"}


def test_main_blocks_only_in_the_entry_points():
    found = {module_name(p).removeprefix("coursekit.") for p in MODULE_FILES
             if any(_is_main_guard(n) for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))))}
    assert found <= ENTRY_POINTS, f"`if __name__ == \"__main__\":` outside layer 4: {sorted(found - ENTRY_POINTS)}"


# ---------------------------------------------------------------- sizes
def _counted_parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Parameters a caller can name: positional and keyword-only; not self/cls, not *args/**kwargs."""
    params = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    return len([a for a in params if a.arg not in ("self", "cls")])


def public_signatures(source: str) -> Iterator[tuple[str, int]]:
    """``(name, parameters)`` of each public function and public method (``__init__`` included) of ``source``.

    >>> dict(public_signatures("def f(a, *args, b, **kw): ...\\nclass C:\\n    def m(self, x): ...\\n"
    ...                        "    def _p(self, y): ..."))
    {'f': 2, 'C.m': 1}
    """
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.parse(source).body:
        if isinstance(node, functions) and not node.name.startswith("_"):
            yield node.name, _counted_parameters(node)
        elif isinstance(node, ast.ClassDef):
            for fn in node.body:
                if isinstance(fn, functions) and (not fn.name.startswith("_") or fn.name == "__init__"):
                    yield f"{node.name}.{fn.name}", _counted_parameters(fn)


@pytest.mark.parametrize("path", MODULE_FILES, ids=rel)
def test_module_is_at_most_350_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES or rel(path) in SIZE_ALLOWED, f"{rel(path)}: {lines} lines (at most {MAX_LINES})"


@pytest.mark.parametrize("path", MODULE_FILES, ids=rel)
def test_public_functions_take_at_most_10_parameters(path):
    too_many = [f"{name} ({n})" for name, n in public_signatures(path.read_text(encoding="utf-8"))
                if n > MAX_PARAMETERS and f"{rel(path)}::{name}" not in SIZE_ALLOWED]
    assert not too_many, f"{rel(path)}: more than {MAX_PARAMETERS} parameters: {', '.join(too_many)}"


# ---------------------------------------------------------------- "seed" means an RNG seed
GAP = r"[\s#*]+"  # between two words: spaces, a line break, a comment's '#', markdown's bold
RNG_SEED = [re.compile(p, re.IGNORECASE) for p in (
    # seed as a Python name in a docstring's example or a string: a keyword argument, field or parameter, an
    # operand, an attribute, an f-string field (in code itself, every NAME token seed is one: _python_names)
    r"\bseed\s*=", r"\bseed\s*:\s*(?:int\b|\d)", r"\bseed\s*[+\-]\s*\w", r"=\s*seed\b",
    r"\(\s*seed\s*[),+\-]", r"\.seed\b", r"\{seed\}", r"`+seed`+",
    # seed in prose, where the words around it say it is an RNG's
    rf"\b(?:random|fixed|another|any|every|this|lesson|a){GAP}seed\b", r"\bsame\b[\w ,]{0,20}?\bseed\b",
    rf"\bseed{GAP}(?:\d|\{{|`)", rf"\bseed{GAP}to{GAP}seed\b", rf"\bby{GAP}seed\b",
    rf"\bseed{GAP}(?:used|shifted|of{GAP}every)\b", rf"\bseed{GAP}(?:python|everything)\b",
)] + [re.compile(r"\bSEED\b")]  # the constant (case matters)
SEED_WORD = re.compile(r"\bseed\b", re.IGNORECASE)


def _python_names(text: str) -> set[int]:
    """Where ``text``, read as Python, has the name ``seed`` (a NAME token); nothing if it is not Python."""
    starts, offset = [], 0
    for line in io.StringIO(text):
        starts.append(offset)
        offset += len(line)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return set()
    return {starts[t.start[0] - 1] + t.start[1] for t in tokens
            if t.type == tokenize.NAME and t.string.lower() == "seed"}


def non_rng_seeds(text: str, python: bool = False) -> list[str]:
    """Each whole word "seed" of ``text`` that no RNG pattern covers, with its line number and context.

    ``python``: ``text`` is Python code, where the name ``seed`` is an RNG seed's (prose is in its strings).

    >>> non_rng_seeds("torch.manual_seed(seed)  # the random seed\\nSEED = seed_everything(0)")
    []
    >>> non_rng_seeds("for seed in (0, 1):  # the Axolotl seed", python=True)
    ["line 1: 'for seed in (0, 1):  # the Axolotl seed'"]
    """
    covered = _python_names(text) if python else set()
    for pattern in RNG_SEED:
        for m in pattern.finditer(text):
            covered |= set(range(m.start(), m.end()))
    found = []
    for m in SEED_WORD.finditer(text):
        if m.start() not in covered:
            line = text.count("\n", 0, m.start()) + 1
            found.append(f"line {line}: {text.splitlines()[line - 1].strip()[:100]!r}")
    return found


def _seed_sources() -> Iterator[tuple[str, str, bool]]:
    """``(where, text, is Python)`` for coursekit's code and docs, every notebook cell, the recipes and the README."""
    for path in sorted([*PACKAGE.rglob("*.py"), *PACKAGE.rglob("*.md"), *(ROOT / "recipes").glob("*"),
                        ROOT / "README.md"]):
        if path.is_file():
            yield rel(path), path.read_text(encoding="utf-8"), path.suffix == ".py"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            source = cell["source"]
            yield (f"{rel(path)} cell {i}", "".join(source) if isinstance(source, list) else source,
                   cell["cell_type"] == "code")


def test_the_seed_check_knows_rng_seeds_from_other_seeds():
    rng = ["SEED = seed_everything(0)  # 0, shifted: the seed of every sampling call below",
           "train_rows = arithmetic_rows(n, seed=0)  # another seed: held out", "seed: 0", "rng = random.Random(seed)",
           "Sampling varies, but a fixed **seed** reproduces it; try another seed (seed 0 or 1).",
           "holds for any\n# seed", "the same seed, data order and kernels", "random.seed(used)"]
    assert [non_rng_seeds(text) for text in rng] == [[]] * len(rng)
    assert non_rng_seeds("if seed is not None:\n    torch.manual_seed(seed)", python=True) == []
    other = ["the Axolotl seed", "the seed's table", "the seed recipe", "seed the table with rows"]
    assert all(non_rng_seeds(text) for text in other)


def test_the_helpers_own_examples():
    assert doctest.testmod(sys.modules[__name__]).failed == 0


def test_seed_only_ever_means_an_rng_seed():
    found = [f"{where} {hit}" for where, text, python in _seed_sources() for hit in non_rng_seeds(text, python)]
    assert not found, ('"seed" means an RNG seed only; say what else is meant in other words:\n' + "\n".join(found))
