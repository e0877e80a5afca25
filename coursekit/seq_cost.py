"""What a longer sequence costs: time and memory of one training step against its length, fitted as power laws.

A decoder layer's step splits in two. The **attention** scores every position against every earlier one:
``(B, nh, T, T)`` products, so its work grows as T². Everything else (the projections, the MLP, the norms)
handles each position once, so it grows as T. SDPA's **math** kernel also *stores* the ``(T, T)`` probabilities
for backward; its **fused** kernels (flash, memory-efficient) recompute them instead, so their memory grows as T
while their work is still T². ``fit_exponent`` reads the power off measurements (the slope on log-log axes)::

    >>> round(fit_exponent([256, 512, 1024], [1.0, 4.0, 16.0]), 6)      # quadruples per doubling: T²
    2.0
    >>> round(fit_exponent([256, 512, 1024], [3.0, 6.0, 12.0]), 6)
    1.0
    >>> cost = attention_step_cost(AttentionShape(heads=4, kv_heads=2, head_dim=16), 64, "math")
    >>> cost.bytes > attention_step_cost(AttentionShape(heads=4, kv_heads=2, head_dim=16), 64, "fused").bytes
    True
    >>> attention_step_cost(AttentionShape(heads=4, kv_heads=2, head_dim=16), 128, "math").flops / cost.flops
    4.0

Memory is what the step holds beyond the weights: on a GPU, the allocator's peak over the step minus what was
allocated before it; on the CPU, where no allocator reports a peak, the tensors autograd saves for backward
(``memory.saved_activation_bytes``' probe). Times are the fastest of ``repeats`` steps after one warm-up step.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from coursekit.memory import counting_saved_tensors, weight_storages

__all__ = ["KERNELS", "AttentionShape", "StepCost", "attention_step_cost", "fit_exponent", "layer_step_cost",
           "measure_step"]

# "fused": torch picks flash where the GPU (or CPU) supports it, else the memory-efficient kernel (a T4 has no flash).
KERNELS: dict[str, list[SDPBackend]] = {"math": [SDPBackend.MATH],
                                        "fused": [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]}


@dataclass(frozen=True)
class AttentionShape:
    """The attention of one layer: query heads, key/value heads (fewer with grouped-query attention), head size."""

    heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, config: Any) -> AttentionShape:
        """The shape of a transformers config (``LlamaConfig``, ``Qwen3Config``, ...)."""
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(config.num_attention_heads, config.num_key_value_heads, head_dim)


@dataclass(frozen=True)
class StepCost:
    """One forward + backward step: its seconds, the bytes it holds beyond the weights, and its floating-point
    operations as ``torch.utils.flop_counter`` counts them (matmuls and SDPA; a fused CPU kernel counts 0)."""

    seconds: float
    bytes: int
    flops: int = 0


def fit_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """The p of ``value ≈ c · length^p``: the least-squares slope of log(value) on log(length)."""
    if len(lengths) != len(values) or len(lengths) < 2:
        raise ValueError(f"fit_exponent needs two or more (length, value) pairs of equal count; got "
                         f"{len(lengths)} lengths and {len(values)} values")
    if min(lengths) <= 0 or min(values) <= 0:
        raise ValueError(f"fit_exponent takes logs: every length and value must be > 0; got {list(values)}")
    slope, _ = np.polyfit(np.log(np.asarray(lengths, float)), np.log(np.asarray(values, float)), 1)
    return float(slope)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def _held_bytes(device: str, out: list[int], exclude: set[int]) -> Iterator[None]:
    """Record into ``out`` what the block holds: the GPU allocator's peak rise, or on the CPU the saved tensors."""
    if device == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        yield
        torch.cuda.synchronize()
        out.append(torch.cuda.max_memory_allocated() - before)
        return
    with counting_saved_tensors(exclude) as seen:
        yield
    out.append(sum(seen.values()))


def measure_step(step: Callable[[], torch.Tensor], device: str = "cpu", repeats: int = 2,
                 exclude: set[int] | None = None) -> StepCost:
    """Run ``step`` (a forward that returns a scalar loss) and its backward: one warm-up, which counts the bytes
    and the FLOPs, then the fastest of ``repeats``. ``exclude`` holds storage pointers not to count as saved (the
    weights)."""
    held: list[int] = []
    best, flops = float("inf"), 0
    for i in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        with FlopCounterMode(display=False) if i == 0 else contextlib.nullcontext() as counter:
            with _held_bytes(device, held, exclude or set()) if i == 0 else contextlib.nullcontext():
                loss = step()
                if device == "cuda":  # the GPU peak includes backward; the CPU counts what forward saved for it
                    loss.backward()
            if device != "cuda":
                loss.backward()
        _sync(device)
        if i == 0:
            flops = counter.get_total_flops()
        else:
            best = min(best, time.perf_counter() - start)
        del loss
    return StepCost(best, held[0], flops)


def attention_step_cost(shape: AttentionShape, length: int, kernel: str, device: str = "cpu",
                        dtype: torch.dtype = torch.float32, repeats: int = 2, batch: int = 1) -> StepCost:
    """SDPA alone, causal, on ``batch`` rows, with ``kernel`` ("math" or "fused"): the T² part of a layer's step."""
    q = torch.randn(batch, shape.heads, length, shape.head_dim, device=device, dtype=dtype, requires_grad=True)
    k, v = (torch.randn(batch, shape.kv_heads, length, shape.head_dim, device=device, dtype=dtype,
                        requires_grad=True) for _ in range(2))

    def step() -> torch.Tensor:
        with sdpa_kernel(KERNELS[kernel]):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=shape.kv_heads != shape.heads)
        return out.float().square().mean()

    return measure_step(step, device, repeats)


def layer_step_cost(model: Any, hidden: torch.Tensor, kernel: str, layer: int = 0, repeats: int = 2) -> StepCost:
    """One decoder layer of a transformers causal LM (its own weights), forward + backward on ``hidden``
    ``(B, T, d)``, with SDPA restricted to ``kernel``. The model must use ``attn_implementation="sdpa"``."""
    if model.config._attn_implementation != "sdpa":
        raise ValueError(f"layer_step_cost switches SDPA's kernels, but the model uses "
                         f"{model.config._attn_implementation!r} attention: load it with attn_implementation='sdpa'")
    block, rotary = model.model.layers[layer], model.model.rotary_emb
    positions = torch.arange(hidden.shape[1], device=hidden.device)[None]  # (1, T): the same for every row
    cos_sin = rotary(hidden, positions)
    weights = weight_storages(block)

    def step() -> torch.Tensor:
        with sdpa_kernel(KERNELS[kernel]):
            out = block(hidden, attention_mask=None, position_ids=positions, position_embeddings=cos_sin)
        out = out[0] if isinstance(out, tuple) else out
        return out.float().square().mean()

    cost = measure_step(step, hidden.device.type, repeats, exclude=weights)
    block.zero_grad(set_to_none=True)
    return cost
