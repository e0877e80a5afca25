"""Text generation and pretraining objectives: the measuring tools of lesson 01.

Four groups of helpers, each small enough to read in one go:

* **Diversity of generations**: ``distinct_n`` (unique n-grams / all n-grams,
  over a set of samples) and ``repetition_rate`` (the share of n-grams inside
  one sample that repeat an earlier one).
* **Token budgets**: ``token_counts`` under several tokenizers at once (HF
  tokenizers and tiktoken encodings), ``words_per_token`` and
  ``fits_in_context``.
* **Pretraining objectives**: ``causal_lm_loss`` (shift by one, cross-entropy;
  equal to a transformers model's own ``loss``) and ``mlm_mask`` (BERT's
  15 % selection with the 80/10/10 rule; same distribution as
  ``DataCollatorForLanguageModeling``).
* ``sample_generations``: ``n`` generations of one prompt in a single
  ``generate`` call, seeded, with the prompt and the end-of-sequence tokens cut off.

Worked example::

    >>> distinct_n(["the cat sat", "the cat ran"], n=2)   # {the cat, cat sat, cat ran} / 4
    0.75
    >>> repetition_rate("a b a b a b", n=2)               # 5 bigrams, 2 distinct: 3 repeat
    0.6
    >>> fits_in_context(3000, [512, 2048, 8192])
    {512: False, 2048: False, 8192: True}
    >>> ids = torch.tensor([[101, 7592, 2088, 102]])      # [CLS] hello world [SEP]
    >>> inputs, labels = mlm_mask(ids, (103, 30522, [0, 101, 102]), prob=1.0)  # select every word
    >>> labels.tolist()        # -100 where not selected: the loss sees selected tokens only
    [[-100, 7592, 2088, -100]]
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import torch
import torch.nn.functional as F

__all__ = [
    "IGNORE_INDEX",
    "Generations",
    "causal_lm_loss",
    "distinct_n",
    "fits_in_context",
    "mlm_mask",
    "ngrams",
    "repetition_rate",
    "sample_generations",
    "token_counts",
    "words_per_token",
]

IGNORE_INDEX = -100  # the label value cross_entropy (and every HF model) skips


# ---------------------------------------------------------------- n-gram diversity
def _units(sample: str | Sequence[Hashable] | torch.Tensor) -> list[Hashable]:
    """A sample as a list of units: words for a string, items for a token list or 1-D tensor."""
    if isinstance(sample, str):
        return list(sample.split())
    if isinstance(sample, torch.Tensor):
        if sample.dim() != 1:
            raise ValueError(f"Expected a 1-D tensor of token ids, got shape {tuple(sample.shape)}.")
        return sample.tolist()
    return list(sample)


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer ≥ 1, got {n!r}.")


def ngrams(sample: str | Sequence[Hashable] | torch.Tensor, n: int) -> list[tuple[Hashable, ...]]:
    """All n-grams of one sample, in order: ``ngrams("a b c", 2) == [("a", "b"), ("b", "c")]``.

    A string is split on whitespace; a list or 1-D tensor is taken as tokens.
    """
    _check_n(n)
    units = _units(sample)
    return [tuple(units[i : i + n]) for i in range(len(units) - n + 1)]


def distinct_n(texts: Sequence[str | Sequence[Hashable] | torch.Tensor], n: int) -> float:
    """Corpus-level distinct-n (Li et al., 2016): unique n-grams / total n-grams over all samples.

    1.0 means no n-gram ever repeats (within or across samples); values near 0
    mean the samples say the same thing over and over.

    >>> distinct_n(["the cat sat", "the cat ran"], n=2)   # 3 unique of 4 bigrams
    0.75
    >>> distinct_n([[1, 2, 3], [1, 2, 3]], n=1)           # token ids work too
    0.5

    A 2-D tensor is read as one sample per row. Raises ValueError for ``n < 1``, an empty list, or samples too short to hold one n-gram.
    """
    _check_n(n)
    if isinstance(texts, torch.Tensor) and texts.dim() == 2:  # a (samples, tokens) batch of ids
        texts = list(texts)
    if isinstance(texts, (str, torch.Tensor)) or len(texts) == 0:
        raise ValueError("distinct_n needs a non-empty list of samples (strings or token lists).")
    grams = [g for sample in texts for g in ngrams(sample, n)]
    if not grams:
        raise ValueError(f"No sample is long enough to contain a {n}-gram.")
    return len(set(grams)) / len(grams)


def repetition_rate(sample: str | Sequence[Hashable] | torch.Tensor, n: int = 2) -> float:
    """Share of a sample's n-grams that repeat an n-gram seen earlier in the same sample.

    ``1 - unique / total`` for one sample: 0.0 means no n-gram occurs twice
    (what ``no_repeat_ngram_size=n`` guarantees); a degenerate loop tends to 1.
    A sample shorter than ``n`` has no n-grams and so no repetition: 0.0.

    >>> repetition_rate("a b a b a b", n=2)    # ab ba ab ba ab: 2 distinct of 5
    0.6
    >>> repetition_rate([5, 6, 7, 8], n=2)
    0.0
    """
    grams = ngrams(sample, n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


# ---------------------------------------------------------------- token budgets
def _count_tokens(text: str, tokenizer: Any) -> int:
    """Tokens in ``text`` under one tokenizer, without BOS/EOS/[CLS]/[SEP] and without length warnings."""
    if hasattr(tokenizer, "encode_ordinary"):  # tiktoken.Encoding (special-token text is plain text here)
        return len(tokenizer.encode_ordinary(text))
    if hasattr(tokenizer, "model_max_length"):  # a transformers tokenizer, fast or slow
        # verbose=False: a long text is the point here, so no "longer than the maximum" warning;
        # the call (not backend_tokenizer) ignores any padding/truncation saved in tokenizer.json.
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    if hasattr(tokenizer, "encode"):  # a bare tokenizers.Tokenizer: count real tokens, not padding
        enc = tokenizer.encode(text, add_special_tokens=False)
        return sum(enc.attention_mask)
    raise ValueError(f"Don't know how to count tokens with a {type(tokenizer).__name__}: "
                     "pass a transformers tokenizer, a tokenizers.Tokenizer or a tiktoken Encoding.")


def token_counts(text: str, tokenizers: Mapping[str, Any]) -> dict[str, int]:
    """Number of tokens ``text`` becomes under each named tokenizer, special tokens not added.

    Handles transformers tokenizers (fast or slow), ``tokenizers.Tokenizer`` and
    tiktoken encodings::

        >>> from coursekit.assets import cl100k, load_tiny
        >>> tiny_tok = load_tiny("gpt2")[1]               # a 512-token BPE: more, shorter pieces
        >>> token_counts("Hello world", {"gpt-4": cl100k(), "tiny": tiny_tok})
        {'gpt-4': 2, 'tiny': 8}
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    if not tokenizers:
        raise ValueError("Pass at least one tokenizer, as a {name: tokenizer} dict.")
    return {name: _count_tokens(text, tok) for name, tok in tokenizers.items()}


