"""coursekit.sampling: greedy is deterministic, sampling is seeded, prompt and EOS are cut off."""

import pytest

from coursekit.evals import repetition_rate
from coursekit.sampling import sample_generations


def test_sample_generations_greedy_is_deterministic_and_sampling_is_seeded(tiny_llama):
    model, tok = tiny_llama
    greedy = [sample_generations(model, tok, "Hello", n=1, do_sample=False, max_new_tokens=8) for _ in range(2)]
    assert greedy[0].token_ids == greedy[1].token_ids
    assert greedy[0].prompt.endswith("<|im_start|>assistant\n")
    kw = dict(do_sample=True, temperature=1.5, top_k=0, max_new_tokens=8)
    a = sample_generations(model, tok, "Hello", n=3, seed=0, **kw)
    b = sample_generations(model, tok, "Hello", n=3, seed=0, **kw)
    c = sample_generations(model, tok, "Hello", n=3, seed=1, **kw)
    assert len(a.texts) == len(a.token_ids) == 3
    assert a.token_ids == b.token_ids and a.token_ids != c.token_ids
    assert all(len(t) <= 8 and tok.eos_token_id not in t for t in a.token_ids)


def test_sample_generations_no_repeat_ngram(tiny_llama):
    model, tok = tiny_llama
    plain = sample_generations(model, tok, "Hello", do_sample=False, max_new_tokens=24, min_new_tokens=24)
    assert repetition_rate(plain.token_ids[0], 2) > 0  # a random tiny model loops under greedy decoding
    g = sample_generations(model, tok, "Hello", n=2, seed=0, do_sample=True, no_repeat_ngram_size=2,
                           max_new_tokens=24, min_new_tokens=24)
    assert all(len(ids) == 24 and repetition_rate(ids, 2) == 0.0 for ids in g.token_ids)


def test_sample_generations_bad_input(tiny_llama):
    model, tok = tiny_llama
    with pytest.raises(ValueError, match=r"^n=0: must be ≥ 1"):
        sample_generations(model, tok, "x", n=0)
    with pytest.raises(ValueError, match="chat"):
        sample_generations(model, tok, [{"role": "user", "content": "x"}], chat=False)
