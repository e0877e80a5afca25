"""coursekit.evals.diversity: distinct-n and repetition rate on known cases, and clear errors."""

import pytest
import torch

from coursekit.evals import distinct_n, ngrams, repetition_rate


def test_ngrams_words_tokens_and_tensors():
    assert ngrams("a b c", 2) == [("a", "b"), ("b", "c")]
    assert ngrams([1, 2, 3], 3) == [(1, 2, 3)]
    assert ngrams(torch.tensor([4, 5]), 1) == [(4,), (5,)]
    assert ngrams("a", 2) == []


def test_distinct_n_known_cases():
    assert distinct_n(["the cat sat", "the cat ran"], 2) == 0.75
    assert distinct_n([[1, 2, 3], [1, 2, 3]], 1) == 0.5
    assert distinct_n(["a b c d"], 2) == 1.0
    assert distinct_n(["x x x x"], 1) == 0.25
    # a too-short sample adds nothing, the others still count
    assert distinct_n(["a", "a b"], 2) == 1.0
    assert distinct_n(torch.tensor([[1, 2, 3], [1, 2, 4]]), 2) == 0.75  # rows of a batch


@pytest.mark.parametrize("args", [([], 2), (["a b"], 0), (["a b"], -1), (["a", "b"], 2), ("a b c", 1)])
def test_distinct_n_bad_input(args):
    with pytest.raises(ValueError):
        distinct_n(*args)


def test_repetition_rate_known_cases():
    assert repetition_rate("a b a b a b", 2) == pytest.approx(0.6)
    assert repetition_rate([5, 6, 7, 8], 2) == 0.0
    assert repetition_rate([7, 7, 7, 7, 7], 1) == pytest.approx(0.8)
    assert repetition_rate("short", 3) == 0.0
    with pytest.raises(ValueError, match="n must be"):
        repetition_rate("a b", 0)
    with pytest.raises(ValueError, match="1-D"):
        repetition_rate(torch.zeros(2, 2, dtype=torch.long), 1)
