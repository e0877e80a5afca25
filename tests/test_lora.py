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
    layer = LoRALinear(base, r=2, alpha=6)  # alpha != r: the merge must carry the scaling 3
    assert layer.fan_in_fan_out and (layer.in_features, layer.out_features) == (16, 8)
    assert layer.A.shape == (2, 16) and layer.B.shape == (8, 2)
    nn.init.normal_(layer.B)
    x = torch.randn(3, 16)
    y = layer(x)
    assert y.shape == (3, 8)
    layer.merge()
    torch.testing.assert_close(layer(x), y, msg=lambda m: f"merged Conv1D != unmerged (alpha/r = 3): {m}")
    torch.testing.assert_close(x @ layer.base.weight + layer.base.bias, y)


def test_merge_unmerge_round_trip():
    """alpha != r (scaling 4), so a merge that dropped alpha/r would add B·A instead of 4·B·A."""
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(16, 8), r=4, alpha=16)
    nn.init.normal_(layer.B)
    w0 = layer.base.weight.clone()
    torch.testing.assert_close(layer.delta_weight(), 4.0 * layer.B @ layer.A,
                               msg=lambda m: f"delta_weight is not (alpha/r)·B·A with alpha/r = 4: {m}")
    x = torch.randn(4, 16)
    y = layer(x)
    layer.merge()
    torch.testing.assert_close(layer.base.weight, w0 + 4.0 * layer.B @ layer.A)
    torch.testing.assert_close(layer(x), y, msg=lambda m: f"merged output != unmerged LoRA output: {m}")
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


def test_layer_checks_each_argument_by_name():
    with pytest.raises(TypeError, match="LoRALinear wraps nn.Linear or transformers Conv1D, got Conv2d"):
        LoRALinear(nn.Conv2d(2, 2, 1), r=2, alpha=4)
    with pytest.raises(ValueError, match="rank r must be a positive integer, got r=0"):
        LoRALinear(nn.Linear(4, 4), r=0, alpha=8)
    for dropout in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\), got"):
            LoRALinear(nn.Linear(4, 4), r=2, alpha=4, dropout=dropout)
    # alpha below 1 and a float alpha are fine: only alpha > 0 is asked
    assert LoRALinear(nn.Linear(4, 4), r=4, alpha=0.5).scaling == 0.125
    assert LoRALinear(nn.Linear(4, 4), r=4, alpha=16.5).scaling == 4.125


def test_apply_lora_checks_rank_and_alpha_before_touching_the_model(tiny_llama):
    model = copy.deepcopy(tiny_llama[0])
    with pytest.raises(ValueError, match="rank r must be a positive integer, got r=0"):
        apply_lora(model, ["q_proj"], r=0, alpha=8)
    assert all(p.requires_grad for p in model.parameters()), "a refused apply_lora must not freeze the model"
    assert len(lora_layers(apply_lora(model, ["q_proj"], r=4, alpha=0.5))) == 2


def test_adapters_are_fp32_on_half_bases_and_keep_fp64():
    for base_dtype, want in ((torch.float16, torch.float32), (torch.bfloat16, torch.float32),
                             (torch.float32, torch.float32), (torch.float64, torch.float64)):
        layer = LoRALinear(nn.Linear(8, 4).to(base_dtype), r=2, alpha=4)
        assert (layer.A.dtype, layer.B.dtype) == (want, want), (base_dtype, layer.A.dtype, layer.B.dtype)


def test_A_is_initialised_as_nn_linear_and_peft():
    base = nn.Linear(64, 32)
    torch.manual_seed(0)
    layer = LoRALinear(base, r=8, alpha=16)
    torch.manual_seed(0)
    want = nn.Linear(64, 8, bias=False).weight  # kaiming-uniform with a=sqrt(5): what peft's lora_A gets
    assert torch.equal(layer.A, want), (layer.A[0, :3], want[0, :3])


def test_repr_and_empty_counts():
    layer = LoRALinear(nn.Linear(64, 32), r=4, alpha=8)
    assert "Linear(64 -> 32), r=4, alpha=8, scaling=2, merged=False\n" in repr(layer), repr(layer)
    assert str(count_trainable(nn.Module())) == "trainable params: 0 || all params: 0 || trainable%: 0.0000"


def test_applying_twice_is_an_error(tiny_llama):
    model = apply_lora(copy.deepcopy(tiny_llama[0]), ["q_proj", "v_proj"], r=4, alpha=8)
    with pytest.raises(ValueError, match="already applied to 'model.layers.0.self_attn.v_proj' "):
        apply_lora(model, ["v_proj"], r=4, alpha=8)  # names the first adapted layer it met
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

    Both wrap copies of the (module-scoped) base model, so the model is loaded once
    and stays clean. Logits are computed here once and shared by the tests:
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
    # peft injects into the model it is given: a copy, so that the fixture can be rebuilt in any test order
    theirs = get_peft_model(copy.deepcopy(base), config).eval()

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
        # The same LoRA model in float64: exact up to ~1e-16, the yardstick for every fp32 result below.
        out["exact"] = copy.deepcopy(ours).double()(ids).logits
    return out


