"""BPETokenizer's parts one by one: each message's numbers, the warning and progress bar, retraining, truncation,
the encode cache's bound, special-token ids and the longest-first split (the mutation run's survivors)."""

import re
import warnings

import pytest

from coursekit.bpe import BPETokenizer

TEXT = "aaab" * 10


def _trained(vocab_size: int = 258, **kwargs: object) -> BPETokenizer:
    return BPETokenizer().train(TEXT, vocab_size, progress=False, **kwargs)


def test_a_too_small_vocab_names_the_smallest_size_that_works():
    with pytest.raises(ValueError, match=re.escape("256 (bytes) + 2 (special tokens) = 258.")):
        BPETokenizer().train(TEXT, 257, special_tokens=["<|a|>", "<|b|>"], progress=False)


@pytest.mark.parametrize("specials", [["<|a|>", "<|a|>"], ["<|a|>", ""], [""]])
def test_repeated_or_empty_special_tokens_are_refused_before_training(specials):
    with pytest.raises(ValueError, match="special_tokens must be distinct, non-empty strings"):
        BPETokenizer().train(TEXT, 300, special_tokens=specials, progress=False)


def test_retraining_forgets_the_previous_merges_and_special_tokens():
    tok = BPETokenizer().train("the cat sat on the mat " * 20, 262, special_tokens=["<|old|>"], progress=False)
    tok.train(TEXT, 258, progress=False)
    fresh = _trained()
    assert (tok.merges, tok.vocab, tok.special_tokens) == (fresh.merges, fresh.vocab, fresh.special_tokens)


def test_verbose_training_prints_each_merge_numbered_from_one(capsys):
    _trained(verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["merge 1/2: (97, 97) -> 256 b'aa' (20 times)", "merge 2/2: (97, 98) -> 257 b'ab' (10 times)"], lines


def test_a_text_that_runs_out_of_pairs_warns_with_the_real_size_at_the_callers_line():
    with pytest.warns(UserWarning) as caught:
        BPETokenizer().train("ab", 300, special_tokens=["<|a|>", "<|b|>"], progress=False)
    (warning,) = caught
    assert "Only 1 of 42 merges were possible" in str(warning.message), str(warning.message)
    assert "the vocabulary has 259 tokens instead of 300" in str(warning.message), str(warning.message)
    assert warning.filename == __file__, warning.filename  # stacklevel=2: the line that called train


def test_a_text_with_enough_pairs_trains_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tok = _trained()  # exactly the 2 merges the text allows
    assert len(tok.merges) == 2


def test_training_shows_a_progress_bar_by_default_and_none_when_asked(capsys):
    BPETokenizer().train(TEXT, 258)
    assert "BPE merges (fast)" in capsys.readouterr().err
    BPETokenizer().train(TEXT, 258, method="naive", progress=False)
    assert capsys.readouterr().err == ""


def test_truncate_keeps_the_special_tokens_and_accepts_every_size_from_zero_to_all():
    big = BPETokenizer().train(TEXT, 259, special_tokens=["<|end|>"], progress=False)
    assert big.truncate(0).merges == {}
    assert big.truncate(2).merges == big.merges
    assert big.truncate(1).special_tokens == {"<|end|>": 257}, big.truncate(1).special_tokens
    for bad in (-1, 3):
        with pytest.raises(ValueError, match=f"num_merges must be between 0 and 2, got {bad}"):
            big.truncate(bad)


def test_the_encode_cache_never_grows_past_its_limit():
    tok = _trained()
    tok.cache_limit = 3
    sizes = []
    for word in ["a", "b", "c", "d", "e", "f", "g"]:
        tok.encode_ordinary(word)
        sizes.append(len(tok._cache))
    assert max(sizes) == 3 and sizes[-1] < 3, sizes  # full at 3 chunks, then cleared and refilled


@pytest.mark.parametrize(("idx", "owner"), [(-1, "not a non-negative integer"), ("7", "not a non-negative integer"),
                                            (0, "a byte"), (255, "a byte"), (256, "merge 0"), (257, "merge 1")])
def test_a_special_token_on_a_taken_id_names_what_holds_it(idx, owner):
    tok = _trained()
    with pytest.raises(ValueError, match=re.escape(f"that id is {owner},")):
        tok.register_special_tokens({"<|x|>": idx})
    assert "<|x|>" not in tok.special_tokens


def test_a_special_token_on_a_free_id_is_registered_there():
    tok = _trained()
    tok.register_special_tokens({"<|x|>": 258})
    assert tok.special_tokens == {"<|x|>": 258}


def test_allowed_special_as_an_unknown_word_is_refused_by_name():
    tok = _trained(special_tokens=[])
    for word in ("some", ""):
        with pytest.raises(ValueError, match="allowed_special must be 'all', 'none', 'none_raise' or a set"):
            tok.encode("aab", allowed_special=word)


def test_a_longer_special_token_wins_over_one_it_starts_with():
    tok = _trained()
    tok.register_special_tokens(["<|end|>", "<|end|>!"])  # the shorter one registered first
    assert tok.encode("a<|end|>!", allowed_special="all") == [97, tok.special_tokens["<|end|>!"]]


def test_an_unknown_id_says_whether_the_ids_have_gaps():
    tok = _trained()
    with pytest.raises(ValueError, match=r"ids 0 to 257\.$"):
        tok.decode([999])
    tok.register_special_tokens({"<|far|>": 1000})
    with pytest.raises(ValueError, match=re.escape("ids 0 to 1000 (with gaps).")):
        tok.decode([999])


def test_repr_counts_vocab_merges_and_special_tokens():
    tok = _trained(special_tokens=["<|end|>"], vocab_size=259)
    assert repr(tok) == "BPETokenizer(vocab=259, merges=2, special=1)"
