"""A chat model's answers to held-out prompts: generated greedily, or scored in one forward pass.

* ``generate_answers``: greedy replies to each row's prompt (its messages minus the last reply), batched.
* ``answer_accuracy``: exact match of those replies against each row's reference reply.
* ``score_answers``: on tokenized examples (``coursekit.chat.tokenize_chat``), the loss on the trained tokens,
  the share of them that are the argmax, and the share of examples whose every trained token is the argmax;
  that last one equals greedy exact match at the token level, at the cost of one forward pass::

    >>> from coursekit.assets import load_tiny
    >>> from coursekit.chat import tokenize_chat
    >>> model, tok = load_tiny("llama")              # random weights: nothing is right yet
    >>> ex = tokenize_chat(tok, [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}])
    >>> scores = score_answers(model, tok, [ex])
    >>> sorted(scores), scores["exact_match"]
    (['exact_match', 'loss', 'token_accuracy'], 0.0)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from coursekit.chat import render_chat, to_messages
from coursekit.evals.text import exact_match
from coursekit.objectives import IGNORE_INDEX


def _prompts(tokenizer: Any, rows: Sequence[Mapping[str, Any]], template: str | None) -> list[str]:
    convs = [to_messages(r) for r in rows]
    return [render_chat(tokenizer, c[:-1], add_generation_prompt=True, template=template) for c in convs]


@torch.no_grad()
def generate_answers(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], max_new_tokens: int = 16,
                     batch_size: int = 32, template: str | None = "auto") -> list[str]:
    """Greedy replies to each row's prompt (its messages minus the last reply), batched, left-padded."""
    prompts = _prompts(tokenizer, rows, template)
    device = next(model.parameters()).device
    out: list[str] = []
    for i in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[i:i + batch_size], return_tensors="pt", padding=True, padding_side="left",
                        add_special_tokens=False).to(device)  # left: every prompt ends where generation starts
        ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return [o.strip() for o in out]


def answer_accuracy(model: Any, tokenizer: Any, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Exact match (``evals.exact_match``) of greedy replies against each row's reference reply."""
    preds = generate_answers(model, tokenizer, rows, **kwargs)
    refs = [to_messages(r)[-1]["content"] for r in rows]
    return {"exact_match": exact_match(preds, refs), "predictions": preds, "references": refs}


@contextlib.contextmanager
def _right_padding(tokenizer: Any) -> Iterator[None]:
    """Pad on the right, whatever the tokenizer's default: positions then match the unpadded examples."""
    side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        yield
    finally:
        tokenizer.padding_side = side


@torch.no_grad()
def score_answers(model: Any, tokenizer: Any, examples: Any, batch_size: int = 16) -> dict[str, float]:
    """Loss on the trained tokens, the share of them that are the argmax (``token_accuracy``), and the share
    of examples whose every trained token is the argmax (``exact_match``).

    One forward pass per batch, with logits only where a trained token is predicted. ``exact_match`` equals
    greedy-decoding exact match at the token level: greedy reproduces the reference reply (and stops)
    exactly when each next token is the most likely one.
    """
    from transformers import DataCollatorForSeq2Seq

    collate = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, return_tensors="pt")
    device = next(model.parameters()).device
    total, count, right, hits = 0.0, 0, 0, 0
    examples = [{"input_ids": list(e["input_ids"]), "labels": list(e["labels"])} for e in examples]
    for i in range(0, len(examples), batch_size):
        with _right_padding(tokenizer):
            batch = collate(examples[i:i + batch_size]).to(device)  # input_ids, attention_mask, labels: (B, T)
        labels = batch["labels"]
        # Only the positions whose next token is trained need logits: on a 150k vocabulary the LM head is most
        # of the cost, and answers are a few tokens at the end. (B, T) -> the columns any row trains
        scored = (labels[:, 1:] != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       logits_to_keep=scored).logits.float()  # (B, n, V)
        target = labels[:, 1:][:, scored]
        keep = target != IGNORE_INDEX
        # flattened (B·n, V), as in evals.lm: the (B, V, n) layout loses ~1e-5 relative on CPU at a 49k vocabulary
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                reduction="none", ignore_index=IGNORE_INDEX).view_as(target)
        total, count = total + nll[keep].sum().item(), count + int(keep.sum())
        hit = logits.argmax(-1) == target
        hits += int((hit & keep).sum())
        right += int((hit | ~keep).all(dim=1).sum())
    n = max(len(examples), 1)
    return {"loss": total / max(count, 1), "token_accuracy": hits / max(count, 1), "exact_match": right / n}
