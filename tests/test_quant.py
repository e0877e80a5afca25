"""coursekit.quant: bytes per parameter, footprints, price MAE, push_to_hub guard."""

import pytest

from coursekit import hub, quant
from coursekit.assets import tiny_model_path
from coursekit.lora import count_trainable

SECRET = "hf_ThisIsNotARealTokenButMustNeverBePrinted123"


def test_bytes_per_param_table():
    assert quant.nf4_bytes_per_param(False) == pytest.approx(0.5 + 4 / 64)
    assert quant.nf4_bytes_per_param(True) == pytest.approx(0.5 + (1 + 4 / 256) / 64)
    t = quant.BYTES_PER_PARAM
    assert t["fp32"] > t["bf16 / fp16"] > t["int8"] > t["nf4"] > t["nf4 + double quant"] > 0.5


def test_training_memory_by_method():
    n = 3e9
    assert quant.training_gb(n, "full FT (fp32 + Adam)") == pytest.approx(48)
    assert quant.training_gb(n, "full FT (fp16, notes)") == pytest.approx(36)
    assert quant.training_gb(n, "LoRA") == pytest.approx(n * (2 + 0.16) / 1e9)
    assert 1.5 < quant.training_gb(n, "QLoRA") < 2.1
    with pytest.raises(ValueError, match="Valid methods"):
        quant.training_gb(n, "lora")


@pytest.mark.parametrize("text, price", [("139.00", 139.0), ("$1,299.50 and more", 1299.5), (" 42", 42.0),
                                         ("about 7 dollars, maybe 9", 7.0), ("-3", -3.0)])
def test_parse_price(text, price):
    assert quant.parse_price(text) == price


@pytest.mark.parametrize("text", ["", "no idea", "$.", None])
def test_parse_price_none(text):
    assert quant.parse_price(text) is None


def test_price_mae_counts_unparseable_as_zero():
    out = quant.price_mae(["100.00", "no number", "55"], [90, 40, 50])
    assert out["mae"] == pytest.approx((10 + 40 + 5) / 3)
    assert out["parsed"] == pytest.approx(2 / 3)
    assert out["predictions"] == [100.0, 0.0, 55.0]
    assert quant.price_mae(["x"], [40], unparseable=30)["mae"] == 10
    with pytest.raises(ValueError):
        quant.price_mae(["1"], [1, 2])


class FakeModel:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def push_to_hub(self, repo_id, token=None, private=True):
        self.calls.append((repo_id, token))
        if self.fail:
            raise RuntimeError(f"401 Unauthorized for token {token}")


def test_push_skipped_without_token(monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    model = FakeModel()
    assert hub.push_adapter(model, "me/adapter") is False
    out = capsys.readouterr().out
    assert model.calls == []
    assert out.count("\n") == 1 and "skipped" in out and "HF_TOKEN" in out


def test_push_with_token_never_prints_it(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    model = FakeModel()
    assert hub.push_adapter(model, "me/adapter") is True
    captured = capsys.readouterr()
    assert model.calls == [("me/adapter", SECRET)]
    assert SECRET not in captured.out + captured.err and "me/adapter" in captured.out


def test_push_failure_does_not_echo_the_token(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert hub.push_adapter(FakeModel(fail=True), "me/adapter") is False
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err and "failed" in captured.out


def test_blank_token_counts_as_unset(capsys):
    assert hub.push_adapter(FakeModel(), "me/a", env={"HF_TOKEN": "  "}) is False
    assert "skipped" in capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny_footprints():
    return quant.measure_footprints(str(tiny_model_path("llama")), print_fn=lambda _: None)


def test_measured_footprints_shrink(tiny_footprints):
    f = tiny_footprints
    assert set(f) == {"fp32", "bf16", "8-bit", "nf4", "nf4 + double quant"}
    assert f["fp32"] == pytest.approx(2 * f["bf16"], rel=0.01)  # buffers (rotary) stay fp32
    assert f["bf16"] > f["nf4"] > f["nf4 + double quant"]


def test_embeddings_stay_unquantized_and_scales_are_counted():
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    path = str(tiny_model_path("llama"))
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=False)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=cfg, device_map={"": "cpu"})
    assert not quant.embeddings_quantized(model)
    n_linear = sum(m.in_features * m.out_features for m in model.model.layers.modules()
                   if type(m).__name__ == "Linear4bit")
    assert quant.quant_state_bytes(model) == n_linear // 64 * 4  # one fp32 absmax per 64 weights
    total = count_trainable(model).total  # 4-bit weights count twice their packed elements
    assert total == sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(path).parameters())


def test_peak_memory_is_none_on_cpu():
    assert quant.peak_memory_gb("cpu") is None


@pytest.mark.parametrize("double_quant", [True, False])
def test_sft_train_undoes_the_inference_only_cpu_repacking(double_quant, capsys):
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
    with torch.no_grad():
        before = model(ids).logits
    shapes = [tuple(layer.weight.shape) for layer in layers]
    for layer in layers:
        layer.weight.data, layer.weight.quant_state = _convert_weight_packed_for_cpu(layer.weight.data, layer.weight.quant_state)
    rows = [{"prompt": f"{a} + {a} =", "completion": str(2 * a)} for a in range(4)]
    run = sft.train(model, tok, rows, output_dir=tempfile.mkdtemp(), lora=sft.lora_config(r=4), max_steps=1,
                    progress=False, save=False)
    assert f"{len(layers)} 4-bit layers had been repacked" in capsys.readouterr().out
    assert [tuple(layer.weight.shape) for layer in layers] == shapes
    assert not any(layer.weight.quant_state.packing_format_for_cpu or layer.support_avx512bf16_for_cpu for layer in layers)
    assert all(layer.weight.quant_state.nested == double_quant for layer in layers)
    with torch.no_grad(), run.model.disable_adapter():
        after = run.model(ids).logits
    # the repacking rounds the absmax scales to bf16 (8 mantissa bits): the base model moves by about that much
    change = ((after - before).abs().max() / before.abs().max()).item()
    assert change < 2**-6, f"the restored base model's logits moved by {change:.2e} of their scale"
