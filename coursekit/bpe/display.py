"""Step 4, seeing tokens: the bytes of each token under any tokenizer, drawn as coloured HTML.

``token_pieces`` works for a ``BPETokenizer``, a tiktoken encoding or a transformers
tokenizer (byte-level ones are mapped back through ``gpt2_byte_decoder``, where 'Ġ' is
a space); ``tokens_html`` colours the pieces for a notebook::

    >>> token_pieces(BPETokenizer(), "hi")
    [b'h', b'i']
    >>> gpt2_byte_decoder()["Ġ"]
    32
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from coursekit.bpe.tokenizer import BPETokenizer

__all__ = ["gpt2_byte_decoder", "token_pieces", "tokens_html"]


def gpt2_byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes->printable-characters table (HF byte-level tokens use it: 'Ġ' is a space)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


def token_pieces(tokenizer: object, text: str) -> list[bytes]:
    """The bytes of each token of ``text`` for a ``BPETokenizer``, a tiktoken encoding or an HF tokenizer.

    >>> token_pieces(BPETokenizer(), "hi")
    [b'h', b'i']
    """
    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.pieces(tokenizer.encode(text, allowed_special="none"))
    if hasattr(tokenizer, "decode_single_token_bytes"):  # tiktoken
        return [tokenizer.decode_single_token_bytes(t) for t in tokenizer.encode_ordinary(text)]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # transformers
    tokens = tokenizer.convert_ids_to_tokens(ids)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if type(getattr(backend, "decoder", None)).__name__ == "ByteLevel":
        table = gpt2_byte_decoder()
        return [bytes(table[c] for c in t) for t in tokens]
    return [t.encode("utf-8") for t in tokens]  # e.g. WordPiece: '##ing', '[UNK]'


_PALETTE = ("#fde2e4", "#cde7f0", "#d8f3dc", "#fff1b6", "#e2d9f3", "#ffd6a5", "#caf0f8", "#f1c0e8")


def tokens_html(pieces: Iterable[bytes | str]) -> str:
    """HTML with each token on its own background colour (show with ``IPython.display.HTML``).

    Spaces show as ``·`` and newlines as ``↵``; a token that is only part of a
    UTF-8 character shows as ``�`` with its bytes in the tooltip.

    >>> tokens_html([b"Hi", b" there"])[:60]
    '<div style="font-family:monospace;line-height:2"><span title'
    """
    spans = []
    for k, piece in enumerate(pieces):
        raw = piece if isinstance(piece, bytes) else piece.encode("utf-8")
        text = raw.decode("utf-8", errors="replace").replace(" ", "·").replace("\n", "↵").replace("\t", "→")
        spans.append(f'<span title="{html.escape(repr(raw))}" style="background:{_PALETTE[k % len(_PALETTE)]};'
                     f'padding:1px 1px;margin:0 1px;border-radius:3px">{html.escape(text)}</span>')
    return '<div style="font-family:monospace;line-height:2">' + "".join(spans) + "</div>"
