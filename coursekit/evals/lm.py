"""Metrics computed from a language model's own logits: perplexity and multiple-choice accuracy.

* ``perplexity``: exp of the token-weighted mean NLL; padding never counts, and long
  texts can be scored with the sliding-window method (``stride``).
* ``multiple_choice_accuracy``: HellaSwag-style, the ending with the lowest
  length-normalised loss wins. Works with transformers models and ``coursekit.gpt2.GPT2``.

    >>> from coursekit.assets import load_tiny
    >>> model, tok = load_tiny("gpt2")                 # random weights: about uniform over 512 tokens
    >>> 200 < perplexity(model, tok, ["def add(a, b): return a + b"]) < 1300
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from coursekit.evals.checks import check_texts


def _logits(out: Any) -> torch.Tensor:
    """Logits from a transformers output or our GPT2's ``(logits, loss)`` tuple."""
    return out[0] if isinstance(out, tuple) else out.logits


def _token_nll(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """Summed NLL of every predicted token (positions 1..T-1 where the mask is 1), and their count.

    Padding is on the right, so causal attention never lets a real token see it:
    no attention mask is needed, and only the loss must skip it.
    """
    logits = _logits(model(ids))  # (B, T, V)
    B, T, V = logits.shape
    # Flattened to (B·(T-1), V): on CPU, the (B, V, T-1) layout sums the softmax over a strided
    # dimension and loses ~1e-4 relative on a 49k vocabulary; this layout matches float64 to ~1e-6.
    nll = F.cross_entropy(logits[:, :-1].float().reshape(-1, V), ids[:, 1:].reshape(-1),
                          reduction="none").view(B, T - 1)
    keep = mask[:, 1:].bool()
    return nll[keep].sum().item(), int(keep.sum())


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: Sequence[str], stride: int | None = None,
               batch_size: int = 8, max_length: int | None = None) -> float:
    """exp(token-weighted mean NLL) over ``texts``, each scored whole as the tokenizer encodes it.

    Padding never counts. With ``stride``, texts longer than the context are
    scored with the sliding-window method: each window of ``max_length`` tokens
    moves by ``stride`` and only its new tokens are scored, with the rest as context.
    """
    check_texts(texts)
    device = next(model.parameters()).device
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    if stride is not None:
        ctx = max_length or model.config.max_position_embeddings
        total, count = 0.0, 0
        for ids in encoded:
            s, n = _strided_nll(model, torch.tensor([ids], device=device), ctx, stride)
            total, count = total + s, count + n
        return math.exp(total / count)
    total, count = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids in chunk)
        # By hand, not tokenizer.pad: GPT-2-style tokenizers have no pad token, and the pad id is never read
        ids = torch.zeros(len(chunk), width, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(chunk):  # right padding: positions are unchanged
            ids[row, :len(seq)] = torch.tensor(seq)
            mask[row, :len(seq)] = 1
        s, n = _token_nll(model, ids, mask)
        total, count = total + s, count + n
    if count == 0:
        raise ValueError("No token to score: every text encodes to fewer than 2 tokens.")
    return math.exp(total / count)


def _strided_nll(model: Any, ids: torch.Tensor, max_length: int, stride: int) -> tuple[float, int]:
    if not 0 < stride <= max_length:
        raise ValueError(f"stride must be in 1..max_length ({max_length}); got {stride}.")
    total, count, scored_to = 0.0, 0, 1  # token 0 has no context, so it is never scored
    T = ids.shape[1]
    for begin in range(0, T, stride):
        end = min(begin + max_length, T)
        window = ids[:, begin:end]
        logits = _logits(model(window))  # (1, W, V)
        nll = F.cross_entropy(logits[0, :-1].float(), window[0, 1:], reduction="none")  # (W-1,)
        # Only targets not scored by an earlier window. With stride == max_length (disjoint windows)
        # a window's first token has no context inside it and is skipped, as in HF's perplexity guide.
        new = nll[max(scored_to - begin - 1, 0):]
        total, count = total + new.sum().item(), count + new.numel()
        scored_to = end
        if end == T:
            break
    return total, count


# ---------------------------------------------------------------- multiple choice
def _encode(tokenizer: Any, text: str, special: bool) -> list[int]:
    if hasattr(tokenizer, "n_vocab"):  # tiktoken
        return tokenizer.encode(text)
    return tokenizer(text, add_special_tokens=special)["input_ids"]


@torch.no_grad()
def completion_losses(model: Any, tokenizer: Any, ctx: str, endings: Sequence[str]) -> list[float]:
    """Mean per-token loss of each ending after ``ctx`` (length-normalised)."""
    device = next(model.parameters()).device
    ctx_ids = _encode(tokenizer, ctx, special=True)
    out = []
    for ending in endings:
        end_ids = _encode(tokenizer, " " + ending, special=False)
        ids = torch.tensor([ctx_ids + end_ids], device=device)
        logits = _logits(model(ids))[0, :-1]  # (T-1, V)
        nll = F.cross_entropy(logits.float(), ids[0, 1:], reduction="none")[len(ctx_ids) - 1:]
        out.append(nll.mean().item())
    return out


def multiple_choice_accuracy(model: Any, tokenizer: Any, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """HellaSwag-style accuracy: pick the ending with the lowest mean token loss.

    ``items`` are dicts with ``ctx``, ``endings`` and ``label`` (HellaSwag's format).
    Works with transformers models and with ``coursekit.gpt2.GPT2``.
    """
    if len(items) == 0:
        raise ValueError("Empty input: need at least one multiple-choice item.")
    preds = []
    for i, item in enumerate(items):
        missing = [k for k in ("ctx", "endings", "label") if k not in item]
        if missing:
            raise ValueError(f"item at index {i} lacks {missing}: each needs ctx, endings and label.")
        losses = completion_losses(model, tokenizer, item["ctx"], item["endings"])
        preds.append(min(range(len(losses)), key=losses.__getitem__))
    correct = [p == int(it["label"]) for p, it in zip(preds, items)]
    return {"accuracy": sum(correct) / len(items), "predictions": preds}
