"""coursekit.bpe on the reference's own suite: karpathy/minbpe's tests/test_tokenizer.py cases, ported as data.

The cases live in ``tests/vectors/minbpe/`` (MIT, see the NOTICE there). Each minbpe test becomes the same
property of our tokenizer: lossless round trips, GPT-4's ids from GPT-4's merges, the Wikipedia example's
merges and encoding, and identical ids after save and load. minbpe's three tokenizers map to ours as: Basic =
no pre-split (one chunk), Regex = the GPT-4 split pattern, and each trains with the fast and the naive trainer.
"""

import json
from pathlib import Path

import pytest

from coursekit.bpe import (
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    as_ranks,
    from_mergeable_ranks,
)
from coursekit.data import pydoc_text

CASES = json.loads((Path(__file__).parent / "vectors" / "minbpe" / "test_tokenizer_cases.json")
                   .read_text(encoding="utf-8"))
# minbpe's fourth string is a whole Wikipedia article (taylorswift.txt); the course's corpus stands in for it
TEXTS = {**{f"minbpe_{k}": s for k, s in enumerate(CASES["test_strings"])}, "course_corpus": pydoc_text()[:30_000]}
NO_SPLIT = r"(?s).+"  # the whole text is one chunk: minbpe's BasicTokenizer
KINDS = {"basic": NO_SPLIT, "regex": GPT4_SPLIT_PATTERN}


@pytest.fixture(scope="module")
def cl100k():
    pytest.importorskip("tiktoken")
    from coursekit import assets

    return assets.cl100k()


@pytest.fixture(scope="module")
def gpt4(cl100k):
    """Our BPETokenizer with GPT-4's merges (recovered from cl100k's ranks) and its special tokens."""
    return from_mergeable_ranks(cl100k._mergeable_ranks, GPT4_SPLIT_PATTERN, cl100k._special_tokens)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", TEXTS)
def test_encode_decode_identity(kind, name):
    text = TEXTS[name]
    untrained = BPETokenizer(KINDS[kind])
    trained = BPETokenizer(KINDS[kind]).train(CASES["llama_text"], 256 + 64, progress=False)
    for tok in (untrained, trained):
        ids = tok.encode(text)
        assert tok.decode(ids) == text, f"{kind}/{name}: {len(ids)} ids decode to other text"


def test_our_split_pattern_is_cl100ks(cl100k):
    assert GPT4_SPLIT_PATTERN == cl100k._pat_str, "GPT4_SPLIT_PATTERN differs from tiktoken's cl100k pattern"


@pytest.mark.parametrize("name", TEXTS)
def test_gpt4_tiktoken_equality(cl100k, gpt4, name):
    text = TEXTS[name]
    got, want = as_ranks(gpt4, gpt4.encode(text), cl100k._mergeable_ranks), cl100k.encode(text)
    first = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert got == want, f"{name}: {len(got)} vs {len(want)} ids, first difference at position {first}"


def test_gpt4_tiktoken_equality_special_tokens(cl100k, gpt4):
    text = CASES["specials_string"]
    assert gpt4.special_tokens == CASES["special_tokens"], gpt4.special_tokens
    got = as_ranks(gpt4, gpt4.encode(text, allowed_special="all"), cl100k._mergeable_ranks)
    want = cl100k.encode(text, allowed_special="all")
    assert got == want, f"{got[:12]}... != tiktoken's {want[:12]}..."


@pytest.mark.parametrize("method", ["fast", "naive"])
@pytest.mark.parametrize("kind", KINDS)
def test_wikipedia_example(kind, method):
    # aaabdaaabac, 3 merges: Z=aa -> 256, Y=ab -> 257, X=ZY -> 258, so the text becomes XdXac
    case = CASES["wikipedia"]
    tok = BPETokenizer(KINDS[kind]).train(case["text"], case["vocab_size"], method=method, progress=False)
    assert [[list(p), i] for p, i in tok.merges.items()] == case["merges"], tok.merges
    assert tok.encode(case["text"]) == case["ids"], tok.encode(case["text"])
    assert tok.decode(case["ids"]) == case["text"]


@pytest.mark.parametrize("with_specials", [False, True], ids=["no_specials", "minbpe_specials"])
def test_save_load(tmp_path, with_specials):
    text = CASES["llama_text"]
    tok = BPETokenizer().train(text, 256 + CASES["save_load_merges"], progress=False)
    tok.register_special_tokens(CASES["special_tokens"] if with_specials else {})
    ids = tok.encode(text, "all")
    assert tok.decode(ids) == text
    if with_specials:  # the special tokens were read as single ids, at the ids minbpe gives them
        assert sorted(set(ids) & set(CASES["special_tokens"].values())) == sorted(CASES["special_tokens"].values())
    loaded = BPETokenizer.load(tok.save(tmp_path / "tok.json"))
    assert loaded.decode(ids) == text
    assert loaded.encode(text, "all") == ids, "the loaded tokenizer encodes the text to other ids"
    assert loaded.special_tokens == tok.special_tokens and loaded.merges == tok.merges
