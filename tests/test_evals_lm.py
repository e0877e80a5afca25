"""coursekit.evals.lm against by-hand computations: argument boundaries, model_context's fallbacks,
sliding-window edge cases and multiple-choice scoring. Tiny random models built in memory, offline."""

import math
from types import SimpleNamespace

import pytest
import torch

from coursekit.evals import lm

TEXT = "the cat sat on the mat and the dog ran " * 2  # about 50 tokens with the 300-token tokenizer


def _gpt2(context, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2,
                                      n_positions=context)).eval()


@pytest.fixture(scope="module")
def tok():
    from coursekit.assets import train_tiny_tokenizer

    return train_tiny_tokenizer(300)


@pytest.fixture(scope="module")
def model(tok):
    return _gpt2(64, tok)


class NoConfig(torch.nn.Module):
    """A model whose config names no context length (none at all), returning a ``(logits,)`` tuple."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return (self.inner(ids).logits,)


def _target_nll(model, ids, begin, t):
    """-log p(ids[t] | ids[begin:t]) in float64: one forward pass of exactly that context."""
    with torch.no_grad():
        logits = model(torch.tensor([ids[begin:t]])).logits[0, -1].double()
    return -torch.log_softmax(logits, -1)[ids[t]].item()


def _by_hand_ppl(model, encoded, window=None, stride=None):
    """HF's sliding-window recipe, target by target: a text that fits is scored whole; in a longer one,
    target t is scored once, in the first window (begin = k·stride) that holds it, with the context
    ids[begin:t]; with disjoint windows a window's first token has no context and is skipped."""
    total, count = 0.0, 0
    for ids in encoded:
        if len(ids) < 2:
            continue
        long = window is not None and len(ids) > window
        step = (stride or max(window // 2, 1)) if long else None
        for t in range(1, len(ids)):
            begin = 0
            if long:
                while begin + window <= t:
                    begin += step
                if begin == t:
                    continue
            total, count = total + _target_nll(model, ids, begin, t), count + 1
    return math.exp(total / count)


def _forward_lengths(model):
    """(batch, length) of every forward pass the model will see."""
    seen = []
    model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(tuple((args[0] if args else kwargs["input_ids"]).shape)),
        with_kwargs=True)
    return seen


# ---------------------------------------------------------------- model_context
@pytest.mark.parametrize("config,want", [
    ({"n_positions": 32}, 32),                              # GPT-2
    ({"max_position_embeddings": 64}, 64),                  # RoPE models
    ({"block_size": 16}, 16),                               # coursekit.gpt2
    ({"n_ctx": 8}, 8),
    ({"n_positions": 32, "max_position_embeddings": 64}, 32),  # the first name found wins
    ({"n_positions": None, "max_position_embeddings": 64}, 64),  # None: fall through to the next name
    ({"n_positions": 0, "block_size": 16}, 16),             # 0 is no context: fall through
    ({"n_positions": -1, "n_ctx": 8}, 8),
    ({"n_positions": "512", "n_ctx": 8}, 8),                # not an int
    ({"n_positions": 1}, 1),                                # the least positive value is taken
    ({"hidden_size": 32}, None),                            # names none
])
def test_model_context_falls_back_over_the_config_names(config, want):
    assert lm.model_context(SimpleNamespace(config=SimpleNamespace(**config))) == want


def test_model_context_of_models_without_a_config_and_of_coursekit_gpt2():
    assert lm.model_context(object()) is None
    assert lm.model_context(NoConfig(torch.nn.Linear(1, 1))) is None
    from coursekit.gpt2 import GPT2, GPT2Config

    assert lm.model_context(GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=32, block_size=24, vocab_size=100))) == 24


# ---------------------------------------------------------------- perplexity: windows against by-hand
@pytest.mark.parametrize("max_length,stride", [(2, None), (3, None), (2, 1), (8, 1), (8, 3), (5, 5), (16, None),
                                               (7, 6)])
def test_sliding_window_perplexity_equals_the_by_hand_recipe(model, tok, max_length, stride):
    # (2, None): default stride max(2 // 2, 1) = 1, every window 2 tokens; (8, 3): a last window of 2 tokens
    ids = tok(TEXT)["input_ids"]
    assert len(ids) > 40, len(ids)
    got = lm.perplexity(model, tok, [TEXT], stride=stride, max_length=max_length)
    want = _by_hand_ppl(model, [ids], max_length, stride)
    assert got == pytest.approx(want, rel=1e-5), (got, want)


