"""Lesson 02's exercises: LoRA's forward pass, its merge, its parameter count, and its bytes per parameter.

Each check runs the student's answer on tiny float64 tensors (exact to ~1e-15, any CPU) and compares it with
the finished copy, ``coursekit.lora.LoRALinear``, or with bytes counted from real tensors. A wrong
answer is told which common mistake it matches, with the values.

    >>> q3.check(lambda d_in, d_out, r: 2 * d_in * r)   # a square-layer formula on a non-square layer
    ✗ q3: lora_params(576, 192, 8) is 9216; expected 6144. 2·d_in·r only holds for a square layer: A is (r, d_in) and B is (d_out, r).
      Hint: Count the numbers in A (r × d_in) and in B (d_out × r).
    >>> q3.check(lora_params)
    ✓ q3: correct. r·(d_in + d_out) on 3 layers, as coursekit.lora.lora_param_count counts them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from coursekit.exercises import Exercise, Wrong, expect_equal, expect_tensor
from coursekit.lora import LoRALinear, lora_param_count

__all__ = ["EXERCISES", "lora_forward", "lora_params", "merge", "q1", "q2", "q3", "q4"]

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


# ---------------------------------------------------------------- q4: bytes per parameter
def _measured_bytes_per_param() -> tuple[float, float]:
    """Bytes per weight of a tiny fp32 layer, counted from tensors: trained (weight, its gradient after a real
    backward pass, and AdamW's two moments, ``exp_avg`` and ``exp_avg_sq``, each a ``zeros_like`` of the weight as
    its first step makes them; section 7 measures the real optimizer), and frozen (the weight alone)."""
    trained, frozen = nn.Linear(8, 4), nn.Linear(8, 4).requires_grad_(False)
    trained(torch.ones(1, 8)).sum().backward()
    params = list(trained.parameters())
    tensors = params + [p.grad for p in params] + [torch.zeros_like(p) for p in params for _ in ("m", "v")]
    size = sum(t.numel() * t.element_size() for t in tensors)
    frozen_size = sum(p.numel() * p.element_size() for p in frozen.parameters())
    return size / sum(p.numel() for p in params), frozen_size / sum(p.numel() for p in frozen.parameters())


def _check_bytes(answer: Any) -> str:
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Wrong(f"the answer is {answer!r}; expected a pair (full fine-tuning, frozen under LoRA) of numbers.")
    full, frozen = _measured_bytes_per_param()  # 16.0 and 4.0, counted from the tensors
    got_full, got_frozen = answer
    if got_full == 12:
        raise Wrong(f"12 B/param is half-precision weights and grads (2 + 2) with fp32 Adam moments (8), the "
                    f"course notes' fp16 figure. This notebook trains in fp32: {full:g} B/param, counted from "
                    "the tensors.")
    if got_full == 8:
        raise Wrong(f"{got_full} B/param leaves part out: a trained fp32 weight has its value (4 B), its gradient "
                    f"(4 B) and AdamW's two moments (exp_avg and exp_avg_sq, 4 B each): {full:g} B/param.")
    expect_equal(got_full, full, "bytes per parameter in full fine-tuning (fp32 weight, grad, 2 AdamW moments)")
    if got_frozen != frozen and got_frozen == full:
        raise Wrong(f"a frozen weight has no gradient and no Adam state: it costs only its own {frozen:g} bytes, "
                    f"not {got_frozen}.")
    expect_equal(got_frozen, frozen, "bytes per frozen parameter under LoRA (fp32)")
    return f"Counted from fp32 tensors: {full:g} B per trained weight (4 + 4 + 8), {frozen:g} B per frozen one."


q4 = Exercise(
    "q4", "answer = (full, frozen): bytes per parameter for full fine-tuning in fp32 with AdamW (weights, grads, "
          "optimizer state), and for a frozen fp32 weight under LoRA.",
    checker=_check_bytes,
    hint_text="fp32 is 4 bytes; a trained weight has its value, its gradient and AdamW's two moments; a frozen "
              "one has only its value.",
    reference=(16, 4),
    wrong=((12, 4), (8, 4), (16, 16), (16, 2)),
)

EXERCISES = [q1, q2, q3, q4]
