"""lora_param_count agrees with apply_lora: the parameters it predicts are the ones apply_lora adds.

It used to count ``nn.Linear`` layers by their last name part only, so GPT-2's ``Conv1D`` layers and dotted
targets such as ``"mlp.c_proj"`` (both of which apply_lora wraps) counted 0.
"""

from __future__ import annotations

import copy

import pytest
from torch import nn

from coursekit.assets import load_tiny
from coursekit.lora import apply_lora, count_trainable, lora_param_count

MODELS = {"llama": lambda: load_tiny("llama")[0], "gpt2": lambda: load_tiny("gpt2")[0],
          "sequential": lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 4)))}

CASES = [
    ("llama", ["q_proj", "v_proj"]),
    ("llama", ["self_attn.o_proj", "mlp.down_proj"]),  # dotted suffixes
    ("llama", "gate_proj"),  # one name as a string, as apply_lora takes it
    ("gpt2", ["c_attn"]),  # Conv1D
    ("gpt2", ["mlp.c_proj"]),  # dotted, Conv1D: not the attention's c_proj
    ("gpt2", ["c_proj", "c_fc", "lm_head"]),  # Conv1D and the tied nn.Linear head
    ("sequential", ["0", "2.0"]),
]


@pytest.fixture(scope="module")
def models():
    return {name: build() for name, build in MODELS.items()}


@pytest.mark.parametrize("model_name, targets", CASES, ids=[f"{m}-{t}" for m, t in CASES])
@pytest.mark.parametrize("r", [1, 4])
def test_count_equals_what_apply_lora_adds(models, model_name, targets, r):
    base = models[model_name]
    before = count_trainable(base).total
    predicted = lora_param_count(base, targets, r)
    adapted = count_trainable(apply_lora(copy.deepcopy(base), targets, r=r, alpha=2 * r))
    assert predicted == adapted.trainable == adapted.total - before, (
        f"{model_name} {targets} r={r}: lora_param_count {predicted}, apply_lora added {adapted.total - before} "
        f"({adapted.trainable} trainable)")
    assert predicted > 0, f"{model_name} {targets}: no layer counted"


def test_conv1d_counts_its_in_and_out(models):
    gpt2 = models["gpt2"]
    n_embd, n_layer = gpt2.config.n_embd, gpt2.config.n_layer  # c_attn: n_embd -> 3·n_embd
    assert lora_param_count(gpt2, ["c_attn"], 2) == n_layer * 2 * (n_embd + 3 * n_embd)


def test_count_refuses_what_apply_lora_refuses(models):
    llama = models["llama"]
    for bad in (["query"], []):
        with pytest.raises(ValueError) as theirs:
            apply_lora(copy.deepcopy(llama), bad, r=4, alpha=8)
        with pytest.raises(ValueError) as ours:
            lora_param_count(llama, bad, 4)
        assert str(ours.value) == str(theirs.value), f"{bad}: {ours.value} vs {theirs.value}"
    with pytest.raises(ValueError, match="r=0"):
        lora_param_count(llama, ["q_proj"], 0)
    adapted = apply_lora(copy.deepcopy(llama), ["q_proj"], r=4, alpha=8)
    with pytest.raises(ValueError, match="already applied"):
        lora_param_count(adapted, ["q_proj"], 4)
