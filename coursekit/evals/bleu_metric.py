"""Corpus BLEU from scratch, equal to ``sacrebleu.corpus_bleu`` with its default 13a tokenizer.

* ``tokenize_13a``: mteval-v13a tokenization, after sacrebleu's ``rstrip`` of each segment.
* ``bleu_stats``: clipped n-gram matches, totals and the closest reference length, summed over the corpus.
* ``bleu_from_stats``: the score from those statistics with one of sacrebleu's four smoothing methods.
* ``bleu``: both steps, 0-100.

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 2)
    100.0
    >>> bleu(["a b"], ["a b"], smooth="add-one")
    Traceback (most recent call last):
    ValueError: smooth='add-one': unknown smoothing; use one of 'exp', 'none', 'floor', 'add-k' (sacrebleu's methods).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from coursekit.evals.checks import check_pairs, reference_lists
from coursekit.evals.diversity import ngrams

# sacrebleu's defaults for the smoothing value; None: the method takes none
SMOOTH_DEFAULTS: dict[str, float | None] = {"exp": None, "none": None, "floor": 0.1, "add-k": 1.0}

_13A = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # punctuation and symbols
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma unless inside a number
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
]


def tokenize_13a(line: str) -> list[str]:
    """mteval-v13a tokenization (sacrebleu's default), so scores are comparable.

    The segment is right-stripped first, as sacrebleu does: otherwise a trailing ``-\\n`` would be
    joined away as a hyphenated line break and the dash lost.

    >>> tokenize_13a("well-known -\\n")
    ['well-known', '-']
    """
    line = line.rstrip().replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
        line = line.replace(entity, char)
    line = f" {line} "
    for pattern, repl in _13A:
        line = pattern.sub(repl, line)
    return line.split()


@dataclass
class BLEUStats:
    """BLEU's sufficient statistics: per order n, clipped matches and hypothesis n-grams; the two lengths."""

    correct: list[int]
    total: list[int]
    sys_len: int
    ref_len: int


def _closest_length(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length closest to the hypothesis's; the shorter one on a tie (as sacrebleu)."""
    return min(ref_lens, key=lambda n: (abs(n - hyp_len), n))


def bleu_stats(preds: Sequence[str], refs: Sequence[str | Sequence[str]], max_n: int = 4) -> BLEUStats:
    """Clipped n-gram matches and totals, summed over the corpus; each reference is a string or a list."""
    stats = BLEUStats([0] * max_n, [0] * max_n, 0, 0)
    for pred, group in zip(preds, reference_lists(refs)):
        hyp = tokenize_13a(pred)
        ref_toks = [tokenize_13a(r) for r in group]
        stats.sys_len += len(hyp)
        stats.ref_len += _closest_length(len(hyp), [len(r) for r in ref_toks])
        for n in range(1, max_n + 1):
            counts = Counter(ngrams(hyp, n))
            best: Counter[tuple[str, ...]] = Counter()
            for r in ref_toks:
                best |= Counter(ngrams(r, n))  # max count over references
            stats.correct[n - 1] += sum(min(c, best[g]) for g, c in counts.items())  # clipped
            stats.total[n - 1] += max(0, len(hyp) - n + 1)
    return stats


def _check_smoothing(smooth: str, smooth_value: float | None) -> float:
    if smooth not in SMOOTH_DEFAULTS:
        raise ValueError(f"smooth={smooth!r}: unknown smoothing; use one of "
                         f"{', '.join(map(repr, SMOOTH_DEFAULTS))} (sacrebleu's methods).")
    default = SMOOTH_DEFAULTS[smooth]
    if default is None:
        if smooth_value is not None:
            raise ValueError(f"smooth_value={smooth_value}: smooth={smooth!r} takes no value; "
                             "use smooth='floor' or 'add-k' to set one, or leave smooth_value=None.")
        return 0.0
    value = default if smooth_value is None else smooth_value
    if not value >= 0:
        raise ValueError(f"smooth_value={value}: must be >= 0 for smooth={smooth!r}; sacrebleu's default is {default}.")
    return float(value)


def bleu_from_stats(stats: BLEUStats, smooth: str = "exp", smooth_value: float | None = None) -> float:
    """BLEU in 0-100 from its statistics: geometric mean of the n-gram precisions × brevity penalty.

    Smoothing as sacrebleu's ``compute_bleu`` (Chen & Cherry 2014): ``"exp"`` halves the stand-in
    precision for each successive order with no match; ``"floor"`` puts ``smooth_value`` (0.1) in place of
    a zero match count; ``"add-k"`` adds ``smooth_value`` (1) to the matches and totals of orders 2 and up;
    ``"none"`` leaves zero precisions at zero.

    >>> round(bleu_from_stats(BLEUStats([9, 7, 5, 3], [10, 8, 6, 4], 11, 11)), 8)
    83.75922397
    """
    value = _check_smoothing(smooth, smooth_value)
    if not any(stats.correct):
        return 0.0
    bp = 1.0
    if stats.sys_len < stats.ref_len:
        bp = math.exp(1 - stats.ref_len / stats.sys_len) if stats.sys_len else 0.0
    log_sum, halve = 0.0, 1.0
    for n, (correct, total) in enumerate(zip(stats.correct, stats.total), start=1):
        if smooth == "add-k" and n > 1:
            correct, total = correct + value, total + value
        if total == 0:  # hypotheses shorter than n: that precision is 0, and so is BLEU
            return 0.0
        if correct > 0:
            p = 100.0 * correct / total
        elif smooth == "exp":
            halve *= 2
            p = 100.0 / (halve * total)
        elif smooth == "floor":
            p = 100.0 * value / total
        else:
            p = 0.0
        if p == 0:
            return 0.0
        log_sum += math.log(p)
    return bp * math.exp(log_sum / len(stats.correct))


def bleu(preds: Sequence[str], refs: Sequence[str | Sequence[str]], smooth: str = "exp", max_n: int = 4,
         smooth_value: float | None = None, tokenize: str = "13a") -> float:
    """Corpus BLEU in 0-100, equal to ``sacrebleu.corpus_bleu`` (13a tokens; ``smooth`` as its
    ``smooth_method``, see ``bleu_from_stats``). Each reference is a string or a list of strings.

    sacrebleu's other tokenizers, ``lowercase`` and ``use_effective_order`` are not offered.
    """
    check_pairs(preds, refs)
    if tokenize != "13a":
        raise ValueError(f"tokenize={tokenize!r}: only sacrebleu's default '13a' is built here; "
                         f"use sacrebleu.corpus_bleu(..., tokenize={tokenize!r}) for that one.")
    _check_smoothing(smooth, smooth_value)  # before the work, not after it
    if not (isinstance(max_n, int) and max_n >= 1):
        raise ValueError(f"max_n={max_n!r}: must be a positive integer n-gram order; BLEU's standard is 4.")
    return bleu_from_stats(bleu_stats(preds, refs, max_n), smooth, smooth_value)
