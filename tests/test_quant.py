"""coursekit.quant: 4-bit loading keeps the embeddings unquantized, training undoes the CPU repacking, and a
bitsandbytes optimizer runs where it can (optimizer_for)."""

import pytest

from coursekit import memory, quant
from coursekit.assets import tiny_model_path
from coursekit.lora import count_trainable


def test_embeddings_stay_unquantized_and_scales_are_counted():
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    path = str(tiny_model_path("llama"))
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=False)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=cfg, device_map={"": "cpu"})
    assert not quant.embeddings_quantized(model)
    n_linear = sum(m.in_features * m.out_features for m in model.model.layers.modules()
                   if type(m).__name__ == "Linear4bit")
    assert memory.quant_state_bytes(model) == n_linear // 64 * 4  # one fp32 absmax per 64 weights
    total = count_trainable(model).total  # 4-bit weights count twice their packed elements
    assert total == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())


@pytest.mark.parametrize("double_quant", [True, False])
def test_finetune_undoes_the_inference_only_cpu_repacking(double_quant, capsys):
    """bitsandbytes repacks a 4-bit weight for a kernel with no backward at its first eval forward on an
    AVX512-BF16 CPU (not every machine has one, so the repacking is done by hand here); training must undo it."""
    import tempfile

    import torch
    from bitsandbytes.functional import _convert_weight_packed_for_cpu

    from coursekit import sft
    from coursekit.assets import load_causal_lm

    model, tok = load_causal_lm(str(tiny_model_path("llama")), quantization_config=quant.bnb_config(4, double_quant=double_quant))
    layers = quant._linear4bit(model)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    shapes = [tuple(layer.weight.shape) for layer in layers]  # before any forward: the trainable layout
    with torch.no_grad():
        before = model(ids).logits
    for layer in layers:  # on an AVX512-BF16 CPU the forward above already repacked them: packing twice loses the layout
        if not getattr(layer.weight.quant_state, "packing_format_for_cpu", False):
            layer.weight.data, layer.weight.quant_state = _convert_weight_packed_for_cpu(layer.weight.data, layer.weight.quant_state)
    assert all(layer.weight.quant_state.packing_format_for_cpu for layer in layers), "every layer is repacked before training"
    rows = [{"prompt": f"{a} + {a} =", "completion": str(2 * a)} for a in range(4)]
    run = sft.finetune(model, tok, rows, sft.SFTSettings(max_steps=1), output_dir=tempfile.mkdtemp(),
                       lora=sft.lora_config(r=4), progress=False, save=False)
    assert f"{len(layers)} 4-bit layers had been repacked" in capsys.readouterr().out
    assert [tuple(layer.weight.shape) for layer in layers] == shapes
    assert not any(layer.weight.quant_state.packing_format_for_cpu or layer.support_avx512bf16_for_cpu for layer in layers)
    assert all(layer.weight.quant_state.nested == double_quant for layer in layers)
    with torch.no_grad(), run.model.disable_adapter():
        after = run.model(ids).logits
    # the repacking rounds the absmax scales to bf16 (8 mantissa bits): the base model moves by about that much
    change = ((after - before).abs().max() / before.abs().max()).item()
    assert change < 2**-6, f"the restored base model's logits moved by {change:.2e} of their scale"


def test_a_4bit_load_never_repacks_for_the_inference_only_kernel():
    """On an AVX512-BF16 CPU bitsandbytes would repack at the first eval forward: no backward, and an assert on
    a layer whose width is not a multiple of 32 (the rehearsal's stand-in models). The load turns it off."""
    import torch

    from coursekit.assets import load_causal_lm

    model, _ = load_causal_lm(str(tiny_model_path("llama")), quantization_config=quant.bnb_config(4))
    layers = quant._linear4bit(model)
    assert layers and not any(layer.support_avx512bf16_for_cpu for layer in layers), \
        f"{sum(layer.support_avx512bf16_for_cpu for layer in layers)} of {len(layers)} layers may still repack"
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3, 4, 5]]))
    packed = [layer for layer in layers if getattr(layer.weight.quant_state, "packing_format_for_cpu", False)]
    assert not packed, f"{len(packed)} of {len(layers)} 4-bit layers were repacked by an eval forward"


