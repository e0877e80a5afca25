"""Step 3, the tokenizer: GPT-4's pre-split regex, training, encoding, decoding, special tokens, files.

* **Pre-splitting** with the GPT-4 (cl100k) regex: text is cut into chunks
  (words, numbers of up to 3 digits, punctuation runs, whitespace runs) and merges
  never cross a chunk boundary.
* **Training** with ``fast_merges`` (or the teaching ``naive_merges``: the same merges).
* **Encoding** applies the learned merges by rank, lowest first, inside each chunk,
  with a cache of chunks already seen.

Special tokens (e.g. ``<|endoftext|>``) get their own ids, are never merged or
learned from, and are only encoded as special when ``allowed_special`` says so.

Decoding an id sequence that cuts a multi-byte character in half gives bytes that
are not valid UTF-8; ``decode`` then shows U+FFFD (``�``) for them, as
``bytes.decode(errors="replace")`` does; ``decode_bytes`` returns the raw bytes::

    >>> tok = BPETokenizer().train("low lower lowest " * 50, vocab_size=260, progress=False)
    >>> [tok.vocab[i] for i in range(256, 260)]
    [b'lo', b'low', b' low', b' lowe']
    >>> tok.decode(tok.encode("lowest"))
    'lowest'
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import regex

from coursekit.bpe.basic import Pair, merge, naive_merges
from coursekit.bpe.fast import fast_merges
from coursekit.bpe.files import (
    FORMAT,
    FORMAT_VERSION,
    read_tokenizer_file,
    write_tokenizer_file,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "GPT4_SPLIT_PATTERN", "AllowedSpecial", "BPETokenizer"]

# The cl100k_base split pattern, exactly as tiktoken ships it (needs the `regex` package:
# \p{L} classes and possessive quantifiers). Apostrophe suffixes, letter runs with one leading
# non-letter (" the"), numbers in groups of at most 3 digits, punctuation runs, whitespace.
GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
AllowedSpecial = Literal["all", "none", "none_raise"] | Collection[str]


class BPETokenizer:
    """Byte-level BPE with the GPT-4 split regex and special tokens.

    ``merges`` maps each merged pair to its new id, in merge order (id = 256 + rank);
    ``vocab`` maps every id (bytes, merges, specials) to its bytes.

    >>> tok = BPETokenizer().train("hello hello help" * 20, 262, special_tokens=["<|end|>"], progress=False)
    >>> tok.special_tokens
    {'<|end|>': 261}
    >>> tok.encode("help<|end|>", allowed_special="all")[-1]
    261
    >>> tok.decode(tok.encode("héllo 👋"))
    'héllo 👋'
    """

    def __init__(self, pattern: str = GPT4_SPLIT_PATTERN) -> None:
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self.merges: dict[Pair, int] = {}
        self.special_tokens: dict[str, int] = {}
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        self._cache: dict[str, list[int]] = {}
        self.cache_limit = 200_000  # chunks; cleared when full, so memory stays bounded

    # ------------------------------------------------------------ training
    def train(self, text: str, vocab_size: int, *, special_tokens: Sequence[str] = (),
              method: Literal["fast", "naive"] = "fast", progress: bool = True,
              verbose: bool = False) -> BPETokenizer:
        """Learn ``vocab_size - 256 - len(special_tokens)`` merges from ``text``; return self.

        ``vocab_size`` counts the 256 byte tokens, the merges and the special tokens.
        Special tokens are cut out of ``text`` before counting, so they are never merged.
        If the text runs out of pairs first, training stops early with a warning.

        >>> tok = BPETokenizer().train("aaab" * 10, 258, progress=False)
        >>> tok.merges   # (256, 97) and (97, 98) both occur 10 times: the smaller pair wins
        {(97, 97): 256, (97, 98): 257}
        """
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size={vocab_size} is too small: it must be at least 256 (bytes) + "
                             f"{len(special_tokens)} (special tokens) = {256 + len(special_tokens)}.")
        if len(set(special_tokens)) != len(special_tokens) or "" in special_tokens:
            raise ValueError(f"special_tokens must be distinct, non-empty strings, got {list(special_tokens)}.")
        chunks = self._training_chunks(text, special_tokens)
        if not chunks:
            raise ValueError("Cannot train on empty text: give a non-empty string "
                             "(special tokens alone do not count).")
        if method == "fast":
            stream = fast_merges(Counter(chunk.encode("utf-8") for chunk in chunks), num_merges)
        elif method == "naive":
            stream = naive_merges((c.encode("utf-8") for c in chunks), num_merges)
        else:
            raise ValueError(f"Unknown method {method!r}: use 'fast' or 'naive'.")
        self._reset()
        for pair, idx, count in _progress(stream, num_merges, progress, f"BPE merges ({method})"):
            self.merges[pair] = idx
            self.vocab[idx] = self.vocab[pair[0]] + self.vocab[pair[1]]
            if verbose:
                print(f"merge {idx - 255}/{num_merges}: {pair} -> {idx} {self.vocab[idx]!r} ({count} times)")
        if len(self.merges) < num_merges:
            size = 256 + len(self.merges) + len(special_tokens)
            warnings.warn(f"Only {len(self.merges)} of {num_merges} merges were possible: the text has no more "
                          f"adjacent pairs, so the vocabulary has {size} tokens instead of {vocab_size}.",
                          stacklevel=2)
        self.register_special_tokens(special_tokens)
        return self

    def _training_chunks(self, text: str, special_tokens: Sequence[str]) -> list[str]:
        parts = _split_specials(text, special_tokens) if special_tokens else [text]
        return [c for part in parts if part not in special_tokens for c in self._split.findall(part)]

    def _reset(self) -> None:
        self.merges, self.special_tokens = {}, {}
        self.vocab = {i: bytes([i]) for i in range(256)}
        self._cache = {}

    def register_special_tokens(self, tokens: Sequence[str] | Mapping[str, int]) -> None:
        """Give each new special token the next free id (after bytes and merges), or the id a mapping gives it.

        >>> tok = BPETokenizer()
        >>> tok.register_special_tokens(["<|a|>"]); tok.register_special_tokens({"<|b|>": 1000})
        >>> tok.special_tokens
        {'<|a|>': 256, '<|b|>': 1000}
        """
        if isinstance(tokens, Mapping):
            for token, idx in tokens.items():
                self._register_at(token, idx)
            return
        for token in tokens:
            if token not in self.special_tokens:
                self._register_at(token, max(self.vocab) + 1)

    def _register_at(self, token: str, idx: int) -> None:
        if self.special_tokens.get(token) == idx:
            return
        fix = f"give it a free id ({max(self.vocab) + 1} or more), or pass a list to get the next free ids"
        if not isinstance(token, str) or not token or token in self.special_tokens:
            raise ValueError(f"special token {token!r}: must be a new, non-empty string (registered: "
                             f"{self.special_tokens}); {fix}.")
        taken = self._id_owner(idx)
        if taken:
            raise ValueError(f"special token {token!r} -> id {idx!r}: that id is {taken}, so decoding it would be "
                             f"wrong; {fix}.")
        self.special_tokens[token] = idx
        self.vocab[idx] = token.encode("utf-8")

    def _id_owner(self, idx: object) -> str:
        """What already holds ``idx`` ('' if it is a free id)."""
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            return "not a non-negative integer"
        if idx not in self.vocab:
            return ""
        if idx < 256:
            return "a byte"
        return "a special token" if idx in self.special_tokens.values() else f"merge {idx - 256}"

    def truncate(self, num_merges: int) -> BPETokenizer:
        """A new tokenizer with only the first ``num_merges`` merges (and the same special tokens).

        Training is greedy and deterministic, so this equals training with the smaller
        vocabulary: one run at the largest size gives every smaller tokenizer.

        >>> big = BPETokenizer().train("aaab" * 10, 260, progress=False)
        >>> big.truncate(2).merges == BPETokenizer().train("aaab" * 10, 258, progress=False).merges
        True
        """
        if not 0 <= num_merges <= len(self.merges):
            raise ValueError(f"num_merges must be between 0 and {len(self.merges)}, got {num_merges}.")
        tok = type(self)(self.pattern)
        for pair, idx in self.merges.items():
            if idx < 256 + num_merges:
                tok.merges[pair] = idx
                tok.vocab[idx] = self.vocab[idx]
        tok.register_special_tokens(list(self.special_tokens))
        return tok

    # ------------------------------------------------------------ encoding
    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` ignoring special tokens (they are encoded as plain text)."""
        ids: list[int] = []
        cache = self._cache
        for chunk in self._split.findall(text):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                if len(cache) >= self.cache_limit:
                    cache.clear()
                chunk_ids = cache[chunk] = self._encode_chunk(chunk.encode("utf-8"))
            ids.extend(chunk_ids)
        return ids

    def _encode_chunk(self, data: bytes) -> list[int]:
        """Apply merges by rank, lowest first: the order they were learned in."""
        ids = list(data)
        merges = self.merges
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, _NEVER))
            if pair not in merges:
                break
            ids = merge(ids, pair, merges[pair])
        return ids

    def encode(self, text: str, allowed_special: AllowedSpecial = "none_raise") -> list[int]:
        """Encode ``text``; special tokens are encoded as special only if allowed.

        ``allowed_special``: ``"all"``, ``"none"`` (encode them as plain text),
        ``"none_raise"`` (the default: raise if the text contains one) or a set of tokens.

        >>> tok = BPETokenizer()
        >>> tok.register_special_tokens(["<|end|>"])
        >>> tok.encode("a<|end|>", allowed_special={"<|end|>"})
        [97, 256]
        >>> len(tok.encode("a<|end|>", allowed_special="none"))
        8
        """
        allowed = self._allowed(text, allowed_special)
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for part in _split_specials(text, allowed):
            if part in allowed:
                ids.append(self.special_tokens[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def _allowed(self, text: str, allowed_special: AllowedSpecial) -> list[str]:
        if allowed_special == "all":
            return list(self.special_tokens)
        if allowed_special == "none":
            return []
        if allowed_special == "none_raise":
            found = [t for t in self.special_tokens if t in text]
            if found:
                raise ValueError(f"The text contains special token(s) {found}. Pass allowed_special='all' "
                                 "to encode them as special, or 'none' to encode them as plain text.")
            return []
        if isinstance(allowed_special, str):
            raise ValueError(f"allowed_special must be 'all', 'none', 'none_raise' or a set of tokens, "
                             f"got {allowed_special!r}.")
        unknown = set(allowed_special) - set(self.special_tokens)
        if unknown:
            raise ValueError(f"Not special tokens of this tokenizer: {sorted(unknown)}.")
        return list(allowed_special)

    # ------------------------------------------------------------ decoding
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes of ``ids`` (may be invalid UTF-8 if a character was cut in half)."""
        vocab = self.vocab
        try:
            return b"".join(vocab[i] for i in ids)
        except KeyError as err:
            raise ValueError(f"Unknown token id {err.args[0]!r}: this tokenizer has ids 0 to "
                             f"{max(vocab)}{'' if len(vocab) == max(vocab) + 1 else ' (with gaps)'}.") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD ``�``.

        >>> BPETokenizer().decode([104, 105, 0xE4])   # 0xE4 starts a 3-byte character
        'hi�'
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def pieces(self, ids: Iterable[int]) -> list[bytes]:
        """The bytes of each token, one entry per id (for visualizing a tokenization)."""
        return [self.decode_bytes([i]) for i in ids]

    # ------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the pattern, merges (in order) and special tokens as JSON (``bpe.files``)."""
        ordered = [pair for pair, _ in sorted(self.merges.items(), key=lambda kv: kv[1])]
        return write_tokenizer_file(path, self.pattern, ordered, self.special_tokens)

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a file written by ``save``; ``load(save(tok))`` behaves exactly like ``tok``.

        Every field is checked first (``bpe.files.read_tokenizer_file``): a truncated,
        corrupted or foreign file is one ``ValueError`` naming the file and the fix.
        """
        pattern, merges, special_tokens = read_tokenizer_file(path)
        tok = cls(pattern)
        for rank, (a, b) in enumerate(merges):
            tok.merges[(a, b)] = 256 + rank
            tok.vocab[256 + rank] = tok.vocab[a] + tok.vocab[b]
        for token, idx in special_tokens.items():
            tok.special_tokens[token] = idx
            tok.vocab[idx] = token.encode("utf-8")
        return tok

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab={len(self.vocab)}, merges={len(self.merges)}, special={len(self.special_tokens)})"


_NEVER = float("inf")  # rank of a pair that was never merged


def _split_specials(text: str, specials: Iterable[str]) -> list[str]:
    """Split ``text`` around special tokens, keeping them (longest first, so none hides another)."""
    alternatives = "|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))
    return regex.split(f"({alternatives})", text)


def _progress(stream: Iterator[tuple[Pair, int, int]], total: int, show: bool,
              desc: str) -> Iterator[tuple[Pair, int, int]]:
    if not show:
        return stream
    from tqdm.auto import tqdm

    return iter(tqdm(stream, total=total, desc=desc, unit="merge", mininterval=0.5))
