"""Mutation run: change one thing in a module, run its tests, and count the changes the tests notice.

A mutant is the module with one small change: an operator swapped (``+``/``-``, ``<``/``<=``, ``and``/``or``),
a ``not`` dropped, a number moved by one, ``True``/``False`` flipped, a ``return`` value replaced by ``None``,
a statement (a call, an augmented assignment, a ``raise``) removed, or the first two positional arguments of a
call swapped. Each mutant is written over the module in a copy of the repository (the working tree is never
touched) and the module's tests run there with ``pytest -x``; a failing run *kills* the mutant, a passing one
lets it *survive* (a behaviour no test pins down, or an equivalent change), a run past the timeout counts as
killed. Docstrings and annotations are not mutated.

    python tools/mutation.py coursekit/bpe/basic.py --tests tests/test_bpe.py
    python tools/mutation.py coursekit/lora.py            # tests from DEFAULT_TESTS
    python tools/mutation.py --list                       # the default module -> tests map

Not part of CI: a module takes minutes (one pytest run per mutant, on one worker).
"""

import argparse
import ast
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The from-scratch modules and the tests that own them (issue 13).
DEFAULT_TESTS: dict[str, list[str]] = {
    "coursekit/bpe/basic.py": ["tests/test_bpe.py", "tests/test_reference_minbpe.py"],
    "coursekit/bpe/ranks.py": ["tests/test_bpe.py", "tests/test_gpt2_tokenizer.py"],
    "coursekit/bpe/tokenizer.py": ["tests/test_bpe_tokenizer_parts.py", "tests/test_bpe.py", "tests/test_reference_minbpe.py"],
    "coursekit/bpe/files.py": ["tests/test_bpe.py"],
    "coursekit/bpe/fast.py": ["tests/test_bpe.py", "tests/test_reference_minbpe.py"],
    "coursekit/lora.py": ["tests/test_lora.py", "tests/test_lora_param_count.py",  # and the 4-bit count:
                          "tests/test_quant.py::test_embeddings_stay_unquantized_and_scales_are_counted"],
    "coursekit/evals/bleu_metric.py": ["tests/test_evals.py", "tests/test_reference_bleu.py"],
    "coursekit/evals/rouge_metric.py": ["tests/test_evals.py", "tests/test_reference_rouge.py"],
    "coursekit/evals/overlap.py": ["tests/test_evals.py", "tests/test_reference_squad.py"],
    "coursekit/evals/text.py": ["tests/test_evals.py"],
    "coursekit/evals/lm.py": ["tests/test_evals.py", "tests/test_evals_lm.py"],
    "coursekit/evals/answers.py": ["tests/test_answers.py"],
    "coursekit/evals/diversity.py": ["tests/test_diversity.py"],
    "coursekit/evals/price.py": ["tests/test_price.py"],
    "coursekit/evals/checks.py": ["tests/test_evals.py"],
    "coursekit/gpt2.py": ["tests/test_gpt2.py", "tests/test_gpt2_from_hf.py"],
    "coursekit/pretraining.py": ["tests/test_pretraining_checks.py", "tests/test_pretraining_parts.py",
                                 "tests/test_pretraining.py"],  # the fast ones first: -x stops at the first kill
    "coursekit/chat.py": ["tests/test_chat.py"],
}


def default_tests(module: str) -> list[str]:
    """The module's test files from DEFAULT_TESTS, plus its own docstring examples (tests/test_doctests.py)."""
    if module not in DEFAULT_TESTS:
        return []
    name = module.removeprefix("coursekit/").removesuffix(".py").replace("/", ".")
    return [*DEFAULT_TESTS[module], f"tests/test_doctests.py::test_docstring_examples_pass[{name}]"]
SKIP_DIRS = {".git", ".venv", "runs", "__pycache__", ".pytest_cache", ".ruff_cache", "mutants"}
ENV = {"COURSEKIT_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}

BINOPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
          ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd}
CMPOPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
          ast.Is: ast.IsNot, ast.IsNot: ast.Is, ast.In: ast.NotIn, ast.NotIn: ast.In}