def words_per_token(text: str, n_tokens: int) -> float:
    """Whitespace-separated words per token: ~0.75 for English under a GPT-4-sized BPE.

    >>> words_per_token("one two three", 4)
    0.75
    """
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be ≥ 1, got {n_tokens}.")
    return len(text.split()) / n_tokens


@overload
def fits_in_context(n_tokens: int, context_lengths: Iterable[int]) -> dict[int, bool]: ...
@overload
def fits_in_context(n_tokens: Mapping[str, int], context_lengths: Iterable[int]) -> dict[str, dict[int, bool]]: ...
def fits_in_context(n_tokens: int | Mapping[str, int], context_lengths: Iterable[int]) -> Any:
    """Which context windows hold ``n_tokens`` tokens (``n_tokens <= length``).

    Pass one count for ``{length: fits}``, or ``{name: count}`` (e.g. from
    ``token_counts``) for one such row per name::

        >>> fits_in_context(3000, [512, 2048, 8192])
        {512: False, 2048: False, 8192: True}
        >>> fits_in_context({"a": 600}, [512, 2048])
        {'a': {512: False, 2048: True}}
    """
    lengths = list(context_lengths)
    if not lengths or any(int(c) < 1 for c in lengths):
        raise ValueError(f"context_lengths must be a non-empty list of positive ints, got {lengths!r}.")
    if isinstance(n_tokens, Mapping):
        return {name: fits_in_context(count, lengths) for name, count in n_tokens.items()}
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be ≥ 0, got {n_tokens}.")
    return {int(c): n_tokens <= c for c in lengths}


# ---------------------------------------------------------------- pretraining objectives
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


# ---------------------------------------------------------------- sampling
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
    template (e.g. ``{"enable_thinking": False}`` for Qwen3). ``seed`` seeds torch right before
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
        raise ValueError(f"n must be ≥ 1, got {n}.")
    if chat and getattr(tok, "chat_template", None):
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
