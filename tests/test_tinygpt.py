import numpy as np
import pytest

from coursekit.runtime import seed_everything
from coursekit.tinygpt import (
    CharVocab,
    TrainLog,
    accuracy,
    attention_weights,
    build_tinygpt,
    expected_params,
    fit,
    generate,
    last_logits,
    param_table,
    sliding_windows,
)

FIRST_SIZES = dict(vocab_size=5, seq_len=4, d_model=16, num_heads=2, d_ff=32)  # lesson 00: the course's first model
TEXT = "hello hello"


@pytest.fixture(scope="module")
def first_model():
    seed_everything(0)
    return build_tinygpt(**FIRST_SIZES)


@pytest.fixture(scope="module")
def trained():
    seed_everything(0)
    model = build_tinygpt(**FIRST_SIZES)
    vocab = CharVocab(TEXT)
    X, y = sliding_windows(vocab.encode(TEXT), 4)
    losses = fit(model, X, y, max_epochs=300).losses
    return model, vocab, X, y, losses


def test_first_model_parameter_table(first_model):
    table = param_table(first_model)
    assert table == {
        "token embedding": 80,
        "position embedding": 64,
        "attention": 1088,
        "FFN": 1072,
        "LayerNorms": 64,
        "LM head": 85,
        "total": 2453,
    }
    assert first_model.count_params() == 2453
    assert table == expected_params(**FIRST_SIZES)


def test_other_size_matches_formula():
    sizes = dict(vocab_size=7, seq_len=6, d_model=24, num_heads=3, d_ff=40)
    model = build_tinygpt(**sizes)
    # 7*24 + 6*24 + 4*(24*24+24) + (24*40+40 + 40*24+24) + 2*2*24 + (24*7+7)
    assert model.count_params() == 168 + 144 + 2400 + 1984 + 96 + 175 == 4967
    assert param_table(model) == expected_params(**sizes)


def test_output_is_one_finite_prediction_per_position_from_its_own_row(first_model):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=(3, 4)).astype("int32")
    logits = np.asarray(first_model(ids))
    assert logits.shape == (3, 4, 5), logits.shape
    assert np.isfinite(logits).all(), logits
    for i in range(3):  # each row's logits come from that row alone, not from its batch-mates
        alone = np.asarray(first_model(ids[i : i + 1]))[0]
        np.testing.assert_allclose(logits[i], alone, atol=1e-5, err_msg=f"row {i} depends on the batch")
    first = np.asarray(first_model(np.zeros((1, 4), dtype="int32")))[0, 0]
    other = np.asarray(first_model(np.ones((1, 4), dtype="int32")))[0, 0]
    assert np.abs(first - other).max() > 1e-3, f"position 0 ignores its token: {first} vs {other}"


def _silence_attention(model):
    """Zero every attention weight: q = k = v = 0 and output bias 0, so attention adds exactly 0."""
    attn = model.get_layer("attn")
    attn.set_weights([np.zeros_like(w) for w in attn.get_weights()])


def test_attention_output_is_added_to_its_input():
    """Post-LN block: h1 = ln1(x + attn(x)). With attention silenced that is ln1(x): the embeddings still reach
    the head through the residual, so the logits are exactly the attention-free formula and depend on the token."""
    seed_everything(0)
    model = build_tinygpt(**FIRST_SIZES)
    _silence_attention(model)
    ids = np.array([[0, 1, 2, 3], [4, 4, 1, 0]], dtype="int32")
    layer = model.get_layer
    x = np.asarray(layer("tok_emb")(ids)) + np.asarray(layer("pos_emb")(ids))  # (B, T, d_model)
    h1 = np.asarray(layer("ln1")(x))  # x + 0
    h2 = np.asarray(layer("ln2")(h1 + np.asarray(layer("ffn_down")(layer("ffn_up")(h1)))))
    want = np.asarray(layer("lm_head")(h2))
    got = np.asarray(model(ids))
    np.testing.assert_allclose(got, want, atol=1e-5, err_msg="the block is not ln1(x + attn(x)) then ln2(h + ffn(h))")
    spread = np.abs(got[0, 1] - got[1, 1]).max()  # position 1, tokens 1 and 4
    assert spread > 1e-2, f"with attention silenced, the logits no longer depend on the token ({spread:.2e})"


