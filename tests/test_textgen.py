"""coursekit.textgen: known cases, clear errors, and equality with the transformers reference."""

import pytest
import torch

from coursekit import assets
from coursekit.textgen import (
    IGNORE_INDEX,
    causal_lm_loss,
    distinct_n,
    fits_in_context,
    mlm_mask,
    ngrams,
    repetition_rate,
    sample_generations,
    token_counts,
    words_per_token,
)


@pytest.fixture(scope="module")
def bert_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(assets.minilm_path())


# ---------------------------------------------------------------- n-grams
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


# ---------------------------------------------------------------- token budgets
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


# ---------------------------------------------------------------- causal LM loss
def test_causal_lm_loss_equals_model_loss(tiny_llama):
    model, tok = tiny_llama
    texts = ["def add(a, b):\n    return a + b", "The quick brown fox jumps over the lazy dog."]
    batch = tok(texts, return_tensors="pt", padding=True)
    ids = batch.input_ids
    with torch.no_grad():
        out = model(ids[:1], labels=ids[:1])
        assert torch.allclose(causal_lm_loss(out.logits, ids[:1]), out.loss, atol=1e-6)
        # padded batch: padding labelled -100 is skipped by both
        labels = ids.masked_fill(batch.attention_mask == 0, IGNORE_INDEX)
        out = model(**batch, labels=labels)
        assert torch.allclose(causal_lm_loss(out.logits, labels), out.loss, atol=1e-6)


def test_causal_lm_loss_by_hand():
    # uniform logits over V tokens: loss is log V whatever the targets are
    logits = torch.zeros(2, 5, 7)
    ids = torch.randint(7, (2, 5))
    assert causal_lm_loss(logits, ids).item() == pytest.approx(torch.log(torch.tensor(7.0)).item())
    # a model certain of the *next* token (not the current one) has ~zero loss
    ids = torch.tensor([[1, 2, 3, 4]])
    logits = torch.full((1, 4, 5), -1e4)
    for t in range(3):
        logits[0, t, ids[0, t + 1]] = 1e4
    assert causal_lm_loss(logits, ids).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shapes", [((2, 5, 7), (2, 4)), ((5, 7), (5,)), ((2, 1, 7), (2, 1))])
def test_causal_lm_loss_bad_shapes(shapes):
    with pytest.raises(ValueError):
        causal_lm_loss(torch.zeros(shapes[0]), torch.zeros(shapes[1], dtype=torch.long))


# ---------------------------------------------------------------- MLM masking
def _random_batch(tok, rows=200, cols=1000, seed=0):
    """~200k tokens: [CLS] text… [SEP] [PAD]… rows, the text drawn from ordinary vocabulary ids."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, len(tok), (rows, cols), generator=g)
    ids[:, 0] = tok.cls_token_id
    ends = torch.randint(cols // 2, cols, (rows,), generator=g)
    for r, end in enumerate(ends.tolist()):
        ids[r, end] = tok.sep_token_id
        ids[r, end + 1:] = tok.pad_token_id
    return ids


def _proportions(original, inputs, labels, mask_id, special):
    selected = labels != IGNORE_INDEX
    n_sel = selected.sum().item()
    return {
        "selected": n_sel / (~special).sum().item(),
        "mask": ((inputs == mask_id) & selected).sum().item() / n_sel,
        "random": ((inputs != mask_id) & (inputs != original) & selected).sum().item() / n_sel,
        "kept": ((inputs == original) & selected).sum().item() / n_sel,
    }


def test_mlm_mask_rules_hold_exactly(bert_tok):
    ids = _random_batch(bert_tok, rows=20, cols=200)
    inputs, labels = mlm_mask(ids, bert_tok, generator=torch.Generator().manual_seed(1))
    special = torch.isin(ids, torch.tensor(bert_tok.all_special_ids))
    selected = labels != IGNORE_INDEX
    assert not (selected & special).any()  # [CLS]/[SEP]/[PAD] never selected
    assert torch.equal(labels[selected], ids[selected])  # labels are the originals
    assert torch.equal(inputs[~selected], ids[~selected])  # nothing else changes
    assert ids[0, 0] == bert_tok.cls_token_id  # input not modified in place
    # same generator seed → same corruption; tuple spec ≡ tokenizer
    spec = (bert_tok.mask_token_id, len(bert_tok), bert_tok.all_special_ids)
    again = mlm_mask(ids, spec, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], labels)


def test_mlm_mask_80_10_10_matches_datacollator(bert_tok):
    from transformers import DataCollatorForLanguageModeling

    ids = _random_batch(bert_tok)  # 200k positions
    special = torch.isin(ids, torch.tensor(bert_tok.all_special_ids))
    assert (~special).sum() > 100_000
    mine = _proportions(ids, *mlm_mask(ids, bert_tok, generator=torch.Generator().manual_seed(0)),
                        bert_tok.mask_token_id, special)

    collator = DataCollatorForLanguageModeling(bert_tok, mlm_probability=0.15, seed=0)
    ref = collator([{"input_ids": row} for row in ids.tolist()])
    theirs = _proportions(ids, ref["input_ids"], ref["labels"], bert_tok.mask_token_id, special)

    expected = {"selected": 0.15, "mask": 0.8, "random": 0.1, "kept": 0.1}
    for key, value in expected.items():
        tol = 0.003 if key == "selected" else 0.01
        assert mine[key] == pytest.approx(value, abs=tol), (key, mine)
        assert theirs[key] == pytest.approx(value, abs=tol), (key, theirs)
        assert mine[key] == pytest.approx(theirs[key], abs=tol), (key, mine, theirs)
    # and the collator, like us, never selects a special token
    assert not ((ref["labels"] != IGNORE_INDEX) & special).any()


def test_mlm_mask_bad_input(bert_tok, tiny_llama):
    ids = torch.tensor([[101, 2000, 102]])
    with pytest.raises(ValueError, match="prob"):
        mlm_mask(ids, bert_tok, prob=1.5)
    with pytest.raises(ValueError, match="empty"):
        mlm_mask(torch.zeros(1, 0, dtype=torch.long), bert_tok)
    with pytest.raises(ValueError, match="integer"):
        mlm_mask(ids.float(), bert_tok)
    with pytest.raises(ValueError, match="mask token"):
        mlm_mask(ids, tiny_llama[1])
    with pytest.raises(ValueError, match="tuple"):
        mlm_mask(ids, (103, 30522))
    with pytest.raises(ValueError, match="sum"):
        mlm_mask(ids, bert_tok, mask_frac=0.9, random_frac=0.2)


# ---------------------------------------------------------------- sampling
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
    with pytest.raises(ValueError):
        sample_generations(model, tok, "x", n=0)
    with pytest.raises(ValueError, match="chat"):
        sample_generations(model, tok, [{"role": "user", "content": "x"}], chat=False)