def test_a_window_of_two_tokens_scores_each_target_after_its_previous_token(model, tok):
    ids = tok(TEXT)["input_ids"]
    nll = [_target_nll(model, ids, t - 1, t) for t in range(1, len(ids))]
    assert lm.perplexity(model, tok, [TEXT], max_length=2) == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-5)


def test_a_text_of_exactly_the_window_is_scored_whole_once_next_to_a_shorter_one(model, tok):
    a, b = "the cat sat on the mat and the dog ran", "the big red tree"
    n = len(tok(a)["input_ids"])
    m = _gpt2(64, tok)
    seen = _forward_lengths(m)
    got = lm.perplexity(m, tok, [a, b], max_length=n)
    assert seen == [(2, n)], seen  # one batched pass: the text that fits is not also slid over
    want = _by_hand_ppl(m, [tok(a)["input_ids"], tok(b)["input_ids"]])
    assert got == pytest.approx(want, rel=1e-5), (got, want)


def test_a_text_of_two_tokens_is_scored_and_one_of_one_token_is_skipped(model, tok):
    ids = tok("ab")["input_ids"]
    assert len(ids) == 2 and len(tok("x")["input_ids"]) == 1
    want = math.exp(_target_nll(model, ids, 0, 1))
    assert lm.perplexity(model, tok, ["ab"]) == pytest.approx(want, rel=1e-5)
    assert lm.perplexity(model, tok, ["x", "ab"]) == pytest.approx(want, rel=1e-5)


def test_a_model_without_a_context_scores_whole_texts_and_needs_max_length_for_a_stride(model, tok):
    bare = NoConfig(model)
    ids = tok(TEXT)["input_ids"]
    assert lm.perplexity(bare, tok, [TEXT, "ab"]) == pytest.approx(_by_hand_ppl(model, [ids, [68, 69]]), rel=1e-5)
    with pytest.raises(ValueError, match=r"stride=4: the model's config names no context length; pass max_length="):
        lm.perplexity(bare, tok, [TEXT], stride=4)
    got = lm.perplexity(bare, tok, [TEXT], stride=4, max_length=8)
    assert got == pytest.approx(_by_hand_ppl(model, [ids], 8, 4), rel=1e-5)


def test_the_default_batch_size_is_eight_texts_a_forward_pass(tok):
    m = _gpt2(64, tok)
    seen = _forward_lengths(m)
    lm.perplexity(m, tok, ["the cat sat"] * 9)
    assert [b for b, _ in seen] == [8, 1], seen


# ---------------------------------------------------------------- perplexity: argument boundaries
def test_the_least_valid_stride_and_window_are_accepted(tok):
    m = _gpt2(16, tok)
    ids = tok(TEXT)["input_ids"]
    assert lm.perplexity(m, tok, [TEXT], stride=1, max_length=8) == pytest.approx(_by_hand_ppl(m, [ids], 8, 1),
                                                                                   rel=1e-5)
    assert lm.perplexity(m, tok, [TEXT], stride=8, max_length=8) == pytest.approx(_by_hand_ppl(m, [ids], 8, 8),
                                                                                   rel=1e-5)  # stride == window
    # max_length == the model's context is the whole context
    assert lm.perplexity(m, tok, [TEXT], max_length=16) == pytest.approx(lm.perplexity(m, tok, [TEXT]), rel=1e-9)
    assert lm.perplexity(m, tok, ["the cat sat"], batch_size=1) > 0


@pytest.mark.parametrize("kwargs,match", [
    ({"stride": 9, "max_length": 8}, r"stride=9: must be in 1\.\.max_length \(8\); a larger step would skip tokens"),
    ({"stride": 17}, r"stride=17: must be in 1\.\.max_length \(16\); a larger step would skip tokens"),
    ({"max_length": 1}, r"max_length=1: a window needs at least 2 tokens"),
    ({"max_length": 0}, r"max_length=0: must be a positive number of tokens"),
    ({"stride": -1, "max_length": 8}, r"stride=-1: must be a positive number of tokens"),
    ({"batch_size": -1}, r"batch_size=-1: must be a positive number"),
])
def test_one_past_the_valid_values_is_refused_before_any_forward_pass(tok, kwargs, match):
    m = _gpt2(16, tok)
    seen = _forward_lengths(m)
    with pytest.raises(ValueError, match=match):
        lm.perplexity(m, tok, ["the cat sat", TEXT], **kwargs)  # a short text first: it would be scored first
    assert seen == [], seen


