import math
import random

import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer

from coursekit import evals

WORDS = "the cat dog sat ran on a mat log quickly slowly red big small house tree , . !".split()


def random_sentence(rng, n=None):
    return " ".join(rng.choice(WORDS) for _ in range(n or rng.randint(1, 14)))


def test_perplexity_is_exp_of_the_models_own_mean_loss(tiny_llama):
    model, tok = tiny_llama
    texts = ["def add(a, b): return a + b", "The quick brown fox.", "x = [i * i for i in range(10)] # squares"]
    total, count = 0.0, 0
    for t in texts:
        ids = tok(t, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            loss = model(ids, labels=ids).loss.item()  # mean over len-1 predicted tokens
        total, count = total + loss * (ids.shape[1] - 1), count + ids.shape[1] - 1
    expected = math.exp(total / count)
    for bs in (1, 2, 3):  # padding never counts, so the batch size does not matter
        assert evals.perplexity(model, tok, texts, batch_size=bs) == pytest.approx(expected, rel=1e-4)


def test_token_nll_is_float64_accurate_on_a_large_vocabulary():
    class FixedLogits(torch.nn.Module):  # a "model" whose logits are fixed random numbers
        def __init__(self):
            super().__init__()
            self.logits = torch.nn.Parameter(torch.randn(2, 12, 49152, generator=torch.Generator().manual_seed(0)) * 4)

        def forward(self, ids):
            return (self.logits[:, : ids.shape[1]],)

    model = FixedLogits()
    ids = torch.randint(0, 49152, (2, 12), generator=torch.Generator().manual_seed(1))
    total, count = evals.lm._token_nll(model, ids, torch.ones_like(ids))
    exact = torch.nn.functional.cross_entropy(model.logits[:, :-1].double().reshape(-1, 49152), ids[:, 1:].reshape(-1),
                                              reduction="sum").item()
    assert count == 22 and total == pytest.approx(exact, rel=1e-6)


def test_strided_perplexity_equals_whole_when_the_window_covers_the_text(tiny_llama):
    model, tok = tiny_llama
    text = ["import os\nprint(os.getcwd())\n" * 6]
    n = len(tok(text[0])["input_ids"])
    whole = evals.perplexity(model, tok, text)
    assert evals.perplexity(model, tok, text, stride=n, max_length=n) == pytest.approx(whole, rel=1e-5)
    short = evals.perplexity(model, tok, text, stride=8, max_length=16)  # less context each time
    assert short != pytest.approx(whole, rel=1e-6) and math.isfinite(short)


@pytest.mark.parametrize("stride", [16, 8, 5])
def test_strided_nll_scores_each_target_once_with_the_right_context(tiny_llama, stride):
    model, tok = tiny_llama
    ids = torch.tensor([tok("import os\nprint(os.getcwd())\n" * 6)["input_ids"]])
    T, W = ids.shape[1], 16
    total, count = evals.lm._strided_nll(model, ids, W, stride)
    expected, n, scored_to = 0.0, 0, 1  # target t is scored in the first window that holds it after its start
    for begin in range(0, T, stride):
        end = min(begin + W, T)
        with torch.no_grad():
            logits = model(ids[:, begin:end]).logits[0].double()
        for t in range(max(scored_to, begin + 1), end):
            expected += -torch.log_softmax(logits[t - begin - 1], -1)[ids[0, t]].item()
            n += 1
        scored_to = end
        if end == T:
            break
    # overlapping windows score every token but the first; disjoint ones skip each window's first token
    assert count == n == (T - math.ceil(T / W) if stride == W else T - 1)
    assert total == pytest.approx(expected, rel=1e-5)


def test_bleu_matches_sacrebleu_on_random_pairs():
    rng = random.Random(0)
    for _ in range(40):
        n = rng.randint(1, 6)
        preds = [random_sentence(rng) for _ in range(n)]
        refs = [random_sentence(rng) for _ in range(n)]
        ours = evals.bleu(preds, refs)
        theirs = sacrebleu.corpus_bleu(preds, [refs]).score
        assert ours == pytest.approx(theirs, abs=0.01), (preds, refs)


def test_bleu_multi_reference_and_known_values():
    assert evals.bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    preds, refs = ["a big red house , quickly"], [["the big red house", "a big red house ."]]
    assert evals.bleu(preds, refs) == pytest.approx(sacrebleu.corpus_bleu(preds, [[r[0] for r in refs], [r[1] for r in refs]]).score, abs=0.01)


def test_rouge_matches_rouge_score():
    rng = random.Random(1)
    preds = [random_sentence(rng) for _ in range(10)]
    refs = [random_sentence(rng) for _ in range(10)]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    ref_scores = [scorer.score(r, p) for p, r in zip(preds, refs)]
    ours = evals.rouge(preds, refs)
    for k in evals.ROUGE_KEYS:
        assert ours[k] == pytest.approx(sum(s[k].fmeasure for s in ref_scores) / 10, abs=1e-9)


def test_rouge_handles_non_latin_text():
    default = rouge_scorer.RougeScorer(["rouge1"]).score("猫坐在垫子上", "猫坐在垫子上")["rouge1"].fmeasure
    assert default == 0.0  # the library's tokenizer drops every Chinese character
    assert evals.rouge(["猫坐在垫子上"], ["猫坐在垫子上"])["rouge1"] == pytest.approx(1.0)
    assert 0 < evals.rouge(["猫坐在床上"], ["猫坐在垫子上"])["rouge1"] < 1


def test_meteor_equals_nltk_without_synonyms():
    from nltk.translate.meteor_score import meteor_score

    class NoWordNet:  # NLTK's synonym stage, switched off
        @staticmethod
        def synsets(*args, **kwargs):
            return []

    rng = random.Random(2)
    for _ in range(30):
        p, r = random_sentence(rng), random_sentence(rng)
        theirs = meteor_score([r.split()], p.split(), wordnet=NoWordNet)
        assert evals.meteor([p], [r]) == pytest.approx(theirs, abs=1e-9), (p, r)
    assert evals.meteor(["the cats were running"], ["the cat was running"]) > evals.meteor(["the dogs were jumping"], ["the cat was running"])


def test_exact_match_and_f1_known_cases():
    assert evals.exact_match(["The Eiffel Tower!", "Paris"], ["eiffel tower", "London"]) == 0.5
    assert evals.token_f1(["The cat sat."], ["a cat sat down"]) == pytest.approx(0.8)
    assert evals.token_f1([""], [""]) == 1.0 and evals.token_f1(["x"], [""]) == 0.0


def test_bertscore_paraphrase_beats_unrelated():
    out = evals.bertscore(["A cat is sitting on the mat.", "Stock prices fell sharply today."],
                          ["The cat sat on the mat.", "The cat sat on the mat."])
    assert out["per_pair_f1"][0] > 0.8 > 0.3 > out["per_pair_f1"][1]
    assert out["layer"] == 6 and "minilm" in out["model"].lower()
    assert evals.bert_scorer.cache_info().currsize == 1
    evals.bertscore(["a"], ["b"])
    assert evals.bert_scorer.cache_info().hits >= 1  # the scorer is reused


def test_bertscore_empty_text_scores_zero():
    out = evals.bertscore(["", "The cat sat on the mat.", "a cat"], ["The cat sat on the mat.", "The cat sat on the mat.", " "])
    assert out["per_pair_f1"][0] == 0.0 and out["per_pair_f1"][2] == 0.0
    assert out["per_pair_f1"][1] == pytest.approx(1.0, abs=1e-4)
    assert evals.bertscore([""], ["x"])["f1"] == 0.0


def test_multiple_choice_picks_the_planted_answer():
    from transformers import GPT2Config, GPT2LMHeadModel

    from coursekit.assets import train_tiny_tokenizer

    tok = train_tiny_tokenizer(300)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=64))
    planted = "The sun rises in the east"
    ids = tok(planted, return_tensors="pt")["input_ids"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):  # train the model to prefer the planted sentence
        opt.zero_grad()
        model(ids, labels=ids).loss.backward()
        opt.step()
    model.eval()
    items = [{"ctx": "The sun rises", "endings": ["at noon forever", "in the east", "under a table"], "label": 1},
             {"ctx": "The sun rises", "endings": ["in the east", "on a spoon", "inside the moon"], "label": 0}]
    out = evals.multiple_choice_accuracy(model, tok, items)
    assert out == {"accuracy": 1.0, "predictions": [1, 0]}


@pytest.mark.parametrize("fn", [evals.bleu, evals.rouge, evals.meteor, evals.exact_match, evals.token_f1])
def test_bad_input(fn):
    with pytest.raises(ValueError, match="Empty"):
        fn([], [])
    with pytest.raises(ValueError, match="2 vs 1"):
        fn(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="index 1"):
        fn(["a", 3], ["a", "b"])
