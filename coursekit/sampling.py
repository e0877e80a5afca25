"""Sampling: ``n`` generations of one prompt in a single seeded ``generate`` call.

``sample_generations`` applies the chat template (when the tokenizer has one), seeds torch
right before generating so a sampled call is reproducible, and cuts the prompt and the
end-of-sequence tokens off each sample; it returns them as ``Generations``::

    >>> from coursekit.assets import load_tiny
    >>> model, tok = load_tiny("llama")             # random weights: the texts are noise
    >>> g = sample_generations(model, tok, "Name a colour.", n=2, seed=0, do_sample=True, max_new_tokens=8)
    >>> len(g.texts), g.prompt.splitlines()[-1]     # the chat template ends with the assistant's turn
    (2, '<|im_start|>assistant')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Generations", "sample_generations"]


@dataclass
class Generations:
    """``n`` completions of one prompt: the decoded texts and the new token ids (EOS cut off)."""

    texts: list[str]
    token_ids: list[list[int]]
    prompt: str  # the exact string the model saw (chat template applied)


def _eos_ids(model: Any, tok: Any) -> set[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    if eos is None:
        eos = tok.eos_token_id
    return set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}


def sample_generations(model: Any, tok: Any, prompt: str | list[dict[str, str]], n: int = 1,
                       *, seed: int | None = None, chat: bool = True,
                       template_kwargs: Mapping[str, Any] | None = None, **gen_kwargs: Any) -> Generations:
    """Generate ``n`` completions of ``prompt`` in one batched ``model.generate`` call.

    With ``chat`` (and a tokenizer that has a chat template), a string prompt
    becomes one user message and the template is applied with the generation
    prompt; a list of messages is used as is; ``template_kwargs`` go to the
    template (e.g. ``{"enable_thinking": False}`` for Qwen3; ``{"chat_template": ...}`` renders with that
    template instead, on a tokenizer with or without its own). ``seed`` seeds torch right before
    generating, so a sampled call is reproducible. ``gen_kwargs`` go to
    ``generate`` (``max_new_tokens``, ``do_sample``, ``temperature``, ``top_p``,
    ``top_k``, ``repetition_penalty``, ``no_repeat_ngram_size``, ...)::

        >>> from coursekit.assets import load_tiny
        >>> model, tok = load_tiny("llama")             # random weights: the texts are noise
        >>> kw = dict(do_sample=True, temperature=0.7, max_new_tokens=16)
        >>> g = sample_generations(model, tok, "Name a colour.", n=4, seed=0, **kw)
        >>> g.prompt.splitlines()                       # the chat template was applied
        ['<|im_start|>user', 'Name a colour.<|im_end|>', '<|im_start|>assistant']
        >>> len(g.texts), max(len(ids) for ids in g.token_ids) <= 16
        (4, True)
        >>> sample_generations(model, tok, "Name a colour.", n=4, seed=0, **kw).texts == g.texts
        True
    """
    if n < 1:
        raise ValueError(f"n={n!r}: must be ≥ 1, the number of completions to generate.")
    if chat and (getattr(tok, "chat_template", None) or "chat_template" in (template_kwargs or {})):
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                         **dict(template_kwargs or {}))
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
    else:
        if not isinstance(prompt, str):
            raise ValueError("A list of chat messages needs chat=True and a tokenizer with a chat template.")
        text = prompt
        enc = tok(text, return_tensors="pt")
    enc = {k: v.to(model.device) for k, v in enc.items()}
    gen_kwargs.setdefault("pad_token_id", tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    if n > 1:
        gen_kwargs["num_return_sequences"] = n
    if seed is not None:
        torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(**enc, **gen_kwargs)
    new = out[:, enc["input_ids"].shape[1]:].tolist()
    stops = _eos_ids(model, tok)
    ids = []
    for row in new:
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        ids.append(row[:cut])
    return Generations([tok.decode(r, skip_special_tokens=True) for r in ids], ids, text)
