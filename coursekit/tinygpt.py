"""TinyGPT: a one-block, character-level GPT in Keras 3 (TensorFlow backend).

The first model of the course: vocabulary {' ', 'e', 'h', 'l', 'o'}, 4-token
context, width 16, 2 heads, FFN 16→32→16 — 2,453 parameters in all::

    >>> model = build_tinygpt(vocab_size=5, seq_len=4, d_model=16, num_heads=2, d_ff=32)
    >>> param_table(model)["total"]
    2453
    >>> vocab = CharVocab("hello hello")
    >>> X, y = sliding_windows(vocab.encode("hello hello"), seq_len=4)
    >>> X.shape, y.shape
    ((7, 4), (7,))
    >>> log = fit(model, X, y)
    >>> generate(model, vocab, "hell", 8)
    'hello hello '

Shapes: B = batch, T = seq_len (positions), V = vocabulary size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from coursekit.quiet import tensorflow_startup  # noqa: E402

with tensorflow_startup():  # TensorFlow's harmless C++ start-up lines (see coursekit.quiet) are dropped, no others
    import keras
    from keras import ops

# Parameter groups of the table, and the layers (by name) that make up each.
GROUPS: dict[str, tuple[str, ...]] = {
    "token embedding": ("tok_emb",),
    "position embedding": ("pos_emb",),
    "attention": ("attn",),
    "FFN": ("ffn_up", "ffn_down"),
    "LayerNorms": ("ln1", "ln2"),
    "LM head": ("lm_head",),
}


def _emb_init() -> keras.initializers.Initializer:
    # N(0, 1), like PyTorch's nn.Embedding: with post-LN, Keras's default
    # uniform(-0.05, 0.05) makes attention's inputs so small that its weights
    # stay near-uniform, and the heatmap shows nothing.
    return keras.initializers.RandomNormal(stddev=1.0)


class PositionEmbedding(keras.layers.Layer):
    """A learned vector per position: token ids (B, T) -> (1, T, d_model)."""

    def __init__(self, seq_len: int, d_model: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seq_len, self.d_model = seq_len, d_model

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.embeddings = self.add_weight(
            shape=(self.seq_len, self.d_model), initializer=_emb_init(), name="embeddings"
        )

    def call(self, ids: Any) -> Any:  # ids (B, T) → the (1, T, d_model) position table
        T = ops.shape(ids)[1]
        return self.embeddings[None, :T, :]  # (1, T, d_model), broadcasts over the batch

    def get_config(self) -> dict:
        return {**super().get_config(), "seq_len": self.seq_len, "d_model": self.d_model}


def expected_params(vocab_size: int, seq_len: int, d_model: int, num_heads: int, d_ff: int) -> dict[str, int]:
    """The parameter count of each group, from the formulas alone (no model built).

    >>> expected_params(5, 4, 16, 2, 32)["total"]
    2453
    """
    head_dim = d_model // num_heads
    groups = {
        "token embedding": vocab_size * d_model,
        "position embedding": seq_len * d_model,
        # Q, K, V: d_model -> heads*head_dim, each with bias; output: heads*head_dim -> d_model, with bias.
        "attention": 3 * (d_model * num_heads * head_dim + num_heads * head_dim)
        + (num_heads * head_dim * d_model + d_model),
        "FFN": (d_model * d_ff + d_ff) + (d_ff * d_model + d_model),
        "LayerNorms": 2 * (2 * d_model),  # gamma and beta, twice
        "LM head": d_model * vocab_size + vocab_size,
    }
    return {**groups, "total": sum(groups.values())}


def _check_sizes(vocab_size: int, seq_len: int, d_model: int, num_heads: int, d_ff: int) -> None:
    sizes = dict(vocab_size=vocab_size, seq_len=seq_len, d_model=d_model, num_heads=num_heads, d_ff=d_ff)
    bad = [f"{k}={v}" for k, v in sizes.items() if not isinstance(v, int) or v < 1]
    if bad:
        raise ValueError(f"All sizes must be positive integers; got {', '.join(bad)}.")
    if d_model % num_heads:
        raise ValueError(
            f"d_model={d_model} is not divisible by num_heads={num_heads}: "
            f"each head gets d_model // num_heads dimensions, so pick e.g. num_heads in "
            f"{[h for h in range(1, d_model + 1) if d_model % h == 0]}."
        )


def block_forward(x: Any, model_or_layers: Any, *, return_scores: bool = False) -> Any:
    """Run TinyGPT's forward pass (embeddings, the one post-LN block, LM head) on token ids ``x`` (B, T).

    ``model_or_layers`` is a built TinyGPT (layers found by name) or a dict of layers or plain functions under
    the same names (``tok_emb``, ``pos_emb``, ``attn``, ``ln1``, ``ffn_up``, ``ffn_down``, ``ln2``, ``lm_head``).
    """
    get = model_or_layers.get_layer if hasattr(model_or_layers, "get_layer") else model_or_layers.__getitem__
    h = get("tok_emb")(x) + get("pos_emb")(x)  # (B, T, d_model)
    attn = get("attn")(h, h, use_causal_mask=True, return_attention_scores=return_scores)
    a, scores = attn if return_scores else (attn, None)  # a: (B, T, d_model), scores: (B, heads, T, T)
    h = get("ln1")(h + a)  # (B, T, d_model), post-LN residual
    f = get("ffn_down")(get("ffn_up")(h))  # (B, T, d_ff) -> (B, T, d_model)
    h = get("ln2")(h + f)  # (B, T, d_model)
    logits = get("lm_head")(h)  # (B, T, V)
    return (logits, scores) if return_scores else logits


def build_tinygpt(vocab_size: int, seq_len: int, d_model: int, num_heads: int, d_ff: int) -> keras.Model:
    """One GPT block: embeddings, causal self-attention, FFN, post-LN, LM head.

    Input: token ids (B, seq_len). Output: logits (B, seq_len, vocab_size), one
    next-token prediction per position.

    >>> build_tinygpt(5, 4, 16, 2, 32).count_params()
    2453
    """
    _check_sizes(vocab_size, seq_len, d_model, num_heads, d_ff)
    layers = {
        "tok_emb": keras.layers.Embedding(vocab_size, d_model, embeddings_initializer=_emb_init(), name="tok_emb"),
        "pos_emb": PositionEmbedding(seq_len, d_model, name="pos_emb"),
        "attn": keras.layers.MultiHeadAttention(num_heads, key_dim=d_model // num_heads, name="attn"),
        "ln1": keras.layers.LayerNormalization(name="ln1"),
        "ffn_up": keras.layers.Dense(d_ff, activation="gelu", name="ffn_up"),
        "ffn_down": keras.layers.Dense(d_model, name="ffn_down"),
        "ln2": keras.layers.LayerNormalization(name="ln2"),
        "lm_head": keras.layers.Dense(vocab_size, name="lm_head"),
    }
    ids = keras.Input(shape=(seq_len,), dtype="int32", name="ids")  # (B, T)
    return keras.Model(ids, block_forward(ids, layers), name="tinygpt")


def param_table(model: keras.Model) -> dict[str, int]:
    """Parameters per group, counted from the model's own layers, plus ``total``.

    >>> param_table(build_tinygpt(5, 4, 16, 2, 32))["attention"]
    1088
    """
    table = {g: sum(model.get_layer(n).count_params() for n in names) for g, names in GROUPS.items()}
    table["total"] = sum(table.values())
    if table["total"] != model.count_params():
        raise ValueError(f"Groups sum to {table['total']} but the model has {model.count_params()} parameters.")
    return table


class CharVocab:
    """Character vocabulary: the sorted distinct characters of a text.

    >>> v = CharVocab("hello hello")
    >>> v.chars, v.encode("hole").tolist(), v.decode([2, 1])
    ([' ', 'e', 'h', 'l', 'o'], [2, 4, 3, 1], 'he')
    """

    def __init__(self, text: str) -> None:
        if not text:
            raise ValueError("CharVocab needs a non-empty text.")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(f"Characters {unknown} are not in the vocabulary {self.chars}.")
        return np.array([self.index[c] for c in text], dtype="int32")

    def decode(self, ids: Sequence[int] | np.ndarray) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def sliding_windows(ids: Sequence[int] | np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``seq_len`` tokens (X), and the token right after it (y).

    A text of N tokens gives N - seq_len samples. The target is the *next*
    token after the window, predicted from the window's last position, which
    sees the whole window. We do not train every position (the usual GPT
    recipe) because here per-position targets conflict: position 0 sees one
    character only, and the 'l' at position 0 of "llo " is followed by 'l'
    while the 'l' at position 0 of "lo h" is followed by 'o' — no model can
    get both right, so 100% training accuracy would be impossible.

    >>> X, y = sliding_windows(CharVocab("hello hello").encode("hello hello"), 4)
    >>> len(X), X[0].tolist(), int(y[0])   # "hell" -> "o"
    (7, [2, 1, 3, 3], 4)
    """
    ids = np.asarray(ids, dtype="int32")
    if seq_len < 1:
        raise ValueError(f"seq_len must be ≥ 1, got {seq_len}.")
    if len(ids) < seq_len + 1:
        raise ValueError(
            f"Need at least seq_len + 1 = {seq_len + 1} tokens for one (window, next token) "
            f"sample; got {len(ids)}."
        )
    n = len(ids) - seq_len
    X = np.stack([ids[i : i + seq_len] for i in range(n)])  # (N, T)
    y = ids[seq_len:]  # (N,), y[i] follows X[i]
    return X, y


