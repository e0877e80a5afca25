"""Input checks shared by every metric: empty, unequal or non-string inputs fail with the index.

    >>> check_pairs(["a"], ["a", "b"])
    Traceback (most recent call last):
    ValueError: Predictions and references differ in length: 1 vs 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def check_pairs(preds: Sequence[Any], refs: Sequence[Any]) -> None:
    """Raise a ValueError for empty or unequal lists, naming the first non-string element."""
    if len(preds) == 0 or len(refs) == 0:
        raise ValueError(f"Empty input: got {len(preds)} predictions and {len(refs)} references; need at least 1.")
    if len(preds) != len(refs):
        raise ValueError(f"Predictions and references differ in length: {len(preds)} vs {len(refs)}.")
    for name, items in (("prediction", preds), ("reference", refs)):
        for i, item in enumerate(items):
            group = item if isinstance(item, (list, tuple)) and name == "reference" else [item]
            if not group or not all(isinstance(s, str) for s in group):
                raise TypeError(f"{name} at index {i} is {type(item).__name__}, not a string: {item!r:.60}")


def check_texts(texts: Sequence[Any]) -> None:
    if len(texts) == 0:
        raise ValueError("Empty input: need at least one text.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"text at index {i} is {type(t).__name__}, not a string: {t!r:.60}")
