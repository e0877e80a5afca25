"""SQuAD-style answer metrics, following the official SQuAD v1.1 scoring script (``evaluate-v1.1.py``).

* ``normalize_answer``: lower-case, drop punctuation and the articles a/an/the, squeeze spaces.
* ``exact_match``: normalised strings equal; ``token_f1``: overlap F1 of the normalised tokens.
* Several gold answers per prediction (a list): the best one counts, as the script's max over ground truths.

    >>> token_f1(["The cat sat."], ["a cat sat down"])
    0.8
    >>> exact_match(["Paris"], [["paris, France", "Paris"]])
    1.0
    >>> token_f1([""], [""])                # v1.1: no common token, so F1 0 (v2.0 would give 1)
    0.0
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

from coursekit.evals.checks import check_pairs, reference_lists

_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower-case, drop punctuation and articles, squeeze spaces (SQuAD v1.1)."""
    s = s.lower().translate(_NO_PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1(pred: str, ref: str) -> float:
    """v1.1's f1_score: an empty side has no common token, so F1 is 0 (v2.0 gives 1 when both are empty)."""
    p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def _mean_best(score: Callable[[str, str], float], preds: Sequence[str],
               refs: Sequence[str | Sequence[str]]) -> float:
    """Mean over predictions of the best score over each one's gold answers."""
    check_pairs(preds, refs)
    return sum(max(score(p, g) for g in golds) for p, golds in zip(preds, reference_lists(refs))) / len(preds)


def exact_match(preds: Sequence[str], refs: Sequence[str | Sequence[str]]) -> float:
    """Fraction of predictions equal to one of their gold answers after ``normalize_answer``."""
    return _mean_best(lambda p, g: float(normalize_answer(p) == normalize_answer(g)), preds, refs)


def token_f1(preds: Sequence[str], refs: Sequence[str | Sequence[str]]) -> float:
    """Mean token-overlap F1 after ``normalize_answer``, best over the gold answers (SQuAD v1.1 script)."""
    return _mean_best(_f1, preds, refs)
