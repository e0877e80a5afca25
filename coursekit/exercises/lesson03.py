"""Lesson 03's exercises (byte-level BPE): write ``get_stats``, write ``merge``, pick the first merge, ``encode``.

Each check runs the student's answer on a few tiny inputs and compares it with the finished copy in
``coursekit.bpe`` (``get_stats``, ``merge``, ``best_pair``, and ``BPETokenizer`` for encoding), naming the
first input where they differ, the value found and the value expected::

    >>> from coursekit import bpe
    >>> q2.check(bpe.merge)
    ✓ q2: correct. Right on all 6 cases, including "aaa" (only the first two a's merge) and a pair at the end.
    >>> q3.check((99, 100))
    ✗ q3: (99, 100) = b'cd' occurs 2 times, as often as (97, 98) = b'ab': a tie. The tie-break picks the smaller pair, so (97, 98) = b'ab' is merged first.
      Hint: Count every adjacent pair with get_stats; among the most frequent, the smallest (left id, right id) wins.
    >>> q4.grade(...).status
    'not attempted'
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from numbers import Integral
from typing import Any

from coursekit import bpe
from coursekit.bpe import BPETokenizer, best_pair
from coursekit.bpe import get_stats as _package_get_stats
from coursekit.bpe import merge as _package_merge
from coursekit.exercises import Exercise, Wrong

__all__ = ["EXERCISES", "ONE_CHUNK", "encode", "get_stats", "merge", "q1", "q2", "q3", "q4"]

Pair = tuple[int, int]
ONE_CHUNK = r"[\s\S]+"  # a split pattern that keeps the whole text one chunk: BPE with no pre-splitting


def _compare(fn: Callable[..., Any], cases: Sequence[tuple[Any, ...]], truth: Callable[..., Any],
             name: str, convert: Callable[[Any], Any] = list) -> int:
    """Run ``fn`` on each case; ``Wrong`` at the first whose result differs from ``truth``'s; the count right."""
    for k, args in enumerate(cases):
        # each call gets its own copies, so an answer that changes its input cannot spoil the next case
        got = fn(*[list(a) if isinstance(a, list) else a for a in args])
        want = truth(*args)
        call = f"{name}({', '.join(repr(a) for a in args)})"
        if got is None:
            raise Wrong(f"{call} returned None: the function computes something but never returns it "
                        f"(expected {want!r}).")
        try:
            value = convert(got)
        except (TypeError, ValueError):
            raise Wrong(f"{call} is {got!r}; expected {want!r}.") from None
        if value != want:
            before = f" (it was right on the {k} case{'s' if k > 1 else ''} before)" if k else ""
            raise Wrong(f"{call} is {value!r}; expected {want!r}{before}.")
    return len(cases)


