"""Metrics computed from a language model's own logits: perplexity and multiple-choice accuracy.

* ``perplexity``: exp of the token-weighted mean NLL; padding never counts, and a text longer than the
  model's context (``model_context``) is scored with the sliding-window method (``stride``).
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


def model_context(model: Any) -> int | None:
    """The most positions the model was built or trained for, from its config; None if it names none.

    GPT-2: ``n_positions``; RoPE models (Llama, Qwen): ``max_position_embeddings``; ``coursekit.gpt2``:
    ``block_size``. A RoPE model runs past it without an error, but its scores there mean nothing.
    """
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "block_size", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _window(model: Any, stride: int | None, max_length: int | None) -> tuple[int | None, int | None]:
    """The window length and stride to score with, checked before any forward pass."""
    for name, value in (("stride", stride), ("max_length", max_length)):
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ValueError(f"{name}={value!r}: must be a positive number of tokens, or None for the model's context.")
    context = model_context(model)
    if max_length is not None and context is not None and max_length > context:
        raise ValueError(f"max_length={max_length}: over the model's context of {context} positions; "
                         f"use max_length <= {context} (or None for the whole context).")
    window = max_length or context
    if window is None and stride is not None:
        raise ValueError(f"stride={stride}: the model's config names no context length; pass max_length= too.")
    if window is not None and stride is not None and stride > window:
        raise ValueError(f"stride={stride}: must be in 1..max_length ({window}); a larger step would skip tokens.")
    if window is not None and window < 2:
        raise ValueError(f"max_length={window}: a window needs at least 2 tokens (a context and a target).")
    return window, stride


@torch.no_grad()
def perplexity(model: Any, tokenizer: Any, texts: Sequence[str], stride: int | None = None,
               batch_size: int = 8, max_length: int | None = None) -> float:
    """exp(token-weighted mean NLL) over ``texts``, each scored whole as the tokenizer encodes it.

    Padding never counts, and a text of under 2 tokens has nothing to score. Windows follow the model's
    context (``model_context``) unless ``max_length`` is smaller: a text that fits is scored whole, in
    batches of ``batch_size``; a longer one with the sliding-window method, each window of ``max_length``
    tokens moving by ``stride`` (default: half the window) and scoring only its new tokens. So memory stays
    at most ``batch_size`` × window logits, whatever the texts' length.
    """
    check_texts(texts)
    if not (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size > 0):
        raise ValueError(f"batch_size={batch_size!r}: must be a positive number of texts per forward pass.")
    window, stride = _window(model, stride, max_length)
    device = next(model.parameters()).device
    encoded = [ids for ids in (tokenizer(t)["input_ids"] for t in texts) if len(ids) >= 2]
    fits = [ids for ids in encoded if window is None or len(ids) <= window]
    total, count = _batched_nll(model, fits, batch_size, device)
    for ids in encoded:
        if window is not None and len(ids) > window:
            s, n = _strided_nll(model, torch.tensor([ids], device=device), window, stride or max(window // 2, 1))
            total, count = total + s, count + n
    if count == 0:
        raise ValueError("No token to score: every text encodes to fewer than 2 tokens (an empty string has none); "
                         "pass texts of at least two tokens.")
    return math.exp(total / count)


def _batched_nll(model: Any, encoded: list[list[int]], batch_size: int, device: Any) -> tuple[float, int]:
    """Summed NLL and token count of texts that fit the context, ``batch_size`` at a time, right-padded."""
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
    return total, count


def _strided_nll(model: Any, ids: torch.Tensor, max_length: int, stride: int) -> tuple[float, int]:
    """Summed NLL and count of one long text (1, T), window by window, each target scored once."""
    if not 0 < stride <= max_length:
        raise ValueError(f"stride={stride}: must be in 1..max_length ({max_length}).")
    total, count, scored_to = 0.0, 0, 1  # token 0 has no context, so it is never scored
    T = ids.shape[1]
    for begin in range(0, T, stride):
        end = min(begin + max_length, T)
        window = ids[:, begin:end]
        if window.shape[1] < 2:  # a last window of one token holds no target
            break
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
    """Mean per-token loss of each ending after ``ctx`` (length-normalised).

    Every token of an ending is scored, so the context must give the first one something to follow: a context
    that encodes to no token (an empty one, with a tokenizer that adds no BOS) is an error, and so is a
    context plus ending longer than the model's context (``model_context``), whose scores would mean nothing.
    """
    device = next(model.parameters()).device
    ctx_ids = _encode(tokenizer, ctx, special=True)
    if not ctx_ids:
        raise ValueError(f"ctx={ctx!r} encodes to no token, so the ending's first token has nothing to follow and "
                         "could not be scored; give a context (HellaSwag's ctx is never empty)")
    if isinstance(endings, str) or not endings:
        raise ValueError(f"endings={endings!r}: give a list of at least one ending to score after the context")
    context = model_context(model)
    out = []
    for j, ending in enumerate(endings):
        end_ids = _encode(tokenizer, " " + ending, special=False)
        if context is not None and len(ctx_ids) + len(end_ids) > context:
            raise ValueError(f"ending {j}: context + ending are {len(ctx_ids) + len(end_ids)} tokens, over the model's "
                             f"context of {context} positions; shorten ctx (keep its end) to fit")
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
        _check_label(item, i)
        try:
            losses = completion_losses(model, tokenizer, item["ctx"], item["endings"])
        except ValueError as err:
            raise ValueError(f"item at index {i}: {err}") from None
        preds.append(min(range(len(losses)), key=losses.__getitem__))
    correct = [p == int(it["label"]) for p, it in zip(preds, items)]  # _check_label made each an index
    return {"accuracy": sum(correct) / len(items), "predictions": preds}


def _check_label(item: dict[str, Any], index: int) -> None:
    """The endings are a non-empty list, and the label is the index of the right one (an int, or HellaSwag's digit
    string; its test split's ``''`` means an unlabelled item)."""
    endings, label = item["endings"], item["label"]
    if isinstance(endings, str) or not endings:
        raise ValueError(f"item at index {index}: endings={endings!r}: give a list of at least one ending to score "
                         "after the context")
    is_index = isinstance(label, int) or (isinstance(label, str) and label.isdigit())
    if isinstance(label, bool) or not is_index or not 0 <= int(label) < len(endings):
        raise ValueError(f"item at index {index}: label {label!r} is not the index of one of its {len(endings)} "
                         "endings (0 to n - 1; HellaSwag's test split has label '': score the validation split)")