def test_causal_mask(first_model):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(2, 4)).astype("int32")
    b = a.copy()
    b[:, -1] = (b[:, -1] + 1) % 5  # change only the last token
    la, lb = np.asarray(first_model(a)), np.asarray(first_model(b))
    np.testing.assert_allclose(la[:, :-1], lb[:, :-1], atol=1e-6)  # earlier positions: unchanged
    assert not np.allclose(la[:, -1], lb[:, -1])


def test_vocab_and_windows():
    vocab = CharVocab(TEXT)
    assert vocab.chars == [" ", "e", "h", "l", "o"] and len(vocab) == 5
    assert vocab.decode(vocab.encode(TEXT)) == TEXT
    X, y = sliding_windows(vocab.encode(TEXT), 4)
    assert X.shape == (7, 4) and y.shape == (7,)
    pairs = [(vocab.decode(x), vocab.decode([t])) for x, t in zip(X, y)]
    assert pairs == [("hell", "o"), ("ello", " "), ("llo ", "h"), ("lo h", "e"),
                     ("o he", "l"), (" hel", "l"), ("hell", "o")]


def test_training_memorises_and_generates(trained):
    model, vocab, X, y, losses = trained
    assert accuracy(model, X, y) == 1.0
    assert 1 <= len(losses) <= 300 and losses[-1] < losses[0]
    assert generate(model, vocab, "hell", 13) == "hello hello hello"
    assert generate(model, vocab, "o he", 8) == "o hello hell"


def test_fit_measures_loss_and_accuracy_on_the_same_weights():
    seed_everything(0)
    model = build_tinygpt(**FIRST_SIZES)
    X, y = sliding_windows(CharVocab(TEXT).encode(TEXT), 4)
    logits = last_logits(model, X)  # (7, 5), the untrained model: what epoch 1 starts from
    loss_before = float(np.mean(np.log(np.exp(logits).sum(-1)) - logits[np.arange(len(y)), y]))
    acc_before = accuracy(model, X, y)
    log = fit(model, X, y, max_epochs=300, min_epochs=40)
    assert len(log.losses) == len(log.accuracies) >= 40
    assert log.accuracies[0] == acc_before < 1.0 and abs(log.losses[0] - loss_before) < 1e-4
    m = log.first_memorised
    assert m is not None and log.accuracies[m] == 1.0 and all(a < 1.0 for a in log.accuracies[:m])
    assert log.losses[-1] < log.losses[m]  # still falling after every target is right
    assert TrainLog(losses=[1.0, 0.5], accuracies=[0.5, 0.9]).first_memorised is None


def test_attention_weights(trained):
    model, _, X, _, _ = trained
    w = attention_weights(model, X[:2])
    assert w.shape == (2, 2, 4, 4)  # (B, heads, T, T)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)  # each row is a distribution
    assert np.all(np.triu(w, k=1) == 0)  # nothing attends to the future


def test_bad_inputs_are_clear():
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        build_tinygpt(5, 4, 16, 3, 32)
    with pytest.raises(ValueError, match="positive integers"):
        build_tinygpt(5, 0, 16, 2, 32)
    with pytest.raises(ValueError, match="at least seq_len \\+ 1"):
        sliding_windows(CharVocab("hell").encode("hell"), 4)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        CharVocab(TEXT).encode("help")


def test_short_prompt_and_unreachable_training(trained):
    model, vocab, X, y, _ = trained
    with pytest.raises(ValueError, match="at least seq_len=4"):
        generate(model, vocab, "he", 3)
    seed_everything(0)
    fresh = build_tinygpt(**FIRST_SIZES)
    with pytest.raises(RuntimeError, match="after 1 epochs"):
        fit(fresh, X, y, max_epochs=1, learning_rate=1e-6)
