"""Lesson 00's exercises (TinyGPT in Keras): one causal attention head, the post-LN block, the loss in nats,
and the entropy of a prediction.

Each check runs the student's NumPy answer on tiny fixed inputs and compares it with the library the lesson
explains: Keras's ``MultiHeadAttention`` (q1), the block of ``coursekit.tinygpt`` (q2), Keras's
``SparseCategoricalCrossentropy`` as ``tinygpt.fit`` trains with it (q3), the definition of entropy (q4).
A wrong answer that matches a known mistake is named (no causal mask, pre-LN, bits for nats...)::

    >>> q1.check(causal_attention)
    ✓ q1: correct. Equal to Keras's MultiHeadAttention (1 head, identity projections) on a (4, 8) example, to 1e-4.
    >>> q3.check(lambda logits, targets: cross_entropy(logits, targets) / math.log(2))
    ✗ q3: your loss is in bits (log base 2): 4.78 instead of 3.31 nats. The course measures it in nats (natural log), as Keras does.
      Hint: Take log_softmax = logits - log(sum(exp(logits))) per row, pick each row's target entry, negate, and average.
    >>> q4.grade(...).status
    'not attempted'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from coursekit import tinygpt
from coursekit.exercises import Exercise, Wrong, expect_close

__all__ = ["EXERCISES", "causal_attention", "cross_entropy", "post_ln_block", "q1", "q2", "q3", "q4"]

Array = np.ndarray
ATOL = 1e-4  # float32 (Keras) against float64 (NumPy): the difference is ~1e-6 on values of order 1


def _rng_arrays(*shapes: tuple[int, ...]) -> list[Array]:
    rng = np.random.default_rng(2024)  # a private generator: checking never moves the student's random state
    return [rng.normal(size=s) for s in shapes]


def _compare(got: Any, want: Array, what: str, mistakes: dict[str, Array]) -> None:
    """``Wrong`` unless ``got`` is an array of ``want``'s shape within ``ATOL``; names a known mistake it matches."""
    if got is None:
        raise Wrong(f"{what} returned None: compute the result and `return` it.")
    try:
        arr = np.asarray(got, dtype="float64")
    except (TypeError, ValueError):
        raise Wrong(f"{what} is a {type(got).__name__}, not an array of numbers.") from None
    if arr.shape != want.shape:
        raise Wrong(f"{what} has shape {arr.shape}; expected {want.shape}.")
    if np.allclose(arr, want, atol=ATOL, rtol=ATOL):
        return
    for mistake, value in mistakes.items():
        if np.allclose(arr, value, atol=ATOL, rtol=ATOL):
            raise Wrong(f"{what} matches {mistake}.")
    diff = np.abs(arr - want)
    at = tuple(int(i) for i in np.unravel_index(diff.argmax(), diff.shape))
    raise Wrong(f"{what} has the right shape {want.shape} but differs by up to {diff.max():.3g} "
                f"(at index {at}: {arr[at]:.4g} against {want[at]:.4g}).")


# ---------------------------------------------------------------- q1: one causal attention head
def causal_attention(q: Array, k: Array, v: Array) -> Array:
    T, d = q.shape                                    # q, k, v: (T, d), one row per position
    scores = q @ k.T / np.sqrt(d)                     # (T, T): row t = how well query t matches each key
    future = np.triu(np.ones((T, T), dtype=bool), 1)  # True above the diagonal: key j > query t
    scores = np.where(future, -np.inf, scores)        # the future gets weight exp(-inf) = 0
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = weights / weights.sum(axis=-1, keepdims=True)  # softmax over the keys: each row sums to 1
    return weights @ v                                # (T, d): a weighted average of the values


