"""Real tokenizers in our BPE: a tiktoken encoding's ranks (GPT-2, GPT-4) become a ``BPETokenizer``.

tiktoken stores only ``token bytes -> rank``; the merges are implied: a token of rank ``r`` is the
pair its bytes end in when BPE runs on them with the ranks below ``r``. ``from_mergeable_ranks``
recovers that pair for every token, so our ``encode`` can be compared with tiktoken's, id for id.
Our byte tokens keep ids 0-255 (the raw byte), every longer token gets its rank as its id, and
``as_ranks`` maps our ids to tiktoken's::

    >>> ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"abc": 257}
    >>> tok = from_mergeable_ranks(ranks, r"\\w+| ")
    >>> tok.merges
    {(97, 98): 256, (256, 99): 257}
    >>> as_ranks(tok, tok.encode("abc ab"), ranks)
    [257, 32, 256]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise

from coursekit.bpe.tokenizer import BPETokenizer

__all__ = ["as_ranks", "from_mergeable_ranks"]


def from_mergeable_ranks(ranks: Mapping[bytes, int], pattern: str,
                         special_tokens: Mapping[str, int] | None = None) -> BPETokenizer:
    """A ``BPETokenizer`` that merges as the tiktoken encoding with these ``ranks`` and split ``pattern`` does.

    Every single byte must have a rank, and every longer token a rank of 256 or more.
    """
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"ranks lack the single bytes {missing[:8]}{'...' if len(missing) > 8 else ''}: a "
                         "byte-level BPE needs all 256; pass an encoding's full mergeable_ranks.")
    tok = BPETokenizer(pattern)
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        if rank < 256:
            raise ValueError(f"token {token!r} has rank {rank} < 256: our ids 0-255 are the bytes; "
                             "use an encoding whose merged tokens rank 256 and up (GPT-2, cl100k).")
        left, right = _last_pair(token, rank, ranks)
        tok.merges[(_our_id(left, ranks), _our_id(right, ranks))] = rank
        tok.vocab[rank] = token
    for token, idx in (special_tokens or {}).items():
        tok.special_tokens[token] = idx
        tok.vocab[idx] = token.encode("utf-8")
    return tok


def as_ranks(tok: BPETokenizer, ids: Sequence[int], ranks: Mapping[bytes, int]) -> list[int]:
    """Our ids from a ``from_mergeable_ranks`` tokenizer as tiktoken's ids (special tokens keep theirs)."""
    special = set(tok.special_tokens.values())
    return [i if i in special else ranks[tok.vocab[i]] for i in ids]


def _our_id(part: bytes, ranks: Mapping[bytes, int]) -> int:
    return part[0] if len(part) == 1 else ranks[part]


def _last_pair(token: bytes, rank: int, ranks: Mapping[bytes, int]) -> tuple[bytes, bytes]:
    """The two parts BPE leaves of ``token`` using only the merges ranked below ``rank``."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        found = [(ranks.get(a + b, rank), k) for k, (a, b) in enumerate(pairwise(parts))]
        best, k = min(found)
        if best >= rank:
            break
        parts[k:k + 2] = [parts[k] + parts[k + 1]]
    if len(parts) != 2:
        raise ValueError(f"token {token!r} (rank {rank}) is not one merge of two lower-ranked tokens: these are "
                         "not BPE ranks; pass an encoding's mergeable_ranks.")
    return parts[0], parts[1]
