"""Byte-level BPE from scratch: exact, fast and lossless, one teaching step per file.

The tokenizer works on UTF-8 bytes, so every string — Chinese, emoji, code —
can be encoded without an unknown token, and ``decode(encode(s)) == s``::

    >>> tok = BPETokenizer().train("low lower lowest " * 50, vocab_size=260, progress=False)
    >>> [tok.vocab[i] for i in range(256, 260)]
    [b'lo', b'low', b' low', b' lowe']
    >>> ids = tok.encode("lowest")
    >>> tok.decode(ids)
    'lowest'

The steps, in the order the lesson (notebook 03) builds them, as in GPT-2/GPT-4 tokenizers:

* ``bpe.basic``: **training**, the teaching version: repeat "merge the most frequent
  adjacent pair into a new token" (``get_stats`` + ``best_pair`` + ``merge``, recounting
  everything each step, as in karpathy's minbpe). Ties are broken deterministically: among
  pairs with the highest count, the one with the *smallest* ``(left id, right id)`` wins.
* ``bpe.fast``: ``fast_merges``, exactly the same merges, much faster (see its docstring).
* ``bpe.tokenizer``: ``BPETokenizer``, with **pre-splitting** by the GPT-4 (cl100k) regex
  (merges never cross a chunk boundary), **encoding** by merge rank, special tokens, save/load.
* ``bpe.files``: the saved file, every field checked when it is read back.
* ``bpe.ranks``: a tiktoken encoding's ranks (GPT-2, GPT-4) as a ``BPETokenizer``, to compare ids with.
* ``bpe.display``: the bytes of each token under any tokenizer, and coloured HTML of them.
"""

from coursekit.bpe.basic import Pair, best_pair, get_stats, merge, naive_merges
from coursekit.bpe.display import gpt2_byte_decoder, token_pieces, tokens_html
from coursekit.bpe.fast import fast_merges
from coursekit.bpe.ranks import as_ranks, from_mergeable_ranks
from coursekit.bpe.tokenizer import GPT4_SPLIT_PATTERN, AllowedSpecial, BPETokenizer

__all__ = [
    "GPT4_SPLIT_PATTERN", "AllowedSpecial", "BPETokenizer", "Pair", "as_ranks", "best_pair", "fast_merges",
    "from_mergeable_ranks", "get_stats", "gpt2_byte_decoder", "merge", "naive_merges", "token_pieces", "tokens_html",
]