# ---------------------------------------------------------------- q1: get_stats
def get_stats(ids: list[int]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):  # every adjacent pair: (ids[0], ids[1]), (ids[1], ids[2]), ...
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _stats_every_other(ids: list[int]) -> dict[Pair, int]:  # only pairs starting at even positions
    counts: dict[Pair, int] = {}
    for pair in zip(ids[::2], ids[1::2]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def _stats_seen_once(ids: list[int]) -> dict[Pair, int]:  # which pairs occur, not how often
    return {pair: 1 for pair in zip(ids, ids[1:])}


def _as_dict(got: Any) -> dict[Any, Any]:
    if not isinstance(got, Mapping):
        raise TypeError("not a dict")
    return dict(got)


STATS_CASES = [([1, 2, 3, 1, 2],), (list(b"aaabdaaabac"),), ([7],), ([],)]


def _check_stats(fn: Callable[[list[int]], Any]) -> str:
    n = _compare(fn, STATS_CASES, _package_get_stats, "get_stats", convert=_as_dict)
    return f"Right on all {n} cases, including a single id and an empty list (no pairs)."


q1 = Exercise(
    "q1", "get_stats(ids): a dict {(left id, right id): how many times that pair is adjacent in ids}.",
    checker=_check_stats,
    hint_text="zip(ids, ids[1:]) gives every adjacent pair, overlapping ones included; add 1 to counts[pair] "
              "for each (counts.get(pair, 0) + 1).",
    reference=get_stats, wrong=(_stats_every_other, _stats_seen_once))


# ---------------------------------------------------------------- q2: merge
def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:  # the pair starts here: one new id for both
            out.append(idx)
            i += 2  # skip past both halves of the pair
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_no_skip(ids: list[int], pair: Pair, idx: int) -> list[int]:  # keeps the pair's right half
    out = []
    for i in range(len(ids)):
        out.append(idx if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair else ids[i])
    return out


def _merge_drops_last(ids: list[int], pair: Pair, idx: int) -> list[int]:  # loops to len - 1 only
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == pair:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_overlapping(ids: list[int], pair: Pair, idx: int) -> list[int]:  # "aaa" -> two new ids
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(idx)
            i += 1 if i + 2 < len(ids) and ids[i + 2] == pair[1] else 2
        else:
            out.append(ids[i])
            i += 1
    return out


MERGE_CASES = [([1, 2, 3, 1, 2], (1, 2), 4), ([5, 6, 7], (6, 7), 8), ([97, 97, 97], (97, 97), 256),
               ([97, 97, 97, 97], (97, 97), 256), ([3, 1, 3], (1, 2), 9), ([], (1, 2), 4)]


def _check_merge(fn: Callable[[list[int], Pair, int], Any]) -> str:
    n = _compare(fn, MERGE_CASES, _package_merge, "merge")
    return f'Right on all {n} cases, including "aaa" (only the first two a\'s merge) and a pair at the end.'


q2 = Exercise(
    "q2", "merge(ids, pair, idx): a new list where each occurrence of pair, left to right, is the one id idx.",
    checker=_check_merge,
    hint_text="Walk with an index i: if (ids[i], ids[i + 1]) == pair (and i + 1 < len(ids)), append idx and "
              "move i by 2, past both halves; otherwise append ids[i] and move by 1. Stop when i reaches len(ids).",
    reference=merge, wrong=(_merge_no_skip, _merge_drops_last, _merge_overlapping))


# ---------------------------------------------------------------- q3: the first merge
Q3_TEXT = "cdcd abab"
_Q3_STATS = _package_get_stats(list(Q3_TEXT.encode("utf-8")))
Q3_PAIR: Pair = best_pair(_Q3_STATS)


def _as_pair(answer: Any) -> Pair:
    if isinstance(answer, str):
        answer = answer.encode("utf-8")
    if isinstance(answer, (bytes, tuple, list)) and len(answer) == 2 and all(isinstance(i, Integral) for i in answer):
        return int(answer[0]), int(answer[1])
    raise Wrong(f"{answer!r} is not a pair: give two byte ids as a tuple, like (120, 121) for b'xy'.")


def _check_first_pair(answer: Any) -> str:
    pair = _as_pair(answer)
    shown = f"{pair} = {bytes(pair)!r}" if all(0 <= i < 256 for i in pair) else str(pair)
    want = f"{Q3_PAIR} = {bytes(Q3_PAIR)!r}"
    count, top = _Q3_STATS.get(pair, 0), _Q3_STATS[Q3_PAIR]
    if pair == Q3_PAIR:
        tied = [p for p, c in _Q3_STATS.items() if c == top and p != pair]
        return f"{want} occurs {top} times, tied with {tied[0]}, and the smaller pair wins the tie."
    if count == top:
        raise Wrong(f"{shown} occurs {count} times, as often as {want}: a tie. The tie-break picks the smaller "
                    f"pair, so {want} is merged first.")
    raise Wrong(f"{shown} occurs {count} time{'s' if count != 1 else ''} in {Q3_TEXT!r}; "
                f"the most frequent pairs occur {top} times.")


q3 = Exercise(
    "q3", f"Training on {Q3_TEXT!r}: which pair of byte ids is merged first (as a tuple, e.g. (120, 121))?",
    checker=_check_first_pair,
    hint_text="Count every adjacent pair with get_stats; among the most frequent, the smallest "
              "(left id, right id) wins.",
    reference=Q3_PAIR, wrong=((99, 100), (32, 97), (98, 97)))


# ---------------------------------------------------------------- q4: encode
def encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = bpe.get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))  # the pair learned first (lowest id)
        if pair not in merges:  # no pair left that was ever merged: done
            break
        ids = bpe.merge(ids, pair, merges[pair])
    return ids


def _encode_leftmost(text: str, merges: dict[Pair, int]) -> list[int]:  # merges the leftmost known pair
    ids = list(text.encode("utf-8"))
    while True:
        at = next((i for i in range(len(ids) - 1) if (ids[i], ids[i + 1]) in merges), None)
        if at is None:
            return ids
        ids = ids[:at] + [merges[(ids[at], ids[at + 1])]] + ids[at + 2:]


def _encode_most_frequent(text: str, merges: dict[Pair, int]) -> list[int]:  # training's rule, not the rank
    ids = list(text.encode("utf-8"))
    while True:
        stats = {p: c for p, c in _package_get_stats(ids).items() if p in merges}
        if not stats:
            return ids
        pair = best_pair(stats)
        ids = _package_merge(ids, pair, merges[pair])


# the training text makes b"bc" the first merge and b"ab" a later one, so "abc" needs the rank order
Q4_TRAIN = "bc bc bc bcd bcd abab xabc"
Q4_TEXTS = ["abab", "abc", "bcd bcd", "xabcd", "héllo"]


def _trained() -> BPETokenizer:
    return BPETokenizer(ONE_CHUNK).train(Q4_TRAIN, 264, progress=False)


def _check_encode(fn: Callable[[str, dict[Pair, int]], Any]) -> str:
    tok = _trained()
    learned = [tok.vocab[i] for i in sorted(tok.merges.values())]
    for text in Q4_TEXTS:
        got, want = fn(text, dict(tok.merges)), tok.encode(text)
        call = f"encode({text!r}, merges)"
        if got is None:
            raise Wrong(f"{call} returned None: return the list of ids (expected {want!r}).")
        if list(got) != want:
            raise Wrong(f"{call} is {list(got)!r} = {[tok.vocab.get(i, b'?') for i in got]}; expected {want!r} = "
                        f"{[tok.vocab[i] for i in want]}. The merges, in the order learned (ids 256 on): {learned}.")
    return f"Right on all {len(Q4_TEXTS)} texts: merges applied in the order they were learned."


q4 = Exercise(
    "q4", "encode(text, merges): the ids of text, applying the learned merges {pair: new id} in the order "
          "they were learned (lowest new id first), until no pair can be merged.",
    checker=_check_encode,
    hint_text="Start from list(text.encode('utf-8')). While 2 or more ids: of the pairs in bpe.get_stats(ids), take "
              "the one with the lowest merges.get(pair, float('inf')); stop if it is not in merges, else bpe.merge it.",
    reference=encode, wrong=(_encode_leftmost, _encode_most_frequent))

EXERCISES = [q1, q2, q3, q4]
