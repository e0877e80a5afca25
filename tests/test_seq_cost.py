"""coursekit.seq_cost: power-law fits, and the memory each SDPA kernel and a real decoder layer hold.

Memory on the CPU is what autograd saves, which is exact: these tests assert it to the byte or the percent.
Times are never asserted here (benchmarks measure speed); only that they are positive. FLOPs are counted, so exact.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from coursekit import seq_cost
from coursekit.assets import load_tiny

SHAPE = seq_cost.AttentionShape(heads=4, kv_heads=2, head_dim=8)


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0, 3.0])
def test_fit_exponent_recovers_a_power_law(power):
    lengths = [64, 128, 256, 512]
    got = seq_cost.fit_exponent(lengths, [3.0 * T**power for T in lengths])
    assert math.isclose(got, power, abs_tol=1e-9), (got, power)


@pytest.mark.parametrize(("lengths", "values", "needle"), [
    ([64], [1.0], "two or more"), ([64, 128], [1.0], "equal count"), ([64, 128], [1.0, 0.0], "must be > 0")])
def test_fit_exponent_refuses_what_it_cannot_fit(lengths, values, needle):
    with pytest.raises(ValueError, match=needle):
        seq_cost.fit_exponent(lengths, values)


def test_the_math_kernel_keeps_one_probability_tensor_more_than_the_fused_one():
    extra = {T: seq_cost.attention_step_cost(SHAPE, T, "math").bytes - seq_cost.attention_step_cost(SHAPE, T, "fused").bytes
             for T in (32, 64, 128)}
    # what remains after removing the (nh, T, T) fp32 probabilities grows linearly: equal steps per doubling
    linear = {T: e - SHAPE.heads * T * T * 4 for T, e in extra.items()}
    assert linear[128] - linear[64] == pytest.approx(2 * (linear[64] - linear[32]), rel=0.02), (extra, linear)


def test_the_fused_kernel_holds_memory_linear_in_the_length():
    held = [seq_cost.attention_step_cost(SHAPE, T, "fused").bytes for T in (32, 64, 128, 256)]
    assert seq_cost.fit_exponent([32, 64, 128, 256], held) == pytest.approx(1.0, abs=0.05), held


def test_attention_costs_report_positive_times():
    cost = seq_cost.attention_step_cost(SHAPE, 16, "math", repeats=1)
    assert cost.seconds > 0 and cost.bytes > 0, cost


def test_the_math_kernels_work_is_twelve_products_per_query_key_pair_and_head_dim():
    """Forward: QKᵀ and PV, 2 FLOPs a multiply-add each; backward: twice the forward. Causal or not, the math
    kernel multiplies the whole (T, T) square."""
    for T in (16, 32, 64):
        flops = seq_cost.attention_step_cost(SHAPE, T, "math", repeats=1, batch=2).flops
        assert flops == 12 * 2 * SHAPE.heads * T * T * SHAPE.head_dim, (T, flops)


def test_unknown_kernel_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="flash3"):
        seq_cost.attention_step_cost(SHAPE, 16, "flash3")


@pytest.fixture(scope="module")
def tiny_llama():
    model, _ = load_tiny("llama")
    model.config._attn_implementation = "sdpa"
    return model


def test_attention_shape_reads_the_config(tiny_llama):
    cfg = tiny_llama.config
    shape = seq_cost.AttentionShape.of(cfg)
    assert (shape.heads, shape.kv_heads) == (cfg.num_attention_heads, cfg.num_key_value_heads), shape
    assert shape.head_dim * shape.heads == cfg.hidden_size or shape.head_dim == getattr(cfg, "head_dim", None), shape


def test_a_layer_step_with_the_math_kernel_keeps_its_probabilities(tiny_llama):
    shape = seq_cost.AttentionShape.of(tiny_llama.config)
    held = {}
    for T in (32, 64, 128):
        hidden = torch.randn(1, T, tiny_llama.config.hidden_size)
        held[T] = {k: seq_cost.layer_step_cost(tiny_llama, hidden, k, repeats=1).bytes for k in seq_cost.KERNELS}
    Ts = np.array(sorted(held), dtype=float)
    extra = np.array([held[T]["math"] - held[T]["fused"] for T in sorted(held)], dtype=float)
    b = np.linalg.lstsq(np.stack([np.ones_like(Ts), Ts, Ts**2], axis=1), extra, rcond=None)[0][2]
    assert b == pytest.approx(shape.heads * 4, rel=0.05), (b, shape)
    assert all(p.grad is None for p in tiny_llama.model.layers[0].parameters()), "layer_step_cost left gradients"


def test_a_layers_work_outside_attention_is_exactly_linear_in_the_length(tiny_llama):
    shape = seq_cost.AttentionShape.of(tiny_llama.config)
    rest = []
    for T in (32, 64, 128):
        layer = seq_cost.layer_step_cost(tiny_llama, torch.randn(1, T, tiny_llama.config.hidden_size), "math", repeats=1)
        rest.append(layer.flops - seq_cost.attention_step_cost(shape, T, "math", repeats=1).flops)
    assert rest[0] > 0 and rest[1] == 2 * rest[0] and rest[2] == 2 * rest[1], rest


def test_layer_step_cost_needs_sdpa_attention(tiny_llama):
    tiny_llama.config._attn_implementation = "eager"
    try:
        with pytest.raises(ValueError, match="attn_implementation='sdpa'"):
            seq_cost.layer_step_cost(tiny_llama, torch.randn(1, 8, tiny_llama.config.hidden_size), "math")
    finally:
        tiny_llama.config._attn_implementation = "sdpa"
