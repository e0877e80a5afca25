"""Memory: what a weight costs in each precision, what training needs, and what a model really holds.

* **Bytes per parameter** (a commonly quoted table, checked here) and the training memory of full
  fine-tuning, LoRA and QLoRA by model size::

    >>> round(BYTES_PER_PARAM["nf4 + double quant"], 4)
    0.5159
    >>> round(training_gb(3e9, "QLoRA"), 1)        # GB, activations excluded
    2.0

* **Footprints measured**: ``measure_footprints(path)`` loads one model in fp32, bf16, 8-bit and 4-bit
  (with and without double quantization) and returns ``get_memory_footprint()`` of each, plus the 4-bit
  scales (``quant_state_bytes``, which it does not count); where bitsandbytes cannot load a variant, the
  reason is kept instead of a number.
* **Activations**: ``saved_activation_bytes`` measures what one training forward pass keeps for backward
  (on a CPU too; ``counting_saved_tensors`` counts it around any block), and ``peak_memory_gb`` reads the GPU
  allocator's peak.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from coursekit.quant import bnb_config
from coursekit.quiet import progress_bars

__all__ = ["BYTES_PER_PARAM", "TRAINING_BYTES_PER_PARAM", "counting_saved_tensors", "measure_footprints",
           "nf4_bytes_per_param", "peak_memory_gb", "quant_state_bytes", "saved_activation_bytes", "training_gb",
           "weight_storages"]

NF4_BLOCK = 64  # weights per absmax scale (bitsandbytes' 4-bit blocksize)
DQ_BLOCK = 256  # absmax scales per second-level fp32 scale (double quantization)


def nf4_bytes_per_param(double_quant: bool = True, block: int = NF4_BLOCK) -> float:
    """Bytes per weight in nf4: half a byte, plus one absmax per block of 64.

    Without double quantization the absmax is fp32 (4/64 = 0.0625 B/param);
    with it the absmax is 8-bit plus one fp32 per 256 of them (≈ 0.0159).
    """
    scale = (1 + 4 / DQ_BLOCK) / block if double_quant else 4 / block
    return 0.5 + scale


# The course notes' table: storage of one weight.
BYTES_PER_PARAM: dict[str, float] = {
    "fp32": 4.0,
    "bf16 / fp16": 2.0,
    "int8": 1.0,
    "nf4": nf4_bytes_per_param(False),
    "nf4 + double quant": nf4_bytes_per_param(True),
}

# Training memory per parameter of the base model (weights + gradients + Adam states), activations excluded.
# Full FT in fp32: 4 (weights) + 4 (grads) + 8 (two Adam moments) = 16; mixed precision keeps the same fp32 tensors.
# Pure 16-bit weights and grads with fp32 Adam moments (no fp32 copy): 2 + 2 + 8 = 12, the course notes' "fp16" figure.
# LoRA: the frozen base in bf16 (2) plus the adapter's own 16 B on its ~1% of parameters.
# QLoRA: the frozen base in nf4 + double quant (~0.52) plus the same adapter.
TRAINING_BYTES_PER_PARAM: dict[str, float] = {
    "full FT (fp32 + Adam)": 16.0,
    "full FT (16-bit w+g, fp32 Adam)": 12.0,
    "LoRA": 2.0,
    "QLoRA": nf4_bytes_per_param(True),
}


def training_gb(n_params: float, method: str, adapter_fraction: float = 0.01) -> float:
    """GB (1e9 bytes) to train a model of ``n_params`` with ``method`` (a key of TRAINING_BYTES_PER_PARAM).

    LoRA and QLoRA add 16 bytes (fp32 weight, grad and Adam) for each adapter parameter,
    ``adapter_fraction`` of the base (about 1% for r=16 on all linear layers).
    """
    if method not in TRAINING_BYTES_PER_PARAM:
        raise ValueError(f"Unknown method {method!r}. Valid methods: {', '.join(TRAINING_BYTES_PER_PARAM)}.")
    per = TRAINING_BYTES_PER_PARAM[method]
    if method in ("LoRA", "QLoRA"):
        per += 16 * adapter_fraction
    return n_params * per / 1e9


# ---------------------------------------------------------------- measured footprints
def _variants(compute_dtype: Any) -> dict[str, dict[str, Any]]:
    import torch

    return {"fp32": {"dtype": torch.float32}, "bf16": {"dtype": torch.bfloat16},
            "8-bit": {"quantization_config": bnb_config(8)},
            "nf4": {"quantization_config": bnb_config(4, compute_dtype, double_quant=False)},
            "nf4 + double quant": {"quantization_config": bnb_config(4, compute_dtype)}}


def measure_footprints(path: str, device: str = "cpu", compute_dtype: Any = None,
                       print_fn: Callable[[str], Any] = print, progress: bool = True) -> dict[str, float | str]:
    """Bytes of ``path`` loaded in each precision: ``get_memory_footprint()`` + ``quant_state_bytes``;
    a string says why a variant failed (e.g. 8-bit where bitsandbytes cannot run).

    One bar counts the five loads (``progress=False``: none); each load's own "Loading weights" bar is off."""
    import gc

    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    out: dict[str, float | str] = {}
    variants = _variants(compute_dtype or torch.float32)
    with progress_bars(False), tqdm(variants.items(), desc="footprints", unit="load", disable=not progress) as bar:
        for name, kwargs in bar:
            bar.set_postfix_str(name)
            if "quantization_config" in kwargs:
                kwargs = {**kwargs, "device_map": {"": device}}
            try:
                model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
                if "device_map" not in kwargs and device != "cpu":
                    model = model.to(device)
                out[name] = float(model.get_memory_footprint() + quant_state_bytes(model))
                del model
            except Exception as err:  # noqa: BLE001 - bitsandbytes raises many kinds; all mean "not here"
                out[name] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
                print_fn(f"{name}: bitsandbytes cannot load it on {device} ({out[name]}); skipped.")
            gc.collect()
    return out


