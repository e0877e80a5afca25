"""Input checks shared by every metric: empty, unequal, bare-string or non-string inputs fail with the fix.

A reference is a string or a non-empty list of strings (several gold answers); a metric scores a
prediction against its best reference.

    >>> check_pairs(["a"], ["a", "b"])
    Traceback (most recent call last):
    ValueError: Predictions and references differ in length: 1 vs 2.
    >>> check_pairs("the cat", ["the cat"])
    Traceback (most recent call last):
    TypeError: predictions is a bare string ('the cat'): a metric takes a list of texts; wrap it: ['the cat'].
    >>> reference_lists(["a", ["b", "c"]])
    [['a'], ['b', 'c']]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _reject_bare_string(name: str, items: Any) -> None:
    """A str is a Sequence of characters: scored as one, each character would be a text."""
    if isinstance(items, str):
        raise TypeError(f"{name} is a bare string ({items!r:.40}): a metric takes a list of texts; "
                        f"wrap it: [{items!r:.40}].")


def check_pairs(preds: Sequence[Any], refs: Sequence[Any]) -> None:
    """Raise for empty, unequal or bare-string lists, naming the first element that is not a text."""
    _reject_bare_string("predictions", preds)
    _reject_bare_string("references", refs)
    if len(preds) == 0 or len(refs) == 0:
        raise ValueError(f"Empty input: got {len(preds)} predictions and {len(refs)} references; need at least 1.")
    if len(preds) != len(refs):
        raise ValueError(f"Predictions and references differ in length: {len(preds)} vs {len(refs)}.")
    for name, items in (("prediction", preds), ("reference", refs)):
        for i, item in enumerate(items):
            group = item if isinstance(item, (list, tuple)) and name == "reference" else [item]
            if not group or not all(isinstance(s, str) for s in group):
                raise TypeError(f"{name} at index {i} is {type(item).__name__}, not a string "
                                f"(or, for a reference, a non-empty list of strings): {item!r:.60}")


def reference_lists(refs: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """Each reference as a list of its gold texts: a string becomes a list of one."""
    return [[r] if isinstance(r, str) else list(r) for r in refs]


def check_texts(texts: Sequence[Any]) -> None:
    """Raise for an empty list, a bare string, or an element that is not a string."""
    _reject_bare_string("texts", texts)
    if len(texts) == 0:
        raise ValueError("Empty input: need at least one text.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text at index {i} is {type(t).__name__}, not a string: {t!r:.60}")
