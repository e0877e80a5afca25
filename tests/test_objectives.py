"""coursekit.objectives: the causal LM loss equals the model's, MLM masking equals transformers' collator."""

import pytest
import torch

from coursekit import assets
from coursekit.objectives import IGNORE_INDEX, causal_lm_loss, mlm_mask


@pytest.fixture(scope="module")
def bert_tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(assets.minilm_path())


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
