"""coursekit.bpe, one file per step: lossless round trips, exact fast training, special tokens, bad input."""

import json
import re
import warnings

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coursekit.bpe import (BPETokenizer, best_pair, fast_merges, from_mergeable_ranks, get_stats, gpt2_byte_decoder,
                           merge, naive_merges, token_pieces)
from coursekit.bpe.files import read_tokenizer_file, write_tokenizer_file
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


FAST_CASES = {  # corpus -> merges; each trains to exhaustion, so the last merges are count-1 pairs and their ties
    "pair_then_run": ({b"baaa": 1, b"ba": 1}, 10),
    "pair_then_run_mirrored": ({b"abbb": 1, b"ab": 1}, 10),
    "counts_fall_to_one": ({b"abab": 1, b"abc": 1, b"bc": 1}, 10),
    "weighted": ({b"aab": 3, b"ab": 1, b"ba": 2, b"cab": 1}, 10),
    "overlaps": ({b"aaaa": 1, b"aaab": 1, b"baaa": 1}, 10),
}


@pytest.mark.parametrize("case", FAST_CASES)
def test_fast_equals_naive_down_to_count_one(case):
    counts, num_merges = FAST_CASES[case]
    chunks = [chunk for chunk, n in counts.items() for _ in range(n)]
    fast, naive = list(fast_merges(counts, num_merges)), list(naive_merges(chunks, num_merges))
    assert fast == naive, f"{case}: fast {fast} != naive {naive}"
    assert any(count == 1 for _, _, count in naive), f"{case}: no count-1 merge, so it tests nothing: {naive}"


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


# ---------------------------------------------------------------- encoding = the training's own ids
def _replayed(tok, text):
    """The ids training left ``text`` in: every merge applied to every chunk, in the order learned."""
    ids = []
    for chunk in regex.findall(tok.pattern, text):
        chunk_ids = list(chunk.encode("utf-8"))
        for pair, idx in tok.merges.items():  # dicts keep insertion order: merge order
            chunk_ids = merge(chunk_ids, pair, idx)
        ids.extend(chunk_ids)
    return ids


def test_encoding_the_training_text_gives_the_training_ids():
    # merges must apply lowest rank first; "leftmost mergeable pair first" is lossless too, but other ids
    text = "\n".join(ENGLISH_PARAGRAPHS)
    tok = BPETokenizer().train(text, 400, progress=False)
    got, want = tok.encode(text), _replayed(tok, text)
    first = next((k for k, (a, b) in enumerate(zip(got, want)) if a != b), None)
    assert got == want, f"{len(got)} vs {len(want)} ids, first difference at position {first}"


WORDS = sorted(set(pydoc_text()[:40_000].split()))  # words the fixture's merges were learned on


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(WORDS) | st.text(st.characters(codec="utf-8"), max_size=4), max_size=12))
def test_encoding_equals_replaying_the_merges(tok, parts):
    s = " ".join(parts)
    assert tok.encode(s, allowed_special="none") == _replayed(tok, s), repr(s)


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


def test_register_special_tokens_at_given_ids():
    tok = BPETokenizer().train("hello hello world " * 20, 260, progress=False)  # merges make ids 256-259
    tok.register_special_tokens({"<|far|>": 1000})
    tok.register_special_tokens(["<|next|>"])  # after a gap: the next id above every id in use
    assert tok.special_tokens == {"<|far|>": 1000, "<|next|>": 1001}, tok.special_tokens
    assert tok.decode(tok.encode("hi<|far|>", allowed_special="all")) == "hi<|far|>"
    before = dict(tok.vocab)
    for clash, words in [({"<|x|>": 257}, "merge 1"), ({"<|x|>": 65}, "a byte"), ({"<|x|>": 1001}, "a special"),
                         ({"<|far|>": 2000}, "must be a new"), ({"": 3000}, "must be a new")]:
        with pytest.raises(ValueError, match=words) as info:
            tok.register_special_tokens(clash)
        assert "free id (1002 or more)" in str(info.value), str(info.value)
    assert tok.vocab == before and len(tok.special_tokens) == 2, f"a refused id changed the tokenizer: {tok}"


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


def _saved(tmp_path, kind, edit):
    """A small tokenizer's file, changed by ``edit``: of its raw bytes (``kind="raw"``) or of its parsed JSON."""
    tok = BPETokenizer().train("hello hello world " * 20, 262, special_tokens=["<|a|>", "<|b|>"], progress=False)
    path = tok.save(tmp_path / "tok.json")
    if kind == "raw":
        path.write_bytes(edit(path.read_bytes()))
    else:
        data = json.loads(path.read_text(encoding="utf-8"))
        edit(data)
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


