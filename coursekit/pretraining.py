"""The pretraining loop: schedule, AdamW groups, accumulation, mixed precision, checkpoints, DDP.

One process or many (``torchrun``; ``coursekit.pretrain`` is the command line). Each rank reads its own
slice of every global batch (``shards.ShardLoader``): N ranks see what one process with N× the accumulation
sees. The LR warms up linearly, then follows a cosine down to ``min_lr_ratio`` of the peak; AdamW decays
matrices only. The Profile's precision rules: bf16 autocast, fp16 with a GradScaler, or fp32. Checkpoints
(``coursekit.checkpoints``) every ``save_steps`` and at the end let a killed run resume bit for bit.

A run of three steps on a repeating token pattern::

    >>> import tempfile
    >>> from coursekit.shards import write_shards
    >>> data = tempfile.mkdtemp()
    >>> _ = write_shards(list(range(64)) * 20, data, "train")
    >>> cfg = PretrainConfig(data_dir=data, output_dir=tempfile.mkdtemp(), batch_size=2, max_length=16,
    ...                      max_steps=3, warmup_steps=1, progress=False)
    >>> cfg.tokens_per_step()   # batch_size × max_length × gradient_accumulation_steps
    32
    >>> run = pretrain(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=64), cfg)
    >>> run.step, len(run.losses), len(run.lrs)
    (3, 3, 3)
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from coursekit.checkpoints import CKPT_NAME, restore_checkpoint, save_checkpoint
from coursekit.distributed import Dist, mean_across, setup_distributed
from coursekit.gpt2 import GPT2, GPT2Config
from coursekit.runtime import Precision, Profile, effective_seed, get_profile
from coursekit.shards import ShardLoader

EvalFn = Callable[[nn.Module], dict[str, float]]
_LIMITS = {  # a setting, its least valid value, and the fix its error names
    "max_steps": (1, "give the number of optimizer steps to train (pretraining runs by steps, not epochs)"),
    "gradient_accumulation_steps": (1, "use 1 for no accumulation, N to sum N micro-batches per step"),
    "batch_size": (1, "give the rows per micro-batch"), "max_length": (1, "give the tokens per row"),
    "eval_batches": (1, "give the batches per evaluation (eval_steps=0 turns evaluation off)"),
    "warmup_steps": (0, "use 0 for no warm-up"), "eval_steps": (0, "use 0 for no evaluation during training"),
    "save_steps": (0, "use 0 for a checkpoint only at the end")}


@dataclass
class PretrainConfig:
    """Every setting of a pretraining run besides the model's sizes, with Hugging Face's names."""

    data_dir: str = "runs/data"
    output_dir: str = "runs/gpt2"
    batch_size: int = 8  # micro-batch, per process
    max_length: int = 128  # tokens per row of a micro-batch
    gradient_accumulation_steps: int = 1  # micro-steps per optimizer step, per process
    max_steps: int = 100
    learning_rate: float = 6e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    max_grad_norm: float = 1.0
    eval_steps: int = 0  # 0: no evaluation during training
    eval_batches: int = 4
    save_steps: int = 0  # 0: a checkpoint only at the end
    torch_compile: bool = False
    seed: int = 1337
    progress: bool = True

    def __post_init__(self) -> None:
        for name, (least, fix) in _LIMITS.items():
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)}: must be at least {least}; {fix}")

    def tokens_per_step(self, world_size: int = 1) -> int:
        return self.batch_size * self.max_length * self.gradient_accumulation_steps * world_size


@dataclass
class PretrainRun:
    """What ``pretrain`` returns."""

    model: GPT2  # the plain model, outside any DDP or torch.compile wrapper
    losses: list[float]  # per optimizer step from step 1; a resumed run's start from its checkpoint's history
    lrs: list[float]  # the learning rate of each step this call trained
    val: list[tuple[int, float]]  # (step, validation loss) every eval_steps
    evals: list[tuple[int, dict[str, float]]]  # (step, what eval_fn returned) every eval_steps
    tokens_per_s: float  # of the last step
    step: int  # the step reached


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to ``min_lr_ratio`` of it at ``max_steps``.

    >>> cfg = PretrainConfig(learning_rate=6e-4, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    >>> [round(lr_at(s, cfg) / cfg.learning_rate, 3) for s in (0, 9, 10, 60, 110, 200)]  # fraction of the peak
    [0.1, 1.0, 1.0, 0.55, 0.1, 0.1]
    """
    peak = cfg.learning_rate
    if step < cfg.warmup_steps:
        return peak * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    min_lr = peak * cfg.min_lr_ratio
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - min_lr)


def make_optimizer(model: nn.Module, cfg: PretrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW; matrices (embeddings, weights) decay, biases and LayerNorm gains do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.95), eps=1e-8, fused=device == "cuda")


PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "T4": 65e12}


def peak_flops(device: str) -> float | None:
    """Dense bf16/fp16 peak of the GPU in use, for MFU; None when unknown or on CPU."""
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    # a key followed by a digit is another GPU: "L4" is not "L40S", "A10" not "A100"
    return next((v for k, v in PEAK_FLOPS.items() if re.search(rf"\b{k}(?!\d)", name)), None)