def quant_state_bytes(model: Any) -> int:
    """Bytes of the 4-bit scales (absmax, and the nested ones with double quant) of every ``Params4bit``.

    ``get_memory_footprint()`` counts parameters and buffers only; the scales live in each weight's
    ``quant_state``, so without this the footprint of nf4 with and without double quant would look the same.
    """
    total = 0
    for p in model.parameters():
        state = getattr(p, "quant_state", None)
        if state is None or type(p).__name__ != "Params4bit":
            continue
        total += state.absmax.numel() * state.absmax.element_size()
        nested = getattr(state, "state2", None)
        if getattr(state, "nested", False) and nested is not None:
            total += nested.absmax.numel() * nested.absmax.element_size()
    return total


# ---------------------------------------------------------------- activations and peaks
def weight_storages(module: Any) -> set[int]:
    """The storage pointers of a module's parameters: what ``counting_saved_tensors`` should not count, since
    autograd also saves the weights a layer needs for backward, the same for any batch.

    >>> import torch
    >>> len(weight_storages(torch.nn.Linear(3, 2)))    # the weight and the bias
    2
    """
    return {p.untyped_storage().data_ptr() for p in module.parameters()}


@contextlib.contextmanager
def counting_saved_tensors(exclude: Iterable[int] = ()) -> Iterator[dict[int, int]]:
    """Within the block, record the bytes of each storage autograd saves for backward: ``{data_ptr: nbytes}``.

    Storages whose pointer is in ``exclude`` (e.g. the weights') are not counted; a storage saved twice counts once.
    """
    import torch

    skip, seen = set(exclude), {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield seen


def saved_activation_bytes(model: Any, batch: Mapping[str, Any], backward: bool = False) -> int:
    """Bytes of activations one training forward pass saves for backward (weights excluded).

    Measured with ``torch.autograd.graph.saved_tensors_hooks`` (``counting_saved_tensors``), so it works on
    the CPU too, where no allocator reports a peak. With gradient checkpointing
    the layers save nothing (they are recomputed during backward); what remains
    is the rest of the graph, e.g. the logits. ``backward=True`` completes the
    step (gradients are then zeroed), which is when the recomputation happens.
    """
    weights = weight_storages(model)
    was_training = model.training
    model.train()
    with counting_saved_tensors(weights) as seen:
        loss = model(**batch).loss
    if backward:
        loss.backward()
        model.zero_grad(set_to_none=True)
    del loss  # frees the graph and everything it saved
    model.train(was_training)
    return sum(seen.values())


def peak_memory_gb(device: str) -> float | None:
    """Peak allocated GPU memory since the last reset (GiB), or None where no allocator reports one (CPU)."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1024**3
    return None
