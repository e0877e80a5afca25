import math
import random

import pytest
import sacrebleu
import torch
from rouge_score import rouge_scorer

from coursekit import evals

WORDS = ["the", "cat", "dog", "sat", "ran", "on", "a", "mat", "log", "quickly", "slowly", "red", "big", "small", "house", "tree", ",", ".", "!"]


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


def test_rouge_stems_inflected_words_as_rouge_score():
    # the stemmer matters only on inflections, which random_sentence has none of
    preds, refs = ["the cats were running and agreeing"], ["a cat was run , agrees"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    want = scorer.score(refs[0], preds[0])
    ours = evals.rouge(preds, refs)
    for k in evals.ROUGE_KEYS:
        assert ours[k] == pytest.approx(want[k].fmeasure, abs=1e-9), (k, ours[k], want[k].fmeasure)
    assert ours["rouge1"] > rouge_scorer.RougeScorer(["rouge1"]).score(refs[0], preds[0])["rouge1"].fmeasure


def test_unicode_tokenizer_stems_ascii_words_longer_than_three_letters_as_rouge_score():
    from nltk.stem import porter
    from rouge_score import tokenize

    from coursekit.evals.rouge_metric import UnicodeTokenizer

    text = "Running cats was agrees the dogs are"  # 'was' (3 letters) stays, as in rouge-score
    want = tokenize.tokenize(text, porter.PorterStemmer())
    assert UnicodeTokenizer().tokenize(text) == want, (UnicodeTokenizer().tokenize(text), want)
    assert want == ["run", "cat", "was", "agre", "the", "dog", "are"], want
    # non-ASCII words are never stemmed (Porter is an English stemmer); CJK splits into characters
    got = UnicodeTokenizer().tokenize("naïvely cafés 日本 cats")
    assert got == ["naïvely", "cafés", "日", "本", "cat"], got
    assert UnicodeTokenizer(use_stemmer=False).tokenize("Running cats") == ["running", "cats"]
    # and rouge's non-ASCII path stems: an inflection still matches
    assert evals.rouge(["the cats sat 日"], ["the cat sat 日"])["rouge1"] == pytest.approx(1.0)


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
    assert evals.token_f1(["x"], [""]) == 0.0


def test_token_f1_follows_squad_v1_1_when_both_sides_normalise_to_nothing():
    # evaluate-v1.1.py: no common token -> F1 0, even for two empty answers (v2.0 would give 1)
    got = [evals.token_f1([p], [r]) for p, r in (("", ""), ("The!", "a"), (" ", "an ."))]
    assert got == [0.0, 0.0, 0.0], got
    assert evals.exact_match([""], [""]) == 1.0  # v1.1's exact match compares the normalised strings


def test_bertscore_paraphrase_beats_unrelated():
    out = evals.bertscore(["A cat is sitting on the mat.", "Stock prices fell sharply today."],
                          ["The cat sat on the mat.", "The cat sat on the mat."])
    assert out["per_pair_f1"][0] > 0.8 and out["per_pair_f1"][1] < 0.3, out["per_pair_f1"]
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
    for preds, refs in (([], ["a"]), (["a"], [])):  # one empty side is "empty", not a length mismatch
        with pytest.raises(ValueError, match=f"Empty input: got {len(preds)} predictions and {len(refs)} references"):
            fn(preds, refs)
    with pytest.raises(ValueError, match="2 vs 1"):
        fn(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="index 1"):
        fn(["a", 3], ["a", "b"])


@pytest.mark.parametrize("fn", [evals.bleu, evals.rouge, evals.meteor, evals.exact_match, evals.token_f1,
                                evals.bertscore])
def test_a_bare_string_is_rejected_not_scored_per_character(fn):
    # before: bleu("the cat sat", "the cat sat") scored 11 one-character segments (0.0), exact_match gave 1.0
    for preds, refs in (("the cat sat", "the cat sat"), ("the cat sat", ["the cat sat"]),
                        (["the cat sat"], "the cat sat")):
        with pytest.raises(TypeError, match=r"bare string .*wrap it"):
            fn(preds, refs)


def test_check_texts_rejects_an_empty_list_and_non_strings():
    from coursekit.evals.checks import check_texts

    with pytest.raises(ValueError, match="Empty input"):
        check_texts([])
    with pytest.raises(TypeError, match="text at index 1 is int, not a string"):
        check_texts(["a", 3])
    assert check_texts(["a", "b"]) is None, "two strings are valid texts"


def test_perplexity_rejects_a_bare_string(tiny_llama):
    with pytest.raises(TypeError, match="bare string"):
        evals.perplexity(*tiny_llama, "def add(a, b): return a + b")


@pytest.mark.parametrize("fn", [evals.rouge, evals.meteor, evals.exact_match, evals.token_f1])
def test_multi_reference_scores_the_best_reference(fn):
    pred, good, bad = "the cat sat on the mat", "the cat sat on a mat", "stock prices fell"
    best = fn([pred], [good])
    for refs in ([[good, bad]], [[bad, good]], [(bad, good)]):
        got = fn([pred], refs)
        assert got == best, (refs, got, best)
    assert fn([pred], [[bad]]) != best, fn([pred], [[bad]])


def test_rouge_multi_reference_equals_score_multi():
    rng = random.Random(3)
    scorer = rouge_scorer.RougeScorer(list(evals.ROUGE_KEYS), use_stemmer=True)
    preds = [random_sentence(rng) for _ in range(8)]
    refs = [[random_sentence(rng) for _ in range(rng.randint(1, 3))] for _ in range(8)]
    want = [scorer.score_multi(r, p) for p, r in zip(preds, refs)]
    got = evals.rouge(preds, refs)
    for k in evals.ROUGE_KEYS:
        expected = sum(w[k].fmeasure for w in want) / 8
        assert got[k] == pytest.approx(expected, abs=1e-12), (k, got[k], expected)


def test_token_f1_and_exact_match_take_the_max_over_gold_answers():
    preds = ["Denver Broncos", "in 1990", "blue"]
    refs = [["Broncos", "Denver Broncos", "The Denver Broncos"], ["1990", "the year 1991"], ["red", "green"]]
    assert evals.exact_match(preds, refs) == pytest.approx(1 / 3), evals.exact_match(preds, refs)
    f1 = evals.token_f1(preds, refs)  # 1.0, max(2/3, 0) (= P 1/2, R 1), 0
    assert f1 == pytest.approx((1 + 2 / 3 + 0) / 3, abs=1e-12), f1


def test_rouge_refuses_a_pair_past_the_lcs_limit_before_the_work(monkeypatch):
    monkeypatch.setattr(evals.rouge_metric, "MAX_LCS_CELLS", 100)
    assert evals.rouge(["w " * 10], ["w " * 10])["rougeL"] == 1.0  # 100 cells: at the limit
    with pytest.raises(ValueError, match=r"11 × 10 tokens = 110 LCS cells, over MAX_LCS_CELLS=100.*split the texts"):
        evals.rouge(["w " * 10], [["ok", "w " * 11]])
    # the message prices the limit at ~50 bytes a cell
    monkeypatch.setattr(evals.rouge_metric, "MAX_LCS_CELLS", 10**8)
    with pytest.raises(ValueError, match=r"MAX_LCS_CELLS=100000000 \(~5\.0 GB\)"):
        evals.rouge(["w " * 10_001], ["w " * 10_000])


def test_rouge_default_limit_refuses_5mb_texts_quickly():
    import time

    big = "lorem ipsum dolor sit amet " * 200_000  # ~5 MB, 1e6 tokens: a 1e12-cell table before
    start = time.perf_counter()
    with pytest.raises(ValueError, match="MAX_LCS_CELLS"):
        evals.rouge([big], [big])
    assert time.perf_counter() - start < 20, "the guard must run before the LCS table is built"


def test_bleu_uses_the_closest_reference_length_not_the_first():
    # hypothesis of 6 tokens; references of 3 and 6 tokens: the closest (6) gives no brevity penalty
    preds, refs = ["a b c d e f"], [["a b c", "a b c d e f"]]
    st = evals.bleu_stats(preds, refs)
    assert (st.sys_len, st.ref_len) == (6, 6), st
    preds, refs = ["a b c"], [["a b c d e f g h", "a b c d"]]  # closest is the second (4), not the first (8)
    st = evals.bleu_stats(preds, refs)
    assert st.ref_len == 4, st
    want = sacrebleu.corpus_bleu(preds, [["a b c d e f g h"], ["a b c d"]]).score
    assert evals.bleu(preds, refs) == pytest.approx(want, abs=1e-9), (evals.bleu(preds, refs), want)


def test_bleu_strips_each_segment_as_sacrebleu():
    preds, refs = ["the well - known dog -\n"], ["the well - known dog -"]
    want = sacrebleu.corpus_bleu(preds, [refs]).score
    assert want == pytest.approx(100.0), want
    assert evals.bleu(preds, refs) == pytest.approx(want, abs=1e-9), evals.bleu(preds, refs)


@pytest.mark.parametrize("smooth,value", [("exp", None), ("none", None), ("floor", None), ("floor", 0.5),
                                          ("add-k", None), ("add-k", 2.0)])
def test_bleu_smoothing_methods_equal_sacrebleu(smooth, value):
    rng = random.Random(4)
    for _ in range(15):
        n = rng.randint(1, 4)
        preds = [random_sentence(rng, rng.randint(1, 6)) for _ in range(n)]
        refs = [random_sentence(rng) for _ in range(n)]
        ours = evals.bleu(preds, refs, smooth=smooth, smooth_value=value)
        theirs = sacrebleu.corpus_bleu(preds, [refs], smooth_method=smooth, smooth_value=value).score
        assert ours == pytest.approx(theirs, abs=1e-9), (smooth, value, preds, refs, ours, theirs)


def test_bleu_decodes_html_entities_as_sacrebleu():
    # 13a turns &quot; &amp; &lt; &gt; into their characters before splitting, and leaves the characters alone
    preds = ['he said "a &amp; b" &lt;ok&gt;', 'x & y < z "q"']
    refs = ['he said &quot;a & b&quot; <ok>', 'x &amp; y &lt; z &quot;q&quot;']
    want = sacrebleu.corpus_bleu(preds, [refs]).score
    assert want == pytest.approx(100.0), want
    assert evals.bleu(preds, refs) == pytest.approx(want, abs=1e-9), evals.bleu(preds, refs)
    assert evals.tokenize_13a('"a &amp; b"') == ['"', 'a', '&', 'b', '"'], evals.tokenize_13a('"a &amp; b"')


@pytest.mark.parametrize("max_n", [1, 2, 3])
def test_bleu_of_lower_orders_equals_sacrebleu(max_n):
    from sacrebleu.metrics import BLEU

    rng = random.Random(5)
    preds = [random_sentence(rng) for _ in range(6)]
    refs = [random_sentence(rng) for _ in range(6)]
    want = BLEU(max_ngram_order=max_n).corpus_score(preds, [refs]).score
    got = evals.bleu(preds, refs, max_n=max_n)
    assert got == pytest.approx(want, abs=1e-9), (max_n, got, want)


def test_bleu_checks_its_smoothing_before_the_work(monkeypatch):
    from coursekit.evals import bleu_metric

    def no_work(*args, **kwargs):
        raise AssertionError("bleu_stats ran before the smoothing was checked")

    monkeypatch.setattr(bleu_metric, "bleu_stats", no_work)
    with pytest.raises(ValueError, match="smooth='add-one': unknown smoothing"):
        evals.bleu(["a b"], ["a b"], smooth="add-one")


@pytest.mark.parametrize("kwargs,match", [({"smooth": "add-one"}, "smooth='add-one': unknown smoothing"),
                                          ({"smooth": "exp", "smooth_value": 0.1}, "takes no value"),
                                          ({"smooth": "floor", "smooth_value": -1}, "must be >= 0"),
                                          ({"max_n": 0}, "max_n=0")])
def test_bleu_rejects_what_it_does_not_support(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evals.bleu(["a b"], ["a b"], **kwargs)


def _tiny_lm(kind, context):
    """A tiny random causal LM whose config says it knows only ``context`` positions."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from coursekit.assets import train_tiny_tokenizer

    tok = train_tiny_tokenizer(300)
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=context))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=context))
    return model.eval(), tok


LONG_TEXT = "the cat sat on the mat and the dog ran to the house by the big red tree " * 3


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_perplexity_windows_follow_the_models_context(kind):
    # before: GPT-2 raised an opaque IndexError past n_positions; a RoPE model silently scored past its context
    model, tok = _tiny_lm(kind, 16)
    ids = torch.tensor([tok(LONG_TEXT)["input_ids"]])
    assert ids.shape[1] > 40, ids.shape
    got = evals.perplexity(model, tok, [LONG_TEXT])
    total, count = evals.lm._strided_nll(model, ids, 16, 8)  # the window is the context, the stride half of it
    assert count == ids.shape[1] - 1, (count, ids.shape)
    assert got == pytest.approx(math.exp(total / count), rel=1e-6), (got, math.exp(total / count))
    seen = []
    model.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(args[0].shape[1] if args else
                                                                           kwargs["input_ids"].shape[1]),
                                    with_kwargs=True)
    evals.perplexity(model, tok, [LONG_TEXT, "the cat", LONG_TEXT], batch_size=2)
    assert seen and max(seen) <= 16, seen  # no forward pass ever sees more positions than the model has


def test_perplexity_of_a_short_text_is_unchanged_by_the_context_guard():
    model, tok = _tiny_lm("gpt2", 16)
    text = "the cat sat on the mat"
    ids = tok(text, return_tensors="pt")["input_ids"]
    assert ids.shape[1] <= 16, ids.shape
    with torch.no_grad():
        want = math.exp(model(ids, labels=ids).loss.item())
    assert evals.perplexity(model, tok, [text]) == pytest.approx(want, rel=1e-5)


def test_perplexity_skips_texts_without_a_target_and_names_the_fix_when_none_has_one(tiny_llama):
    model, tok = tiny_llama
    text = "def add(a, b): return a + b"
    base = evals.perplexity(model, tok, [text])
    for stride in (None, 4):
        assert evals.perplexity(model, tok, ["", text], stride=stride, max_length=8 if stride else None) == \
            pytest.approx(evals.perplexity(model, tok, [text], stride=stride, max_length=8 if stride else None),
                          rel=1e-9)
        with pytest.raises(ValueError, match="fewer than 2 tokens.*pass texts of at least two"):
            evals.perplexity(model, tok, [""], stride=stride, max_length=8 if stride else None)
    assert math.isfinite(base)


@pytest.mark.parametrize("kwargs,match", [({"stride": 0}, "stride=0: must be a positive"),
                                          ({"stride": 20, "max_length": 8}, r"stride=20: must be in 1..max_length \(8\)"),
                                          ({"max_length": 17}, "max_length=17: over the model's context of 16"),
                                          ({"batch_size": 0}, "batch_size=0")])
def test_perplexity_bad_windows_name_the_fix_before_any_forward_pass(kwargs, match):
    model, tok = _tiny_lm("gpt2", 16)
    with pytest.raises(ValueError, match=match):
        evals.perplexity(model, tok, [LONG_TEXT], **kwargs)