def flops_per_token(cfg: GPT2Config, seq_len: int, n_params: int) -> float:
    """Training FLOPs per token: 6N for the weights plus attention's 12·L·C·T."""
    return 6 * n_params + 12 * cfg.n_layer * cfg.n_embd * seq_len


def maybe_compile(model: nn.Module, want: bool, device: str) -> nn.Module:
    """``torch.compile(model)`` when wanted and on CUDA; elsewhere one printed line, and the eager model."""
    if not want:
        return model
    if device != "cuda":
        print(f"compile: skipped on {device} (Triton kernels need a CUDA GPU); running eager")
        return model
    return torch.compile(model)


def evaluate(model: nn.Module, loader: ShardLoader, batches: int, device: str, precision: Precision) -> float:
    """Mean loss over ``batches`` batches of ``loader``, in eval mode, without gradients."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(batches):
            x, y = (t.to(device) for t in loader.next_batch())
            with precision.autocast(device):
                total += model(x, targets=y)[1].item()
    model.train()
    return total / batches


def check_finite(loss: float, step: int, scaler: Any) -> None:
    """Stop on a NaN/inf loss or a collapsing fp16 loss scale instead of training through it."""
    if not math.isfinite(loss):
        raise FloatingPointError(f"Loss is {loss} at step {step}: lower the learning rate or use bf16/fp32.")
    if scaler is not None and scaler.is_enabled() and scaler.get_scale() < 1e-3:
        raise FloatingPointError(f"The fp16 loss scale collapsed to {scaler.get_scale():.1e} at step {step}: "
                                 "gradients overflow every step. Use bf16, or lower the learning rate.")


def pretrain(model_cfg: GPT2Config, cfg: PretrainConfig, *, profile: Profile | None = None, resume: bool = True,
             log_path: str | Path | None = None, stop_after: int | None = None,
             eval_fn: EvalFn | None = None) -> PretrainRun:
    """Train a GPT-2 on the shards in ``cfg.data_dir``; resume from ``output_dir/ckpt.pt`` if present.

    ``profile`` (default: ``get_profile(verbose=False)``) gives the device and the precision. ``stop_after``
    ends the run early at that step, with a checkpoint, as a preemption would; the schedule still follows
    ``max_steps``. ``eval_fn`` (e.g. HellaSwag-style accuracy) runs on rank 0 every ``eval_steps`` steps, the
    model in eval mode, into ``PretrainRun.evals``. ``log_path`` gets a JSON line per step (step, loss, lr).
    """
    profile = get_profile(verbose=False) if profile is None else profile
    d = setup_distributed(profile.device)
    loop = _Loop.start(model_cfg, cfg, profile, d)
    run = PretrainRun(loop.model, [], [], [], [], 0.0, 0)
    ckpt_path = Path(cfg.output_dir) / CKPT_NAME
    if resume and ckpt_path.exists():
        run.step, reports = restore_checkpoint(ckpt_path, model_cfg, loop.model, loop.optimizer, loop.scaler,
                                               {"train": loop.loader, "val": loop.val_loader})
        run.losses, run.val, run.evals = reports["losses"], reports["val"], reports["evals"]
        if d.main:
            print(f"resumed from {ckpt_path} at step {run.step}")
    train_model = loop.wrapped(profile.device)
    bar = tqdm(total=cfg.max_steps, initial=run.step, disable=not (cfg.progress and d.main), desc="train")
    log = open(log_path, "a") if (log_path and d.main) else None  # noqa: SIM115 (closed in the finally below)
    try:
        while run.step < min(cfg.max_steps, stop_after or cfg.max_steps):
            loop.train_step(train_model, run)
            _report(bar, log, run, loop.mfu_per_token_s)
            loop.evaluate_at(run, eval_fn)
            if d.main and cfg.save_steps and run.step % cfg.save_steps == 0:
                loop.save(ckpt_path, run)
        if d.main and run.lrs and not (cfg.save_steps and run.step % cfg.save_steps == 0):  # unless just saved
            loop.save(ckpt_path, run)
    finally:
        bar.close()
        if log:
            log.close()
        if d.world_size > 1:
            dist.destroy_process_group()
    return run


def _seed_process(seed: int, rank: int) -> None:
    used = effective_seed(seed)  # $COURSEKIT_SEED shifts it, as it shifts seed_everything
    torch.manual_seed(used + rank)  # each rank's own dropout masks
    random.seed(used)
    np.random.seed(used)


@dataclass
class _Loop:
    """One run's moving parts, so that each phase of ``pretrain`` is one short method."""

    model_cfg: GPT2Config
    cfg: PretrainConfig
    precision: Precision
    d: Dist
    device: str  # where tensors go: "cuda:<local_rank>" under torchrun
    model: GPT2
    optimizer: torch.optim.AdamW
    scaler: torch.amp.GradScaler
    loader: ShardLoader
    val_loader: ShardLoader | None
    mfu_per_token_s: float | None  # MFU of one token a second (FLOPs per token / peak FLOP/s); None off a known GPU

    @classmethod
    def start(cls, model_cfg: GPT2Config, cfg: PretrainConfig, profile: Profile, d: Dist) -> _Loop:
        device = f"cuda:{d.local_rank}" if profile.device == "cuda" else profile.device
        _seed_process(cfg.seed, d.rank)  # before the model: its initial weights come from this seed
        model = GPT2(model_cfg).to(device)
        optimizer = make_optimizer(model, cfg, profile.device)
        scaler = torch.amp.GradScaler(profile.device, enabled=profile.precision.fp16)
        loader = ShardLoader(cfg.data_dir, "train", cfg.batch_size, cfg.max_length, d.rank, d.world_size)
        val_loader = None
        if cfg.eval_steps and list(Path(cfg.data_dir).glob("val_*.npy")):
            val_loader = ShardLoader(cfg.data_dir, "val", cfg.batch_size, cfg.max_length, d.rank, d.world_size)
        elif cfg.eval_steps and d.main:
            print(f"eval_steps={cfg.eval_steps}, but {cfg.data_dir} has no val_*.npy shards: no validation loss this "
                  "run (prepare_shards writes them; eval_fn still runs)")
        for shards in (loader, val_loader):  # an id past the embedding fails now, not at some step (or on a GPU)
            if shards:
                shards.check_vocab(model_cfg.vocab_size)
        peak = peak_flops(profile.device)
        mfu = flops_per_token(model_cfg, cfg.max_length, model.num_params()) / peak if peak else None
        return cls(model_cfg, cfg, profile.precision, d, device, model, optimizer, scaler, loader, val_loader, mfu)

    def wrapped(self, device_type: str) -> nn.Module:
        """The model to train: compiled if asked (CUDA only), in DDP under torchrun."""
        model = maybe_compile(self.model, self.cfg.torch_compile, device_type)
        if self.d.world_size > 1:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.d.local_rank] if device_type == "cuda" else None)
        return model

    def train_step(self, model: nn.Module, run: PretrainRun) -> None:
        """One optimizer step at the schedule's LR; its loss, LR and speed go into ``run``."""
        t0 = time.perf_counter()
        lr = lr_at(run.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = mean_across(self._accumulate(model), self.d)
        check_finite(loss, run.step + 1, self.scaler)  # the step this loss belongs to, as logged
        run.step += 1
        run.losses.append(loss)
        run.lrs.append(lr)
        run.tokens_per_s = self.cfg.tokens_per_step(self.d.world_size) / (time.perf_counter() - t0)

    def _accumulate(self, model: nn.Module) -> float:
        """Gradients of ``gradient_accumulation_steps`` micro-batches, clipped, then the step; the mean loss."""
        steps = self.cfg.gradient_accumulation_steps
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(steps):
            x, y = (t.to(self.device) for t in self.loader.next_batch())  # (B, T) each
            last = micro == steps - 1
            # Under DDP, all-reduce gradients only on the last micro-step.
            sync = model.no_sync() if (isinstance(model, nn.parallel.DistributedDataParallel) and not last) \
                else contextlib.nullcontext()
            with sync:
                with self.precision.autocast(self.device):
                    _, loss = model(x, targets=y)
                self.scaler.scale(loss / steps).backward()
            total += loss.item()
        if self.cfg.max_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return total / steps

    def evaluate_at(self, run: PretrainRun, eval_fn: EvalFn | None) -> None:
        """Every ``eval_steps`` steps: the validation loss (all ranks) and ``eval_fn`` (rank 0)."""
        every = self.cfg.eval_steps
        if not every or run.step % every:
            return
        if self.val_loader:
            loss = evaluate(self.model, self.val_loader, self.cfg.eval_batches, self.device, self.precision)
            run.val.append((run.step, mean_across(loss, self.d)))
        if eval_fn and self.d.main:
            with torch.no_grad():
                run.evals.append((run.step, eval_fn(self.model.eval())))
            self.model.train()

    def save(self, path: Path, run: PretrainRun) -> None:
        save_checkpoint(path, self.model, self.optimizer, self.scaler, run.step,
                        {"train": self.loader, "val": self.val_loader}, self.model_cfg, self.cfg,
                        {"losses": run.losses, "val": run.val, "evals": run.evals})


def _report(bar: Any, log: IO[str] | None, run: PretrainRun, mfu_per_token_s: float | None) -> None:
    """The progress bar's postfix (MFU: the fraction of the GPU's peak FLOP/s), and the step's JSON log line."""
    loss, lr = run.losses[-1], run.lrs[-1]
    mfu = run.tokens_per_s * mfu_per_token_s if mfu_per_token_s else None
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{run.tokens_per_s:,.0f}",
                    **({"mfu": f"{mfu:.1%}"} if mfu else {}))
    if log:
        log.write(json.dumps({"step": run.step, "loss": loss, "lr": lr}) + "\n")
        log.flush()