def fp32_error(logits, exact):
    """Largest |fp32 − float64| over the logits: the rounding a result carries."""
    return (logits.double() - exact).abs().max().item()


# fp32 results of the same maths differ only by rounding: each must stay within this many times the
# rounding error of our unmerged fp32 forward pass (the maxima of ~10^5 rounding errors are stable; 4 is margin).
ROUNDING_FACTOR = 4
U32 = 2.0**-24  # unit roundoff of float32


def gamma(n):
    """Higham's γ_n = n·u / (1 − n·u): the relative error bound of n float32 operations in a row."""
    return n * U32 / (1 - n * U32)


def _peft_layer(theirs, name):
    return theirs.base_model.model.get_submodule(name)


@pytest.mark.slow
def test_b_zero_is_noop_at_init(pair):
    torch.testing.assert_close(pair["ours_init"], pair["plain"], rtol=0, atol=0)


@pytest.mark.slow
def test_outputs_match_peft(pair):
    floor = fp32_error(pair["ours_logits"], pair["exact"])
    theirs = fp32_error(pair["theirs_logits"], pair["exact"])
    assert theirs <= ROUNDING_FACTOR * floor, f"peft's logits are {theirs:.2e} from exact, ours {floor:.2e}"
    change = (pair["ours_logits"] - pair["plain"]).abs().max().item()
    assert change > 100 * floor, f"B != 0 changed the logits by only {change:.2e} (rounding {floor:.2e})"


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
    """Merges copies, so the shared models stay unmerged whatever order the tests run in."""
    ours, theirs, ids = copy.deepcopy(pair["ours"]), copy.deepcopy(pair["theirs"]), pair["ids"]
    layers = lora_layers(ours)
    # W + s·B·A in float64, and the float32 error bound of computing it: γ_{r+2}·(|W| + s·|B|·|A|)
    # (r products summed, one scaling, one addition).
    exact, bound = {}, {}
    for name, layer in layers.items():
        w, a, b = (t.detach().double() for t in (layer.base.weight, layer.A, layer.B))
        delta, size = layer.scaling * b @ a, layer.scaling * b.abs() @ a.abs()  # (out, in)
        if layer.fan_in_fan_out:  # Conv1D stores (in, out)
            delta, size = delta.T, size.T
        exact[name], bound[name] = w + delta, gamma(layer.r + 2) * (w.abs() + size)
    with torch.no_grad():
        merged_ours = merge_lora(ours)
        assert not lora_layers(merged_ours)
        merged_theirs = theirs.merge_and_unload()
        assert merged_ours.state_dict().keys() == merged_theirs.state_dict().keys()
        assert count_trainable(merged_ours).total == count_trainable(merged_theirs).total
        for name in layers:  # W + (alpha/r)·B·A, in each library's own layout
            assert type(merged_ours.get_submodule(name)) is type(merged_theirs.get_submodule(name))
            for who, model in (("ours", merged_ours), ("peft", merged_theirs)):
                err = (model.get_submodule(name).weight.double() - exact[name]).abs()
                worst = (err / bound[name]).max().item()
                assert worst <= 1, f"{who} {name}: merge error {err.max():.2e} exceeds its float32 bound ×{worst:.2f}"
        floor = fp32_error(pair["ours_logits"], pair["exact"])
        for who, model in (("ours", merged_ours), ("peft", merged_theirs)):
            err = fp32_error(model(ids).logits, pair["exact"])
            assert err <= ROUNDING_FACTOR * floor, (
                f"{who} merged logits are {err:.2e} from exact; the unmerged model's rounding is {floor:.2e}")


@pytest.mark.parametrize("model_name, targets", [("llama", ["q_proj", "down_proj"]), ("gpt2", ["c_attn", "mlp.c_proj"])])
def test_merge_lora_keeps_the_outputs_with_alpha_not_r(model_name, targets):
    """merge_lora with alpha/r = 4 on a whole model (Linear and Conv1D): the merged logits are the LoRA logits."""
    model, _ = load_tiny(model_name)
    model = apply_lora(model, targets, r=4, alpha=16).eval()
    torch.manual_seed(1)
    for layer in lora_layers(model).values():
        layer.B.data.normal_(std=0.05)  # non-zero, or merging would be trivially exact
    ids = torch.randint(0, model.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        unmerged = model(ids).logits
        merged = merge_lora(model)(ids).logits
    gap = (merged - unmerged).abs().max().item()
    scale = unmerged.abs().max().item()
    # fp32 rounding of the same sums in another order: ~1e-6 of the logits' size; 1e-4 is margin
    assert gap <= 1e-4 * max(scale, 1.0), f"{model_name}: merged logits are {gap:.2e} from unmerged (size {scale:.2f})"
