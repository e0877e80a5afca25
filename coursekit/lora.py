"""LoRA from scratch: a low-rank update ΔW = B·A next to a frozen weight.

A frozen layer computes ``y = x W^T + b``. LoRA learns a correction of rank ``r``::

    y = x W^T + b + (alpha / r) · dropout(x) A^T B^T      A: (r, in)   B: (out, r)

``B`` starts at zero, so a freshly wrapped model is exactly the base model; only
``A`` and ``B`` train, which is ``r·(in + out)`` numbers per layer instead of
``in·out``. After training, ``merge()`` folds ``(alpha / r)·B·A`` into ``W`` and
the adapter costs nothing at inference.

Worked example on the tiny random Llama (the same code works on any transformers causal LM)::

    >>> from coursekit.assets import load_tiny
    >>> model, tok = load_tiny("llama")
    >>> ids = tok("def f(x):", return_tensors="pt").input_ids
    >>> before = model(ids).logits
    >>> model = apply_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)
    >>> torch.equal(model(ids).logits, before)   # B = 0: exactly the base model
    True
    >>> # ... train A and B ...
    >>> model = merge_lora(model)         # plain nn.Linear layers again, W ← W + (alpha/r)·B·A
    >>> lora_layers(model)
    {}

The tests prove this module equal to ``peft`` (outputs, gradients, parameter
counts and merged weights), for ``nn.Linear`` and for GPT-2's ``Conv1D``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "LoRALinear",
    "TrainableCount",
    "apply_lora",
    "count_trainable",
    "linear_layer_names",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
]


def _conv1d_type() -> type | None:
    """transformers' ``Conv1D`` (GPT-2: weight stored as (in, out)), if transformers is installed."""
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers is a core dependency
        return None
    return Conv1D


def _is_conv1d(module: nn.Module) -> bool:
    conv1d = _conv1d_type()
    return conv1d is not None and isinstance(module, conv1d)


