"""Lesson 07's exercises: a block's parameters, causal attention, the uniform-guess loss, gradient accumulation.

Each check runs the answer on tiny inputs and compares it with the finished copy it teaches: the parameter
count of ``coursekit.gpt2.Block``, ``F.scaled_dot_product_attention(..., is_causal=True)`` (what
``coursekit.gpt2.CausalSelfAttention`` calls), the cross-entropy of a uniform guess, and the gradient of one
big batch of ``coursekit.gpt2.GPT2`` (what ``coursekit.pretraining``'s accumulation must reproduce)::

    >>> q1.check(lambda C: 12 * C * C)  # doctest: +ELLIPSIS
    ✗ q1: block_params(8) is 768; expected 872 (coursekit.gpt2.Block(n_embd=8) has 872 parameters). You are 104 short: ...
      Hint: Count each piece: c_attn is a C × 3C matrix plus 3C biases, ...
    >>> q1.check(block_params)
    ✓ q1: correct. 12·C² + 13·C: 7,087,872 per block of GPT-2 small (C = 768), 85M in its 12 blocks.
    >>> q3.grade(uniform_loss).status, q3.grade(math.log2).status
    ('correct', 'wrong')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from coursekit.exercises import Exercise, Wrong, expect_close, expect_tensor
from coursekit.gpt2 import GPT2, Block, GPT2Config

__all__ = ["EXERCISES", "q1", "q2", "q3", "q4"]

Batch = tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------- q1: where a block's parameters live
def _block_numel(C: int) -> int:
    with torch.device("meta"):  # shapes only
        return sum(p.numel() for p in Block(GPT2Config(n_embd=C, n_head=1)).parameters())


def _check_block_params(f: Callable[[int], int]) -> str:
    for C in (8, 64, 768):
        got, want = f(C), _block_numel(C)
        if got != want:
            gap = want - got if isinstance(got, int) else None
            why = ""
            if gap == 13 * C:
                why = (f" You are {gap} short: 13·C = {13 * C} biases and LayerNorm parameters, and 12·C² = "
                       f"{12 * C * C} matrix weights are all there.")
            elif gap == 4 * C:
                why = f" You are {gap} short: the two LayerNorms (a gain and a bias per channel, 4·C) are missing."
            elif gap == 9 * C:
                why = f" You are {gap} short: the biases of the four linear layers (3C + C + 4C + C = 9·C) are missing."
            raise Wrong(f"block_params({C}) is {got!r}; expected {want} (coursekit.gpt2.Block(n_embd={C}) has "
                        f"{want} parameters).{why}")
    return f"12·C² + 13·C: {_block_numel(768):,} per block of GPT-2 small (C = 768), 85M in its 12 blocks."


def block_params(C: int) -> int:
    """Parameters of one GPT-2 block of width C."""
    attention = C * 3 * C + 3 * C + C * C + C  # c_attn (q, k, v) and c_proj, with biases
    mlp = C * 4 * C + 4 * C + 4 * C * C + C  # c_fc up to 4C, c_proj back down, with biases
    layer_norms = 2 * (C + C)  # ln_1 and ln_2: a gain and a bias per channel
    return attention + mlp + layer_norms


q1 = Exercise(
    "q1", "block_params(C): the number of parameters in one GPT-2 block of width C (attention, MLP, both LayerNorms).",
    checker=_check_block_params,
    hint_text="Count each piece: c_attn is a C × 3C matrix plus 3C biases, c_proj C × C plus C, the MLP C × 4C plus "
              "4C and 4C × C plus C, and each of the two LayerNorms has C gains and C biases.",
    reference=block_params,
    wrong=(lambda C: 12 * C * C, lambda C: 12 * C * C + 9 * C, lambda C: 12 * C * C + 4 * C))


# ---------------------------------------------------------------- q2: causal self-attention
def _qkv() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return tuple(torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))  # (B, nh, T, hs) each


def _plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return ((q @ k.transpose(-2, -1)) * scale).softmax(-1) @ v  # no mask


def _check_attention(f: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> str:
    q, k, v = _qkv()
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
    got = f(q.clone(), k.clone(), v.clone())
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        got = got.detach().float()
        if torch.isnan(got).any():
            rows = sorted({int(t) for t in torch.nonzero(torch.isnan(got))[:, 2]})
            raise Wrong(f"the output has NaN at positions {rows}: a row whose every score is -inf (nothing left to "
                        "see) gives 0/0 in the softmax. Does your mask hide the diagonal too? A position must see "
                        "itself.")
        hs = q.shape[-1]
        for scale, what in ((1 / hs, "1/hs"), (1.0, "1 (no scaling)")):
            causal = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
            if torch.allclose(got, causal, atol=1e-5):
                raise Wrong(f"your output equals causal attention with scores scaled by {what}; GPT-2 scales "
                            f"q·kᵀ by 1/sqrt(hs) = 1/sqrt({hs}) = {1 / math.sqrt(hs):.3f}.")
        if torch.allclose(got, _plain_attention(q, k, v, 1 / math.sqrt(hs)), atol=1e-5):
            raise Wrong("your output equals attention without the causal mask: position t sees the tokens after t.")
        if not torch.allclose(got[:, :, 0], v[:, :, 0], atol=1e-5):
            gap = (got[:, :, 0] - v[:, :, 0]).abs().max().item()
            raise Wrong(f"position 0 can see only itself, so its output must be v[:, :, 0]; yours differs from it "
                        f"by up to {gap:.3g}: it attends to later tokens, or its weights do not sum to 1 over the "
                        "keys (the softmax goes over the last axis).")
    expect_tensor(got, want, "causal_attention(q, k, v)", atol=1e-5, rtol=1e-4)
    return "softmax(q·kᵀ / sqrt(hs), future masked) · v, what F.scaled_dot_product_attention(is_causal=True) computes."


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal self-attention of q, k, v, each (B, nh, T, hs), without scaled_dot_product_attention."""
    T, hs = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T): how much each query likes each key
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True above the diagonal
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)  # each row sums to 1 over the past
    return weights @ v  # (B, nh, T, hs)