def test_strided_nll_refuses_a_stride_outside_one_to_max_length(model, tok):
    ids = torch.tensor([tok(TEXT)["input_ids"]])
    for stride in (0, 9):
        with pytest.raises(ValueError, match=rf"stride={stride}: must be in 1\.\.max_length \(8\)\."):
            lm._strided_nll(model, ids, 8, stride)
    total, count = lm._strided_nll(model, ids, 8, 1)  # stride 1: every target once, with 7 tokens of context
    assert count == ids.shape[1] - 1, count


# ---------------------------------------------------------------- multiple choice
def _by_hand_losses(model, ctx_ids, endings_ids):
    out = []
    for end_ids in endings_ids:
        ids = ctx_ids + end_ids
        out.append(sum(_target_nll(model, ids, 0, t) for t in range(len(ctx_ids), len(ids))) / len(end_ids))
    return out


ITEMS = [{"ctx": "the cat sat on", "endings": ["the mat", "a big red tree and the dog", "ran"], "label": 0},
         {"ctx": "the dog ran to the", "endings": ["house", "big red tree", "mat and the cat"], "label": "2"},
         {"ctx": "by the big", "endings": ["red tree", "cat sat on the mat"], "label": 1}]


def test_completion_losses_are_each_endings_mean_token_loss_after_the_context(model, tok):
    for item in ITEMS:
        want = _by_hand_losses(model, tok(item["ctx"])["input_ids"],
                               [tok(" " + e)["input_ids"] for e in item["endings"]])
        got = lm.completion_losses(model, tok, item["ctx"], item["endings"])
        assert got == pytest.approx(want, rel=1e-5), (item, got, want)


def test_completion_losses_put_the_tokenizers_bos_before_the_context_only(model):
    from tokenizers.processors import TemplateProcessing

    from coursekit.assets import train_tiny_tokenizer

    tok = train_tiny_tokenizer(300)  # a Llama-style tokenizer: add_special_tokens=True prepends the BOS
    tok.backend_tokenizer.post_processor = TemplateProcessing(single="<|endoftext|> $A",
                                                              special_tokens=[("<|endoftext|>", tok.bos_token_id)])
    bos = tok.bos_token_id
    assert tok("the cat")["input_ids"][0] == bos
    ctx, endings = "the cat sat on", ["the mat", "ran to the house"]
    want = _by_hand_losses(model, [bos] + tok(ctx, add_special_tokens=False)["input_ids"],
                           [tok(" " + e, add_special_tokens=False)["input_ids"] for e in endings])
    assert lm.completion_losses(model, tok, ctx, endings) == pytest.approx(want, rel=1e-5)


def test_completion_losses_with_a_tiktoken_encoding_and_coursekit_gpt2():
    from coursekit.assets import gpt2_encoding
    from coursekit.gpt2 import GPT2, GPT2Config

    enc = gpt2_encoding()
    torch.manual_seed(0)
    model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=enc.n_vocab)).eval()
    ctx, endings = "The sun rises in the", ["east", "middle of the night"]
    ctx_ids = enc.encode(ctx)
    want = []
    for e in endings:
        ids = ctx_ids + enc.encode(" " + e)
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids]))[0][0].double(), -1)
        want.append(-sum(logp[t - 1, ids[t]].item() for t in range(len(ctx_ids), len(ids))) / (len(ids) - len(ctx_ids)))
    assert lm.completion_losses(model, enc, ctx, endings) == pytest.approx(want, rel=1e-5)


def test_multiple_choice_picks_the_lowest_mean_loss_and_scores_against_the_labels(model, tok):
    want_preds = []
    for item in ITEMS:
        losses = _by_hand_losses(model, tok(item["ctx"])["input_ids"],
                                 [tok(" " + e)["input_ids"] for e in item["endings"]])
        want_preds.append(losses.index(min(losses)))
    want_acc = sum(p == int(it["label"]) for p, it in zip(want_preds, ITEMS)) / len(ITEMS)
    assert lm.multiple_choice_accuracy(model, tok, ITEMS) == {"accuracy": want_acc, "predictions": want_preds}
    one = lm.multiple_choice_accuracy(model, tok, ITEMS[:1])  # one item is enough
    assert one == {"accuracy": float(want_preds[0] == 0), "predictions": want_preds[:1]}


