"""The price task of lesson 05: read a price from a generation, and the mean absolute error in dollars.

An answer with no number counts as a prediction of 0 dollars, so its error is the whole price::

    >>> parse_price("$1,299.00 is a fair price")
    1299.0
    >>> price_mae(["$90", "no idea"], [100.0, 50.0])["mae"]     # (10 + 50) / 2
    30.0
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def parse_price(text: str) -> float | None:
    """The first number in a generation (``"$1,299.00 ..."`` → 1299.0), or None if there is none."""
    match = _NUMBER.search(text or "")
    if not match:
        return None
    try:
        return float(match.group().replace(",", ""))
    except ValueError:
        return None


def price_mae(generations: Sequence[str], truths: Sequence[float], unparseable: float = 0.0) -> dict[str, Any]:
    """Mean absolute error of the parsed prices. An answer with no number counts as ``unparseable``
    dollars (0 by default, so its error is the whole true price); ``parsed`` is the share that had one."""
    if len(generations) != len(truths):
        raise ValueError(f"{len(generations)} generations but {len(truths)} true prices.")
    parsed = [parse_price(g) for g in generations]
    preds = [unparseable if p is None else p for p in parsed]
    errors = [abs(p - t) for p, t in zip(preds, truths)]
    n = max(len(errors), 1)
    return {"mae": sum(errors) / n, "parsed": sum(p is not None for p in parsed) / n, "predictions": preds}