@pytest.mark.filterwarnings("ignore::UserWarning")  # int8 matmuls warn that they cast their input to fp16
def test_an_8bit_load_has_the_facts_lesson05_asserts_for_quant_8bit():
    """Lesson 05 lets a student set QUANT = "8bit"; its notebook run uses nf4, so the 8-bit branch's facts
    (cells 'check: nf4 + double quant ... or LLM.int8', 'the linear layers are quantized', 'SFTConfig and
    bitsandbytes use the same precision') are checked here on the tiny model, on every CI run."""
    import bitsandbytes
    import torch
    from transformers import BitsAndBytesConfig

    from coursekit.assets import load_causal_lm

    bnb = BitsAndBytesConfig(load_in_8bit=True)
    assert bnb.load_in_8bit and not bnb.load_in_4bit, bnb.to_dict()
    assert bnb.llm_int8_threshold == 6.0 and not bnb.llm_int8_has_fp16_weight, bnb.to_dict()
    model, _ = load_causal_lm(str(tiny_model_path("llama")), quantization_config=bnb)
    q_proj = model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bitsandbytes.nn.Linear8bitLt) and type(q_proj.weight).__name__ == "Int8Params", q_proj
    assert q_proj.weight.dtype == torch.int8 and q_proj.weight.shape == (q_proj.out_features, q_proj.in_features)
    assert q_proj.weight.SCB.shape == (q_proj.out_features,), q_proj.weight.SCB.shape  # one fp32 scale per row
    assert not quant.embeddings_quantized(model)
    for dtype in (torch.float32, torch.bfloat16):  # int8 has no compute dtype: the layer answers in its input's
        with torch.no_grad():
            x = torch.ones(1, q_proj.in_features, dtype=dtype)
            assert q_proj(x).dtype == dtype, (q_proj(x).dtype, dtype)


# ---------------------------------------------------------------- optimizer_for: bitsandbytes optimizers here
def test_transformers_bitsandbytes_optimizers_are_the_ones_quant_knows():
    from transformers import trainer_optimizer

    theirs = {name.value for name in trainer_optimizer._BITSANDBYTES_OPTIMIZERS}
    assert theirs == set(quant.BNB_OPTIMIZERS), (theirs ^ set(quant.BNB_OPTIMIZERS))


@pytest.mark.parametrize("optim, chosen", [("paged_adamw_32bit", "adamw_torch"), ("adamw_bnb_8bit", "adamw_torch"),
                                           ("rmsprop_bnb_8bit", "rmsprop")])
def test_a_bitsandbytes_optimizer_where_bitsandbytes_cannot_run_falls_back_in_one_line(monkeypatch, capsys, optim,
                                                                                       chosen):
    monkeypatch.setattr(quant, "_bnb_problem", lambda device: "bitsandbytes is not installed (pip install bitsandbytes)")
    assert quant.optimizer_for(optim, "cpu") == chosen
    out = capsys.readouterr().out
    assert out == f"optimizer {optim} asked for, but bitsandbytes is not installed (pip install bitsandbytes): " \
                  f"training with {chosen}.\n", out


def test_a_paged_optimizer_off_cuda_runs_unpaged_and_says_so_once(capsys):
    pytest.importorskip("bitsandbytes")
    assert quant.optimizer_for("paged_adamw_32bit", "cpu") == "paged_adamw_32bit"
    assert quant.optimizer_for("adamw_bnb_8bit", "cpu") == "adamw_bnb_8bit"  # 8-bit state runs on a CPU: silent
    assert quant.optimizer_for("adamw_torch", "cpu") == "adamw_torch"
    assert quant.optimizer_for("paged_adamw_32bit", "cuda") == "paged_adamw_32bit"
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["optimizer paged_adamw_32bit on cpu: bitsandbytes pages optimizer state only from a CUDA GPU, "
                     "so it keeps it in ordinary memory here (the same update, unpaged)."], lines
