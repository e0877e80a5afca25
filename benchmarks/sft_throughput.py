"""SFT throughput: TRL's SFTTrainer defaults against our recipe settings, LoRA and QLoRA, in one process.

Same model shape (a randomly initialised Llama-3.2-3B, built from a ``LlamaConfig``: no download), same
random-token rows (32-511 tokens, ``max_length`` 512), same LoRA (r=16, all linear layers). Reports non-pad
tokens/s, peak GPU memory, and the share of each step spent collating batches on the host.

    python benchmarks/sft_throughput.py              # needs CUDA (bf16 / fp16 and bitsandbytes on the GPU)
    python benchmarks/sft_throughput.py --smoke      # tiny shapes on the CPU: checks the script runs, nothing more

Variants:
* ``trl-defaults``: SFTConfig defaults that matter here: gradient checkpointing on, no packing, batch 8, padded.
* ``ours``: padding-free packing (TRL best-fit-decreasing; no pad tokens at all), a larger micro-batch,
  SDPA attention, gradient checkpointing only when the micro-batch needs it (``--ours-ckpt``).
* ``qlora-b1`` / ``qlora-b8``: TRL defaults on an nf4 + double-quant base at batch 1 and 8.
* ``qlora-ours``: our settings on the 4-bit base.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FULL_SHAPE = {  # meta-llama/Llama-3.2-3B's config.json
    "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "num_attention_heads": 24,
    "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 4096, "tie_word_embeddings": True,
    "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
}
SMOKE_SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 128,
               "tie_word_embeddings": True}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def random_rows(n: int, lo: int, hi: int, vocab: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """``n`` rows of uniform random token ids, lengths uniform in [lo, hi] (ids 10.. avoid special tokens)."""
    rng = random.Random(seed)
    return [{"input_ids": [rng.randrange(10, vocab) for _ in range(rng.randint(lo, hi))]} for _ in range(n)]


def build_base(shape: dict[str, Any], folder: str, dtype: Any) -> str:
    """A random-init Llama of ``shape`` saved to ``folder`` (so the 4-bit variants can quantize it on load)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device("cpu"):
        model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(folder)
    del model
    return folder


