"""GPT-2 124M training throughput: our GPT2 against transformers' GPT2LMHeadModel.

Both run in one process on the same GPU, batch 32 × 1024, bf16 autocast, fused
AdamW, each eager and compiled. Prints tokens/s, MFU against the GPU's dense
bf16 peak, peak memory, and our/transformers ratios.

    python benchmarks/gpt2_throughput.py                # needs a CUDA GPU
    python benchmarks/gpt2_throughput.py --smoke        # tiny sizes on the CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

from coursekit.gpt2 import GPT2, GPT2Config
from coursekit.train import flops_per_token, peak_flops


def build(kind: str, cfg: GPT2Config, device: str) -> tuple[torch.nn.Module, Callable[..., Any]]:
    """The model and a function (x, y) -> loss, for 'ours' or 'hf'."""
    if kind == "ours":
        model = GPT2(cfg).to(device)
        return model, lambda m, x, y: m(x, targets=y)[1]
    from transformers import GPT2Config as HFConfig
    from transformers import GPT2LMHeadModel

    hf_cfg = HFConfig(n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd, n_positions=cfg.block_size,
                      vocab_size=cfg.padded_vocab_size, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      bos_token_id=0, eos_token_id=0)
    hf_cfg._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(hf_cfg).to(device)
    return model, lambda m, x, y: m(input_ids=x, labels=x).loss


def measure(kind: str, compiled: bool, cfg: GPT2Config, batch: int, seq: int, steps: int, warmup: int,
            device: str) -> dict[str, float]:
    torch.manual_seed(0)
    model, loss_fn = build(kind, cfg, device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device == "cuda")
    run = torch.compile(model) if compiled else model
    x = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
    y = torch.roll(x, -1, 1)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = loss_fn(run, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    tok_s = batch * seq * steps / (time.perf_counter() - t0)
    peak = peak_flops(device)
    mfu = flops_per_token(cfg, seq, n_params) * tok_s / peak if peak else float("nan")
    mem = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    del model, opt, run
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"tok_s": tok_s, "mfu": mfu, "peak_gib": mem}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, to check the script")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    if args.smoke:
        cfg, batch, seq, device = GPT2Config(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=500), 2, 64, "cpu"
        args.steps, args.warmup = 2, 1
    else:
        if not torch.cuda.is_available():
            raise SystemExit("This benchmark needs a CUDA GPU (bf16, fused AdamW, Triton for compile). "
                             "Run it on one, or pass --smoke to check the script on the CPU.")
        cfg, batch, seq, device = GPT2Config.gpt2_small(), 32, 1024, "cuda"
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"GPU: {torch.cuda.get_device_name()} · torch {torch.__version__}")
    compile_modes = (False,) if args.smoke else (False, True)
    results = {}
    for compiled in compile_modes:
        for kind in ("hf", "ours"):
            r = measure(kind, compiled, cfg, batch, seq, args.steps, args.warmup, device)
            label = f"{kind} {'compiled' if compiled else 'eager'}"
            results[label] = r
            print(f"{label:16s} {r['tok_s']:>12,.0f} tok/s   MFU {r['mfu']:6.1%}   peak {r['peak_gib']:.2f} GiB")
    for mode in ("eager", "compiled"):
        if f"ours {mode}" in results:
            print(f"ours/hf {mode}: {results[f'ours {mode}']['tok_s'] / results[f'hf {mode}']['tok_s']:.2f}×")


if __name__ == "__main__":
    main()
