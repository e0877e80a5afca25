"""Exercises with feedback in the notebook: ``q1.check(answer)``, ``q1.hint()``, ``q1.solution()``.

Kaggle Learn's pattern, offline and with no grader service: each lesson's module (``lesson02`` ...) holds
its exercises, each with a check, a hint, the reference solution and the plausible wrong answers that
the check must reject (``tests/test_exercises.py`` runs both for every exercise). A check says what is
right, what is wrong, and gives the hint; a student's placeholder ``...`` is "not attempted yet", never
an error, so an untouched notebook runs clean.

    >>> q = Exercise("q1", "square(x): return x squared.",
    ...              checker=lambda f: expect_equal(f(3), 9, "square(3)"), hint_text="x * x, or x ** 2.",
    ...              reference=lambda x: x * x, wrong=(lambda x: x + x,))
    >>> q.check(lambda x: x + x)
    ✗ q1: square(3) is 6; expected 9.
      Hint: x * x, or x ** 2.
    >>> q.check(...)
    · q1 not attempted yet: square(x): return x squared. Replace the ... and run the cell again (q1.hint() helps).
    >>> def square(x):
    ...     ...  # your code
    >>> q.grade(square).status
    'not attempted'
    >>> bool(q.grade(lambda x: x ** 2))
    True
"""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Exercise", "Result", "Wrong", "as_number", "expect_close", "expect_equal", "expect_tensor",
           "matching_mistake", "scoreboard"]


class Wrong(Exception):  # noqa: N818 (it names the outcome, as a student reads it)
    """Raised by a checker: what is wrong with the answer, in a sentence (values included)."""


@dataclass(frozen=True)
class Result:
    """One graded answer: ``status`` is ``"correct"``, ``"wrong"`` or ``"not attempted"``."""

    name: str
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        return self.message


def _is_stub(fn: Any) -> bool:
    """A function whose body (after its docstring) is still only ``...`` or ``pass``."""
    if not inspect.isfunction(fn):
        return False
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):  # no source to read (a lambda on one line with others, exec)
        return False
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.FunctionDef) else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the docstring
    return len(body) == 1 and (isinstance(body[0], ast.Pass) or (
        isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and body[0].value.value is ...))


def _not_attempted(answer: Any) -> bool:
    """``...``, a tuple or list still holding one, or a function whose body is still ``...`` or ``pass``."""
    if answer is Ellipsis or _is_stub(answer):
        return True
    return isinstance(answer, (list, tuple)) and any(a is Ellipsis for a in answer)


def _where(err: BaseException) -> str:
    """The student's line that raised, when the traceback has one from a notebook cell (ipykernel names a cell
    ``/tmp/ipykernel_<pid>/<n>.py``, older IPython ``<ipython-input-...>``)."""
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if "ipykernel_" in f.filename or not f.filename.endswith(".py")]
    return f" (line {frames[-1].lineno}: {frames[-1].line})" if frames and frames[-1].line else ""


@dataclass
class Exercise:
    """A task, a ``checker`` that raises ``Wrong`` (and may return what was right), a hint, the reference
    answer, and wrong answers the checker must reject."""

    name: str
    task: str
    checker: Callable[[Any], str | None]
    hint_text: str = field(default="", repr=False)
    reference: Any = field(default=None, repr=False)
    wrong: Sequence[Any] = field(default=(), repr=False)

    def grade(self, answer: Any) -> Result:
        """The verdict and its one- or two-line feedback; never raises for the student's mistakes."""
        if _not_attempted(answer):
            return Result(self.name, "not attempted",
                          f"· {self.name} not attempted yet: {self.task} "
                          f"Replace the ... and run the cell again ({self.name}.hint() helps).")
        try:
            right = self.checker(answer)
        except NotImplementedError:
            return Result(self.name, "not attempted",
                          f"· {self.name} not attempted yet: {self.task} Write the function's body and run the "
                          f"cell again ({self.name}.hint() helps).")
        except Wrong as err:
            return Result(self.name, "wrong", f"✗ {self.name}: {err}\n  Hint: {self.hint_text}")
        except Exception as err:  # the student's code raised: name it, without a traceback wall
            return Result(self.name, "wrong", f"✗ {self.name}: your answer raised {type(err).__name__}: {err}"
                                              f"{_where(err)}\n  Hint: {self.hint_text}")
        return Result(self.name, "correct", f"✓ {self.name}: correct." + (f" {right}" if right else ""))

    def check(self, answer: Any = ...) -> None:
        """Print the feedback on ``answer``."""
        print(self.grade(answer))

    def hint(self) -> None:
        print(f"Hint ({self.name}): {self.hint_text}")

    def solution(self) -> None:
        """Print the reference solution: a function's source, or the value."""
        ref = self.reference
        named_function = inspect.isfunction(ref) and ref.__name__ != "<lambda>"
        print(textwrap.dedent(inspect.getsource(ref)).rstrip() if named_function else repr(ref))


