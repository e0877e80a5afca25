"""coursekit.bpe, one file per step: lossless round trips, exact fast training, special tokens, bad input."""

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursekit.bpe import (BPETokenizer, best_pair, fast_merges, get_stats, gpt2_byte_decoder, merge, naive_merges,
                           token_pieces)
from coursekit.data import CHINESE_PARAGRAPHS, ENGLISH_PARAGRAPHS, MULTILINGUAL_SAMPLES, pydoc_text

END = "<|endoftext|>"
SPECIALS = [END, "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    """A tokenizer trained on English prose, Chinese, code-like and emoji text, with specials."""
    text = pydoc_text()[:40_000] + "\n".join(CHINESE_PARAGRAPHS) + "".join(MULTILINGUAL_SAMPLES.values())
    return BPETokenizer().train(text, 700, special_tokens=SPECIALS, progress=False)


# ---------------------------------------------------------------- lossless
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_round_trip_arbitrary_unicode(tok, s):
    assert tok.decode(tok.encode(s, allowed_special="none")) == s
    assert tok.decode(tok.encode(s, allowed_special="all")) == s


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([*MULTILINGUAL_SAMPLES.values(), END, " ", "\n", "    ", "123456"]), max_size=8))
def test_round_trip_mixed_with_specials(tok, parts):
    s = "".join(parts)
    assert tok.decode(tok.encode(s, allowed_special="all")) == s


def test_round_trip_samples_and_corpus(tok):
    for name, s in MULTILINGUAL_SAMPLES.items():
        assert tok.decode(tok.encode(s)) == s, name
    corpus = pydoc_text()[40_000:120_000]  # not seen in training
    assert tok.decode(tok.encode(corpus)) == corpus


# ---------------------------------------------------------------- exact fast training
CORPORA = {
    "english": pydoc_text()[:8_000],
    "chinese": "\n".join(CHINESE_PARAGRAPHS),
    "english_story": "\n".join(ENGLISH_PARAGRAPHS),
    "multilingual": "".join(MULTILINGUAL_SAMPLES.values()) * 3,
    "repetitive": "aaaa aaab abab " * 40 + "a" * 50,  # overlapping pairs and many ties
}


@pytest.mark.parametrize("name", CORPORA)
def test_fast_equals_naive(name):
    text = CORPORA[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small corpora may run out of pairs: same for both
        fast = BPETokenizer().train(text, 450, progress=False)
        naive = BPETokenizer().train(text, 450, method="naive", progress=False)
    assert list(fast.merges.items()) == list(naive.merges.items())
    assert len(fast.merges) >= 10


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abc ", max_size=12), min_size=1, max_size=8), st.integers(1, 30))
def test_fast_equals_naive_generated(words, num_merges):
    chunks = [w.encode() for w in words if w]
    counts: dict[bytes, int] = {}
    for c in chunks:
        counts[c] = counts.get(c, 0) + 1
    assert list(fast_merges(counts, num_merges)) == list(naive_merges(chunks, num_merges))


def test_teaching_functions():
    ids = list(b"aaabdaaabac")
    stats = get_stats(ids)
    assert stats[(97, 97)] == 4 and best_pair(stats) == (97, 97)
    assert merge(ids, (97, 97), 256) == [256, 97, 98, 100, 256, 97, 98, 97, 99]
    assert best_pair({(3, 4): 2, (1, 9): 2, (0, 1): 1}) == (1, 9)  # tie: smallest pair wins


def test_truncate_equals_smaller_training():
    text = pydoc_text()[:20_000]
    big = BPETokenizer().train(text, 500, progress=False)
    small = BPETokenizer().train(text, 300, progress=False)
    assert big.truncate(44).merges == small.merges


def test_training_never_merges_specials():
    text = ("hello world" + END) * 50
    tok = BPETokenizer().train(text, 262, special_tokens=[END], progress=False)
    assert tok.special_tokens == {END: 261} and len(tok.vocab) == 262
    learned = [tok.vocab[i] for i in tok.merges.values()]
    assert not any(b"<|" in piece or b"|>" in piece for piece in learned)  # never merged


# ---------------------------------------------------------------- special tokens
def test_special_tokens_only_when_allowed(tok):
    text = f"hi{END}there"
    with pytest.raises(ValueError, match="allowed_special"):
        tok.encode(text)  # default: refuse to guess
    plain = tok.encode(text, allowed_special="none")
    assert tok.special_tokens[END] not in plain
    special = tok.encode(text, allowed_special="all")
    assert special.count(tok.special_tokens[END]) == 1 and len(special) < len(plain)
    assert tok.encode(text, allowed_special={END}) == special
    assert tok.special_tokens["<|im_end|>"] not in tok.encode("<|im_end|>", allowed_special={END})
    with pytest.raises(ValueError, match="Not special tokens"):
        tok.encode(text, allowed_special={"<|nope|>"})


# ---------------------------------------------------------------- save / load
def test_save_load_identity(tok, tmp_path):
    path = tok.save(tmp_path / "tok.json")
    loaded = BPETokenizer.load(path)
    assert list(loaded.merges.items()) == list(tok.merges.items())
    assert loaded.vocab == tok.vocab and loaded.special_tokens == tok.special_tokens
    assert loaded.pattern == tok.pattern
    sample = "".join(MULTILINGUAL_SAMPLES.values()) + END
    assert loaded.encode(sample, allowed_special="all") == tok.encode(sample, allowed_special="all")
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(ValueError, match="coursekit-bpe"):
        BPETokenizer.load(bad)


# ---------------------------------------------------------------- bad input
def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="at least 256"):
        BPETokenizer().train("hello", 255, progress=False)
    with pytest.raises(ValueError, match=r"256 \(bytes\) \+ 2"):
        BPETokenizer().train("hello", 257, special_tokens=["<a>", "<b>"], progress=False)
    tok = BPETokenizer().train("hello", 258, special_tokens=["<a>", "<b>"], progress=False)
    assert tok.merges == {} and len(tok) == 258


def test_unknown_id_is_named(tok):
    with pytest.raises(ValueError, match=r"Unknown token id 99999"):
        tok.decode([104, 99999])
    with pytest.raises(ValueError, match=r"Unknown token id -1"):
        tok.decode([-1])


def test_invalid_utf8_decodes_with_replacement(tok):
    ids = tok.encode("语言")
    raw = tok.decode_bytes(ids)
    assert raw == "语言".encode()
    assert tok.decode(list(raw[:2])) == "\ufffd"  # a 3-byte character cut after 2 bytes
    assert tok.decode([0x80, 104, 105]) == "\ufffdhi"  # a lone continuation byte
    assert tok.decode_bytes([0xFF]) == b"\xff"  # the raw bytes stay available


def test_empty_text_is_an_error():
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer().train("", 300, progress=False)
    with pytest.raises(ValueError, match="empty text"):
        BPETokenizer().train(END * 3, 300, special_tokens=[END], progress=False)


def test_too_few_pairs_warns():
    with pytest.warns(UserWarning, match="Only 1 of 44 merges"):
        tok = BPETokenizer().train("ab", 300, progress=False)
    assert tok.merges == {(97, 98): 256}


def test_unknown_method():
    with pytest.raises(ValueError, match="naive"):
        BPETokenizer().train("hello", 300, method="slow", progress=False)  # type: ignore[arg-type]


def test_token_pieces_join_to_text(tok):
    s = MULTILINGUAL_SAMPLES["code_indentation"]
    assert b"".join(token_pieces(tok, s)) == s.encode()


def test_gpt2_byte_decoder_is_a_bijection():
    table = gpt2_byte_decoder()
    assert sorted(table.values()) == list(range(256)) and len(table) == 256
    assert table["Ġ"] == ord(" ") and table["A"] == ord("A")
