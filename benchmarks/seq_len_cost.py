"""Sequence-length cost: one decoder layer's training step and SDPA alone, math kernel against fused, in one process.

Lesson 09 teaches this at smoke size; this script measures it at the sizes a GPU is for. It builds one decoder
layer of a real model's shape with random weights (``--model qwen3-0.6b``: Qwen3-0.6B's config; ``smollm2``: the
packaged SmolLM2-135M's; no download), runs forward + backward at each length with SDPA's math kernel and its fused
ones (flash where supported, else memory-efficient), and prints a table, the fused/math ratios and the fitted
exponents (``coursekit.seq_cost``). Memory: the allocator's peak on a GPU, the tensors saved for backward on a CPU.

    python benchmarks/seq_len_cost.py                          # GPU: Qwen3-0.6B's layer, bf16, T = 1k..8k, 2 rows
    python benchmarks/seq_len_cost.py --model smollm2 --lengths 128 256 512 1024 --rows 1   # the lesson's CPU run
    python benchmarks/seq_len_cost.py --smoke                  # a tiny layer on the CPU: checks the script runs

    >>> ratio_line([1.0, 2.0], [0.5, 1.0], "time")
    'fused/math time: 0.50, 0.50'
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

QWEN3_06B = {"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 1,
             "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
             "max_position_embeddings": 40960, "rope_theta": 1000000, "tie_word_embeddings": True}
SMOKE = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "max_position_embeddings": 512}


def ratio_line(math: Sequence[float], fused: Sequence[float], what: str) -> str:
    """``fused/math WHAT: r1, r2, ...``, one ratio per length."""
    return f"fused/math {what}: " + ", ".join(f"{f / m:.2f}" for m, f in zip(math, fused))


def build_layer_model(name: str, dtype: torch.dtype, device: str) -> torch.nn.Module:
    """A one-layer causal LM of the named shape, random weights, SDPA attention."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if name == "smollm2":
        from coursekit import assets

        config = AutoConfig.from_pretrained(str(assets.smollm2_path()))
        config.num_hidden_layers = 1
    else:
        shape = dict(QWEN3_06B if name == "qwen3-0.6b" else SMOKE)
        config = AutoConfig.for_model(shape.pop("model_type"), **shape)
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa").to(device)


def main(argv: Sequence[str] | None = None) -> int:
    from coursekit import seq_cost

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("qwen3-0.6b", "smollm2"), default="qwen3-0.6b")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--rows", type=int, default=2)
    p.add_argument("--smoke", action="store_true", help="a tiny layer on the CPU, lengths 32..128")
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    name, lengths = ("smoke", [32, 64, 128]) if args.smoke else (args.model, args.lengths)
    model = build_layer_model(name, dtype, device)
    heads = seq_cost.AttentionShape.of(model.config)
    print(f"{name} layer: {heads}; {args.rows} row(s); {device}, {dtype}; "
          f"memory = {'allocator peak' if device == 'cuda' else 'saved for backward'}")
    rows: dict[tuple[str, str], list[seq_cost.StepCost]] = {}
    print("| T | part | math ms | fused ms | math MiB | fused MiB |\n| --- | --- | --- | --- | --- | --- |")
    for T in lengths:
        hidden = torch.randn(args.rows, T, model.config.hidden_size, device=device, dtype=dtype)
        for part in ("layer", "attention"):
            for kernel in seq_cost.KERNELS:
                cost = (seq_cost.layer_step_cost(model, hidden, kernel, repeats=3) if part == "layer" else
                        seq_cost.attention_step_cost(heads, T, kernel, device, dtype, repeats=3, batch=args.rows))
                rows.setdefault((part, kernel), []).append(cost)
            m, f = rows[part, "math"][-1], rows[part, "fused"][-1]
            print(f"| {T} | {part} | {m.seconds * 1e3:.2f} | {f.seconds * 1e3:.2f} | {m.bytes / 2**20:.1f} | "
                  f"{f.bytes / 2**20:.1f} |")
    for part in ("layer", "attention"):
        math, fused = rows[part, "math"], rows[part, "fused"]
        print(f"{part}: " + ratio_line([c.seconds for c in math], [c.seconds for c in fused], "time") + "; "
              + ratio_line([c.bytes for c in math], [c.bytes for c in fused], "memory"))
        for kernel, costs in (("math", math), ("fused", fused)):
            fit = seq_cost.fit_exponent(lengths[1:], [c.seconds for c in costs[1:]])
            print(f"  {kernel}: time ∝ T^{fit:.2f} over T = {lengths[1]}..{lengths[-1]}")
    if args.smoke:
        print("(smoke: a tiny layer on the CPU; the numbers say nothing about any real model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