def last_logits(model: keras.Model, X: np.ndarray) -> np.ndarray:
    """Logits for the token after each window: (B, T) ids -> (B, V)."""
    return ops.convert_to_numpy(model(np.asarray(X, dtype="int32"), training=False))[:, -1, :]


def accuracy(model: keras.Model, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of windows whose next token is the model's top (greedy) prediction."""
    return float(np.mean(last_logits(model, X).argmax(-1) == np.asarray(y)))


class _StopWhenMemorised(keras.callbacks.Callback):
    def __init__(self, gpt: keras.Model, X, y, min_epochs: int):
        super().__init__()
        self.gpt, self.X, self.y, self.min_epochs = gpt, X, y, min_epochs
        # accuracies[k]: the weights epoch k starts from (its loss is measured on them); the last: the final weights
        self.accuracies: list[float] = []

    def on_train_begin(self, logs=None):
        self.accuracies.append(accuracy(self.gpt, self.X, self.y))

    def on_epoch_end(self, epoch, logs=None):  # one measurement per epoch: epoch k's end is epoch k + 1's start
        self.accuracies.append(accuracy(self.gpt, self.X, self.y))
        if epoch + 1 >= self.min_epochs and self.accuracies[-1] == 1.0:
            self.model.stop_training = True


@dataclass
class TrainLog:
    """What ``fit`` measured, one entry per epoch (index i = epoch i + 1).

    ``losses[i]`` and ``accuracies[i]`` are measured on the same weights: the ones epoch i + 1
    starts from, before its update (Keras reports a one-batch epoch's loss from its forward pass).
    """

    losses: list[float]
    accuracies: list[float]

    @property
    def first_memorised(self) -> int | None:
        """Index of the first epoch whose weights predict every target (accuracy 1.0); None if none did.

        Accuracies are taken at the *start* of each epoch, so a run that stops at the very epoch that
        memorised (``min_epochs`` already passed) logs no memorised epoch: raise ``min_epochs`` to see it.

        >>> TrainLog(losses=[2.0, 1.0, 0.5, 0.2], accuracies=[0.2, 1.0, 0.8, 1.0]).first_memorised
        1
        """
        return self.accuracies.index(1.0) if 1.0 in self.accuracies else None


def fit(
    model: keras.Model, X: np.ndarray, y: np.ndarray, *, max_epochs: int = 500, min_epochs: int = 0, learning_rate: float = 1e-2
) -> TrainLog:
    """Train on the windows until every target is predicted; return the loss and training accuracy per epoch.

    Only the last position's logits are trained (see ``sliding_windows``).
    ``min_epochs`` keeps training a while even once memorised (lower loss).
    Raises a RuntimeError if accuracy 1.0 is not reached in ``max_epochs``.

    >>> model = build_tinygpt(5, 4, 16, 2, 32)
    >>> X, y = sliding_windows(CharVocab("hello hello").encode("hello hello"), 4)
    >>> log = fit(model, X, y, max_epochs=300, min_epochs=40)
    >>> accuracy(model, X, y), log.losses[-1] < log.losses[0]
    (1.0, True)
    >>> len(log.losses) == len(log.accuracies), log.first_memorised is not None
    (True, True)
    """
    if not 0 <= min_epochs <= max_epochs or max_epochs < 1:
        raise ValueError(f"Need 0 ≤ min_epochs ≤ max_epochs and max_epochs ≥ 1; got {min_epochs}, {max_epochs}.")
    ids = keras.Input(shape=model.input_shape[1:], dtype="int32")
    trainer = keras.Model(ids, model(ids)[:, -1, :])  # (B, V): shares the weights of `model`
    trainer.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    stopper = _StopWhenMemorised(model, X, y, min_epochs)
    hist = trainer.fit(
        np.asarray(X), np.asarray(y), batch_size=len(X), epochs=max_epochs, verbose=0,
        shuffle=False, callbacks=[stopper],
    )
    losses = [float(v) for v in hist.history["loss"]]
    acc = stopper.accuracies[-1]
    if acc < 1.0:
        raise RuntimeError(
            f"Training accuracy is {acc:.2f} after {max_epochs} epochs (final loss {losses[-1]:.3f}); "
            f"raise max_epochs or the learning rate."
        )
    return TrainLog(losses, stopper.accuracies[:-1])


def generate(model: keras.Model, vocab: CharVocab, prompt: str, n_chars: int) -> str:
    """Greedy generation: append the most likely next character ``n_chars`` times.

    The model sees the last ``seq_len`` characters, so the prompt needs at least that many.

    >>> vocab = CharVocab("hello hello")
    >>> text = generate(build_tinygpt(5, 4, 16, 2, 32), vocab, "hell", 8)   # untrained: any chars
    >>> text[:4], len(text)
    ('hell', 12)

    Trained with ``fit``, the same call gives ``'hello hello '`` (the
    module docstring runs it).
    """
    seq_len = model.input_shape[1]
    if len(prompt) < seq_len:
        raise ValueError(f"The prompt needs at least seq_len={seq_len} characters; got {prompt!r}.")
    ids = list(vocab.encode(prompt))
    for _ in range(n_chars):
        window = np.array([ids[-seq_len:]], dtype="int32")  # (1, T)
        ids.append(int(last_logits(model, window)[0].argmax()))
    return vocab.decode(ids)


def attention_weights(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Attention weights (B, heads, T, T) of ``model`` on token ids ``x`` (B, T).

    Row t of a head's (T, T) matrix says how much position t reads each
    position; the causal mask keeps everything above the diagonal at 0.

    >>> X, _ = sliding_windows(CharVocab("hello hello").encode("hello hello"), 4)
    >>> w = attention_weights(build_tinygpt(5, 4, 16, 2, 32), X[:1])
    >>> w.shape
    (1, 2, 4, 4)
    >>> bool(np.allclose(np.triu(w[0, 0], 1), 0)), bool(np.allclose(w.sum(-1), 1))  # causal; rows sum to 1
    (True, True)
    """
    # Run the model's own layers eagerly, asking attention for its weights too.
    # (A second functional keras.Model reusing the attention layer with
    # return_attention_scores=True fails in Keras 3.15: "not connected to inputs".)
    ids = ops.convert_to_tensor(np.asarray(x, dtype="int32"))  # (B, T)
    _, scores = block_forward(ids, model, return_scores=True)  # scores: (B, heads, T, T)
    return ops.convert_to_numpy(scores)
