"""ROUGE-1/2/L/Lsum: rouge-score's F-measures with the stemmer, Unicode-safe, with a memory limit.

* ``rouge``: mean F-measures; a list of references scores each key against its best one (``score_multi``).
* ``UnicodeTokenizer``: for non-ASCII text, which rouge-score's tokenizer would drop.
* ``MAX_LCS_CELLS``: ROUGE-L fills a table of (reference tokens × prediction tokens) Python ints, so a pair
  past this limit is refused before the work instead of exhausting memory.

    >>> rouge(["testing one"], ["testing one two"])["rouge2"]
    0.6666666666666666
    >>> rouge(["w " * 3000], ["w " * 3000])
    Traceback (most recent call last):
    ValueError: rouge: pair at index 0 has 3000 × 3000 tokens = 9000000 LCS cells, over MAX_LCS_CELLS=4000000 (~0.2 GB); split the texts (e.g. into paragraphs) and score the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import regex

from coursekit.evals.checks import check_pairs, reference_lists

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# rouge-score's LCS table is a list of lists of Python ints: ~50 bytes a cell at worst, so 4e6 cells ~0.2 GB
MAX_LCS_CELLS = 4_000_000
_WORD = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[^\W_]+")


class UnicodeTokenizer:
    """rouge-score's default tokenizer keeps only [a-z0-9], so Chinese or accented text
    would vanish. This one keeps every letter, splits CJK into characters, and
    Porter-stems ASCII words longer than 3 letters, as the default does."""

    def __init__(self, use_stemmer: bool = True) -> None:
        from nltk.stem import porter

        self.stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        """Lower-cased words (CJK: characters), each stemmed if ASCII and longer than 3 letters."""
        tokens = _WORD.findall(text.lower())
        if self.stemmer is None:
            return tokens
        return [self.stemmer.stem(t) if len(t) > 3 and t.isascii() else t for t in tokens]


def _check_lcs_size(preds: Sequence[str], refs: list[list[str]]) -> None:
    """Count tokens without stemming (same count as either tokenizer) and refuse pairs past the limit."""
    for i, (pred, golds) in enumerate(zip(preds, refs)):
        n_pred = len(_WORD.findall(pred.lower()))
        for gold in golds:
            n_ref = len(_WORD.findall(gold.lower()))
            if n_pred * n_ref > MAX_LCS_CELLS:
                raise ValueError(f"rouge: pair at index {i} has {n_ref} × {n_pred} tokens = {n_ref * n_pred} LCS "
                                 f"cells, over MAX_LCS_CELLS={MAX_LCS_CELLS} (~{MAX_LCS_CELLS * 50 / 1e9:.1f} GB); "
                                 "split the texts (e.g. into paragraphs) and score the parts.")


def rouge(preds: Sequence[str], refs: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F-measures (rouge-score, with stemming).

    ASCII text goes through rouge-score's own tokenizer, so results equal the library's; any non-ASCII
    text switches to ``UnicodeTokenizer`` instead. With several references, each key takes the best
    one, as ``RougeScorer.score_multi``. A pair over ``MAX_LCS_CELLS`` raises a ``ValueError``.
    """
    check_pairs(preds, refs)
    golds = reference_lists(refs)
    _check_lcs_size(preds, golds)
    from rouge_score import rouge_scorer

    ascii_only = all(s.isascii() for s in (*preds, *(g for group in golds for g in group)))
    tok: Any = None if ascii_only else UnicodeTokenizer()
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True, tokenizer=tok)
    sums = dict.fromkeys(ROUGE_KEYS, 0.0)
    for pred, group in zip(preds, golds):
        scores = scorer.score_multi(group, pred)
        for k in ROUGE_KEYS:
            sums[k] += scores[k].fmeasure
    return {k: v / len(preds) for k, v in sums.items()}