def _no_mask(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return _plain_attention(q, k, v, 1 / math.sqrt(q.shape[-1]))


def _mask_diagonal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool)), float("-inf")).softmax(-1) @ v


def _scale_by_hs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    return scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1) @ v


def _softmax_over_queries(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-2) @ v


q2 = Exercise(
    "q2", "causal_attention(q, k, v): causal self-attention of q, k, v, each (B, nh, T, hs), without "
          "F.scaled_dot_product_attention.",
    checker=_check_attention,
    hint_text="scores = q @ k.transpose(-2, -1) / sqrt(hs) is (B, nh, T, T); set the entries above the diagonal "
              "(torch.triu(..., diagonal=1)) to -inf, softmax over the last axis (the keys), then multiply by v.",
    reference=causal_attention,
    wrong=(_no_mask, _mask_diagonal, _scale_by_hs, _softmax_over_queries))


# ---------------------------------------------------------------- q3: the loss of a uniform guess
def _check_uniform(f: Callable[[int], float]) -> str:
    for V in (2, 512, 50257):
        got = f(V)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"uniform_loss({V}) is {got!r}, not a number; expected about {math.log(V):.4f}.") from None
        if math.isclose(value, math.log2(V), rel_tol=1e-6) and V > 1:
            raise Wrong(f"uniform_loss({V}) is {value:.4f} = log2({V}): that is bits. PyTorch's cross-entropy uses "
                        f"the natural log (nats): expected {math.log(V):.4f}.")
        if math.isclose(value, 1 / V, rel_tol=1e-6):
            raise Wrong(f"uniform_loss({V}) is {value:.4g} = 1/{V}: that is the probability of the right token; "
                        f"its loss is -ln(1/{V}) = {math.log(V):.4f}.")
        expect_close(value, math.log(V), f"uniform_loss({V})", rel=1e-6)
    return (f"-ln(1/V) = ln V: {math.log(512):.3f} for this lesson's 512-token smoke vocabulary, "
            f"{math.log(50257):.3f} for GPT-2's 50,257. A loss above ln V is worse than guessing.")


def uniform_loss(V: int) -> float:
    """Cross-entropy of a model that gives each of V tokens probability 1/V, whatever the right one is."""
    return -math.log(1 / V)  # = ln V