def _is_wrappable(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or _is_conv1d(module)


def _in_out(module: nn.Module) -> tuple[int, int]:
    """``(in_features, out_features)`` of a wrappable layer; Conv1D keeps its weight as (in, out)."""
    if _is_conv1d(module):
        return module.weight.shape[0], module.weight.shape[1]
    return module.in_features, module.out_features  # not weight.shape: a 4-bit weight is stored packed


def _check_rank(r: int) -> None:
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise ValueError(f"LoRA rank r must be a positive integer, got r={r!r}.")


def _check_rank_alpha(r: int, alpha: float) -> None:
    _check_rank(r)
    if not alpha > 0:
        raise ValueError(f"LoRA alpha must be positive, got alpha={alpha!r} (the scaling is alpha / r).")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (or transformers ``Conv1D``) plus a trainable rank-``r`` update.

    ``forward(x) = base(x) + (alpha / r) · dropout(x) @ A.T @ B.T``, with ``A`` of shape
    (r, in_features), kaiming-uniform like peft, and ``B`` of shape (out_features, r), zeros:
    a new LoRALinear computes exactly what its base layer does.

    >>> layer = LoRALinear(nn.Linear(64, 32), r=4, alpha=8)
    >>> layer.A.shape, layer.B.shape, layer.scaling
    (torch.Size([4, 64]), torch.Size([32, 4]), 2.0)
    >>> x = torch.randn(2, 64)
    >>> torch.equal(layer(x), layer.base(x))       # B = 0: a no-op at init
    True
    """

    def __init__(self, base: nn.Module, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(base, LoRALinear):
            raise ValueError("This layer already has LoRA; applying it twice would nest adapters. "
                             "Merge it first (merge_lora) or train the existing A and B.")
        if not _is_wrappable(base):
            raise TypeError(f"LoRALinear wraps nn.Linear or transformers Conv1D, got {type(base).__name__}.")
        _check_rank_alpha(r, alpha)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout!r}.")

        self.base = base
        self.fan_in_fan_out = _is_conv1d(base)  # Conv1D keeps its weight as (in, out)
        w = base.weight
        self.in_features, self.out_features = _in_out(base)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        for p in base.parameters():
            p.requires_grad_(False)

        # Adapters stay fp32 on half-precision bases (as peft does): tiny, and stable under AdamW.
        dtype = w.dtype if w.dtype in (torch.float32, torch.float64) else torch.float32
        self.A = nn.Parameter(torch.empty(r, self.in_features, device=w.device, dtype=dtype))  # (r, in)
        self.B = nn.Parameter(torch.zeros(self.out_features, r, device=w.device, dtype=dtype))  # (out, r)
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # what nn.Linear(in, r) and peft use
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) · B @ A`` in the base weight's layout and dtype: (out, in), or (in, out) for Conv1D."""
        delta = (self.B @ self.A) * self.scaling  # (out, r) @ (r, in) -> (out, in)
        if self.fan_in_fan_out:
            delta = delta.T  # Conv1D stores (in, out)
        return delta.to(self.base.weight.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (..., in) -> (..., out)
        out = self.base(x)
        if self.merged:
            return out  # ΔW already lives inside base.weight
        h = self.dropout(x).to(self.A.dtype)
        lora = (h @ self.A.T) @ self.B.T  # (..., in) -> (..., r) -> (..., out)
        return out + (lora * self.scaling).to(out.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into the base weight: ``W ← W + (alpha/r)·B·A``. Idempotent."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo ``merge()``: ``W ← W − (alpha/r)·B·A``. Idempotent."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        kind = "Conv1D" if self.fan_in_fan_out else "Linear"
        return (f"{kind}({self.in_features} -> {self.out_features}), r={self.r}, alpha={self.alpha}, "
                f"scaling={self.scaling:g}, merged={self.merged}")


@dataclass(frozen=True)
class TrainableCount:
    """Trainable and total parameters (shared/tied tensors counted once, like peft)."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __iter__(self) -> Iterator[int]:  # so that ``trainable, total = count_trainable(model)`` works
        return iter((self.trainable, self.total))

    def __str__(self) -> str:  # the same line as peft's print_trainable_parameters()
        return f"trainable params: {self.trainable:,d} || all params: {self.total:,d} || trainable%: {self.percent:.4f}"

    __repr__ = __str__


def count_trainable(model: nn.Module) -> TrainableCount:
    """Count parameters that require grad, and all parameters.

    bitsandbytes 4-bit weights (``Params4bit``) pack two weights per stored byte,
    so they count twice their element count, as peft counts them.

    >>> count_trainable(nn.Linear(10, 2))
    trainable params: 22 || all params: 22 || trainable%: 100.0000
    """
    params = list(model.parameters())  # .parameters() de-duplicates tied weights
    sizes = [(p.numel() * (2 if type(p).__name__ == "Params4bit" else 1), p.requires_grad) for p in params]
    return TrainableCount(sum(n for n, grad in sizes if grad), sum(n for n, _ in sizes))


def linear_layer_names(model: nn.Module) -> list[str]:
    """Sorted, de-duplicated last name parts of the layers LoRA can wrap: ``['down_proj', 'k_proj', ...]``.

    A layer already wrapped counts under its own name, not as its inner ``base``.
    """
    inner = {f"{name}.base" for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if name and name not in inner and (_is_wrappable(m) or isinstance(m, LoRALinear))})


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every ``LoRALinear`` in ``model``, by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}


def _select_targets(model: nn.Module, target_modules: str | Iterable[str]) -> dict[str, nn.Module]:
    """The layers ``apply_lora`` wraps, by name; ValueError for an empty, unmatched or already adapted target."""
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if not targets:
        raise ValueError("target_modules is empty; name the linear layers to adapt, e.g. ['q_proj', 'v_proj'].")
    modules = dict(model.named_modules())
    wrapped = {n for n, m in modules.items() if isinstance(m, LoRALinear)}
    inside = {f"{n}.base" for n in wrapped}  # the base layer inside an existing LoRALinear
    chosen: dict[str, nn.Module] = {}
    unmatched = []
    for target in targets:
        hits = [n for n, m in modules.items() if _matches(n, target) and (_is_wrappable(m) or n in wrapped)]
        already = [n for n in hits if n in wrapped or n in inside]
        if already:
            raise ValueError(f"LoRA is already applied to {already[0]!r} (target {target!r}); applying it twice "
                             "would nest adapters. Call merge_lora(model) first, or keep training the existing one.")
        if not hits:
            unmatched.append(target)
        chosen.update({n: modules[n] for n in hits})
    if unmatched:
        raise ValueError(f"target_modules {unmatched} matched no linear layer. "
                         f"This model's linear layers are: {', '.join(linear_layer_names(model))}.")
    return chosen


def apply_lora(model: nn.Module, target_modules: str | Iterable[str], r: int, alpha: float,
               dropout: float = 0.0) -> nn.Module:
    """Wrap every linear layer whose name ends with a target in ``LoRALinear``; freeze the rest.

    Matching is by name suffix on dot boundaries, as in peft: ``"q_proj"`` matches
    ``model.layers.3.self_attn.q_proj``. The model is changed in place and returned.

    >>> from coursekit.assets import load_tiny
    >>> model = apply_lora(load_tiny("llama")[0], ["q_proj", "v_proj"], r=8, alpha=16)
    >>> len(lora_layers(model))          # q_proj and v_proj in each of the 2 layers
    4
    >>> count_trainable(model)           # r·(in + out) per layer: 8·(64 + 64) + 8·(64 + 32), twice
    trainable params: 3,584 || all params: 110,400 || trainable%: 3.2464

    Raises ValueError when a target matches no linear layer (the message lists the
    model's linear-layer names), when ``r <= 0`` or ``alpha <= 0``, and when a
    matched layer already carries LoRA (no silent nesting).
    """
    _check_rank_alpha(r, alpha)
    chosen = _select_targets(model, target_modules)
    for p in model.parameters():
        p.requires_grad_(False)
    for name, base in chosen.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(base, r=r, alpha=alpha, dropout=dropout))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every ``LoRALinear`` and put its base layer back: a plain model with ΔW inside.

    Parameters that were frozen stay frozen; call ``requires_grad_(True)`` to train all of it.
    """
    for name, layer in lora_layers(model).items():
        layer.merge()
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer.base)
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, ``{"<layer>.A": (r, in), "<layer>.B": (out, r)}``: what you save and share."""
    out: dict[str, torch.Tensor] = {}
    for name, layer in lora_layers(model).items():
        out[f"{name}.A"] = layer.A.detach().contiguous()
        out[f"{name}.B"] = layer.B.detach().contiguous()
    return out


def safetensors_bytes(path: str | Path) -> tuple[int, int]:
    """``(header, tensors)``: the bytes of a ``.safetensors`` file's header and of its raw tensor data.

    The format is an 8-byte little-endian length, a JSON header of that length, then
    the tensors back to back, so the data part is exactly the sum of the tensors' bytes::

        >>> import tempfile
        >>> from safetensors.torch import save_file
        >>> path = Path(tempfile.mkdtemp()) / "a.safetensors"
        >>> save_file({"A": torch.zeros(8, 64), "B": torch.zeros(64, 8, dtype=torch.bfloat16)}, path)
        >>> safetensors_bytes(path)[1] == 8 * 64 * 4 + 64 * 8 * 2
        True
    """
    with open(path, "rb") as f:
        header = 8 + int.from_bytes(f.read(8), "little")
    return header, Path(path).stat().st_size - header


def lora_param_count(model: nn.Module, targets: str | Iterable[str], r: int) -> int:
    """``r·(in + out)`` summed over the layers ``apply_lora(model, targets, r, ...)`` would wrap: what LoRA adds.

    The same matching (dotted suffixes such as ``"mlp.c_proj"``, GPT-2's ``Conv1D``) and the same
    ValueErrors as ``apply_lora``, so the two always agree.

    >>> lora_param_count(nn.Sequential(nn.Linear(4096, 4096)), ["0"], r=16)  # 2·4096·16, 0.78% of 4096²
    131072
    """
    _check_rank(r)
    return sum(r * sum(_in_out(m)) for m in _select_targets(model, targets).values())