def _softmax(s: Array, axis: int = -1) -> Array:
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _attention_variant(q: Array, k: Array, v: Array, scale: bool = True, mask: str = "future",
                       axis: int = -1) -> Array:
    T, d = q.shape
    scores = q @ k.T / (np.sqrt(d) if scale else 1.0)
    hide = {"future": np.triu(np.ones((T, T), bool), 1), "past": np.tril(np.ones((T, T), bool), -1),
            "none": np.zeros((T, T), bool)}[mask]
    return _softmax(np.where(hide, -1e9, scores), axis=axis) @ v


def _keras_attention(q: Array, k: Array, v: Array) -> Array:
    """Keras's own layer, one head, with identity Q/K/V/output projections and zero biases: attention itself."""
    keras = tinygpt.keras
    d = q.shape[1]
    layer = keras.layers.MultiHeadAttention(1, key_dim=d, kernel_initializer="zeros", bias_initializer="zeros")
    q32, k32, v32 = (np.asarray(a[None], dtype="float32") for a in (q, k, v))  # (1, T, d): a batch of one
    layer(q32, v32, key=k32)  # builds the weights (zeros: no random draw)
    eye_in, eye_out = np.eye(d, dtype="float32")[:, None, :], np.eye(d, dtype="float32")[None, :, :]
    # kernels: query, key, value (d, 1 head, d) and output (1 head, d, d); biases stay 0
    layer.set_weights([w if w.ndim < 3 else eye_out if w.shape[0] == 1 else eye_in for w in layer.get_weights()])
    return np.asarray(layer(q32, v32, key=k32, use_causal_mask=True), dtype="float64")[0]


def _check_attention(fn: Callable[[Array, Array, Array], Any]) -> str:
    q, k, v = (3 * a for a in _rng_arrays((4, 8), (4, 8), (4, 8)))  # ×3: scaling by √8 then matters
    want = _keras_attention(q, k, v)
    mistakes = {
        "attention with no causal mask: every position reads the future too": _attention_variant(q, k, v, mask="none"),
        "attention that hides the past instead of the future (the mask's triangle is the wrong one)":
            _attention_variant(q, k, v, mask="past"),
        "softmax(q kᵀ) v without the 1/√d scaling: the scores are √8 ≈ 2.8 times too large":
            _attention_variant(q, k, v, scale=False),
        "a softmax over the queries (axis 0): each row must sum to 1 over the keys (axis -1)":
            _attention_variant(q, k, v, axis=0),
    }
    got = fn(q.copy(), k.copy(), v.copy())
    _compare(got, want, "causal_attention(q, k, v)", mistakes)
    return "Equal to Keras's MultiHeadAttention (1 head, identity projections) on a (4, 8) example, to 1e-4."


def _no_mask(q: Array, k: Array, v: Array) -> Array:
    return _softmax(q @ k.T / np.sqrt(q.shape[1])) @ v


def _no_scale(q: Array, k: Array, v: Array) -> Array:
    return _attention_variant(q, k, v, scale=False)


def _wrong_axis(q: Array, k: Array, v: Array) -> Array:
    return _attention_variant(q, k, v, axis=0)


q1 = Exercise("q1", "causal_attention(q, k, v): one head, softmax(q kᵀ / √d) v with the future masked (q, k, v: (T, d)).",
              checker=_check_attention,
              hint_text="scores = q @ k.T / np.sqrt(d); set scores above the diagonal (np.triu(..., 1)) to -np.inf; "
                        "softmax each row (subtract its max, exp, divide by the sum); multiply by v.",
              reference=causal_attention, wrong=(_no_mask, _no_scale, _wrong_axis))


# ---------------------------------------------------------------- q2: the post-LN block
def post_ln_block(x: Array, attn: Callable[[Array], Array], ffn: Callable[[Array], Array],
                  ln1: Callable[[Array], Array], ln2: Callable[[Array], Array]) -> Array:
    h = ln1(x + attn(x))     # (B, T, C): attention's output added to its input (residual), then LayerNorm
    return ln2(h + ffn(h))   # (B, T, C): the same for the FFN


