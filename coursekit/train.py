"""The pretraining loop: shards, schedule, accumulation, AMP, checkpoints, DDP.

One process or many, the same file::

    python -m coursekit.train --data-dir runs/pydoc --out-dir runs/gpt2 --max-steps 50
    torchrun --standalone --nproc_per_node 8 -m coursekit.train --data-dir ... --out-dir ...

* **Data**: token shards as uint16 ``.npy`` files read through memmaps. Every
  rank reads its own slice of each global batch, so N ranks see what one
  process with N× the accumulation would see.
* **Schedule**: linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak.
* **Optimizer**: AdamW with weight decay on matrices only; fused on CUDA.
* **Precision**: autocast in bf16, or fp16 with a GradScaler, as
  ``pick_precision`` decides; fp32 on CPU.
* **Checkpoints** hold the model, optimizer, scaler, step, data position and
  every RNG state; written to a temporary file, then renamed, so a kill never
  leaves half a checkpoint. A resumed run continues bit for bit on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from coursekit.gpt2 import GPT2, GPT2Config, config_mismatch
from coursekit.runtime import effective_seed, get_device, pick_precision

CKPT_NAME = "ckpt.pt"


@dataclass
class TrainConfig:
    """Everything the loop needs besides the model's own sizes."""

    data_dir: str = "runs/data"
    out_dir: str = "runs/gpt2"
    batch_size: int = 8  # micro-batch, per process
    seq_len: int = 128
    grad_accum: int = 1  # micro-steps per optimizer step, per process
    max_steps: int = 100
    lr: float = 6e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: no evaluation during training
    eval_batches: int = 4
    ckpt_every: int = 0  # 0: only at the end
    compile: bool = False
    precision: str = "auto"  # auto | bf16 | fp16 | fp32
    seed: int = 1337
    progress: bool = True

    def tokens_per_step(self, world_size: int = 1) -> int:
        return self.batch_size * self.seq_len * self.grad_accum * world_size


# ---------------------------------------------------------------- data
SHARD_TOKENS = 100_000_000  # 200 MB of uint16 per shard file, as in nanoGPT's FineWeb script


class ShardWriter:
    """Appends token ids to uint16 shards ``<split>_000000.npy``, ``<split>_000001.npy``, ...

    Only one shard's buffer is held in memory, so a 10B-token corpus can stream through::

        >>> import tempfile
        >>> w = ShardWriter(tempfile.mkdtemp(), "train", shard_tokens=4)
        >>> w.add([1, 2, 3]); w.add([4, 5, 6, 7, 8, 9])
        >>> [p.name for p in w.close()], w.total
        (['train_000000.npy', 'train_000001.npy', 'train_000002.npy'], 9)
    """

    def __init__(self, out_dir: str | Path, split: str, shard_tokens: int = SHARD_TOKENS) -> None:
        self.out, self.split = Path(out_dir), split
        self.out.mkdir(parents=True, exist_ok=True)
        self.buffer = np.empty(shard_tokens, dtype=np.uint16)
        self.fill, self.total, self.paths = 0, 0, []

    def add(self, ids: Sequence[int] | np.ndarray) -> None:
        arr = np.asarray(ids)
        if arr.size and (arr.min() < 0 or arr.max() >= 2**16):
            raise ValueError(f"Token ids must be in [0, 65535] to fit uint16; got [{arr.min()}, {arr.max()}].")
        while arr.size:
            take = min(arr.size, len(self.buffer) - self.fill)
            self.buffer[self.fill:self.fill + take] = arr[:take]
            self.fill, self.total, arr = self.fill + take, self.total + take, arr[take:]
            if self.fill == len(self.buffer):
                self._flush()

    def _flush(self) -> None:
        path = self.out / f"{self.split}_{len(self.paths):06d}.npy"
        np.save(path, self.buffer[: self.fill])
        self.paths.append(path)
        self.fill = 0

    def close(self) -> list[Path]:
        """Write the last, partial shard; returns every shard's path."""
        if self.fill:
            self._flush()
        return self.paths


def write_shards(tokens: Sequence[int] | np.ndarray, out_dir: str | Path, split: str,
                 shard_tokens: int = SHARD_TOKENS) -> list[Path]:
    """Write token ids as uint16 ``<split>_000000.npy`` shards. Ids must be < 65,536."""
    writer = ShardWriter(out_dir, split, shard_tokens)
    writer.add(tokens)
    return writer.close()


