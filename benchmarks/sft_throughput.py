"""SFT throughput: TRL's SFTTrainer defaults against our recipe settings, LoRA and QLoRA, in one process.

Same model shape (a randomly initialised Llama-3.2-3B, built from a ``LlamaConfig``: no download), same
random-token rows (32-511 tokens, ``max_length`` 512), same LoRA (r=16, all linear layers). Reports non-pad
tokens/s, peak GPU memory, the share of wall time spent collating batches on the host, and (on a GPU) the share of
a few profiled steps in which the GPU ran no kernel: Python overhead, launches and collation together.

    python benchmarks/sft_throughput.py              # needs CUDA (bf16 / fp16 and bitsandbytes on the GPU)
    python benchmarks/sft_throughput.py --smoke      # tiny shapes on the CPU: checks the script runs, nothing more

Variants:
* ``trl-defaults``: SFTConfig defaults that matter here: gradient checkpointing on, no packing, batch 8, padded.
* ``ours``: padding-free packing (TRL best-fit-decreasing; no pad tokens at all), SDPA attention, a micro-batch
  sized to the GPU by measurement: ``--ours-batch 8 12 16`` runs one ``ours-bN`` per size, and the summary picks
  the fastest whose peak stays within TRL's. Checkpointing is switchable (``--no-ours-ckpt``), and
  ``--ours-compile`` adds ``torch.compile``. ``--ours-attn flex_attention`` is worth a try: padding-free packing
  flattens the micro-batch into one long row with a block-diagonal mask, and SDPA's masked kernels still compute
  the masked-out blocks (attention cost grows with the micro-batch squared), while FlexAttention skips them. (TRL's selective checkpointing is left out: with transformers 5.23
  its ``selective`` key reaches ``torch.utils.checkpoint`` and fails.)
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


def build_base(shape: dict[str, Any], folder: str, dtype: Any, device: str = "cpu") -> str:
    """A random-init Llama of ``shape`` saved to ``folder`` (so the 4-bit variants can quantize it on load)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**shape, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device(device):  # a 3B init takes a minute on the CPU, a second on a GPU
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


def _stamps_callback(cuda: bool, profile_from: int, profile_steps: int) -> Any:
    """A TrainerCallback that stamps each step's end and profiles the GPU's kernels over a few steps.

    ``gpu_idle`` is then the share of those steps' wall time in which no kernel ran (host-bound time).
    Without CUDA no device time is recorded, so a profiled window reads as 100% idle.
    """
    import torch
    from transformers import TrainerCallback

    class Stamps(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self.gpu_idle: float | None = None
            self._prof: Any = None

        def on_step_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if profile_steps and state.global_step == profile_from:
                if cuda:
                    torch.cuda.synchronize()
                activity = torch.profiler.ProfilerActivity.CUDA if cuda else torch.profiler.ProfilerActivity.CPU
                self._prof = torch.profiler.profile(activities=[activity])
                self._prof.__enter__()
                self._t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())
            if self._prof is not None and state.global_step == profile_from + profile_steps:
                wall_us = (time.perf_counter() - self._t0) * 1e6
                self._prof.__exit__(None, None, None)
                busy_us = sum(e.self_device_time_total for e in self._prof.key_averages())
                self.gpu_idle, self._prof = max(0.0, 1 - busy_us / wall_us), None

    return Stamps()