def _toy_layers() -> dict[str, Callable[..., Array]]:
    """Small NumPy stand-ins for the block's layers, each different, so a mix-up changes the result."""
    w_attn, w_up, w_down, g1, g2 = _rng_arrays((6, 6), (6, 12), (12, 6), (6,), (6,))

    def norm(gamma: Array) -> Callable[[Array], Array]:
        return lambda h: (1 + gamma) * (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-3)

    def attn(h: Array) -> Array:  # causal: position t averages positions 0..t, then a projection
        return (np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)[None, :, None]) @ w_attn

    return {"attn": attn, "ffn": lambda h: np.tanh(h @ w_up) @ w_down, "ln1": norm(g1), "ln2": norm(g2)}


def _package_block(x: Array, toy: dict[str, Callable[..., Array]]) -> Array:
    """``coursekit.tinygpt``'s own block, run on the toy layers (ids→x embeddings, identity LM head)."""
    layers = {"tok_emb": lambda ids: ids, "pos_emb": lambda ids: 0.0, "lm_head": lambda h: h,
              "attn": lambda query, value, **_: toy["attn"](query), "ffn_up": toy["ffn"], "ffn_down": lambda h: h,
              "ln1": toy["ln1"], "ln2": toy["ln2"]}
    return tinygpt.block_forward(x, layers)


def _pre_ln(x: Array, attn: Callable, ffn: Callable, ln1: Callable, ln2: Callable) -> Array:
    h = x + attn(ln1(x))
    return h + ffn(ln2(h))


def _no_residual(x: Array, attn: Callable, ffn: Callable, ln1: Callable, ln2: Callable) -> Array:
    return ln2(ffn(ln1(attn(x))))


def _check_block(fn: Callable[..., Any]) -> str:
    toy = _toy_layers()
    (x,) = _rng_arrays((2, 4, 6))  # (B, T, C)
    want = _package_block(x, toy)
    a, f, l1, l2 = toy["attn"], toy["ffn"], toy["ln1"], toy["ln2"]
    mistakes = {
        "a pre-LN block (x + attn(ln1(x)), as GPT-2 does); TinyGPT is post-LN: ln1(x + attn(x))":
            _pre_ln(x, a, f, l1, l2),
        "a block with no residuals: add each sub-layer's input to its output before the LayerNorm":
            _no_residual(x, a, f, l1, l2),
        "a block with ln1 and ln2 swapped: ln1 follows attention, ln2 the FFN": post_ln_block(x, a, f, l2, l1),
        "a block whose FFN reads x instead of the attention block's output h": l2(l1(x + a(x)) + f(x)),
    }
    _compare(fn(x.copy(), a, f, l1, l2), want, "post_ln_block(x, attn, ffn, ln1, ln2)", mistakes)
    return "The same as coursekit.tinygpt's block on a (2, 4, 6) input, with both residuals and post-LN."


q2 = Exercise("q2", "post_ln_block(x, attn, ffn, ln1, ln2): TinyGPT's block, given its four sub-layers as functions.",
              checker=_check_block,
              hint_text="Two lines: h = ln1(x + attn(x)), then return ln2(h + ffn(h)). The residual is added "
                        "before each LayerNorm (post-LN).",
              reference=post_ln_block, wrong=(_pre_ln, _no_residual))


# ---------------------------------------------------------------- q3: the loss, in nats
def cross_entropy(logits: Array, targets: Array) -> float:
    z = logits - logits.max(axis=-1, keepdims=True)             # (N, V): shifting changes no probability
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))  # log softmax, natural log: nats
    return float(-log_probs[np.arange(len(targets)), targets].mean())  # the mean surprise of the targets


def _keras_loss(logits: Array, targets: Array) -> float:
    loss = tinygpt.keras.losses.SparseCategoricalCrossentropy(from_logits=True)  # what tinygpt.fit uses
    return float(loss(targets, logits.astype("float32")))