q3 = Exercise(
    "q3", "uniform_loss(V): the cross-entropy (in nats) of a model that gives every one of V tokens the same "
          "probability.",
    checker=_check_uniform,
    hint_text="The loss of one token is -ln p(right token); a uniform model gives every token p = 1/V.",
    reference=uniform_loss,
    wrong=(lambda V: math.log2(V), lambda V: 1 / V, lambda V: -math.log(V)))


# ---------------------------------------------------------------- q4: gradient accumulation
def _tiny_model_and_batch() -> tuple[GPT2, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng():  # the student's global RNG stays where it was
        torch.manual_seed(0)
        model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=32))
    x = torch.randint(0, 32, (4, 8), generator=torch.Generator().manual_seed(3))  # (B, T)
    return model, x, torch.roll(x, -1, dims=1)


def _grads(model: GPT2) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def _check_accumulate(f: Callable[[GPT2, Sequence[Batch]], float]) -> str:
    model, x, y = _tiny_model_and_batch()
    full_loss = model(x, targets=y)[1]
    full_loss.backward()
    want = _grads(model)
    model.zero_grad(set_to_none=True)
    halves = [(x[:2], y[:2]), (x[2:], y[2:])]
    got_loss = f(model, halves)
    got = _grads(model)
    if not got.abs().sum() > 0:
        raise Wrong("after your function every gradient is zero or None: call .backward() on each micro-batch's loss.")
    ratio = (got @ want / (want @ want)).item()
    if abs(ratio - 2) < 1e-3:
        raise Wrong(f"your gradients are {ratio:.3f}× the full batch's: each micro-batch's loss must be divided by "
                    "the number of micro-batches before .backward(), so that the sum is a mean.")
    model.zero_grad(set_to_none=True)
    (model(halves[-1][0], targets=halves[-1][1])[1] / len(halves)).backward()  # the last micro-batch alone
    if torch.allclose(got, _grads(model), atol=1e-7):
        raise Wrong("your gradients are the last micro-batch's alone: gradients must add up across micro-batches, "
                    "so zero them once before the loop, never inside it.")
    expect_tensor(got, want, "the accumulated gradient (all parameters, flattened)", atol=1e-6, rtol=1e-4)
    if math.isclose(float(got_loss), len(halves) * full_loss.item(), rel_tol=1e-5):
        raise Wrong(f"the gradients are right, but the returned loss {float(got_loss):.4f} is the sum over the "
                    f"{len(halves)} micro-batches; expected their mean, {full_loss.item():.4f}.")
    expect_close(float(got_loss), full_loss.item(), "the returned loss", rel=1e-5)
    return "2 micro-batches of 2 rows give one batch of 4's gradient and mean loss, as pretraining._Loop accumulates."


def accumulate(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    """Backpropagate every micro-batch so that the summed .grad is the whole batch's; return the mean loss."""
    total = 0.0
    for x, y in micro_batches:  # (B, T) each
        _, loss = model(x, targets=y)
        (loss / len(micro_batches)).backward()  # .grad adds up: a sum of means/N is the mean
        total += loss.item()
    return total / len(micro_batches)


def _no_division(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    losses = [model(x, targets=y)[1] for x, y in micro_batches]
    for loss in losses:
        loss.backward()
    return sum(loss.item() for loss in losses) / len(losses)


def _zero_inside(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    total = 0.0
    for x, y in micro_batches:
        model.zero_grad()
        _, loss = model(x, targets=y)
        (loss / len(micro_batches)).backward()
        total += loss.item()
    return total / len(micro_batches)


def _returns_the_sum(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    total = 0.0
    for x, y in micro_batches:
        _, loss = model(x, targets=y)
        (loss / len(micro_batches)).backward()
        total += loss.item()
    return total


q4 = Exercise(
    "q4", "accumulate(model, micro_batches): call backward on each (x, y) micro-batch so that the gradients add "
          "up to the whole batch's (the mean loss over all rows), and return that mean loss as a float.",
    checker=_check_accumulate,
    hint_text="For each (x, y): _, loss = model(x, targets=y); (loss / len(micro_batches)).backward(); add "
              "loss.item() to a total. Never zero the gradients inside the loop. Return total / len(micro_batches).",
    reference=accumulate,
    wrong=(_no_division, _zero_inside, _returns_the_sum))

EXERCISES = [q1, q2, q3, q4]
