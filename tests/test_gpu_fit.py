"""The GPU-fit memory model: shapes against real models and published sizes, activations against a measurement,
totals against the footprints measured on an H100, and the course notes' claims."""

import pytest
import torch
from peft import get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from coursekit import assets, gpu_fit, lora, memory, sft
from coursekit.gpu_fit import GIB, SHAPES, fits, memory_gib, shape_of

LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_shape_counts_smollm2_parameters_and_lora_exactly():
    model = AutoModelForCausalLM.from_pretrained(str(assets.smollm2_path()))
    shape = shape_of(model.config)
    assert shape.n_params() == model.num_parameters(), (shape.n_params(), model.num_parameters())
    assert shape.lora_params(16) == lora.lora_param_count(model, LINEARS, r=16)


# The sizes their model cards publish (billions); our count from the config is within 1%
PUBLISHED = {"0.5B": 0.49, "1.5B": 1.54, "3B": 3.21, "8B": 8.03, "13B": 13.0, "32B": 32.8, "70B": 70.6}


@pytest.mark.parametrize("size", list(PUBLISHED))
def test_shapes_match_the_published_parameter_counts(size):
    n = SHAPES[size].n_params() / 1e9
    assert n == pytest.approx(PUBLISHED[size], rel=0.01), f"{SHAPES[size].name}: {n:.3f}B vs {PUBLISHED[size]}B"


def _saved_per_layer(cfg, method, tokens=(2, 48)):
    """Measured bytes saved per token and layer: the difference between 4 and 2 layers, over 2 (fp32 on the CPU)."""
    out = []
    for layers in (2, 4):
        c = LlamaConfig(**{**cfg.to_dict(), "num_hidden_layers": layers})
        c._attn_implementation = "sdpa"
        torch.manual_seed(0)
        model = LlamaForCausalLM(c)
        if method != "full FT":
            model = get_peft_model(model, sft.lora_config(r=8, lora_alpha=16, target_modules="all-linear"))
        ids = torch.randint(0, c.vocab_size, tokens)
        out.append(memory.saved_activation_bytes(model, {"input_ids": ids, "labels": ids}))
    return (out[1] - out[0]) / 2 / (tokens[0] * tokens[1] * 4)


@pytest.mark.parametrize("method", ["full FT", "LoRA"])
@pytest.mark.parametrize("dims", [(96, 352, 4, 2), (160, 448, 5, 5), (576, 1536, 9, 3)], ids=str)
def test_activation_formula_matches_what_autograd_saves(dims, method):
    h, inter, heads, kv = dims  # shapes the fit did not use, and SmolLM2's
    cfg = LlamaConfig(hidden_size=h, intermediate_size=inter, num_attention_heads=heads, num_key_value_heads=kv,
                      vocab_size=500, tie_word_embeddings=True)
    measured = _saved_per_layer(cfg, method)
    predicted = gpu_fit.activation_values_per_token_layer(shape_of(cfg), method, lora_r=8)
    assert predicted == pytest.approx(measured, rel=0.01), f"{dims} {method}: predicted {predicted}, measured {measured}"


def test_logits_term_is_what_the_loss_saves_per_token():
    cfg = AutoConfig.from_pretrained(str(assets.smollm2_path()), num_hidden_layers=2)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    ids = torch.randint(0, cfg.vocab_size, (2, 32))
    saved = memory.saved_activation_bytes(model, {"input_ids": ids, "labels": ids})
    layers = 2 * gpu_fit.activation_values_per_token_layer(shape_of(cfg), "full FT") * 64 * 4
    logits = memory_gib(shape_of(cfg), "full FT", tokens=64, fused_lm_head=False)["logits"] * GIB
    # what is left beside the layers and the log-softmax: embeddings out, the final norm (a few hidden-sized tensors)
    rest = saved - layers - logits
    assert 0 <= rest < 8 * cfg.hidden_size * 64 * 4, f"saved {saved}, layers {layers}, logits {logits}: rest {rest}"


# Peaks measured with torch.cuda.max_memory_allocated on an H100 (issue 5's anchor, benchmarks/RESULTS.md):
# random-init Llama-3.2-3B, LoRA r=16 on all linear layers, bf16, checkpointing, TRL 1.16's fused LM head, rows of
# 32-511 tokens padded to the batch's longest (about 458 tokens for 8 rows; the longest row, 511, for batch 1).
H100_ANCHORS = [("LoRA", 8 * 458, 7.85), ("QLoRA", 511, 2.47), ("QLoRA", 8 * 458, 3.57)]


@pytest.mark.parametrize(("method", "tokens", "measured"), H100_ANCHORS)
def test_totals_are_within_10_percent_of_the_h100_measurements(method, tokens, measured):
    predicted = sum(memory_gib(SHAPES["3B"], method, tokens=tokens).values())
    assert predicted == pytest.approx(measured, rel=0.10), f"{method}, {tokens} tokens: {predicted:.2f} vs {measured}"


def test_the_course_notes_claims():
    # "an A100/H100 can train 7-13B models in FP16": not by full fine-tuning (16 B/param of state), yes with LoRA
    assert not fits(SHAPES["8B"], "full FT", "H100 80 GB", tokens=2048)
    assert not fits(SHAPES["13B"], "full FT", "A100 80 GB", tokens=2048)
    assert fits(SHAPES["13B"], "LoRA", "A100 80 GB", tokens=2048)
    # "multi-GPU setups for models >= 70B": LoRA on a bf16 base needs two 80 GB cards, QLoRA fits on one
    assert not fits(SHAPES["70B"], "LoRA", "H100 80 GB", tokens=2048)
    assert fits(SHAPES["70B"], "QLoRA", "H100 80 GB", tokens=2048)
    assert not fits(SHAPES["70B"], "QLoRA", "A100 40 GB", tokens=2048)


def test_checkpointing_trades_activations_for_recompute():
    on = memory_gib(SHAPES["8B"], "LoRA", tokens=8192, checkpointing=True)["activations"]
    off = memory_gib(SHAPES["8B"], "LoRA", tokens=8192, checkpointing=False)["activations"]
    assert off > 10 * on, f"checkpointing: {on:.2f} GiB, none: {off:.2f} GiB"


def test_fit_table_ratios_are_needed_over_usable():
    table = gpu_fit.fit_table({"3B": SHAPES["3B"]}, ["T4 16 GB"], tokens=1024)
    needed = sum(memory_gib(SHAPES["3B"], "QLoRA", tokens=1024).values())
    assert table["3B"]["QLoRA"]["T4 16 GB"] == pytest.approx(needed / (15.0 - gpu_fit.RESERVED_GIB))


@pytest.mark.parametrize(("call", "match"), [
    (lambda: memory_gib(SHAPES["3B"], "DPO", tokens=10), r"Unknown method 'DPO': use one of full FT, LoRA, QLoRA"),
    (lambda: memory_gib(SHAPES["3B"], "LoRA", tokens=0), r"tokens=0: .*at least one token"),
    (lambda: fits(SHAPES["3B"], "LoRA", "RTX 4090", tokens=10), r"Unknown GPU 'RTX 4090': use one of T4 16 GB"),
])
def test_bad_input_names_the_fix(call, match):
    with pytest.raises(ValueError, match=match):
        call()
