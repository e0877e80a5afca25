"""Lesson 06's exercises: BLEU's clipped matches and brevity penalty, pooled perplexity, a numeric error.

Each check compares the student's function with the finished copy in ``coursekit.evals`` (BLEU's
statistics and score) or with the arithmetic itself, on inputs small enough to work out by hand.

    >>> from coursekit.exercises.lesson06 import q2
    >>> q2.check(lambda c, r: math.exp(1 - r / c))
    ✗ q2: brevity_penalty(9, 7) is 1.24885; expected 1.
      Hint: BLEU only punishes a short candidate: 1.0 when c >= r, exp(1 - r / c) when c < r.
    >>> q2.grade(q2.reference).status
    'correct'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

from coursekit.evals import BLEUStats, bleu_from_stats, bleu_stats
from coursekit.exercises import Exercise, Wrong, expect_close, expect_equal

__all__ = ["EXERCISES", "q1", "q2", "q3", "q4"]


# ---------------------------------------------------------------- q1: clipped n-gram matches
def clipped_matches(hyp: list[str], ref: list[str], n: int) -> int:
    """The candidate's n-grams found in the reference, each counted at most as often as the reference has it."""
    grams = lambda toks: Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))  # noqa: E731
    ref_counts = grams(ref)
    return sum(min(count, ref_counts[g]) for g, count in grams(hyp).items())


# (candidate, reference, n): lower-case words without punctuation, so 13a tokenization is a plain split
Q1_CASES = [("the the the the the the", "the cat is on the mat", 1),
            ("the cat is on the mat", "there is a cat on the mat", 2),
            ("a a b a", "a b a a", 2),
            ("one two three four", "one two three four five", 3)]


def _check_q1(fn: Callable[[list[str], list[str], int], int]) -> str:
    for hyp, ref, n in Q1_CASES:
        want = bleu_stats([hyp], [ref], max_n=n).correct[n - 1]  # the package's BLEU statistics
        got = fn(hyp.split(), ref.split(), n)
        expect_equal(got, want, f"clipped_matches({hyp.split()}, {ref.split()}, n={n})")
    return "Clipping is right: six 'the' against a reference with two count 2, as in evals.bleu_stats."


def _unclipped(hyp: list[str], ref: list[str], n: int) -> int:
    grams = lambda toks: Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))  # noqa: E731
    ref_counts = grams(ref)
    return sum(count for g, count in grams(hyp).items() if g in ref_counts)


def _distinct_only(hyp: list[str], ref: list[str], n: int) -> int:
    grams = lambda toks: {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}  # noqa: E731
    return len(grams(hyp) & grams(ref))


def _words_only(hyp: list[str], ref: list[str], n: int) -> int:
    return clipped_matches(hyp, ref, 1)  # forgets n: unigrams every time


q1 = Exercise("q1", "clipped_matches(hyp, ref, n): how many of the candidate's n-grams are in the reference, "
                    "each counted at most as often as the reference has it.",
              checker=_check_q1,
              hint_text="Count the n-grams of both with Counter(tuple(toks[i:i + n]) ...), then add "
                        "min(count in hyp, count in ref) over the candidate's n-grams.",
              reference=clipped_matches, wrong=(_unclipped, _distinct_only, _words_only))


# ---------------------------------------------------------------- q2: the brevity penalty
def brevity_penalty(c: int, r: int) -> float:
    """BLEU's brevity penalty for a candidate of ``c`` tokens against a reference of ``r`` tokens."""
    return 1.0 if c >= r else math.exp(1 - r / c)


Q2_CASES = [(6, 7), (7, 7), (9, 7), (4, 12)]  # c >= 4: every n-gram order exists


def _package_bp(c: int, r: int) -> float:
    """evals.bleu_from_stats on a candidate whose every n-gram matches: 100 × the brevity penalty."""
    totals = [c - k for k in range(4)]
    return bleu_from_stats(BLEUStats(list(totals), list(totals), c, r)) / 100


def _check_q2(fn: Callable[[int, int], float]) -> str:
    for c, r in Q2_CASES:
        expect_close(fn(c, r), _package_bp(c, r), f"brevity_penalty({c}, {r})", rel=1e-9)
    return "1.0 for a candidate as long as the reference or longer, exp(1 - r/c) below: as evals.bleu."


