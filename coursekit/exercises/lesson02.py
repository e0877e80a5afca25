"""Lesson 02's exercises: LoRA's forward pass, its merge, its parameter count, and its initialisation.

q1-q3 run the student's answer on tiny float64 tensors (exact to ~1e-15, any CPU) and compare it with the
finished copy, ``coursekit.lora.LoRALinear``; q4 draws A and B once (under a forked random state, so the
student's own is left alone) and checks B·A, one backward pass and A's spread against the finished copy's. A
wrong answer is told which common mistake it matches, with the values.

    >>> q3.check(lambda d_in, d_out, r: 2 * d_in * r)   # a square-layer formula on a non-square layer
    ✗ q3: lora_params(576, 192, 8) is 9216; expected 6144. 2·d_in·r only holds for a square layer: A is (r, d_in) and B is (d_out, r).
      Hint: Count the numbers in A (r × d_in) and in B (d_out × r).
    >>> q3.check(lora_params)
    ✓ q3: correct. r·(d_in + d_out) on 3 layers, as coursekit.lora.lora_param_count counts them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from coursekit.exercises import Exercise, Wrong, expect_equal, expect_tensor
from coursekit.lora import LoRALinear, lora_param_count

__all__ = ["EXERCISES", "lora_forward", "lora_init", "lora_params", "merge", "q1", "q2", "q3", "q4"]

D_IN, D_OUT, R, ALPHA = 6, 5, 2, 8  # scaling α/r = 4: distinct from α, from 1/r and from 1


def _layer() -> LoRALinear:
    """A float64 LoRALinear (6 -> 5, r = 2, α = 8) with fixed, non-zero A and B: the finished copy to match."""
    g = torch.Generator().manual_seed(0)
    layer = LoRALinear(nn.Linear(D_IN, D_OUT, bias=False, dtype=torch.float64), r=R, alpha=ALPHA)
    with torch.no_grad():
        for p in (layer.base.weight, layer.A, layer.B):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return layer


def _x() -> torch.Tensor:
    return torch.randn(2, 3, D_IN, generator=torch.Generator().manual_seed(1), dtype=torch.float64)  # (B, T, in)


def _args(layer: LoRALinear) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Copies of W (out, in), A (r, in), B (out, r): a student's in-place edit cannot touch the layer."""
    return tuple(t.detach().clone() for t in (layer.base.weight, layer.A, layer.B))  # type: ignore[return-value]


def _diagnose(got: Any, mistakes: dict[str, torch.Tensor]) -> None:
    """``Wrong`` naming the first known mistake that ``got`` reproduces."""
    if isinstance(got, torch.Tensor):
        for what, value in mistakes.items():
            if got.shape == value.shape and torch.allclose(got.detach().double(), value, rtol=1e-9, atol=1e-9):
                raise Wrong(what)


# ---------------------------------------------------------------- q1: the forward pass
def lora_forward(x: torch.Tensor, weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float,
                 r: int) -> torch.Tensor:
    """A frozen bias-free layer plus its LoRA term: x Wᵀ + (α/r)·(x Aᵀ) Bᵀ."""
    frozen = x @ weight.T               # (..., in) @ (in, out) -> (..., out)
    low_rank = (x @ A.T) @ B.T          # (..., in) -> (..., r) -> (..., out)
    return frozen + (alpha / r) * low_rank


def _check_forward(f: Any) -> str:
    layer, x = _layer(), _x()
    w, a, b = _args(layer)
    with torch.no_grad():
        want = layer(x)                                            # (2, 3, 5)
        got = f(x.clone(), w, a, b, ALPHA, R)
        frozen, low = x @ w.T, x @ a.T @ b.T
    _diagnose(got, {
        "your output is the frozen layer's alone, x Wᵀ: the LoRA term (α/r)·x Aᵀ Bᵀ is missing.": frozen,
        f"your output is x Wᵀ + x Aᵀ Bᵀ: the scaling α/r = {ALPHA}/{R} = {ALPHA / R:g} is missing.":
            frozen + low,
        f"you scaled the LoRA term by α = {ALPHA}; LoRA scales it by α/r = {ALPHA / R:g}.": frozen + ALPHA * low,
        f"you scaled the LoRA term by r/α = {R / ALPHA:g}; LoRA scales it by α/r = {ALPHA / R:g}.":
            frozen + (R / ALPHA) * low,
    })
    expect_tensor(got, want, f"lora_forward(x of shape {tuple(x.shape)}, r={R}, alpha={ALPHA})", atol=1e-9,
                  rtol=1e-9)
    return f"Equal to coursekit.lora.LoRALinear on x of shape {tuple(x.shape)}, with the same W, A, B."


