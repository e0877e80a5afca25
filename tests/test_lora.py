"""coursekit.lora: unit checks, then proof of equality with peft on real and tiny models.

The peft comparisons copy the *same* A and B into peft's lora_A / lora_B (with B made
non-zero, otherwise every LoRA is trivially equal to its base) and compare outputs,
gradients, trainable counts and merged weights.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from coursekit.assets import load_smollm2, load_tiny
from coursekit.lora import (
    LoRALinear,
    apply_lora,
    count_trainable,
    linear_layer_names,
    lora_layers,
    lora_state_dict,
    merge_lora,
)

peft = pytest.importorskip("peft")
from transformers.pytorch_utils import Conv1D  # noqa: E402

# peft 0.21 calls a transformers API that v5 deprecates; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")


# ---------------------------------------------------------------- the layer on its own
def test_layer_shapes_scaling_and_noop_at_init():
    torch.manual_seed(0)
    base = nn.Linear(16, 8)
    layer = LoRALinear(base, r=4, alpha=8)
    assert layer.A.shape == (4, 16) and layer.B.shape == (8, 4) and layer.scaling == 2.0
    assert torch.count_nonzero(layer.B) == 0 and torch.count_nonzero(layer.A) > 0
    assert not any(p.requires_grad for p in base.parameters())
    assert {n for n, p in layer.named_parameters() if p.requires_grad} == {"A", "B"}
    x = torch.randn(3, 5, 16)
    assert torch.equal(layer(x), base(x))  # B = 0: exactly the base layer


def test_layer_forward_is_base_plus_scaled_BA():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), r=4, alpha=12)
    nn.init.normal_(layer.B)
    x = torch.randn(2, 16)
    want = x @ (layer.base.weight + 3.0 * layer.B @ layer.A).T + layer.base.bias
    torch.testing.assert_close(layer(x), want)


def test_conv1d_layout_in_out():
    torch.manual_seed(0)
    base = Conv1D(8, 16)  # nf=out=8, nx=in=16; weight (16, 8)
    layer = LoRALinear(base, r=2, alpha=2)
    assert layer.fan_in_fan_out and (layer.in_features, layer.out_features) == (16, 8)
    assert layer.A.shape == (2, 16) and layer.B.shape == (8, 2)
    nn.init.normal_(layer.B)
    x = torch.randn(3, 16)
    y = layer(x)
    assert y.shape == (3, 8)
    layer.merge()
    torch.testing.assert_close(layer(x), y)
    torch.testing.assert_close(x @ layer.base.weight + layer.base.bias, y)


def test_merge_unmerge_round_trip():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), r=4, alpha=4)
    nn.init.normal_(layer.B)
    w0 = layer.base.weight.clone()
    x = torch.randn(4, 16)
    y = layer(x)
    layer.merge()
    layer.merge()  # idempotent: merging twice must not add ΔW twice
    torch.testing.assert_close(layer(x), y)
    layer.unmerge()
    layer.unmerge()
    torch.testing.assert_close(layer.base.weight, w0)
    torch.testing.assert_close(layer(x), y)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(32, 32), r=4, alpha=4, dropout=0.5)
    nn.init.normal_(layer.B)
    x = torch.randn(8, 32)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


# ---------------------------------------------------------------- bad input
def test_unknown_target_lists_linear_layer_names(tiny_llama):
    model = copy.deepcopy(tiny_llama[0])
    with pytest.raises(ValueError) as err:
        apply_lora(model, ["q_proj", "query"], r=4, alpha=8)
    msg = str(err.value)
    assert "query" in msg
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert name in msg
    assert not lora_layers(model)  # nothing half-applied


@pytest.mark.parametrize("r, alpha", [(0, 8), (-2, 8), (4, 0), (4, -1.0)])
def test_bad_rank_or_alpha(tiny_llama, r, alpha):
    with pytest.raises(ValueError, match="rank|alpha"):
        apply_lora(copy.deepcopy(tiny_llama[0]), ["q_proj"], r=r, alpha=alpha)
    with pytest.raises(ValueError):
        LoRALinear(nn.Linear(4, 4), r=r, alpha=alpha)


def test_applying_twice_is_an_error(tiny_llama):
    model = apply_lora(copy.deepcopy(tiny_llama[0]), ["q_proj", "v_proj"], r=4, alpha=8)
    with pytest.raises(ValueError, match="already"):
        apply_lora(model, ["v_proj"], r=4, alpha=8)
    with pytest.raises(ValueError, match="already"):
        LoRALinear(model.model.layers[0].self_attn.q_proj, r=4, alpha=8)
    # a different, not yet adapted layer is fine
    apply_lora(model, ["o_proj"], r=4, alpha=8)
    assert all(not isinstance(m.base, LoRALinear) for m in lora_layers(model).values())


def test_apply_freezes_everything_else_and_counts(tiny_llama):
    model = apply_lora(copy.deepcopy(tiny_llama[0]), "q_proj", r=4, alpha=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith("q_proj.A") or n.endswith("q_proj.B") for n in trainable)
    hidden = model.config.hidden_size
    count = count_trainable(model)
    assert count.trainable == model.config.num_hidden_layers * 4 * (hidden + hidden)
    trainable_n, total_n = count
    assert (trainable_n, total_n) == (count.trainable, count.total)
    assert 0 < count.percent < 100 and "trainable%" in str(count)
    assert set(lora_state_dict(model)) == {n for n in trainable}


def test_linear_layer_names_gpt2():
    model, _ = load_tiny("gpt2")
    assert linear_layer_names(model) == ["c_attn", "c_fc", "c_proj", "lm_head"]


def test_linear_layer_names_unchanged_by_wrapping(tiny_llama):
    model = copy.deepcopy(tiny_llama[0])
    before = linear_layer_names(model)
    apply_lora(model, ["q_proj", "v_proj"], r=4, alpha=8)
    assert "base" not in linear_layer_names(model) and linear_layer_names(model) == before


# ---------------------------------------------------------------- equal to peft
@pytest.fixture(scope="module")
def smollm2():
    model, _ = load_smollm2()
    return model


@pytest.fixture(scope="module")
def tiny_gpt2():
    model, _ = load_tiny("gpt2")
    return model


CASES = {
    # name: (fixture, targets, r, alpha, fan_in_fan_out, input length)
    "smollm2-llama": ("smollm2", ["q_proj", "v_proj", "down_proj"], 4, 8, False, 8),
    "tiny-gpt2-conv1d": ("tiny_gpt2", ["c_attn", "c_proj", "c_fc"], 4, 16, True, 12),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request):
    """Ours and peft's LoRA on the same base, with the same A and the same non-zero B.

    peft wraps the (module-scoped) base model itself and ours wraps a copy, so the
    model is loaded once. Logits are computed here once and shared by the tests:
    the base model, ours at init (B = 0), and ours and peft's after B is set.
    """
    from peft import LoraConfig, get_peft_model

    fixture, targets, r, alpha, fifo, length = CASES[request.param]
    base = request.getfixturevalue(fixture)
    vocab = base.config.vocab_size
    ids = torch.randint(0, vocab, (2, length), generator=torch.Generator().manual_seed(0))  # (batch, seq)
    ours = apply_lora(copy.deepcopy(base), targets, r=r, alpha=alpha).eval()
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0,
                        fan_in_fan_out=fifo, bias="none")
    theirs = get_peft_model(base, config).eval()  # injects into `base` in place: used by this case only

    out = {"ours": ours, "theirs": theirs, "ids": ids}
    with torch.no_grad():
        with theirs.disable_adapter():
            out["plain"] = theirs(ids).logits
        out["ours_init"] = ours(ids).logits  # B = 0 still

        torch.manual_seed(1)
        peft_modules = dict(theirs.base_model.model.named_modules())
        layers = lora_layers(ours)
        assert len(layers) == sum(1 for m in peft_modules.values() if hasattr(m, "lora_A") and "default" in m.lora_A)
        for name, layer in layers.items():
            layer.B.normal_(std=0.02)  # non-zero, or the comparison would be trivial
            other = peft_modules[name]
            assert other.lora_A["default"].weight.shape == layer.A.shape  # (r, in)
            assert other.lora_B["default"].weight.shape == layer.B.shape  # (out, r)
            assert other.scaling["default"] == layer.scaling
            other.lora_A["default"].weight.copy_(layer.A)
            other.lora_B["default"].weight.copy_(layer.B)
        out["ours_logits"], out["theirs_logits"] = ours(ids).logits, theirs(ids).logits
    return out


def _peft_layer(theirs, name):
    return theirs.base_model.model.get_submodule(name)


@pytest.mark.slow
def test_b_zero_is_noop_at_init(pair):
    torch.testing.assert_close(pair["ours_init"], pair["plain"], rtol=0, atol=0)


@pytest.mark.slow
def test_outputs_match_peft(pair):
    torch.testing.assert_close(pair["ours_logits"], pair["theirs_logits"], rtol=1e-4, atol=1e-4)
    assert (pair["ours_logits"] - pair["plain"]).abs().max() > 1e-3  # B != 0 really changed the model


@pytest.mark.slow
def test_gradients_match_peft(pair):
    ours, theirs, ids = pair["ours"], pair["theirs"], pair["ids"]
    ours(ids, labels=ids).loss.backward()
    theirs(ids, labels=ids).loss.backward()
    for name, layer in lora_layers(ours).items():
        other = _peft_layer(theirs, name)
        torch.testing.assert_close(layer.A.grad, other.lora_A["default"].weight.grad, rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(layer.B.grad, other.lora_B["default"].weight.grad, rtol=1e-3, atol=1e-6)
        assert layer.A.grad.abs().max() > 0 and layer.B.grad.abs().max() > 0
    assert all(p.grad is None for p in ours.parameters() if not p.requires_grad)  # frozen base: no grads
    ours.zero_grad(set_to_none=True)
    theirs.zero_grad(set_to_none=True)


@pytest.mark.slow
def test_trainable_counts_match_peft(pair):
    assert tuple(count_trainable(pair["ours"])) == pair["theirs"].get_nb_trainable_parameters()


@pytest.mark.slow
def test_merged_equals_unmerged_and_peft_merge_and_unload(pair):
    """Runs last for each case: it merges both models in place."""
    ours, theirs, ids = pair["ours"], pair["theirs"], pair["ids"]
    adapted = list(lora_layers(ours))
    with torch.no_grad():
        merged_ours = merge_lora(ours)
        assert not lora_layers(merged_ours)
        merged_theirs = theirs.merge_and_unload()
        assert merged_ours.state_dict().keys() == merged_theirs.state_dict().keys()
        assert count_trainable(merged_ours).total == count_trainable(merged_theirs).total
        for name in adapted:  # W + (alpha/r)·B·A, in each library's own layout
            w_ours = merged_ours.get_submodule(name).weight
            w_theirs = merged_theirs.get_submodule(name).weight
            assert type(merged_ours.get_submodule(name)) is type(merged_theirs.get_submodule(name))
            torch.testing.assert_close(w_ours, w_theirs, rtol=1e-5, atol=1e-6)
        out_merged = merged_ours(ids).logits
        torch.testing.assert_close(out_merged, pair["ours_logits"], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out_merged, merged_theirs(ids).logits, rtol=1e-4, atol=1e-4)