def scoreboard(exercises: Sequence[Exercise], answers: Sequence[Any]) -> str:
    """One line per exercise: its verdict on the matching answer."""
    return "\n".join(f"{q.name}: {q.grade(a).status}" for q, a in zip(exercises, answers, strict=True))


# ---------------------------------------------------------------- helpers for checkers
def expect_equal(got: Any, want: Any, what: str) -> None:
    """``Wrong`` naming ``what``, the value found and the one expected."""
    if got != want:
        raise Wrong(f"{what} is {got!r}; expected {want!r}.")


def as_number(got: Any, what: str) -> float:
    """``got`` as a float, or ``Wrong`` naming what ``what`` returned instead (a checker then compares numbers).

    >>> as_number("0.5", "tokens_cut")
    0.5
    >>> as_number([1, 2], "tokens_cut")
    Traceback (most recent call last):
    ...
    coursekit.exercises.Wrong: tokens_cut returned [1, 2], not a number.
    """
    try:
        return float(got)
    except (TypeError, ValueError):
        raise Wrong(f"{what} returned {got!r}, not a number.") from None


def matching_mistake(got: float, mistakes: dict[str, float], rel: float = 1e-6) -> str | None:
    """The description of the common mistake whose value ``got`` equals (to ``rel``), if any: the feedback names it."""
    return next((why for why, v in mistakes.items() if abs(got - v) <= rel * max(1.0, abs(v))), None)


def expect_close(got: Any, want: float, what: str, rel: float = 1e-6, abs_tol: float = 1e-9) -> None:
    """``Wrong`` unless ``got`` is a number within ``rel`` (relative) or ``abs_tol`` of ``want``."""
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Wrong(f"{what} is {got!r}, not a number; expected about {want:.6g}.") from None
    if not math.isclose(value, want, rel_tol=rel, abs_tol=abs_tol):
        raise Wrong(f"{what} is {value:.6g}; expected {want:.6g}.")


def expect_tensor(got: Any, want: Any, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """``Wrong`` for a non-tensor, a wrong shape (both shapes named), or values off by more than the
    tolerance (the largest difference and where it is)."""
    import torch

    if not isinstance(got, torch.Tensor):
        raise Wrong(f"{what} is a {type(got).__name__}; expected a torch.Tensor of shape {tuple(want.shape)}.")
    if got.shape != want.shape:
        raise Wrong(f"{what} has shape {tuple(got.shape)}; expected {tuple(want.shape)}.")
    g, w = got.detach().double(), want.detach().double()
    bad = torch.isnan(g) & ~torch.isnan(w)
    if bad.any():
        at = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise Wrong(f"{what} has the right shape {tuple(got.shape)}, but {int(bad.sum())} of its values are NaN "
                    f"(the first at index {at}; expected {w[at].item():.4g} there).")
    if not torch.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True):
        diff = torch.nan_to_num((g - w).abs(), nan=0.0, posinf=math.inf)
        at = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        raise Wrong(f"{what} has the right shape {tuple(got.shape)}, but its values differ from the expected "
                    f"ones by up to {diff.max().item():.3g} (at index {at}: {g[at].item():.4g} against "
                    f"{w[at].item():.4g}).")