def run_variant(name: str, folder: str, tok: Any, rows: list, *, quant: bool, batch: int, packing: bool,
                ckpt: bool, steps: int, warmup: int, max_length: int, precision: Any, device: str,
                compile: bool = False, attn: str = "sdpa", profile_steps: int = 3) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    from coursekit.quant import bnb_config

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    kwargs: dict[str, Any] = {"dtype": precision.dtype, "attn_implementation": attn}
    if quant:
        kwargs["quantization_config"] = bnb_config(4, precision.dtype)  # nf4 + double quant
        kwargs["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    if not quant:
        model = model.to(device)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    profile_steps = profile_steps if cuda else 0
    args = SFTConfig(output_dir=tempfile.mkdtemp(prefix="sftbench-"), max_steps=warmup + steps + profile_steps,
                     per_device_train_batch_size=batch, max_length=max_length, packing=packing,
                     padding_free=packing, activation_checkpointing=ckpt,
                     torch_compile=compile, bf16=precision.bf16, fp16=precision.fp16,
                     learning_rate=1e-4, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                     dataloader_pin_memory=cuda, use_cpu=not cuda, seed=0)
    stamps = _stamps_callback(cuda, warmup + steps, profile_steps)
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                         peft_config=lora, callbacks=[stamps])
    timer = _Timer(trainer.data_collator)
    trainer.data_collator = timer
    start = time.perf_counter()
    trainer.train()
    tokens = [h["num_tokens"] for h in trainer.state.log_history if "num_tokens" in h]  # cumulative, non-pad
    end = warmup + steps - 1  # the last measured step; profiled steps come after it
    t0 = stamps.times[warmup - 1] if warmup else start
    measured_tokens = tokens[end] - (tokens[warmup - 1] if warmup else 0)
    peak = torch.cuda.max_memory_allocated() / 1024**3 if cuda else None
    result = {"variant": name, "batch": batch, "packing": packing,
              "ckpt": ckpt, "compile": compile, "attn": attn, "4-bit": quant,
              "tokens_per_s": measured_tokens / (stamps.times[end] - t0), "peak_gib": peak,
              "collate_share": timer.seconds / max(time.perf_counter() - start, 1e-9),
              "gpu_idle": stamps.gpu_idle, "steps": steps}
    del trainer, model
    if cuda:
        torch.cuda.empty_cache()
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| variant | batch | packing | ckpt | compile | attention | 4-bit | non-pad tok/s | peak GiB "
             "| collation share | GPU idle |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "n/a (CPU)"
        idle = f"{r['gpu_idle']:.1%}" if r["gpu_idle"] is not None else "n/a"
        lines.append(f"| {r['variant']} | {r['batch']} | {r['packing']} | {r['ckpt']} | {r['compile']} | {r['attn']} | "
                     f"{r['4-bit']} | {r['tokens_per_s']:,.0f} | {peak} | {r['collate_share']:.1%} | {idle} |")
    return "\n".join(lines)


def best_within(results: list[dict[str, Any]], prefix: str, budget: float) -> dict[str, Any] | None:
    """The fastest result named ``prefix``… whose peak is at most ``budget`` GiB.

    >>> rs = [{"variant": "ours-b8", "tokens_per_s": 5, "peak_gib": 7.0}, {"variant": "ours-b16", "tokens_per_s": 9, "peak_gib": 9.0}]
    >>> best_within(rs, "ours", 7.85)["variant"]
    'ours-b8'
    """
    fits = [r for r in results if r["variant"].startswith(prefix) and r["peak_gib"] is not None
            and r["peak_gib"] <= budget]
    return max(fits, key=lambda r: r["tokens_per_s"], default=None)