q1 = Exercise(
    "q1", "lora_forward(x, weight, A, B, alpha, r): the output of a frozen bias-free layer plus its LoRA term.",
    checker=_check_forward,
    hint_text="x @ weight.T is the frozen layer; the LoRA term is (x @ A.T) @ B.T, scaled by alpha / r.",
    reference=lora_forward,
    wrong=(lambda x, weight, A, B, alpha, r: x @ weight.T,
           lambda x, weight, A, B, alpha, r: x @ weight.T + x @ A.T @ B.T,
           lambda x, weight, A, B, alpha, r: x @ weight.T + alpha * (x @ A.T @ B.T),
           lambda x, weight, A, B, alpha, r: x @ weight.T + (alpha / r) * (x @ A @ B)),
)


# ---------------------------------------------------------------- q2: the merge
def merge(weight: torch.Tensor, A: torch.Tensor, B: torch.Tensor, alpha: float, r: int) -> torch.Tensor:
    """The merged weight W + (α/r)·B·A: one plain layer that computes what the frozen layer and LoRA did."""
    delta = (alpha / r) * (B @ A)       # (out, r) @ (r, in) -> (out, in), like W
    return weight + delta


def _check_merge(f: Any) -> str:
    layer, x = _layer(), _x()
    w, a, b = _args(layer)
    with torch.no_grad():
        unmerged = layer(x)
        got = f(w, a, b, ALPHA, R)
        layer.merge()                                              # W ← W + (α/r)·B·A, the finished copy
        want = layer.base.weight.detach().clone()                  # (5, 6)
        w0, _, _ = _args(_layer())
    _diagnose(got, {
        f"you returned W + B·A: the scaling α/r = {ALPHA / R:g} is missing.": w0 + b @ a,
        "you returned ΔW = (α/r)·B·A alone; the merged weight is W + ΔW.": (ALPHA / R) * (b @ a),
        f"you scaled B·A by α = {ALPHA}; LoRA scales it by α/r = {ALPHA / R:g}.": w0 + ALPHA * (b @ a),
    })
    if isinstance(got, torch.Tensor) and got.shape == (D_IN, D_OUT):
        raise Wrong(f"the merged weight has shape {tuple(got.shape)}, the transpose of W's {tuple(want.shape)}: "
                    "ΔW must be (out, in) like W, which B (out, r) @ A (r, in) is.")
    expect_tensor(got, want, f"merge(W of shape {tuple(w0.shape)}, r={R}, alpha={ALPHA})", atol=1e-9, rtol=1e-9)
    with torch.no_grad():
        max_gap = (x @ got.T - unmerged).abs().max().item()
    return f"Equal to LoRALinear.merge(); the merged layer's output is the unmerged one's (max gap {max_gap:.1e})."


q2 = Exercise(
    "q2", "merge(weight, A, B, alpha, r): the merged weight, W plus the scaled low-rank update.",
    checker=_check_merge,
    hint_text="ΔW = (alpha / r) * (B @ A) has W's shape (out, in); the merged weight is weight + ΔW.",
    reference=merge,
    wrong=(lambda weight, A, B, alpha, r: weight + B @ A,
           lambda weight, A, B, alpha, r: (alpha / r) * (B @ A),
           lambda weight, A, B, alpha, r: weight.T + (alpha / r) * (A.T @ B.T)),
)


# ---------------------------------------------------------------- q3: the parameter count
def lora_params(d_in: int, d_out: int, r: int) -> int:
    """Trainable numbers LoRA adds to one d_out × d_in layer: A is (r, d_in), B is (d_out, r)."""
    return r * d_in + d_out * r


