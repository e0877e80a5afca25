"""Pretrain a GPT-2 from the command line, in one process or under ``torchrun``.

    python -m coursekit.pretrain --data-dir runs/data --output-dir runs/gpt2 --max-steps 50
    torchrun --standalone --nproc_per_node 8 -m coursekit.pretrain --data-dir ... --output-dir ...

One flag per field of ``GPT2Config`` and of ``pretraining.PretrainConfig`` (underscores
become dashes; booleans take ``true``/``false``), plus ``--precision``, ``--log-file``
and ``--no-resume``. A bad value is ``error: ...`` and exit status 2; rank 0 prints a start line and a summary::

    >>> args = build_parser().parse_args(["--n-layer", "2", "--learning-rate", "3e-3", "--torch-compile", "true"])
    >>> args.n_layer, args.learning_rate, args.torch_compile, args.precision
    (2, 0.003, True, 'auto')
    >>> profile_for("fp16", get_profile("smoke", verbose=False)).precision.name   # a CPU: fp32, said in one line
    fp16 asked for, but there is no CUDA GPU: training in fp32 (no CUDA: fp32 on CPU)
    'fp32'
    >>> profile_for("banana")
    Traceback (most recent call last):
    ValueError: --precision banana: unknown precision; use one of auto, bf16, fp16, fp32
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from coursekit.gpt2 import GPT2Config
from coursekit.pretraining import PretrainConfig, PretrainRun, pretrain
from coursekit.runtime import PRECISIONS as PROFILE_PRECISIONS
from coursekit.runtime import Profile, get_profile

PRECISIONS = ("auto", *PROFILE_PRECISIONS)  # "auto": what the device does best


def _parse_bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def build_parser() -> argparse.ArgumentParser:
    """The command line: the two configs' fields, with their defaults, and the run's own flags."""
    p = argparse.ArgumentParser(description="Pretrain GPT-2 on uint16 token shards (single process or torchrun).")
    for group, cls in (("model", GPT2Config), ("train", PretrainConfig)):
        for f in fields(cls):
            flag = f"--{f.name.replace('_', '-')}"
            kind = _parse_bool if isinstance(f.default, bool) else type(f.default)
            p.add_argument(flag, type=kind, default=f.default, help=f"{group} ({f.default})")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: the profile's (bf16 on recent GPUs, fp16 on a T4, fp32 on a CPU)")
    p.add_argument("--log-file", default=None, help="append one JSON line per step here")
    p.add_argument("--no-resume", action="store_true")
    return p


def profile_for(precision: str, profile: Profile | None = None) -> Profile:
    """``profile`` (default: this machine's) asking for ``precision``, under the rules a recipe's request follows
    (``Profile.asking``): bf16 where the GPU lacks it falls back to fp16, anything on a CPU stays fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision}: unknown precision; use one of {', '.join(PRECISIONS)}")
    profile = get_profile(verbose=False) if profile is None else profile
    request = {"auto": ("auto", False), "bf16": (True, False), "fp16": (False, True), "fp32": (False, False)}
    bf16, fp16 = request[precision]
    return profile.asking(bf16=bf16, fp16=fp16)


def _config(cls: type, args: dict[str, Any]) -> Any:
    return cls(**{f.name: args[f.name] for f in fields(cls)})


def start_line(model_cfg: GPT2Config, cfg: PretrainConfig, profile: Profile, world_size: int = 1) -> str:
    """What the run is about to do, in one line."""
    return (f"pretraining: {model_cfg.n_layer} layers × {model_cfg.n_embd} wide, vocab {model_cfg.vocab_size} · "
            f"{cfg.max_steps:,} steps of {cfg.tokens_per_step(world_size):,} tokens · {profile.device} "
            f"{profile.precision.name} · {world_size} process(es) · data {cfg.data_dir} → {cfg.output_dir}")


def summary_line(run: PretrainRun, cfg: PretrainConfig) -> str:
    """How the run ended, in one line."""
    loss = f"final loss {run.losses[-1]:.4f}" if run.losses else "no steps trained"
    val = f" · validation loss {run.val[-1][1]:.4f} at step {run.val[-1][0]}" if run.val else ""
    return f"done: step {run.step} · {loss}{val} · {run.tokens_per_s:,.0f} tokens/s · checkpoint in {cfg.output_dir}"


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the flags, check them before any work (``error: ...``, exit status 2), train, and summarise."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    try:
        model_cfg, cfg = _config(GPT2Config, args), _config(PretrainConfig, args)
        profile = profile_for(args["precision"])
    except ValueError as err:
        parser.error(str(err))
    main_rank = os.environ.get("RANK", "0") == "0"
    if main_rank:
        print(start_line(model_cfg, cfg, profile, int(os.environ.get("WORLD_SIZE", "1"))), flush=True)
    run = pretrain(model_cfg, cfg, profile=profile, resume=not args["no_resume"], log_path=args["log_file"])
    if main_rank:
        print(summary_line(run, cfg), flush=True)


if __name__ == "__main__":
    main()