def _check_loss(fn: Callable[[Array, Array], Any]) -> str:
    (logits,) = _rng_arrays((6, 5))
    logits = 2 * logits                  # (N=6, V=5)
    targets = np.array([0, 4, 2, 2, 1, 3])
    want = _keras_loss(logits, targets)
    got = fn(logits.copy(), targets.copy())
    try:
        value = float(got)
    except (TypeError, ValueError):
        raise Wrong(f"cross_entropy(logits, targets) is {got!r}; expected one number, about {want:.3g}.") from None
    known = {"in bits (log base 2)": want / math.log(2), "summed over the 6 rows instead of averaged": 6 * want}
    for what, bad in known.items():
        if math.isclose(value, bad, rel_tol=1e-4):
            raise Wrong(f"your loss is {what}: {value:.3g} instead of {want:.3g} nats. The course measures it "
                        "in nats (natural log), as Keras does." if "bits" in what else
                        f"your loss is {what}: {value:.3g} instead of {want:.3g}.")
    expect_close(value, want, "cross_entropy(logits, targets)", rel=1e-4, abs_tol=1e-5)
    uniform = float(fn(np.zeros((3, 5)), np.array([0, 1, 4])))
    expect_close(uniform, math.log(5), "the loss of all-zero logits (a uniform guess over 5)", rel=1e-4)
    return f"{value:.4f} nats, as Keras's SparseCategoricalCrossentropy; a uniform guess costs ln 5 = {uniform:.4f}."


def _in_bits(logits: Array, targets: Array) -> float:
    return cross_entropy(logits, targets) / math.log(2)


def _raw_logits(logits: Array, targets: Array) -> float:  # forgot the softmax: -logit of the target
    return float(-logits[np.arange(len(targets)), targets].mean())


q3 = Exercise("q3", "cross_entropy(logits, targets): the mean next-token loss in nats (logits (N, V), targets (N,)).",
              checker=_check_loss,
              hint_text="Take log_softmax = logits - log(sum(exp(logits))) per row, pick each row's target entry, "
                        "negate, and average.",
              reference=cross_entropy, wrong=(_in_bits, _raw_logits))


# ---------------------------------------------------------------- q4: the entropy of a prediction
P_Q4 = (0.5, 0.25, 0.25, 0.0, 0.0)  # a model's next-character probabilities over ' ', 'e', 'h', 'l', 'o'
_Q4 = -sum(p * math.log(p) for p in P_Q4 if p > 0)  # 1.5 ln 2 ≈ 1.0397 nats


def _check_entropy(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise Wrong(f"the answer is {value!r}; give one number (nats).") from None
    if math.isclose(v, 1.5, rel_tol=1e-3):
        raise Wrong("1.5 is the entropy in bits (log base 2); in nats it is 1.5 × ln 2.")
    if math.isclose(v, math.log(5), rel_tol=1e-3):
        raise Wrong(f"{v:.4g} = ln 5 is the entropy of the uniform guess over 5 characters, the most any "
                    "prediction can have; this one puts all its mass on 3 characters.")
    if math.isclose(v, math.log(3), rel_tol=1e-3):
        raise Wrong(f"{v:.4g} = ln 3 would be right for three equal probabilities; these are 1/2, 1/4, 1/4.")
    expect_close(v, _Q4, "the entropy", rel=1e-3)
    return f"H = 1/2·ln 2 + 2·(1/4)·ln 4 = 1.5 ln 2 ≈ {_Q4:.4f} nats, below ln 5 ≈ {math.log(5):.4f}."


q4 = Exercise("q4", f"The entropy, in nats, of the prediction p = {P_Q4} (a number: -Σ p ln p, with 0 ln 0 = 0).",
              checker=_check_entropy,
              hint_text="-(0.5·ln 0.5 + 0.25·ln 0.25 + 0.25·ln 0.25); the two zeros add nothing. "
                        "np.log is the natural log.",
              reference=_Q4, wrong=(1.5, math.log(5), 1.0))

EXERCISES = [q1, q2, q3, q4]