SHAPES = [(576, 192, 8), (576, 576, 16), (1536, 576, 4)]  # SmolLM2's k_proj, q_proj and down_proj shapes


def _check_params(f: Any) -> str:
    for d_in, d_out, r in SHAPES:
        with torch.device("meta"):  # shapes only, no memory
            layer = nn.Sequential(nn.Linear(d_in, d_out, bias=False))
        want, got = lora_param_count(layer, ["0"], r), f(d_in, d_out, r)
        if got == 2 * d_in * r != want:
            raise Wrong(f"lora_params({d_in}, {d_out}, {r}) is {got}; expected {want}. 2·d_in·r only holds for a "
                        "square layer: A is (r, d_in) and B is (d_out, r).")
        if got == d_in * d_out:
            raise Wrong(f"lora_params({d_in}, {d_out}, {r}) is {got}: that is the full weight W (d_in·d_out); "
                        f"expected {want}, the numbers in A and B.")
        expect_equal(got, want, f"lora_params({d_in}, {d_out}, {r})")
    return f"r·(d_in + d_out) on {len(SHAPES)} layers, as coursekit.lora.lora_param_count counts them."


q3 = Exercise(
    "q3", "lora_params(d_in, d_out, r): how many trainable numbers LoRA adds to one d_out × d_in linear layer.",
    checker=_check_params,
    hint_text="Count the numbers in A (r × d_in) and in B (d_out × r).",
    reference=lora_params,
    wrong=(lambda d_in, d_out, r: 2 * d_in * r, lambda d_in, d_out, r: d_in * d_out,
           lambda d_in, d_out, r: r * d_in * d_out),
)