def test_multiple_choice_refuses_no_items_and_an_item_without_a_label(model, tok):
    with pytest.raises(ValueError, match="Empty input: need at least one multiple-choice item"):
        lm.multiple_choice_accuracy(model, tok, [])
    with pytest.raises(ValueError, match=r"item at index 1 lacks \['label'\]"):
        lm.multiple_choice_accuracy(model, tok, [ITEMS[0], {"ctx": "a", "endings": ["b"]}])


@pytest.mark.parametrize("kwargs", [{"stride": True}, {"max_length": True}, {"batch_size": True}])
def test_a_bool_is_not_a_number_of_tokens(model, tok, kwargs):
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))}=True: must be a positive number"):
        lm.perplexity(model, tok, [TEXT], **kwargs)


def test_an_empty_context_without_a_bos_is_refused_not_scored_on_the_last_token(model, tok):
    assert tok("")["input_ids"] == [], "this tokenizer adds no BOS, so an empty context has no token"
    with pytest.raises(ValueError, match=r"ctx='' encodes to no token, so the ending's first token has nothing"):
        lm.completion_losses(model, tok, "", ["the cat sat"])


@pytest.mark.parametrize("endings", [[], "the cat"])
def test_no_endings_or_a_bare_string_is_refused(model, tok, endings):
    with pytest.raises(ValueError, match=r"give a list of at least one ending"):
        lm.completion_losses(model, tok, "the dog", endings)


def test_context_plus_ending_past_the_models_context_is_refused_naming_the_ending(tok):
    short = _gpt2(32, tok)
    long_ctx = "the cat sat on the mat " * 2
    n_ctx = len(tok(long_ctx)["input_ids"])
    assert n_ctx < 30, n_ctx
    with pytest.raises(ValueError, match=r"ending 1: context \+ ending are \d+ tokens, over the model's context of 32"):
        lm.completion_losses(short, tok, long_ctx, ["ran", "and the dog ran and the cat sat on the mat"])


@pytest.mark.parametrize(("item", "match"), [
    ({"ctx": "the dog", "endings": [], "label": 0}, r"item at index 1: endings=\[\]: give a list"),
    ({"ctx": "the dog", "endings": ["ran", "sat"], "label": 2}, r"item at index 1: label 2 is not the index of one "
                                                                 r"of its 2 endings"),
    ({"ctx": "the dog", "endings": ["ran", "sat"], "label": ""}, r"label '' is not the index.*test split has label"),
    ({"ctx": "the dog", "endings": ["ran", "sat"], "label": True}, r"label True is not the index"),
    ({"ctx": "the dog", "endings": ["ran"], "label": 1}, r"label 1 is not the index of one of its 1 endings"),
    ({"ctx": "the dog", "endings": "ran", "label": 0}, r"item at index 1: endings='ran': give a list"),
    ({"ctx": "", "endings": ["ran", "sat"], "label": "1"}, r"item at index 1: ctx='' encodes to no token"),
])
def test_a_bad_item_is_named_by_index_before_it_is_scored(model, tok, item, match):
    good = {"ctx": "the cat", "endings": ["sat", "ran"], "label": "0"}
    with pytest.raises(ValueError, match=match):
        lm.multiple_choice_accuracy(model, tok, [good, item])


def test_context_plus_ending_of_exactly_the_models_context_is_scored(tok):
    ctx, ending = "the cat sat on the mat", "and the dog ran"
    total = len(tok(ctx)["input_ids"]) + len(tok(" " + ending, add_special_tokens=False)["input_ids"])
    (loss,) = lm.completion_losses(_gpt2(total, tok), tok, ctx, [ending])  # every position used, none past
    assert math.isfinite(loss), loss
    with pytest.raises(ValueError, match=f"are {total} tokens, over the model's context of {total - 1}"):
        lm.completion_losses(_gpt2(total - 1, tok), tok, ctx, [ending])