q2 = Exercise("q2", "brevity_penalty(c, r): BLEU's penalty for a candidate of c tokens against a reference "
                    "of r tokens.",
              checker=_check_q2,
              hint_text="BLEU only punishes a short candidate: 1.0 when c >= r, exp(1 - r / c) when c < r.",
              reference=brevity_penalty,
              wrong=(lambda c, r: math.exp(1 - r / c),                   # punishes (rewards) long ones too
                     lambda c, r: 1.0 if c >= r else math.exp(1 - c / r),  # the ratio upside down
                     lambda c, r: min(1.0, c / r)))                      # linear, not exponential


# ---------------------------------------------------------------- q3: token-weighted perplexity
def pooled_perplexity(nlls: Sequence[Sequence[float]]) -> float:
    """Perplexity of several texts from their per-token NLLs: exp(total NLL / total tokens)."""
    return math.exp(sum(sum(text) for text in nlls) / sum(len(text) for text in nlls))


Q3_CASES = [[[1.0, 2.0, 3.0], [0.5]], [[2.0, 2.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]], [[0.25, 0.75]]]


def _check_q3(fn: Callable[[list[list[float]]], float]) -> str:
    for nlls in Q3_CASES:
        expect_close(fn([list(t) for t in nlls]), pooled_perplexity(nlls), f"pooled_perplexity({nlls})", rel=1e-9)
    return "Token-weighted: a long text counts once per token, so grouping the texts cannot change it."


q3 = Exercise("q3", "pooled_perplexity(nlls): the perplexity of several texts, given each text's list of "
                    "per-token NLLs (nats).",
              checker=_check_q3,
              hint_text="Add up every NLL of every text, divide by the number of tokens of all the texts, "
                        "then exp(): not a mean of per-text numbers.",
              reference=pooled_perplexity,
              wrong=(lambda nlls: sum(math.exp(sum(t) / len(t)) for t in nlls) / len(nlls),   # mean of perplexities
                     lambda nlls: math.exp(sum(sum(t) / len(t) for t in nlls) / len(nlls)),  # mean of mean NLLs
                     lambda nlls: math.exp(sum(sum(t) for t in nlls) / len(nlls))))          # ÷ texts, not tokens


# ---------------------------------------------------------------- q4: a metric that cannot be fooled by form
def relative_error(pred: str, ref: str) -> float:
    """|prediction - reference| / |reference| for a bare-number prediction; ``math.inf`` for anything else."""
    try:
        value = float(pred.strip())
    except ValueError:
        return math.inf
    return abs(value - float(ref)) / abs(float(ref))


Q4_CASES = [("1300", "780"), ("780", "780"), ("13000000", "780"), (" 600 ", "600"), ("13 minutes is equal to 1", "780"),
            ("", "1080")]


def _check_q4(fn: Callable[[str, str], float]) -> str:
    for pred, ref in Q4_CASES:
        want, got = relative_error(pred, ref), fn(pred, ref)
        if math.isinf(want):
            if not (isinstance(got, (int, float)) and math.isinf(got) and got > 0):
                raise Wrong(f"relative_error({pred!r}, {ref!r}) is {got!r}; expected math.inf (no number: "
                            "an answer that is not a number must not look good).")
        else:
            expect_close(got, want, f"relative_error({pred!r}, {ref!r})", rel=1e-9, abs_tol=1e-12)
    return "'13000000' for 780 is off by a factor of ~16700: the number says what BERTScore does not."


def _abs_error(pred: str, ref: str) -> float:
    try:
        return abs(float(pred) - float(ref))
    except ValueError:
        return math.inf


def _over_pred(pred: str, ref: str) -> float:
    try:
        value = float(pred)
    except ValueError:
        return math.inf
    return abs(value - float(ref)) / abs(value)


def _forgiving(pred: str, ref: str) -> float:
    try:
        return abs(float(pred) - float(ref)) / abs(float(ref))
    except ValueError:
        return 0.0  # a non-number counts as right: the metric lies


q4 = Exercise("q4", "relative_error(pred, ref): |pred - ref| / |ref| when the answer is a bare number "
                    "(spaces around it allowed), math.inf when it is not a number at all.",
              checker=_check_q4,
              hint_text="float(pred.strip()) inside try/except ValueError (return math.inf there), then "
                        "abs(value - float(ref)) / abs(float(ref)).",
              reference=relative_error, wrong=(_abs_error, _over_pred, _forgiving))

EXERCISES = [q1, q2, q3, q4]