# ---------------------------------------------------------------- q4: the initialisation
def lora_init(d_in: int, d_out: int, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) as LoRA starts them: A (r, d_in) drawn as nn.Linear(d_in, r) draws its weight, B (d_out, r) zeros."""
    A = torch.empty(r, d_in)
    nn.init.kaiming_uniform_(A, a=math.sqrt(5))  # uniform in ±1/√d_in, nn.Linear's (and peft's) default
    B = torch.zeros(d_out, r)                    # B·A = 0: the wrapped model starts as the base model
    return A, B


INIT = (1024, 32, 16)  # d_in, d_out, r: 16384 values in A, so their spread is measured to ~0.4%


def _kaiming(*shape: int) -> torch.Tensor:
    """A tensor drawn as nn.Linear draws its weight (for the wrong answers)."""
    return nn.init.kaiming_uniform_(torch.empty(*shape), a=math.sqrt(5))


def _check_init(f: Any) -> str:
    d_in, d_out, r = INIT
    with torch.random.fork_rng(devices=[]):  # the student's global random state is left as it was
        torch.manual_seed(0)
        got = f(d_in, d_out, r)
        finished = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=2 * r)   # the finished copy's A and B
        x, g = torch.randn(4, d_in), torch.randn(4, d_out)                  # inputs, and a gradient from above
    if not (isinstance(got, tuple | list) and len(got) == 2 and all(isinstance(t, torch.Tensor) for t in got)):
        raise Wrong(f"lora_init returned {type(got).__name__}; expected a pair of tensors (A, B).")
    A, B = (t.detach().clone().double() for t in got)
    if A.shape == (d_in, r) or B.shape == (r, d_out):
        raise Wrong(f"A has shape {tuple(A.shape)} and B {tuple(B.shape)}: transposed. A maps x (..., d_in) to "
                    f"(..., r) as x Aᵀ, like nn.Linear(d_in, r)'s weight, so A is (r, d_in) = {(r, d_in)} and "
                    f"B is (d_out, r) = {(d_out, r)}.")
    expect_equal(tuple(A.shape), tuple(finished.A.shape), f"A's shape for lora_init({d_in}, {d_out}, {r})")
    expect_equal(tuple(B.shape), tuple(finished.B.shape), f"B's shape for lora_init({d_in}, {d_out}, {r})")
    if not (A.any() or B.any()):
        raise Wrong("A and B are both zeros: B·A = 0, but the gradient of B is gᵀ·(x Aᵀ) = 0 and that of A is "
                    "(g B)ᵀ·x = 0, so no gradient reaches either: training never starts. Only one of them may be 0.")
    if B.any() and A.any():
        change = (x.double() @ A.T @ B.T).abs().max().item()
        raise Wrong(f"B is not zeros, so B·A ≠ 0: the wrapped model's output changes (by up to {change:.3g} on a "
                    f"random x) before any training. LoRA starts B at zeros, so the model starts as the base model.")
    if not A.any():
        raise Wrong("A is zeros and B random: B·A = 0, but at the first step B gets no gradient (gᵀ·(x Aᵀ) = 0), "
                    "only A does. LoRA (peft, coursekit.lora) draws A as nn.Linear does and puts the zeros in B.")
    A.requires_grad_(True)
    B.requires_grad_(True)
    ((x.double() @ A.T @ B.T) * g.double()).sum().backward()   # one backward pass through x Aᵀ Bᵀ
    if not B.grad.any():
        raise Wrong("after one backward pass B's gradient is all zeros: training cannot start.")
    bound, std, want_std = 1 / math.sqrt(d_in), A.detach().std().item(), finished.A.detach().std().item()
    if std == 0:
        raise Wrong(f"every value of A is {A[0, 0].item():.4g}: its r rows are one direction, and they would get "
                    "the same updates. Draw them at random, as nn.Linear does (uniform in ±1/√d_in).")
    if 0.7 < std < 1.3:
        raise Wrong(f"A's values have std {std:.3f}, a standard normal (torch.randn): far too large. nn.Linear "
                    f"draws them uniform in ±1/√d_in = ±{bound:.4g}, std {bound / math.sqrt(3):.4g}.")
    biggest = A.detach().abs().max().item()
    if math.sqrt(5) * bound < biggest <= math.sqrt(6) * bound * (1 + 1e-6):
        raise Wrong(f"A's largest |value| is {biggest:.4g}: kaiming_uniform_'s default a = 0 draws in "
                    f"±√6/√d_in = ±{math.sqrt(6) * bound:.4g}; nn.Linear passes a = √5, which gives ±1/√d_in = "
                    f"±{bound:.4g}.")
    if biggest > bound * (1 + 1e-6):
        raise Wrong(f"A's largest |value| is {biggest:.4g}, beyond nn.Linear's bound 1/√d_in = {bound:.4g} "
                    "(kaiming_uniform_ with a = √5).")
    if not 0.85 * want_std < std < 1.15 * want_std:
        raise Wrong(f"A's values have std {std:.4g}; drawn uniform in ±1/√d_in = ±{bound:.4g} they have std "
                    f"bound/√3 = {bound / math.sqrt(3):.4g} (coursekit.lora's A: {want_std:.4g}).")
    if abs(A.detach().mean().item()) > 0.1 * bound:
        raise Wrong(f"A's values have mean {A.detach().mean().item():.4g}; drawn uniform in ±{bound:.4g} they "
                    "average about 0.")
    return (f"B·A = 0, so the model starts unchanged; after one backward pass B's gradient is non-zero (A's is 0 "
            f"until B moves). A is uniform in ±{bound:.4g} (std {std:.4g}), as coursekit.lora.LoRALinear draws it.")


q4 = Exercise(
    "q4", "lora_init(d_in, d_out, r): (A, B) as LoRA initialises them, A (r × d_in) drawn as nn.Linear draws its "
          "weight, B (d_out × r) such that the model starts unchanged and training can start.",
    checker=_check_init,
    hint_text="A = torch.empty(r, d_in), then nn.init.kaiming_uniform_(A, a=math.sqrt(5)) (what nn.Linear(d_in, "
              "r) does); B = torch.zeros(d_out, r), so B·A = 0 but B's gradient, gᵀ·(x Aᵀ), is not.",
    reference=lora_init,
    wrong=(lambda d_in, d_out, r: (torch.zeros(r, d_in), torch.zeros(d_out, r)),
           lambda d_in, d_out, r: (_kaiming(r, d_in), _kaiming(d_out, r)),
           lambda d_in, d_out, r: (torch.randn(r, d_in), torch.zeros(d_out, r)),
           lambda d_in, d_out, r: (_kaiming(d_in, r), torch.zeros(r, d_out))),
)

EXERCISES = [q1, q2, q3, q4]
