"""Step 1, the teaching version of BPE training: count pairs, merge the best one, repeat.

As in karpathy's minbpe: ``get_stats`` counts adjacent pairs, ``best_pair`` picks the most
frequent (ties go to the smallest ``(left, right)`` ids, so training never depends on dict
order), ``merge`` replaces it with a new id, and ``naive_merges`` loops, recounting
everything before each merge::

    >>> ids = list(b"aaabdaaabac")
    >>> pair = best_pair(get_stats(ids))
    >>> pair, merge(ids, pair, 256)
    ((97, 97), [256, 97, 98, 100, 256, 97, 98, 97, 99])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

__all__ = ["Pair", "best_pair", "get_stats", "merge", "naive_merges"]

Pair = tuple[int, int]


def get_stats(ids: Sequence[int], counts: dict[Pair, int] | None = None, weight: int = 1) -> dict[Pair, int]:
    """Count adjacent pairs in ``ids`` (added to ``counts`` if given, each occurrence worth ``weight``).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[int], pair: Pair, idx: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair``, left to right, with ``idx``.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([5, 5, 5], (5, 5), 6)   # left to right: the first two merge, the third stays
    [6, 5]
    """
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def best_pair(stats: dict[Pair, int]) -> Pair:
    """The pair to merge: highest count; ties go to the smallest ``(left, right)`` ids.

    The tie-break makes training deterministic: it never depends on dict order.

    >>> best_pair({(5, 1): 3, (2, 9): 3, (0, 0): 1})
    (2, 9)
    """
    return min(stats, key=lambda p: (-stats[p], p))


def naive_merges(chunks: Iterable[Sequence[int]], num_merges: int,
                 first_id: int = 256) -> Iterator[tuple[Pair, int, int]]:
    """Teaching trainer: recount every pair of every chunk before each merge.

    Yields ``(pair, new_id, count)`` per merge and stops early if no pair is left.
    Cost per merge is the length of the whole text, so it is slow on real corpora.

    >>> [m[:2] for m in naive_merges([[1, 2, 1, 2], [1, 2]], 2)]
    [((1, 2), 256), ((256, 256), 257)]
    """
    ids = [list(c) for c in chunks]
    for k in range(num_merges):
        stats: dict[Pair, int] = {}
        for chunk in ids:
            get_stats(chunk, stats)
        if not stats:
            return
        pair = best_pair(stats)
        idx = first_id + k
        ids = [merge(chunk, pair, idx) for chunk in ids]
        yield pair, idx, stats[pair]