BOOLOPS = {ast.And: ast.Or, ast.Or: ast.And}
SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
          ast.BitAnd: "&", ast.BitOr: "|", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
          ast.NotEq: "!=", ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in", ast.And: "and",
          ast.Or: "or"}


@dataclass
class Mutant:
    """One change: its number in the module's walk order, the line it is on, and what it does."""
    index: int
    line: int
    change: str
    outcome: str = "not run"  # killed | survived | timeout
    seconds: float = 0.0


class _Mutator(ast.NodeTransformer):
    """Walks a module numbering every possible change; with ``target`` set, it also makes change ``target``."""

    def __init__(self, target: int | None = None) -> None:
        self.target, self.sites = target, []

    def _site(self, node: ast.AST, change: str) -> bool:
        self.sites.append((getattr(node, "lineno", 0), change))
        return len(self.sites) - 1 == self.target

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        # the body, decorators and defaults only: annotations are not behaviour
        node.body = [self.visit(s) for s in node.body]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [d if d is None else self.visit(d) for d in node.args.kw_defaults]
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = [self.visit(s) for s in node.body]
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        new = BINOPS.get(type(node.op))
        if new and self._site(node, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}"):
            node.op = new()
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            new = CMPOPS.get(type(op))
            if new and self._site(node, f"{SYMBOL[type(op)]} -> {SYMBOL[new]}"):
                node.ops[i] = new()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        new = BOOLOPS[type(node.op)]
        if self._site(node, f"{SYMBOL[type(node.op)]} -> {SYMBOL[new]}"):
            node.op = new()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._site(node, "not x -> x"):
            return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._site(node, f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int | float) and self._site(node, f"{value!r} -> {value + 1!r}"):
            return ast.copy_location(ast.Constant(value + 1), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        is_none = node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
        if not is_none and self._site(node, "return value -> return None"):
            node.value = ast.Constant(None)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        plain = len(node.args) >= 2 and not any(isinstance(a, ast.Starred) for a in node.args[:2])
        if plain and self._site(node, "swap the first two arguments"):
            node.args[0], node.args[1] = node.args[1], node.args[0]
        return node

    def _removable(self, node: ast.stmt, what: str) -> ast.AST:
        self.generic_visit(node)
        if self._site(node, f"remove the {what}"):
            return ast.copy_location(ast.Pass(), node)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        if isinstance(node.value, ast.Constant):  # a bare string: documentation
            return node
        return self._removable(node, "statement")

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        return self._removable(node, "augmented assignment")

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        return self._removable(node, "raise")


def mutants_of(source: str) -> list[Mutant]:
    """Every change the mutator can make to ``source``, in walk order."""
    walker = _Mutator()
    walker.visit(ast.parse(source))
    return [Mutant(i, line, change) for i, (line, change) in enumerate(walker.sites)]


def mutate(source: str, index: int) -> str:
    """``source`` with change number ``index`` made (comments and layout are not kept: ``ast.unparse``)."""
    tree = _Mutator(index).visit(copy.deepcopy(ast.parse(source)))
    return ast.unparse(ast.fix_missing_locations(tree))


def copy_repo(root: Path, into: Path) -> Path:
    """A copy of ``root`` without its git folder, virtual environment and caches."""
    dest = into / root.name
    shutil.copytree(root, dest, ignore=lambda _d, names: [n for n in names if n in SKIP_DIRS], symlinks=True)
    return dest


def run_tests(repo: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """('passed' | 'failed' | 'timeout', seconds) for ``pytest -x`` on ``tests`` (paths, node ids, ``-k`` ...)
    inside ``repo``."""
    env = {**os.environ, **ENV, "PYTHONPATH": str(repo)}  # the copy's package, not the editable install
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start
    return ("passed" if done.returncode == 0 else "failed"), time.monotonic() - start


def check_inputs(root: Path, module: str, tests: list[str]) -> None:
    """Fail before any long work on a module or test path that is not there, or a module with no tests."""
    if not (root / module).is_file():
        raise SystemExit(f"{module}: no such file under {root}; give the module's path from the repository root")
    if not tests:
        raise SystemExit(f"{module}: no tests to run; pass --tests tests/test_x.py (or add it to DEFAULT_TESTS)")
    missing = [t for t in tests if not t.startswith("-") and not (root / t.split("::")[0]).is_file()]
    if missing:
        raise SystemExit(f"--tests {' '.join(missing)}: no such file under {root}; give paths from the repository root")


def mutation_run(root: Path, module: str, tests: list[str], timeout: float | None = None,
                 limit: int | None = None, progress: bool = True, start: int = 1) -> list[Mutant]:
    """Run every mutant of ``module`` (or the first ``limit``, from number ``start``) against ``tests`` in a copy
    of ``root``. ``start`` resumes a run cut short: the numbers stay those of the whole run."""
    check_inputs(root, module, tests)
    original = (root / module).read_text(encoding="utf-8")
    every = mutants_of(original)
    if not 1 <= start <= len(every):
        raise SystemExit(f"{module}: --start {start} is outside its mutants 1-{len(every)}")
    mutants = every[:limit][start - 1:]
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        repo = copy_repo(root, Path(tmp))
        target = repo / module
        target.write_text(ast.unparse(ast.parse(original)), encoding="utf-8")  # same layout as every mutant
        outcome, baseline = run_tests(repo, tests, timeout=timeout or 3600)
        if outcome != "passed":
            raise SystemExit(f"{module}: its tests {tests} do not pass on the unmutated module ({outcome}); "
                             "fix them first, a mutation run needs a green start")
        limit_s = timeout or 3 * baseline + 10
        target.write_text('raise RuntimeError("mutation run: this copy is the one under test")\n', encoding="utf-8")
        if run_tests(repo, tests, limit_s)[0] == "passed":  # the tests import another copy (an installed one)
            raise SystemExit(f"{module}: its tests pass with the module broken, so they do not import the copy; "
                             "run from a checkout whose package is importable from the repository root")
        for m in mutants:
            target.write_text(mutate(original, m.index), encoding="utf-8")
            result, m.seconds = run_tests(repo, tests, limit_s)
            m.outcome = {"passed": "survived", "failed": "killed"}.get(result, result)
            if progress:
                print(f"  {m.index + 1}/{len(every)} line {m.line}: {m.change}: {m.outcome}", file=sys.stderr)
    return mutants


def summary(module: str, mutants: list[Mutant]) -> str:
    """The kill rate and every survivor with its line, as Markdown."""
    killed = sum(m.outcome in ("killed", "timeout") for m in mutants)
    timeouts = sum(m.outcome == "timeout" for m in mutants)
    rate = killed / len(mutants) if mutants else 1.0
    lines = [f"{module}: {killed}/{len(mutants)} killed ({rate:.0%}; {timeouts} by timeout)"]
    lines += [f"- survived: line {m.line}: {m.change}" for m in mutants if m.outcome == "survived"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("module", nargs="?", help="path from the repository root, e.g. coursekit/bpe/basic.py")
    parser.add_argument("--tests", nargs="+", help="test files or node ids (default: DEFAULT_TESTS[module])")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression: only the tests that exercise the module")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository to copy (default: this one)")
    parser.add_argument("--timeout", type=float, help="seconds per mutant (default: 3 x the clean run + 10)")
    parser.add_argument("--limit", type=int, help="run only the first N mutants")
    parser.add_argument("--start", type=int, default=1, help="begin at mutant number N (resume a run cut short)")
    parser.add_argument("--json", type=Path, help="also write every mutant and its outcome here")
    parser.add_argument("--list", action="store_true", help="print the default module -> tests map")
    args = parser.parse_args(argv)
    if args.list or not args.module:
        print("\n".join(f"{m}: {' '.join(default_tests(m))}" for m in DEFAULT_TESTS))
        return 0
    tests = args.tests or default_tests(args.module)
    tests = [*tests, "-k", args.keyword] if args.keyword else tests
    mutants = mutation_run(args.root.resolve(), args.module, tests, args.timeout, args.limit, start=args.start)
    print(summary(args.module, mutants))
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in mutants], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