def prepare_shards(docs: Iterable[str], encode: Any, eot: int, out_dir: str | Path, val_every: int = 10,
                   shard_tokens: int = SHARD_TOKENS, workers: int = 1, progress: bool = False) -> dict[str, int]:
    """Tokenize ``docs`` (a list or a stream) into train/val shards; every ``val_every``-th document is val.

    Each document is followed by ``eot``. Nothing but one shard per split is held
    in memory, so a streamed 10B-token corpus works; ``workers`` > 1 tokenizes in
    a process pool (``encode`` must then be picklable, as tiktoken's is).
    Returns the token count per split and the number of documents.
    """
    if val_every < 2:
        raise ValueError(f"val_every must be >= 2 (every n-th document goes to val); got {val_every}.")
    writers = {name: ShardWriter(out_dir, name, shard_tokens) for name in ("train", "val")}
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    encoded = pool.imap(encode, docs, chunksize=16) if pool else map(encode, docs)
    n = 0
    try:
        for n, ids in enumerate(tqdm(encoded, desc="tokenizing", unit=" docs", disable=not progress), start=1):
            writers["val" if n % val_every == 0 else "train"].add([*ids, eot])
    finally:
        if pool:
            pool.terminate()
    if n == 0:
        raise ValueError("No documents to tokenize.")
    counts = {name: w.total for name, w in writers.items()}
    for w in writers.values():
        w.close()
    return {**counts, "documents": n}