def summary(results: list[dict[str, Any]]) -> list[str]:
    """Target lines (issue 5): each 'ours' against TRL measured in this run, within the peak budgets."""
    by = {r["variant"]: r for r in results}
    lines = []
    pairs = (("ours", "trl-defaults", 7.85, "≥ 3× at a peak ≤ 7.85 GiB (the anchor's TRL peak) and ≤ TRL's here"),
             ("qlora-ours", "qlora-b8", None, "≥ 3× at a peak within 10% of TRL batch 8's"))
    for prefix, ref_name, anchor, target in pairs:
        ref = by.get(ref_name)
        if ref is None or ref["peak_gib"] is None:
            continue
        budget = min(anchor, ref["peak_gib"]) if anchor else 1.10 * ref["peak_gib"]
        best = best_within(results, prefix + "-b", budget)
        if best is None:
            lines.append(f"{prefix}: no setting stayed within {budget:.2f} GiB (target {target})")
            continue
        ratio = best["tokens_per_s"] / ref["tokens_per_s"]
        lines.append(f"{prefix}: best within {budget:.2f} GiB is {best['variant']}: {ratio:.2f}× {ref_name} "
                     f"({best['tokens_per_s']:,.0f} vs {ref['tokens_per_s']:,.0f} tok/s, peak {best['peak_gib']:.2f} "
                     f"GiB); target {target}: {'MET' if ratio >= 3 else 'not met'}")
    if "qlora-b1" in by and by["qlora-b1"]["peak_gib"] is not None:
        peak = by["qlora-b1"]["peak_gib"]
        lines.append(f"qlora-b1 peak {peak:.2f} GiB; target ≤ 2.47 GiB: {'MET' if peak <= 2.47 else 'not met'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, 2 steps: checks the script runs")
    parser.add_argument("--steps", type=int, default=20, help="measured steps per variant (after warm-up)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--ours-batch", type=int, nargs="+", default=[8, 12, 16],
                        help="micro-batches of packed 512-token rows to try for 'ours' (one run each)")
    parser.add_argument("--ours-ckpt", action=argparse.BooleanOptionalAction, default=True,
                        help="gradient checkpointing in our recipe")
    parser.add_argument("--ours-compile", action="store_true", help="torch.compile our model (SFTConfig.torch_compile)")
    parser.add_argument("--ours-attn", choices=("sdpa", "flex_attention"), default="sdpa",
                        help="flex_attention skips the masked-out blocks of packed rows (GPU only: no CPU backward)")
    parser.add_argument("--only", nargs="*", help="run only these variants (ours-bN for a size, or 'ours' for all)")
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
    if device == "cpu" and args.ours_attn == "flex_attention":
        print("flex_attention has no backward on the CPU: use --ours-attn sdpa here, or run on a GPU.", file=sys.stderr)
        return 2
    precision = pick_precision(device)
    shape, lo, hi, max_length = (SMOKE_SHAPE, 8, 63, 64) if args.smoke else (FULL_SHAPE, 32, 511, 512)
    steps, warmup = (2, 1) if args.smoke else (args.steps, args.warmup)
    ours_batches = [2] if args.smoke else args.ours_batch
    _, tok = load_tiny("llama")  # only its pad id and the collator are used: the rows are token ids already
    tok.pad_token_id = 0
    n_rows = max(*ours_batches, 8) * (steps + warmup + 3) * 2
    rows = random_rows(n_rows, lo, hi, shape["vocab_size"])
    ours = {"packing": True, "ckpt": args.ours_ckpt, "compile": args.ours_compile, "attn": args.ours_attn}
    variants: dict[str, dict[str, Any]] = {"trl-defaults": {"quant": False, "batch": 8, "packing": False, "ckpt": True}}
    variants |= {f"ours-b{b}": {"quant": False, "batch": b, **ours} for b in ours_batches}
    variants |= {"qlora-b1": {"quant": True, "batch": 1, "packing": False, "ckpt": True},
                 "qlora-b8": {"quant": True, "batch": 8, "packing": False, "ckpt": True}}
    variants |= {f"qlora-ours-b{b}": {"quant": True, "batch": b, **ours} for b in ours_batches}
    if args.only:
        variants = {k: v for k, v in variants.items()
                    if k in args.only or any(k.startswith(o + "-b") for o in args.only)}
    print(f"device {device} · {precision.name} · shape {'smoke' if args.smoke else 'Llama-3.2-3B'} · "
          f"{len(rows)} rows of {lo}-{hi} tokens · max_length {max_length} · LoRA r=16 all-linear · "
          f"{steps} measured steps after {warmup} warm-up")
    results = []
    with tempfile.TemporaryDirectory(prefix="sftbench-base-") as folder:
        build_base(shape, folder, precision.dtype, device)
        for name, cfg in variants.items():
            results.append(run_variant(name, folder, tok, rows, steps=steps, warmup=warmup, max_length=max_length,
                                       precision=precision, device=device, **cfg))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    for line in summary(results):
        print(line)
    if args.smoke:
        print("smoke run: these numbers only show that the script runs; they say nothing about GPU speed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
