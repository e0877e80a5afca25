"""Checkpoints that resume a pretraining run exactly, written so that a kill never leaves half of one.

A checkpoint holds the model, optimizer, GradScaler, step, data position, both
configs, everything the run reported (losses, validation losses, evaluations),
the validation loader's position and every RNG state (Python, NumPy, torch,
CUDA). It is written to a temporary file and then renamed, which is atomic, so
a crash mid-write leaves the previous checkpoint intact; the one before it stays
as ``ckpt.prev.pt``. ``restore_checkpoint`` puts it all back. Restoring the RNG states makes the resumed run draw the same numbers
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
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from coursekit.gpt2 import GPT2Config, config_mismatch
from coursekit.shards import ShardLoader

CKPT_NAME = "ckpt.pt"
PREV_NAME = "ckpt.prev.pt"  # the checkpoint before the latest, kept in case the latest is damaged later


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read (truncated, empty, not a checkpoint)."""


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
                    step: int, loaders: ShardLoader | dict[str, ShardLoader], model_cfg: GPT2Config,
                    train_cfg: Any, history: list[float] | dict[str, list[Any]]) -> Path:
    """Write everything needed to resume exactly; atomically (temporary file, then rename).

    ``loaders``: the train loader, or ``{"train": ..., "val": ...}``; ``history``: the losses, or
    ``{"losses": ..., "val": ..., "evals": ...}`` (everything the run reports). ``train_cfg`` is the run's
    settings dataclass (``pretraining.PretrainConfig``), stored as a dict. The checkpoint that was at
    ``path`` becomes ``ckpt.prev.pt`` beside it, and ``path`` holds a complete checkpoint at every moment.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    loaders = loaders if isinstance(loaders, dict) else {"train": loaders}
    history = history if isinstance(history, dict) else {"losses": history}
    ckpt = {"model": unwrap(model).state_dict(), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None, "step": step,
            "loader": loaders["train"].state_dict(),
            "loaders": {name: ld.state_dict() for name, ld in loaders.items() if ld is not None},
            "rng": rng_state(), "model_config": asdict(model_cfg), "train_config": asdict(train_cfg),
            "history": list(history["losses"]), "reports": {k: list(v) for k, v in history.items()}}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(ckpt, f)
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename, so a power cut cannot leave a renamed empty file
    if path.exists():
        _keep_previous(path)
    os.replace(tmp, path)  # atomic on POSIX and Windows
    return path


def _keep_previous(path: Path) -> None:
    """``path`` also as ``ckpt.prev.pt``: a hard link (no copy, and ``path`` never goes missing)."""
    prev_tmp = path.with_name(PREV_NAME + ".tmp")
    prev_tmp.unlink(missing_ok=True)
    try:
        os.link(path, prev_tmp)
    except OSError:  # a filesystem without hard links
        shutil.copy2(path, prev_tmp)
    os.replace(prev_tmp, path.with_name(PREV_NAME))


def load_checkpoint(path: str | Path, model_cfg: GPT2Config | None = None) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; an unreadable file or another model config is a clear error."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "model_config" not in ckpt:
            raise KeyError("not a coursekit checkpoint: no model_config")
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError... for a damaged file
        raise CheckpointError(_unreadable(Path(path), err)) from err
    if model_cfg is not None:
        saved = GPT2Config(**ckpt["model_config"])
        diff = config_mismatch(saved, model_cfg)
        if diff:
            pairs = ", ".join(f"{f}: checkpoint {getattr(saved, f)} vs now {getattr(model_cfg, f)}" for f in diff)
            raise ValueError(f"Checkpoint {path} was written for another model config ({pairs}).")
    return ckpt


def _unreadable(path: Path, err: BaseException) -> str:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if path.exists() and path.stat().st_size == 0:
        reason = "the file is empty"
    prev = path.with_name(PREV_NAME)
    earlier = f", or resume from the previous one: mv {prev} {path}" if prev.exists() and prev != path else ""
    return (f"Checkpoint {path} is unreadable ({reason}): start fresh with resume=False (--no-resume) or by "
            f"deleting it{earlier}.")


def restore_checkpoint(path: str | Path, model_cfg: GPT2Config, model: nn.Module, optimizer: torch.optim.Optimizer,
                       scaler: Any, loaders: ShardLoader | dict[str, ShardLoader]) -> tuple[int, dict[str, list[Any]]]:
    """Put a checkpoint's state back into the run's parts (and every RNG); returns its step and reports.

    The reports are ``{"losses": [...], "val": [(step, loss), ...], "evals": [(step, {...}), ...]}``.
    """
    ckpt = load_checkpoint(path, model_cfg)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt["scaler"] is not None:
        scaler.load_state_dict(ckpt["scaler"])
    loaders = loaders if isinstance(loaders, dict) else {"train": loaders}
    states = ckpt.get("loaders", {"train": ckpt["loader"]})
    for name, loader in loaders.items():
        if loader is not None and name in states:
            loader.load_state_dict(states[name])
    set_rng_state(ckpt["rng"])
    reports = ckpt.get("reports", {"losses": ckpt["history"]})
    return ckpt["step"], {"losses": list(reports["losses"]), "val": [tuple(v) for v in reports.get("val", [])],
                          "evals": [tuple(e) for e in reports.get("evals", [])]}
