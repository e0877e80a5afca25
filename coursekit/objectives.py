"""Pretraining objectives: the causal LM loss (GPT) and masked-LM corruption (BERT).

* ``causal_lm_loss``: shift by one, cross-entropy; equal to a transformers
  model's own ``loss``.
* ``mlm_mask``: BERT's 15 % selection with the 80/10/10 rule; same
  distribution as ``DataCollatorForLanguageModeling``.
* ``IGNORE_INDEX``: the label value every loss here (and every HF model) skips.

Worked example::

    >>> ids = torch.tensor([[101, 7592, 2088, 102]])      # [CLS] hello world [SEP]
    >>> inputs, labels = mlm_mask(ids, (103, 30522, [0, 101, 102]), prob=1.0)  # select every word
    >>> labels.tolist()        # -100 where not selected: the loss sees selected tokens only
    [[-100, 7592, 2088, -100]]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["IGNORE_INDEX", "MaskSpec", "causal_lm_loss", "mlm_mask"]

IGNORE_INDEX = -100  # the label value cross_entropy (and every HF model) skips


def causal_lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Next-token cross-entropy: position ``t`` predicts token ``t + 1``.

    ``logits`` is ``(batch, seq, vocab)``, ``input_ids`` (or labels with
    ``ignore_index`` at padding) is ``(batch, seq)``. The last position has no
    next token and the first token is never a target, so ``seq - 1`` targets
    per row are averaged. This equals ``model(input_ids, labels=input_ids).loss``
    of a transformers causal LM::

        >>> from coursekit.assets import load_tiny
        >>> model, tok = load_tiny("llama")
        >>> ids = tok("def add(a, b): return a + b", return_tensors="pt").input_ids
        >>> out = model(ids, labels=ids)
        >>> torch.allclose(causal_lm_loss(out.logits, ids), out.loss)
        True
    """
    if logits.dim() != 3 or input_ids.dim() != 2 or logits.shape[:2] != input_ids.shape:
        raise ValueError(f"Expected logits (batch, seq, vocab) and input_ids (batch, seq); "
                         f"got {tuple(logits.shape)} and {tuple(input_ids.shape)}.")
    if input_ids.shape[1] < 2:
        raise ValueError("Need at least 2 tokens per row: one to read and one to predict.")
    pred = logits[:, :-1, :].float()  # position t ...
    target = input_ids[:, 1:]  # ... predicts token t + 1
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1), ignore_index=ignore_index)


MaskSpec = tuple[int, int, Iterable[int]]  # (mask_id, vocab_size, special_ids)


def _mask_spec(tokenizer: Any) -> tuple[int, int, list[int]]:
    if isinstance(tokenizer, tuple):
        if len(tokenizer) != 3:
            raise ValueError("Pass a tokenizer or a (mask_id, vocab_size, special_ids) tuple.")
        mask_id, vocab_size, special = tokenizer
        return int(mask_id), int(vocab_size), [int(s) for s in special]
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if mask_id is None:
        raise ValueError(f"{type(tokenizer).__name__} has no mask token: MLM needs one (e.g. BERT's [MASK]).")
    return int(mask_id), len(tokenizer), [int(s) for s in tokenizer.all_special_ids]


def mlm_mask(
    input_ids: torch.Tensor,
    tokenizer: Any | MaskSpec,
    prob: float = 0.15,
    generator: torch.Generator | None = None,
    *,
    mask_frac: float = 0.8,
    random_frac: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-LM corruption: returns ``(inputs, labels)``, leaving ``input_ids`` untouched.

    1. Each non-special token is *selected* with probability ``prob`` (15 %);
       special tokens ([CLS], [SEP], [PAD], ...) never are.
    2. Of the selected tokens, 80 % become ``[MASK]``, 10 % a uniformly random
       token id from the whole vocabulary, and 10 % stay unchanged, so the model
       cannot learn that "only [MASK] positions matter".
    3. ``labels`` holds the original id at selected positions and ``-100``
       everywhere else: the loss is computed on the selected 15 % only.

    ``tokenizer`` is a transformers tokenizer with a mask token, or a tuple
    ``(mask_id, vocab_size, special_ids)``. The distribution is that of
    transformers' ``DataCollatorForLanguageModeling(mlm_probability=0.15)``
    (the tests check the proportions on 200k tokens)::

        >>> ids = torch.tensor([[101, 7592, 2088, 1010, 2088, 999, 102]])   # [CLS] ... [SEP]
        >>> inputs, labels = mlm_mask(ids, (103, 30522, [0, 101, 102]), prob=0.5,
        ...                           generator=torch.Generator().manual_seed(0))
        >>> inputs.tolist(), labels.tolist()   # selected: 2088, 1010, 2088 (all became [MASK] here)
        ([[101, 7592, 103, 103, 103, 999, 102]], [[-100, -100, 2088, 1010, 2088, -100, -100]])
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}.")
    if mask_frac < 0 or random_frac < 0 or mask_frac + random_frac > 1:
        raise ValueError(f"Need mask_frac, random_frac ≥ 0 with a sum ≤ 1; got {mask_frac}, {random_frac}.")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError("input_ids must be an integer torch.Tensor of token ids.")
    if input_ids.numel() == 0:
        raise ValueError("input_ids is empty: nothing to mask.")
    mask_id, vocab_size, special_ids = _mask_spec(tokenizer)
    device = input_ids.device
    special = torch.isin(input_ids, torch.tensor(special_ids, dtype=input_ids.dtype, device=device))

    draw = torch.rand(input_ids.shape, generator=generator, device=device)
    selected = (draw < prob) & ~special
    how = torch.rand(input_ids.shape, generator=generator, device=device)  # which of 80/10/10
    to_mask = selected & (how < mask_frac)
    to_random = selected & (how >= mask_frac) & (how < mask_frac + random_frac)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=device,
                               dtype=input_ids.dtype)

    inputs = input_ids.clone()
    inputs[to_mask] = mask_id
    inputs[to_random] = random_ids[to_random]
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return inputs, labels
