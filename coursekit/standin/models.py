"""The stand-in models: each Hub id's real ``config.json`` with only the sizes shrunk, and tiny random weights.

Each model is its real architecture class with random weights (``SEED``), the real checkpoint's
``config.json`` with only the sizes shrunk (dtype, RoPE, tied embeddings and the special-token ids
are the real ones) and a tokenizer from ``standin.tokenizers``. ``build_model`` writes one into a
huggingface_hub cache folder, in the layout ``standin.layout`` names.

    >>> spec = MODELS["Qwen/Qwen3-0.6B"]
    >>> spec.config["vocab_size"], spec.config["hidden_size"], spec.real_sizes["hidden_size"], spec.masked_lm
    (151936, 64, 1024, False)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.quiet import progress_bars
from coursekit.standin.layout import hub_folder, readme, revision, write_json
from coursekit.standin.tokenizers import llama32_tokenizer, qwen3_tokenizer, roberta_tokenizer, tinyllama_tokenizer

SEED = 0


@dataclass(frozen=True)
class ModelSpec:
    """One stand-in model: the real ``config.json`` (sizes shrunk), its generation config and tokenizer."""

    config: dict[str, Any]
    tokenizer: Callable[[Path], str]
    generation: dict[str, Any] | None = None
    masked_lm: bool = False  # saved as *ForMaskedLM (roberta-large's checkpoint); else *ForCausalLM
    real_sizes: dict[str, int] = field(default_factory=dict)  # the real checkpoint's values of the shrunk fields


MODELS: dict[str, ModelSpec] = {
    "Qwen/Qwen3-0.6B": ModelSpec(
        config={"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 16, "hidden_act": "silu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 192,
                "max_position_embeddings": 40960, "max_window_layers": 2, "model_type": "qwen3",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
                "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
                "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True,
                "use_sliding_window": False, "vocab_size": 151936},
        generation={"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
                    "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
                    "transformers_version": "4.51.0"},
        tokenizer=qwen3_tokenizer,
        real_sizes={"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "head_dim": 128,
                    "num_attention_heads": 16, "num_key_value_heads": 8, "max_window_layers": 28}),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": ModelSpec(
        config={"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1,
                "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
                "intermediate_size": 176, "max_position_embeddings": 2048, "model_type": "llama",
                "num_attention_heads": 8, "num_hidden_layers": 2, "num_key_value_heads": 1, "pretraining_tp": 1,
                "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False,
                "torch_dtype": "bfloat16", "transformers_version": "4.35.0", "use_cache": True, "vocab_size": 32000},
        generation={"bos_token_id": 1, "eos_token_id": 2, "max_length": 2048, "pad_token_id": 0,
                    "transformers_version": "4.35.0"},
        tokenizer=tinyllama_tokenizer,
        real_sizes={"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                    "num_attention_heads": 32, "num_key_value_heads": 4}),
    "meta-llama/Llama-3.2-3B": ModelSpec(
        config={"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 16, "hidden_act": "silu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 176,
                "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pretraining_tp": 1,
                "rms_norm_eps": 1e-05,
                "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                 "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256},
        generation={"bos_token_id": 128000, "do_sample": True, "eos_token_id": 128001, "temperature": 0.6,
                    "top_p": 0.9, "transformers_version": "4.45.0.dev0"},
        tokenizer=llama32_tokenizer,
        real_sizes={"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "head_dim": 128,
                    "num_attention_heads": 24, "num_key_value_heads": 8}),
    "roberta-large": ModelSpec(  # 24 layers, as the real one: bert-score takes layer 17 of roberta-large
        config={"architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
                "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32,
                "initializer_range": 0.02, "intermediate_size": 128, "layer_norm_eps": 1e-05,
                "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 2,
                "num_hidden_layers": 24, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265},
        tokenizer=roberta_tokenizer, masked_lm=True,
        real_sizes={"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16}),
}


def build_model(hub: Path, repo_id: str) -> dict[str, Any]:
    """Write ``repo_id``'s stand-in into the huggingface_hub cache ``hub``; return what it holds."""
    spec = MODELS[repo_id]
    rev = revision(repo_id)
    snap = _new_snapshot(hub / hub_folder(repo_id), rev)
    write_json(snap / "config.json", spec.config)
    if spec.generation is not None:
        write_json(snap / "generation_config.json", spec.generation)
    model = _save_random_weights(snap, spec)
    tokenizer = spec.tokenizer(snap)
    shrunk = ", ".join(f"{k} {spec.config[k]} (real {v})" for k, v in spec.real_sizes.items())
    what = f"Random weights (seed {SEED}); sizes shrunk: {shrunk}. Tokenizer: {tokenizer}."
    (snap / "README.md").write_text(readme(repo_id, what), encoding="utf-8")
    return {"revision": rev, "path": str(snap), "class": spec.config["architectures"][0], "dtype": str(model.dtype),
            "parameters": sum(p.numel() for p in model.parameters()), "tokenizer": tokenizer}


def _new_snapshot(repo: Path, rev: str) -> Path:
    """The empty ``snapshots/<rev>`` folder of ``repo``, with ``refs/main`` pointing at it."""
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev, encoding="utf-8")
    return snap


def _save_random_weights(snap: Path, spec: ModelSpec) -> Any:
    """The model of ``snap/config.json`` with seeded random weights, saved there as ``model.safetensors``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    config = AutoConfig.from_pretrained(str(snap))
    with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state is left as it was
        torch.manual_seed(SEED)
        model = (AutoModelForMaskedLM if spec.masked_lm else AutoModelForCausalLM).from_config(config)
    model = model.to(getattr(torch, spec.config.get("torch_dtype", "float32")))
    with tempfile.TemporaryDirectory() as tmp:  # save_pretrained names the weights as the real checkpoint does
        with progress_bars(False):
            model.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "model.safetensors", snap / "model.safetensors")
    return model
