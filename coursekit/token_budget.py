"""Token budgets: what a text costs under several tokenizers, and which context windows hold it.

* ``token_counts``: tokens of one text under each named tokenizer at once (transformers
  tokenizers, ``tokenizers.Tokenizer`` and tiktoken encodings).
* ``words_per_token``: the usual rule of thumb (~0.75 for English), measured.
* ``fits_in_context``: which context lengths a count (or a row of counts) fits in.

Worked example::

    >>> fits_in_context(3000, [512, 2048, 8192])
    {512: False, 2048: False, 8192: True}
    >>> words_per_token("one two three", 4)
    0.75
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, overload

__all__ = ["fits_in_context", "token_counts", "words_per_token"]


def _count_tokens(text: str, tokenizer: Any) -> int:
    """Tokens in ``text`` under one tokenizer, without BOS/EOS/[CLS]/[SEP] and without length warnings."""
    if hasattr(tokenizer, "encode_ordinary"):  # tiktoken.Encoding (special-token text is plain text here)
        return len(tokenizer.encode_ordinary(text))
    if hasattr(tokenizer, "model_max_length"):  # a transformers tokenizer, fast or slow
        # verbose=False: a long text is the point here, so no "longer than the maximum" warning;
        # the call (not backend_tokenizer) ignores any padding/truncation saved in tokenizer.json.
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    if hasattr(tokenizer, "encode"):  # a bare tokenizers.Tokenizer: count real tokens, not padding
        enc = tokenizer.encode(text, add_special_tokens=False)
        return sum(enc.attention_mask)
    raise ValueError(f"Don't know how to count tokens with a {type(tokenizer).__name__}: "
                     "pass a transformers tokenizer, a tokenizers.Tokenizer or a tiktoken Encoding.")


def token_counts(text: str, tokenizers: Mapping[str, Any]) -> dict[str, int]:
    """Number of tokens ``text`` becomes under each named tokenizer, special tokens not added.

    Handles transformers tokenizers (fast or slow), ``tokenizers.Tokenizer`` and
    tiktoken encodings::

        >>> from coursekit.assets import cl100k, load_tiny
        >>> tiny_tok = load_tiny("gpt2")[1]               # a 512-token BPE: more, shorter pieces
        >>> token_counts("Hello world", {"gpt-4": cl100k(), "tiny": tiny_tok})
        {'gpt-4': 2, 'tiny': 8}
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    if not tokenizers:
        raise ValueError("Pass at least one tokenizer, as a {name: tokenizer} dict.")
    return {name: _count_tokens(text, tok) for name, tok in tokenizers.items()}


def words_per_token(text: str, n_tokens: int) -> float:
    """Whitespace-separated words per token: ~0.75 for English under a GPT-4-sized BPE.

    >>> words_per_token("one two three", 4)
    0.75
    """
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be ≥ 1, got {n_tokens}.")
    return len(text.split()) / n_tokens


@overload
def fits_in_context(n_tokens: int, context_lengths: Iterable[int]) -> dict[int, bool]: ...
@overload
def fits_in_context(n_tokens: Mapping[str, int], context_lengths: Iterable[int]) -> dict[str, dict[int, bool]]: ...
def fits_in_context(n_tokens: int | Mapping[str, int], context_lengths: Iterable[int]) -> Any:
    """Which context windows hold ``n_tokens`` tokens (``n_tokens <= length``).

    Pass one count for ``{length: fits}``, or ``{name: count}`` (e.g. from
    ``token_counts``) for one such row per name::

        >>> fits_in_context(3000, [512, 2048, 8192])
        {512: False, 2048: False, 8192: True}
        >>> fits_in_context({"a": 600}, [512, 2048])
        {'a': {512: False, 2048: True}}
    """
    lengths = list(context_lengths)
    if not lengths or any(int(c) < 1 for c in lengths):
        raise ValueError(f"context_lengths must be a non-empty list of positive ints, got {lengths!r}.")
    if isinstance(n_tokens, Mapping):
        return {name: fits_in_context(count, lengths) for name, count in n_tokens.items()}
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be ≥ 0, got {n_tokens}.")
    return {int(c): n_tokens <= c for c in lengths}
