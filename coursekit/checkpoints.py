"""Checkpoints that resume a pretraining run exactly, written so that a kill never leaves half of one.

A checkpoint holds the model, optimizer, GradScaler, step, data position, both
configs, the loss history and every RNG state (Python, NumPy, torch, CUDA). It
is written to a temporary file and then renamed, which is atomic, so a crash
mid-write leaves the previous checkpoint intact; ``restore_checkpoint`` puts it
all back. Restoring the RNG states makes the resumed run draw the same numbers
the uninterrupted one would have::

    >>> import random
    >>> state = rng_state()
    >>> first = [random.random(), float(torch.rand(1))]
    >>> set_rng_state(state)
    >>> [random.random(), float(torch.rand(1))] == first
    True
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from coursekit.gpt2 import GPT2Config, config_mismatch
from coursekit.shards import ShardLoader

CKPT_NAME = "ckpt.pt"


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
    """Every RNG's state, as tensors and plain values, so ``torch.load(weights_only=True)`` can read it back."""
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "gauss": float(np_state[4])}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved (a checkpoint's list comes back where Python wants a tuple)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any,
                    step: int, loader: ShardLoader, model_cfg: GPT2Config, train_cfg: Any,
                    history: list[float]) -> Path:
    """Write everything needed to resume exactly; atomically (temporary file, then rename).

    ``train_cfg`` is the run's settings dataclass (``pretraining.PretrainConfig``), stored as a dict.
    """
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


def restore_checkpoint(path: str | Path, model_cfg: GPT2Config, model: nn.Module, optimizer: torch.optim.Optimizer,
                       scaler: Any, loader: ShardLoader) -> tuple[int, list[float]]:
    """Put a checkpoint's state back into the run's parts (and every RNG); returns its step and loss history."""
    ckpt = load_checkpoint(path, model_cfg)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt["scaler"] is not None:
        scaler.load_state_dict(ckpt["scaler"])
    loader.load_state_dict(ckpt["loader"])
    set_rng_state(ckpt["rng"])
    return ckpt["step"], list(ckpt["history"])
