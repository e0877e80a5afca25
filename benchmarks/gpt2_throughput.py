"""GPT-2 124M training throughput: our GPT2 against transformers' GPT2LMHeadModel.

Both run in one process on the same GPU, batch 32 × 1024, bf16 autocast, fused
AdamW, each eager and compiled. Prints tokens/s, MFU against the GPU's dense
bf16 peak, peak memory, our/transformers ratios, and the issue-7 targets.

    python benchmarks/gpt2_throughput.py                          # needs a CUDA GPU
    python benchmarks/gpt2_throughput.py --sdpa cudnn --compile-mode max-autotune-no-cudagraphs
    python benchmarks/gpt2_throughput.py --smoke                  # tiny sizes on the CPU: checks the script runs

``--sdpa`` and ``--compile-mode`` apply to both models alike, so the ratio stays fair.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch

from coursekit.gpt2 import GPT2, GPT2Config
from coursekit.pretraining import flops_per_token, peak_flops

TARGET_TOK_S, TARGET_MFU, TARGET_RATIO = 520_000, 0.45, 1.45  # issue 7, H100
SDPA_BACKENDS = ("auto", "flash", "cudnn", "efficient")


def build(kind: str, cfg: GPT2Config, device: str) -> tuple[torch.nn.Module, Callable[..., Any]]:
    """The model and a function (model, x, y) -> loss, for 'ours' or 'hf'."""
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
    return model, lambda m, x, y: m(input_ids=x, labels=x).loss  # HF shifts the labels itself


def sdpa_context(backend: str) -> contextlib.AbstractContextManager[Any]:
    """Pin scaled_dot_product_attention to one kernel family ('auto' lets PyTorch choose)."""
    if backend == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names = {"flash": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION", "efficient": "EFFICIENT_ATTENTION"}
    return sdpa_kernel(getattr(SDPBackend, names[backend]))


def measure(kind: str, compiled: bool, cfg: GPT2Config, batch: int, seq: int, steps: int, warmup: int,
            device: str, sdpa: str = "auto", compile_mode: str = "default") -> dict[str, float]:
    torch.manual_seed(0)
    model, loss_fn = build(kind, cfg, device)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=device == "cuda")
    run = torch.compile(model, mode=None if compile_mode == "default" else compile_mode) if compiled else model
    x = torch.randint(0, cfg.vocab_size, (batch, seq), device=device)
    y = torch.roll(x, -1, 1)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with sdpa_context(sdpa):
        for i in range(warmup + steps):
            if i == warmup:  # compilation and autotuning happen in the warm-up steps
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
    return {"tok_s": tok_s, "mfu": mfu, "peak_gib": mem, "loss": float(loss.detach())}


def verdict(results: dict[str, dict[str, float]]) -> list[str]:
    """The issue-7 target lines for whichever runs are present.

    >>> r = {"ours compiled": {"tok_s": 530e3, "mfu": 0.46}, "hf compiled": {"tok_s": 360e3, "mfu": 0.3}}
    >>> verdict(r)[0]
    'ours compiled: 530,000 tok/s (target ≥ 520,000): MET · MFU 46.0% (target ≥ 45%): MET'
    >>> verdict(r)[1]
    'ours/hf compiled: 1.47× (target ≥ 1.45×): MET'
    """
    ours, hf = results.get("ours compiled"), results.get("hf compiled")
    lines = []
    mark = lambda ok: "MET" if ok else "not met"  # noqa: E731
    if ours:
        lines.append(f"ours compiled: {ours['tok_s']:,.0f} tok/s (target ≥ {TARGET_TOK_S:,}): "
                     f"{mark(ours['tok_s'] >= TARGET_TOK_S)} · MFU {ours['mfu']:.1%} (target ≥ {TARGET_MFU:.0%}): "
                     f"{mark(ours['mfu'] >= TARGET_MFU)}")
    if ours and hf:
        ratio = ours["tok_s"] / hf["tok_s"]
        lines.append(f"ours/hf compiled: {ratio:.2f}× (target ≥ {TARGET_RATIO}×): {mark(ratio >= TARGET_RATIO)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, to check the script")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", nargs="+", choices=("hf", "ours"), default=["hf", "ours"])
    ap.add_argument("--modes", nargs="+", choices=("eager", "compiled"), default=["eager", "compiled"])
    ap.add_argument("--sdpa", choices=SDPA_BACKENDS, default="auto", help="attention kernels, for both models")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode for both models (default, max-autotune-no-cudagraphs, ...)")
    args = ap.parse_args(argv)
    if args.smoke:
        cfg, batch, seq, device = GPT2Config(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=500), 2, 64, "cpu"
        args.steps, args.warmup, args.modes, args.sdpa = 2, 1, ["eager"], "auto"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("This benchmark needs a CUDA GPU (bf16, fused AdamW, Triton for compile). "
                             "Run it on one, or pass --smoke to check the script on the CPU.")
        cfg, batch, seq, device = GPT2Config.gpt2_small(), args.batch, 1024, "cuda"
        torch.set_float32_matmul_precision("high")  # TF32 for whatever autocast leaves in fp32
        print(f"GPU: {torch.cuda.get_device_name()} · torch {torch.__version__} · batch {batch} × {seq} · "
              f"sdpa {args.sdpa} · compile mode {args.compile_mode}")
    results = {}
    for mode in args.modes:
        for kind in args.models:
            label = f"{kind} {mode}"
            try:
                r = measure(kind, mode == "compiled", cfg, batch, seq, args.steps, args.warmup, device,
                            args.sdpa, args.compile_mode)
            except RuntimeError as err:  # e.g. no kernel of the pinned SDPA backend for this model's call
                print(f"{label:16s} failed: {str(err).splitlines()[0][:200]}")
                continue
            results[label] = r
            print(f"{label:16s} {r['tok_s']:>12,.0f} tok/s   MFU {r['mfu']:6.1%}   peak {r['peak_gib']:.2f} GiB   "
                  f"loss {r['loss']:.3f}", flush=True)
    for mode in args.modes:
        if f"ours {mode}" in results and f"hf {mode}" in results:
            print(f"ours/hf {mode}: {results[f'ours {mode}']['tok_s'] / results[f'hf {mode}']['tok_s']:.2f}×")
    for line in verdict(results):
        print(line)


if __name__ == "__main__":
    main()