class ShardLoader:
    """Reads (B, T) batches from uint16 shards; rank r of W takes slice r of each W·B·T block."""

    def __init__(self, data_dir: str | Path, split: str, batch_size: int, seq_len: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.paths = sorted(Path(data_dir).glob(f"{split}_*.npy"))
        if not self.paths:
            raise FileNotFoundError(f"No {split}_*.npy shards in {data_dir}. Write them with prepare_shards() (documents) or write_shards() (token ids).")
        self.B, self.T, self.rank, self.world = batch_size, seq_len, rank, world_size
        need = batch_size * seq_len * world_size + 1
        sizes = [len(np.load(p, mmap_mode="r")) for p in self.paths]
        if max(sizes) < need:
            raise ValueError(f"The {split} shards are too short for one batch: the largest has {max(sizes):,} "
                             f"tokens, one batch needs {need:,} (batch {batch_size} × seq_len {seq_len} × "
                             f"{world_size} processes + 1). Use a smaller batch/seq_len or more data.")
        self.shard, self.pos = 0, 0
        self._tokens = np.load(self.paths[0], mmap_mode="r")

    def state_dict(self) -> dict[str, int]:
        return {"shard": self.shard, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.shard, self.pos = int(state["shard"]), int(state["pos"])
        self._tokens = np.load(self.paths[self.shard], mmap_mode="r")

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        block = self.B * self.T
        while self.pos + block * self.world + 1 > len(self._tokens):  # next shard, wrapping round
            self.shard = (self.shard + 1) % len(self.paths)
            self.pos = 0
            self._tokens = np.load(self.paths[self.shard], mmap_mode="r")
        start = self.pos + self.rank * block
        buf = torch.from_numpy(self._tokens[start:start + block + 1].astype(np.int64))
        self.pos += block * self.world
        return buf[:-1].view(self.B, self.T), buf[1:].view(self.B, self.T)  # x, y: (B, T)


# ---------------------------------------------------------------- schedule and optimizer
def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``min_lr_ratio·lr`` at ``max_steps``.

    >>> cfg = TrainConfig(lr=6e-4, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    >>> [round(lr_at(s, cfg) / cfg.lr, 3) for s in (0, 9, 10, 60, 110, 200)]  # fraction of the peak
    [0.1, 1.0, 1.0, 0.55, 0.1, 0.1]
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    min_lr = cfg.lr * cfg.min_lr_ratio
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def make_optimizer(model: nn.Module, cfg: TrainConfig, device: str) -> torch.optim.AdamW:
    """AdamW; matrices (embeddings, weights) decay, biases and LayerNorm gains do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), eps=1e-8, fused=device == "cuda")


# ---------------------------------------------------------------- checkpoints
def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DDP and/or torch.compile wrappers (no ``_orig_mod.`` keys)."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any,
                    step: int, loader: ShardLoader, model_cfg: GPT2Config, train_cfg: TrainConfig,
                    history: list[float]) -> Path:
    """Write everything needed to resume exactly; atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "step": step,
            "loader": loader.state_dict(), "rng": rng_state(), "model_config": asdict(model_cfg),
            "train_config": asdict(train_cfg), "history": list(history)}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)  # atomic on POSIX and Windows
    return path


def load_checkpoint(path: str | Path, model_cfg: GPT2Config | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a different model config is a clear error."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if model_cfg is not None:
        saved = GPT2Config(**ckpt["model_config"])
        diff = config_mismatch(saved, model_cfg)
        if diff:
            pairs = ", ".join(f"{f}: checkpoint {getattr(saved, f)} vs now {getattr(model_cfg, f)}" for f in diff)
            raise ValueError(f"Checkpoint {path} was written for another model config ({pairs}).")
    return ckpt


# ---------------------------------------------------------------- distributed
@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Under ``torchrun`` (RANK set): init the process group, nccl on GPU, gloo on CPU."""
    if "RANK" not in os.environ:
        return Dist()
    backend = "nccl" if device == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    d = Dist(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"]))
    if device == "cuda":
        torch.cuda.set_device(d.local_rank)
    return d


def mean_across(value: float, d: Dist) -> float:
    if d.world_size == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / d.world_size


# ---------------------------------------------------------------- the loop
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "T4": 65e12}


def peak_flops(device: str) -> float | None:
    """Dense bf16/fp16 peak of the GPU in use, for MFU; None when unknown or on CPU."""
    if device != "cuda":
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


def flops_per_token(cfg: GPT2Config, seq_len: int, n_params: int) -> float:
    """Training FLOPs per token: 6N for the weights plus attention's 12·L·C·T."""
    return 6 * n_params + 12 * cfg.n_layer * cfg.n_embd * seq_len


def maybe_compile(model: nn.Module, want: bool, device: str) -> nn.Module:
    if not want:
        return model
    if device != "cuda":
        print(f"compile: skipped on {device} (Triton kernels need a CUDA GPU); running eager")
        return model
    return torch.compile(model)


def _autocast(device: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device, dtype=dtype)


def evaluate(model: nn.Module, loader: ShardLoader, batches: int, device: str, precision: str) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for _ in range(batches):
            x, y = (t.to(device) for t in loader.next_batch())
            with _autocast(device, precision):
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


def train(model_cfg: GPT2Config, cfg: TrainConfig, resume: bool = True,
          log_path: str | Path | None = None, stop_after: int | None = None,
          eval_fn: Callable[[nn.Module], dict[str, float]] | None = None) -> dict[str, Any]:
    """Train a GPT-2 on the shards in ``cfg.data_dir``; resume from ``out_dir/ckpt.pt`` if present.

    ``stop_after`` ends the run early at that step, with a checkpoint, as a
    preemption would; the schedule still follows ``max_steps``. ``eval_fn``
    (e.g. HellaSwag-style accuracy) runs on rank 0 at every ``eval_every`` step,
    with the model in eval mode; its results are returned under ``"evals"``.

    Returns ``{"losses": [...], "val": [(step, loss), ...], "lrs": [...], "tokens_per_s": ...}``.
    """
    device = get_device()
    d = setup_distributed(device)
    device_str = f"cuda:{d.local_rank}" if device == "cuda" else device
    precision = pick_precision(device).name if cfg.precision == "auto" else cfg.precision
    seed = effective_seed(cfg.seed)  # $COURSEKIT_SEED shifts it, as it shifts seed_everything
    torch.manual_seed(seed + d.rank)
    random.seed(seed)
    np.random.seed(seed)

    model = GPT2(model_cfg).to(device_str)
    optimizer = make_optimizer(model, cfg, device)
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")
    loader = ShardLoader(cfg.data_dir, "train", cfg.batch_size, cfg.seq_len, d.rank, d.world_size)
    val_loader = None
    if cfg.eval_every and list(Path(cfg.data_dir).glob("val_*.npy")):
        val_loader = ShardLoader(cfg.data_dir, "val", cfg.batch_size, cfg.seq_len, d.rank, d.world_size)

    ckpt_path = Path(cfg.out_dir) / CKPT_NAME
    step, history = 0, []
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, model_cfg)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt["scaler"] is not None:
            scaler.load_state_dict(ckpt["scaler"])
        loader.load_state_dict(ckpt["loader"])
        set_rng_state(ckpt["rng"])
        step, history = ckpt["step"], list(ckpt["history"])
        if d.main:
            print(f"resumed from {ckpt_path} at step {step}")

    n_params = model.num_params()
    train_model = maybe_compile(model, cfg.compile, device)
    if d.world_size > 1:
        train_model = nn.parallel.DistributedDataParallel(
            train_model, device_ids=[d.local_rank] if device == "cuda" else None)
    peak = peak_flops(device)
    lrs, val, evals, tok_s = [], [], [], 0.0
    bar = tqdm(total=cfg.max_steps, initial=step, disable=not (cfg.progress and d.main), desc="train")
    log = open(log_path, "a") if (log_path and d.main) else None
    try:
        while step < min(cfg.max_steps, stop_after or cfg.max_steps):
            t0 = time.perf_counter()
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = _optimizer_step(train_model, optimizer, scaler, loader, cfg, device, device_str, precision)
            loss = mean_across(loss, d)
            check_finite(loss, step, scaler)
            step += 1
            history.append(loss)
            lrs.append(lr)
            dt = time.perf_counter() - t0
            tok_s = cfg.tokens_per_step(d.world_size) / dt
            mfu = flops_per_token(model_cfg, cfg.seq_len, n_params) * tok_s / peak if peak else None
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}",
                            **({"mfu": f"{mfu:.1%}"} if mfu else {}))
            if log:
                log.write(json.dumps({"step": step, "loss": loss, "lr": lr}) + "\n")
                log.flush()
            if val_loader and step % cfg.eval_every == 0:
                val.append((step, mean_across(evaluate(model, val_loader, cfg.eval_batches, device_str, precision), d)))
            if eval_fn and d.main and cfg.eval_every and step % cfg.eval_every == 0:
                with torch.no_grad():
                    evals.append((step, eval_fn(model.eval())))
                model.train()
            if d.main and cfg.ckpt_every and step % cfg.ckpt_every == 0:
                save_checkpoint(ckpt_path, model, optimizer, scaler, step, loader, model_cfg, cfg, history)
        if d.main:
            save_checkpoint(ckpt_path, model, optimizer, scaler, step, loader, model_cfg, cfg, history)
    finally:
        bar.close()
        if log:
            log.close()
        if d.world_size > 1:
            dist.destroy_process_group()
    return {"model": model, "losses": history, "lrs": lrs, "val": val, "evals": evals, "tokens_per_s": tok_s,
            "step": step}


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, loader: ShardLoader,
                    cfg: TrainConfig, device: str, device_str: str, precision: str) -> float:
    """One optimizer step over ``grad_accum`` micro-batches; returns the mean micro-batch loss."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for micro in range(cfg.grad_accum):
        x, y = (t.to(device_str) for t in loader.next_batch())
        last = micro == cfg.grad_accum - 1
        # Under DDP, all-reduce gradients only on the last micro-step.
        sync = model.no_sync() if (isinstance(model, nn.parallel.DistributedDataParallel) and not last) \
            else contextlib.nullcontext()
        with sync:
            with _autocast(device, precision):
                _, loss = model(x, targets=y)
            scaler.scale(loss / cfg.grad_accum).backward()
        total += loss.item()
    if cfg.grad_clip:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return total / cfg.grad_accum


# ---------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Pretrain GPT-2 on uint16 token shards (single process or torchrun).")
    for group, cls in (("model", GPT2Config), ("train", TrainConfig)):
        for f in fields(cls):
            default = f.default
            flag = f"--{f.name.replace('_', '-')}"
            if isinstance(default, bool):
                p.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=default)
            else:
                p.add_argument(flag, type=type(default), default=default, help=f"{group} ({default})")
    p.add_argument("--log-file", default=None, help="append one JSON line per step here")
    p.add_argument("--no-resume", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = vars(_parser().parse_args(argv))
    log, no_resume = args.pop("log_file"), args.pop("no_resume")
    model_cfg = GPT2Config(**{f.name: args[f.name] for f in fields(GPT2Config)})
    cfg = TrainConfig(**{f.name: args[f.name] for f in fields(TrainConfig)})
    train(model_cfg, cfg, resume=not no_resume, log_path=log)


def iter_losses(log_path: str | Path) -> Iterator[tuple[int, float]]:
    """(step, loss) pairs from a ``--log-file`` file; a resumed run's later lines win."""
    seen: dict[int, float] = {}
    for line in Path(log_path).read_text().splitlines():
        row = json.loads(line)
        seen[row["step"]] = row["loss"]
    yield from sorted(seen.items())


if __name__ == "__main__":
    main()