BAD_FILES = {  # what is wrong -> (kind, edit, words the one-line error must contain)
    "truncated": ("raw", lambda b: b[: len(b) // 2], "not valid JSON"),
    "empty": ("raw", lambda b: b"", "not valid JSON"),
    "not_utf8": ("raw", lambda b: b"\xff\xfe" + b, "not UTF-8 text (byte 0 is b'\\xff')"),  # that one byte
    "a_list": ("raw", lambda b: b"[1, 2]", "not a coursekit-bpe file"),
    "special_twice": ("raw", lambda b: b.replace(b'"<|b|>"', b'"<|a|>"'), "'<|a|>' twice"),
    "other_format": ("json", lambda d: d.update(format="minbpe"), "format='minbpe'"),
    "newer_version": ("json", lambda d: d.update(version=2), "version 2"),
    "no_merges": ("json", lambda d: d.pop("merges"), "['merges']"),
    "bad_pattern": ("json", lambda d: d.update(pattern="(unclosed"), "not a valid regex"),
    "empty_pattern": ("json", lambda d: d.update(pattern=""), "'pattern' must be a non-empty regex string, got ''"),
    "pattern_not_a_string": ("json", lambda d: d.update(pattern=5), "'pattern' must be a non-empty regex string, got 5"),
    "merges_not_a_list": ("json", lambda d: d.update(merges={}),
                          "'merges' must be a list of [left id, right id] pairs, got dict"),
    "merge_not_a_pair": ("json", lambda d: d["merges"].__setitem__(1, [104]), "merge 1 must be a pair"),
    "merge_bool_id": ("json", lambda d: d["merges"].__setitem__(1, [True, 104]), "merge 1 must be a pair"),
    "merge_unknown_id": ("json", lambda d: d["merges"].__setitem__(0, [104, 300]), "unknown id"),
    "merge_uses_its_own_id": ("json", lambda d: d["merges"].__setitem__(0, [104, 256]),
                              "merge 0 [104, 256] makes id 256 from an unknown id (only ids below 256"),
    "merge_repeated": ("json", lambda d: d["merges"].__setitem__(3, d["merges"][0]), "repeats merge 0"),
    "special_is_a_merge": ("json", lambda d: d["special_tokens"].update({"<|a|>": 257}), "already merge 1"),
    "special_is_merge_0": ("json", lambda d: d["special_tokens"].update({"<|a|>": 256}),
                           "has id 256, which is already merge 0 (ids below 260"),
    "special_is_a_byte": ("json", lambda d: d["special_tokens"].update({"<|a|>": 65}), "already a byte"),
    "specials_share_an_id": ("json", lambda d: d["special_tokens"].update({"<|b|>": 260}), "share id 260"),
    "special_not_an_id": ("json", lambda d: d["special_tokens"].update({"<|a|>": "260"}), "non-negative integer"),
    "specials_not_a_map": ("json", lambda d: d.update(special_tokens=[["<|a|>", 260]]),
                           "'special_tokens' must map token strings to ids, got list"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_load_names_the_file_and_the_fix(tmp_path, case):
    kind, edit, words = BAD_FILES[case]
    path = _saved(tmp_path, kind, edit)
    with pytest.raises(ValueError) as info:
        BPETokenizer.load(path)
    message = str(info.value)
    assert words in message and str(path) in message, f"{case}: {message!r} lacks {words!r} or the path"
    assert "\n" not in message and ("BPETokenizer.save" in message), f"{case}: not one line with the fix: {message!r}"


def test_load_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.json: no such tokenizer file"):
        BPETokenizer.load(tmp_path / "nope.json")


def test_load_keeps_a_valid_file_identical(tmp_path):
    path = _saved(tmp_path, "json", lambda d: None)  # the checks refuse nothing that save writes
    loaded = BPETokenizer.load(path)
    assert loaded.special_tokens == {"<|a|>": 260, "<|b|>": 261} and len(loaded.merges) == 4, repr(loaded)


def test_file_keeps_byte_zero_and_non_ascii_text(tmp_path):
    # id 0 (the NUL byte) is an id like any other; non-ASCII text is written as UTF-8, not as \u escapes
    pattern, merges, specials = r"\p{L}+|é", [(0, 0), (256, 0)], {"<|终|>": 258}
    path = write_tokenizer_file(tmp_path / "tok.json", pattern, merges, specials)
    text = path.read_text(encoding="utf-8")
    assert '"<|终|>"' in text and "é" in text and "\\u" not in text, text
    assert read_tokenizer_file(path) == (pattern, merges, specials)


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


# ---------------------------------------------------------------- ranks that are not a byte-level BPE's
BYTE_RANKS = {bytes([b]): b for b in range(256)}


@pytest.mark.parametrize(("lacking", "listed"), [(8, "[0, 1, 2, 3, 4, 5, 6, 7]:"), (9, "[0, 1, 2, 3, 4, 5, 6, 7]...:")])
def test_ranks_lacking_bytes_list_the_first_eight(lacking, listed):
    ranks = {token: rank for token, rank in BYTE_RANKS.items() if token[0] >= lacking}
    with pytest.raises(ValueError, match=re.escape(f"ranks lack the single bytes {listed} a byte-level BPE needs all")):
        from_mergeable_ranks(ranks, r"\w+")


def test_ranks_of_a_merged_token_below_256_are_refused():
    with pytest.raises(ValueError, match=re.escape("token b'ab' has rank 100 < 256: our ids 0-255 are the bytes")):
        from_mergeable_ranks(BYTE_RANKS | {b"ab": 100}, r"\w+")


def test_ranks_of_a_token_that_is_not_one_merge_are_refused():
    # b"abc" with neither b"ab" nor b"bc" ranked: no merge of two lower-ranked tokens makes it
    with pytest.raises(ValueError, match=re.escape("token b'abc' (rank 256) is not one merge of two lower-ranked")):
        from_mergeable_ranks(BYTE_RANKS | {b"abc": 256}, r"\w+")