class _Timer:
    """Wraps a collator to time it: host-side work per step."""

    def __init__(self, collator: Any) -> None:
        self.collator, self.seconds = collator, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = self.collator(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        return out


def run_variant(name: str, folder: str, tok: Any, rows: list, *, quant: bool, batch: int, packing: bool,
                ckpt: bool, steps: int, warmup: int, max_length: int, precision: Any, device: str) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    kwargs: dict[str, Any] = {"dtype": precision.dtype, "attn_implementation": "sdpa"}
    if quant:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision.dtype)
        kwargs["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if not quant:
        model = model.to(device)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    args = SFTConfig(output_dir=tempfile.mkdtemp(prefix="sftbench-"), max_steps=warmup + steps,
                     per_device_train_batch_size=batch, max_length=max_length, packing=packing,
                     padding_free=packing, activation_checkpointing=ckpt, bf16=precision.bf16, fp16=precision.fp16,
                     learning_rate=1e-4, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                     dataloader_pin_memory=cuda, use_cpu=not cuda, seed=0)
    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=lora, callbacks=[Stamp()])
    timer = _Timer(trainer.data_collator)
    trainer.data_collator = timer
    start = time.perf_counter()
    trainer.train()
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]  # cumulative, non-pad
    t0 = stamps[warmup - 1] if warmup else start
    seconds = stamps[-1] - t0
    measured_tokens = tokens[-1] - (tokens[warmup - 1] if warmup else 0)
    peak = torch.cuda.max_memory_allocated() / 1024**3 if cuda else None
    result = {"variant": name, "batch": batch, "packing": packing, "ckpt": ckpt, "4-bit": quant,
              "tokens_per_s": measured_tokens / seconds, "peak_gib": peak,
              "collate_share": timer.seconds / max(time.perf_counter() - start, 1e-9), "steps": steps}
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| variant | batch | packing | ckpt | 4-bit | non-pad tok/s | peak GiB | collation share |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "n/a (CPU)"
        lines.append(f"| {r['variant']} | {r['batch']} | {r['packing']} | {r['ckpt']} | {r['4-bit']} | "
                     f"{r['tokens_per_s']:,.0f} | {peak} | {r['collate_share']:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, 2 steps: checks the script runs")
    parser.add_argument("--steps", type=int, default=20, help="measured steps per variant (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--ours-batch", type=int, default=16, help="our micro-batch of packed 512-token rows")
    parser.add_argument("--ours-ckpt", action=argparse.BooleanOptionalAction, default=True,
                        help="gradient checkpointing in our recipe (needed to stay under TRL's peak at batch 16)")
    parser.add_argument("--only", nargs="*", help="run only these variants")
    args = parser.parse_args(argv)

    import torch

    from coursekit.assets import load_tiny
    from coursekit.runtime import pick_precision

    if not torch.cuda.is_available() and not args.smoke:
        print("sft_throughput needs a CUDA GPU (bf16/fp16 training, bitsandbytes 4-bit on the GPU, peak memory from "
              "the CUDA allocator). No GPU here: run it on a GPU machine, or pass --smoke to check the script "
              "on the CPU with tiny shapes.", file=sys.stderr)
        return 2
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    precision = pick_precision(device)
    shape, lo, hi, max_length = (SMOKE_SHAPE, 8, 63, 64) if args.smoke else (FULL_SHAPE, 32, 511, 512)
    steps, warmup = (2, 1) if args.smoke else (args.steps, args.warmup)
    ours_batch = 2 if args.smoke else args.ours_batch
    _, tok = load_tiny("llama")  # only its pad id and the collator are used: the rows are token ids already
    tok.pad_token_id = 0
    n_rows = max(ours_batch, 8) * (steps + warmup) * 2
    rows = random_rows(n_rows, lo, hi, shape["vocab_size"])
    variants = {
        "trl-defaults": {"quant": False, "batch": 8, "packing": False, "ckpt": True},
        "ours": {"quant": False, "batch": ours_batch, "packing": True, "ckpt": args.ours_ckpt},
        "qlora-b1": {"quant": True, "batch": 1, "packing": False, "ckpt": True},
        "qlora-b8": {"quant": True, "batch": 8, "packing": False, "ckpt": True},
        "qlora-ours": {"quant": True, "batch": ours_batch, "packing": True, "ckpt": args.ours_ckpt},
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
    print(f"device {device} · {precision.name} · shape {'smoke' if args.smoke else 'Llama-3.2-3B'} · "
          f"{len(rows)} rows of {lo}-{hi} tokens · max_length {max_length} · LoRA r=16 all-linear · "
          f"{steps} measured steps after {warmup} warm-up")
    results = []
    with tempfile.TemporaryDirectory(prefix="sftbench-base-") as folder:
        build_base(shape, folder, precision.dtype)
        for name, cfg in variants.items():
            results.append(run_variant(name, folder, tok, rows, steps=steps, warmup=warmup, max_length=max_length,
                                       precision=precision, device=device, **cfg))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    by = {r["variant"]: r for r in results}
    if not args.smoke and {"trl-defaults", "ours"} <= set(by):
        print(f"ours / TRL defaults tokens/s: {by['ours']['tokens_per_s'] / by['trl-defaults']['tokens_per_s']:.2f}× "
              "(target ≥ 3×, peak ≤ 7.85 GiB)")
    if not args.smoke and {"qlora-b8", "qlora-ours"} <= set(by):
        print(f"QLoRA ours / TRL batch 8: {by['qlora-ours']['tokens_per_s'] / by['qlora-b8']['tokens_per_s']:.2f}×")
    if args.smoke:
        print("smoke run: these numbers only show that the script runs; they say nothing about GPU speed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
