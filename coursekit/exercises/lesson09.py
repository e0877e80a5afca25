"""Lesson 09's exercises: what truncation throws away, and what full fine-tuning holds in memory.

Each check runs the student's function on fixed inputs and compares it with the finished copy below (the second
one with ``coursekit.gpu_fit``); a wrong answer is told which common mistake it matches, with the values.

    >>> q1.check(lambda lengths, L: float((np.asarray(lengths) > L).mean()))
    ✗ q1: tokens_cut gives 0.5 for lengths [100, 300, 500, 900] at L=400, the share of ROWS longer than L; the share of TOKENS beyond L is 0.333333.
      Hint: sum over rows of max(length - L, 0), over the sum of the lengths: np.maximum(lengths - L, 0).sum() / lengths.sum().
    >>> q1.check(tokens_cut)
    ✓ q1: correct. Equal to the lesson's truncation() on 4 datasets, and 0 once L passes the longest row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from coursekit.exercises import Exercise, Wrong, as_number, expect_close, matching_mistake
from coursekit.gpu_fit import GIB, ModelShape, memory_gib

__all__ = ["EXERCISES", "full_ft_state_gib", "q1", "q2", "tokens_cut"]

DATASETS = ([100, 300, 500, 900], [5, 5, 5, 5000], [64] * 10, [1, 2000, 40, 700, 3000, 12])
CUTS = (400, 64, 1024, 10)


# ---------------------------------------------------------------- q1: what truncation throws away
def tokens_cut(lengths: Any, L: int) -> float:
    """The share of all tokens that a cap of ``L`` tokens per row cuts off."""
    lengths = np.asarray(lengths)
    return float(np.maximum(lengths - L, 0).sum() / lengths.sum())   # a short row loses nothing, not a negative


def _check_tokens_cut(f: Callable[..., Any]) -> str:
    for lengths, L in zip(DATASETS, CUTS):
        a = np.asarray(lengths)
        want = tokens_cut(lengths, L)
        got = as_number(f(a.copy(), L), "tokens_cut")
        mistake = matching_mistake(got, {
            f"the share of ROWS longer than L; the share of TOKENS beyond L is {want:.6g}": float((a > L).mean()),
            f"without clipping at 0: a row shorter than L does not give tokens back; the answer is {want:.6g}":
                float((a - L).sum() / a.sum()),
            f"the share of tokens KEPT; the share cut is {want:.6g}": 1 - want,
        }) if want not in (0.0, 1.0) else None
        if mistake:
            raise Wrong(f"tokens_cut gives {got:.6g} for lengths {lengths} at L={L}, {mistake}.")
        expect_close(got, want, f"tokens_cut for lengths {lengths} at L={L}", rel=1e-9)
    return "Equal to the lesson's truncation() on 4 datasets, and 0 once L passes the longest row."


q1 = Exercise(
    "q1", "tokens_cut(lengths, L): the share of all tokens that a cap of L tokens per row throws away.",
    checker=_check_tokens_cut,
    hint_text="sum over rows of max(length - L, 0), over the sum of the lengths: "
              "np.maximum(lengths - L, 0).sum() / lengths.sum().",
    reference=tokens_cut,
    wrong=(lambda lengths, L: float((np.asarray(lengths) > L).mean()),
           lambda lengths, L: float((np.asarray(lengths) - L).sum() / np.asarray(lengths).sum()),
           lambda lengths, L: float(np.minimum(np.asarray(lengths), L).sum() / np.asarray(lengths).sum())),
)


# ---------------------------------------------------------------- q2: full fine-tuning's memory
def full_ft_state_gib(n_params: float) -> float:
    """GiB that full fine-tuning holds before activations: per parameter its fp32 weight (4 bytes), fp32 gradient (4)
    and Adam's two fp32 moments (8), with torch.autocast computing in bf16 from the fp32 weights."""
    return n_params * (4 + 4 + 8) / GIB


def _check_full_ft(f: Callable[..., Any]) -> str:
    for n in (1e9, 8.03e9, 70.6e9):
        want = full_ft_state_gib(n)
        got = as_number(f(n), "full_ft_state_gib")
        mistake = matching_mistake(got, {
            f"bf16 weights alone, what INFERENCE needs; training holds 16 bytes a parameter: {want:.4g}": n * 2 / GIB,
            f"the fp32 weights alone; the gradient (4 bytes) and Adam's two moments (8) come too: {want:.4g}":
                n * 4 / GIB,
            f"the gradient and Adam's moments without the weights they update: {want:.4g}": n * 12 / GIB,
            f"GB (10^9 bytes), not GiB (2^30, what nvidia-smi reports): {want:.4g}": n * 16 / 1e9,
        })
        if mistake:
            raise Wrong(f"full_ft_state_gib({n:.3g}) gives {got:.4g}, {mistake}.")
        expect_close(got, want, f"full_ft_state_gib({n:.3g})", rel=1e-9)
    shape = ModelShape("check", 4096, 32, 14336, 128256, 32, 8, 128)
    parts = memory_gib(shape, "full FT", tokens=1)
    expect_close(f(shape.n_params()), parts["weights"] + parts["trainable state"], "full_ft_state_gib against gpu_fit",
                 rel=1e-9)
    return "Equal to gpu_fit.memory_gib's weights + trainable state for full FT (an 8B model: ~120 GiB)."


q2 = Exercise(
    "q2", "full_ft_state_gib(n_params): GiB that full fine-tuning holds for n_params parameters (fp32 weights, "
          "gradients and Adam's two moments), activations excluded.",
    checker=_check_full_ft,
    hint_text="n_params * (4 + 4 + 8) / 2**30: the fp32 weight, its fp32 gradient and Adam's two fp32 moments; "
              "GiB is 2**30 bytes.",
    reference=full_ft_state_gib,
    wrong=(lambda n: n * 2 / GIB, lambda n: n * 4 / GIB, lambda n: n * 12 / GIB, lambda n: n * 16 / 1e9),
)

EXERCISES = [q1, q2]
