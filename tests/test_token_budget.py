"""coursekit.token_budget: token counts equal each tokenizer's own, words per token, context fits."""

import pytest

from coursekit import assets
from coursekit.token_budget import fits_in_context, token_counts, words_per_token


@pytest.fixture(scope="module")
def bert_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(assets.minilm_path())


def test_token_counts_tiktoken_and_hf(tiny_llama):
    _, tok = tiny_llama
    text = "def f(x):\n    return x + 1\n"
    counts = token_counts(text, {"cl100k": assets.cl100k(), "tiny": tok})
    assert counts["cl100k"] == len(assets.cl100k().encode_ordinary(text))
    assert counts["tiny"] == len(tok(text, add_special_tokens=False).input_ids)
    assert token_counts("hello world", {"gpt4": assets.cl100k()}) == {"gpt4": 2}
    # special tokens are not added: the WordPiece count excludes [CLS] and [SEP]
    # and special-token *text* is plain text for tiktoken (no error)
    assert token_counts("<|endoftext|>", {"gpt4": assets.cl100k()})["gpt4"] > 1


def test_token_counts_wordpiece_adds_no_specials(bert_tok):
    # tokenizer.json of MiniLM pads/truncates to 128: the count must ignore that
    assert token_counts("hello world", {"bert": bert_tok}) == {"bert": 2}
    assert token_counts("hello world", {"backend": bert_tok.backend_tokenizer}) == {"backend": 2}


def test_token_counts_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        token_counts("x", {})
    with pytest.raises(ValueError, match="string"):
        token_counts(["x"], {"gpt4": assets.cl100k()})
    with pytest.raises(ValueError, match="Don't know how"):
        token_counts("x", {"bad": object()})


def test_words_per_token_and_fits():
    assert words_per_token("one two three", 4) == 0.75
    with pytest.raises(ValueError):
        words_per_token("a", 0)
    assert fits_in_context(3000, [512, 2048, 8192]) == {512: False, 2048: False, 8192: True}
    assert fits_in_context(512, [512]) == {512: True}
    assert fits_in_context({"a": 600, "b": 10}, [512, 2048]) == {"a": {512: False, 2048: True},
                                                                 "b": {512: True, 2048: True}}
    for bad in ([], [0]):
        with pytest.raises(ValueError):
            fits_in_context(10, bad)
    with pytest.raises(ValueError):
        fits_in_context(-1, [512])
