"""Diversity of generations: how often n-grams repeat, across samples and inside one.

* ``distinct_n``: unique n-grams / all n-grams over a set of samples (Li et al., 2016).
* ``repetition_rate``: the share of n-grams inside one sample that repeat an earlier one.
* ``ngrams``: the n-grams of one sample (words of a string, or token ids), which BLEU counts too.

    >>> distinct_n(["the cat sat", "the cat ran"], n=2)   # {the cat, cat sat, cat ran} / 4
    0.75
    >>> repetition_rate("a b a b a b", n=2)               # 5 bigrams, 2 distinct: 3 repeat
    0.6
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

__all__ = ["distinct_n", "ngrams", "repetition_rate"]


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

    A 2-D tensor is read as one sample per row. Raises ValueError for ``n < 1``, an empty list,
    or samples too short to hold one n-gram.
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
