"""coursekit.memory: bytes per parameter, training memory, measured footprints, saved activations, peaks."""

import pytest
import torch

from coursekit import chat, memory
from coursekit.assets import tiny_model_path

CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3?"}, {"role": "assistant", "content": "It is 6."}]


# ---------------------------------------------------------------- activation memory
def test_gradient_checkpointing_saves_activation_memory(tiny_llama):
    model, tok = tiny_llama
    ex = chat.tokenize_chat(tok, CHAT)
    batch = {"input_ids": torch.tensor([ex["input_ids"]]), "labels": torch.tensor([ex["labels"]])}
    off = memory.saved_activation_bytes(model, batch)
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    try:
        on = memory.saved_activation_bytes(model, batch)
    finally:
        model.activation_checkpointing_disable()
    assert 0 < on < off


def test_bytes_per_param_table():
    assert memory.nf4_bytes_per_param(False) == pytest.approx(0.5 + 4 / 64)
    assert memory.nf4_bytes_per_param(True) == pytest.approx(0.5 + (1 + 4 / 256) / 64)
    t = memory.BYTES_PER_PARAM
    assert t["fp32"] > t["bf16 / fp16"] > t["int8"] > t["nf4"] > t["nf4 + double quant"] > 0.5


def test_training_memory_by_method():
    n = 3e9
    assert memory.training_gb(n, "full FT (fp32 + Adam)") == pytest.approx(48)
    assert memory.training_gb(n, "full FT (16-bit w+g, fp32 Adam)") == pytest.approx(36)
    assert memory.training_gb(n, "LoRA") == pytest.approx(n * (2 + 0.16) / 1e9)
    assert 1.5 < memory.training_gb(n, "QLoRA") < 2.1
    with pytest.raises(ValueError, match="Valid methods"):
        memory.training_gb(n, "lora")


@pytest.fixture(scope="module")
def tiny_footprints():
    return memory.measure_footprints(str(tiny_model_path("llama")), print_fn=lambda _: None)


def test_measured_footprints_shrink(tiny_footprints):
    f = tiny_footprints
    assert set(f) == {"fp32", "bf16", "8-bit", "nf4", "nf4 + double quant"}
    assert f["fp32"] == pytest.approx(2 * f["bf16"], rel=0.01)  # buffers (rotary) stay fp32
    assert f["bf16"] > f["nf4"] > f["nf4 + double quant"]


def test_peak_memory_is_none_on_cpu():
    assert memory.peak_memory_gb("cpu") is None
