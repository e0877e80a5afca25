"""GPT2.from_hf on every GPT2Config field that changes the maths: copied exactly, or refused by name.

The models get weights of std 0.2 (not GPT-2's 0.02), so that activations are of order 1 and a variant
that changes the function moves the logits far above fp32 rounding (relu instead of GELU, for one,
moves them by more than 1).
"""

import pytest
import torch
from transformers import GPT2Config as HFConfig
from transformers import GPT2LMHeadModel, GPT2Model

from coursekit.gpt2 import GPT2

VOCAB = 101
NO_DROPOUT = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def variant_hf(**overrides):
    torch.manual_seed(0)
    cfg = HFConfig(n_layer=2, n_head=4, n_embd=64, n_positions=32, vocab_size=VOCAB, **NO_DROPOUT, **overrides)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:  # embeddings and projections; LayerNorms keep their (1, 0)
                p.normal_(0.0, 0.2)
    return model


def max_logit_gap(hf, ours):
    idx = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (ours.eval()(idx)[0] - hf(idx).logits).abs().max().item(), hf(idx).logits.abs().max().item()


# fp32 rounding of two implementations of the same function, on logits of size ~10: ~1e-6; 1e-4 is margin.
TOL = 1e-4

REPRESENTED = {
    "default": {},
    "gelu_pytorch_tanh": dict(activation_function="gelu_pytorch_tanh"),
    "gelu_fast": dict(activation_function="gelu_fast"),
    "n_inner=4*n_embd": dict(n_inner=256),
    "layer_norm_epsilon": dict(layer_norm_epsilon=1e-2),
    "reorder_and_upcast_attn (eager)": dict(reorder_and_upcast_attn=True, attn_implementation="eager"),
    "reorder_and_upcast_attn (sdpa)": dict(reorder_and_upcast_attn=True),
}


@pytest.mark.parametrize("name", list(REPRESENTED))
def test_represented_variants_give_the_same_logits(name):
    hf = variant_hf(**REPRESENTED[name])
    gap, size = max_logit_gap(hf, GPT2.from_hf(hf))
    assert gap < TOL, f"{name}: logits differ from GPT2LMHeadModel's by {gap:.2e} (logits up to {size:.1f})"


REFUSED = {
    "tie_word_embeddings": dict(tie_word_embeddings=False),
    "activation_function": dict(activation_function="relu"),
    "scale_attn_by_inverse_layer_idx": dict(scale_attn_by_inverse_layer_idx=True),
    "scale_attn_weights": dict(scale_attn_weights=False),
    "n_inner": dict(n_inner=128),
    "add_cross_attention": dict(add_cross_attention=True),
}


@pytest.mark.parametrize("field", list(REFUSED))
def test_variants_it_cannot_compute_are_refused_by_field_name(field):
    hf = variant_hf(**REFUSED[field])
    with pytest.raises(ValueError, match=rf"^{field}=.*use transformers' GPT2LMHeadModel") as err:
        GPT2.from_hf(hf)
    assert "\n" not in str(err.value), f"the error is not one line: {err.value!r}"


def test_the_refused_variants_really_change_the_function():
    """Why refusing is right: copying the weights while ignoring the field moves the logits far beyond TOL."""
    default = GPT2.from_hf(variant_hf())
    for field, overrides in REFUSED.items():
        if field in ("tie_word_embeddings", "n_inner", "add_cross_attention"):
            continue  # different weights or shapes: there is nothing to copy them into
        gap, _ = max_logit_gap(variant_hf(**overrides), default)  # the same weights, a different function
        assert gap > 1000 * TOL, f"{field}: the variant moved the logits by only {gap:.2e}"


def test_exact_gelu_is_refused_because_it_is_not_the_tanh_gelu():
    with pytest.raises(ValueError, match=r"^activation_function='gelu'"):
        GPT2.from_hf(variant_hf(activation_function="gelu"))


def test_an_untied_head_with_the_embedding_values_is_copied():
    hf = variant_hf(tie_word_embeddings=False)
    with torch.no_grad():
        hf.lm_head.weight.copy_(hf.transformer.wte.weight)  # untied storage, the same numbers: representable
    gap, size = max_logit_gap(hf, GPT2.from_hf(hf))
    assert gap < TOL, f"logits differ by {gap:.2e} (logits up to {size:.1f})"


def test_a_model_without_an_lm_head_is_refused():
    with pytest.raises(ValueError, match="pass a transformers GPT2LMHeadModel"):
        GPT2.from_hf(GPT2Model(HFConfig(n_layer=1, n_head=2, n_embd=16, n_positions=8, vocab_size=VOCAB)))


def test_the_refusal_names_what_gpt2_computes_instead():
    with pytest.raises(ValueError, match=r"^n_inner=128: GPT2 computes an MLP of width 4·n_embd=256, so "):
        GPT2.from_hf(variant_hf(n_inner=128))


def test_an_unpadded_copy_by_default():
    ours = GPT2.from_hf(variant_hf())
    assert ours.config.padded_vocab_size == ours.config.vocab_size, ours.config
