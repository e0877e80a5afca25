"""QLoRA helpers for lesson 05: bytes per parameter, memory footprints, price MAE.

* **Bytes per parameter** (the course notes' table) and the training memory of full
  fine-tuning, LoRA and QLoRA by model size::

    >>> round(BYTES_PER_PARAM["nf4 + double quant"], 4)
    0.5159
    >>> round(training_gb(3e9, "QLoRA"), 1)        # GB, activations excluded
    2.0

* **Footprints measured**: ``measure_footprints(path)`` loads one model in
  fp32, bf16, 8-bit and 4-bit (with and without double quantization) and
  returns ``get_memory_footprint()`` of each, plus the 4-bit scales (which it
  does not count); where bitsandbytes cannot load a variant, the reason is
  kept instead of a number.
* **Price task**: ``parse_price`` reads the first number; ``price_mae`` counts
  an unparseable answer as a prediction of 0 dollars (its error is the whole price)::

    >>> parse_price("$1,299.00 is a fair price")
    1299.0
    >>> price_mae(["$90", "no idea"], [100.0, 50.0])["mae"]     # (10 + 50) / 2
    30.0
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["BYTES_PER_PARAM", "TRAINING_BYTES_PER_PARAM", "bnb_config", "embeddings_quantized", "measure_footprints",
           "nf4_bytes_per_param", "parse_price", "peak_memory_gb", "price_mae", "quant_state_bytes",
           "training_gb"]

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
# Full FT in fp32: 4 (weights) + 4 (grads) + 8 (two Adam moments) = 16. The course notes' fp16 figure: 2 + 2 + 8 = 12.
# LoRA: the frozen base in bf16 (2) plus the adapter's own 16 B on its ~1% of parameters.
# QLoRA: the frozen base in nf4 + double quant (~0.52) plus the same adapter.
TRAINING_BYTES_PER_PARAM: dict[str, float] = {
    "full FT (fp32 + Adam)": 16.0,
    "full FT (fp16, notes)": 12.0,
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


# ================================================================ measured footprints
def bnb_config(bits: int, compute_dtype: Any = None, quant_type: str = "nf4", double_quant: bool = True) -> Any:
    """The ``BitsAndBytesConfig`` for 8-bit (LLM.int8) or 4-bit (nf4/fp4, optionally double-quantized) loading.

    >>> import torch
    >>> cfg = bnb_config(4, torch.bfloat16)
    >>> cfg.load_in_4bit, cfg.bnb_4bit_quant_type, cfg.bnb_4bit_use_double_quant, cfg.bnb_4bit_compute_dtype
    (True, 'nf4', True, torch.bfloat16)
    """
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    if bits != 4:
        raise ValueError(f"bitsandbytes loads 4- or 8-bit weights; got bits={bits}.")
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                              bnb_4bit_use_double_quant=double_quant, bnb_4bit_compute_dtype=compute_dtype)


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

    from coursekit.quiet import progress_bars

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


def keep_4bit_trainable(model: Any, verbose: bool = True) -> int:
    """Keep every ``Linear4bit`` of ``model`` in the layout training needs; return how many were repacked.

    On a CPU with AVX512-BF16, bitsandbytes 0.50 repacks a 4-bit weight for a fused
    kernel at its first eval-mode forward (e.g. generating answers before training).
    That kernel has no backward: once a layer is repacked, the gradient flowing back
    through its frozen weight is silently zero, so every LoRA layer below it learns
    from a wrong gradient and training diverges (torch's only sign is a ``gemv_4bit ...
    silently incorrect behavior`` warning). This turns the repacking off for every
    layer and undoes it where it already happened (the undo keeps the absmax scales
    in the bf16 the repacking rounded them to). One line says so when it undid any.

    >>> from coursekit.assets import load_causal_lm, tiny_model_path
    >>> model, _ = load_causal_lm(str(tiny_model_path("llama")), quantization_config=bnb_config(4))
    >>> keep_4bit_trainable(model), any(m.support_avx512bf16_for_cpu for m in _linear4bit(model))
    (0, False)
    """
    from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

    repacked = 0
    for layer in _linear4bit(model):
        layer.support_avx512bf16_for_cpu = False  # the fused CPU path is inference-only
        weight = layer.weight
        if getattr(weight.quant_state, "packing_format_for_cpu", False):
            weight.data, state = _convert_weight_packed_for_cpu_inverse(weight.data, weight.quant_state)
            if not state.nested and state.absmax.dim() == 2:  # bitsandbytes restores the layout of nested scales only
                state.absmax = state.absmax.T.reshape(-1).float()
            weight.quant_state = state
            repacked += 1
    if repacked and verbose:
        print(f"bitsandbytes: {repacked} 4-bit layers had been repacked for its inference-only CPU kernel "
              "(no backward); restored to the trainable layout.")
    return repacked


def _linear4bit(model: Any) -> list[Any]:
    import bitsandbytes as bnb

    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]


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


def embeddings_quantized(model: Any) -> bool:
    """True if the input embedding or the LM head is a bitsandbytes quantized parameter."""
    layers = [model.get_input_embeddings(), model.get_output_embeddings()]
    return any(type(layer.weight).__name__ in ("Params4bit", "Int8Params") for layer in layers if layer is not None)


def peak_memory_gb(device: str) -> float | None:
    """Peak allocated GPU memory since the last reset (GiB), or None where no allocator reports one (CPU)."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 1024**3
    return None


# ================================================================ price task
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def parse_price(text: str) -> float | None:
    """The first number in a generation (``"$1,299.00 ..."`` → 1299.0), or None if there is none."""
    match = _NUMBER.search(text or "")
    if not match:
        return None
    try:
        return float(match.group().replace(",", ""))
    except ValueError:
        return None


def price_mae(generations: Sequence[str], truths: Sequence[float], unparseable: float = 0.0) -> dict[str, Any]:
    """Mean absolute error of the parsed prices. An answer with no number counts as ``unparseable``
    dollars (0 by default, so its error is the whole true price); ``parsed`` is the share that had one."""
    if len(generations) != len(truths):
        raise ValueError(f"{len(generations)} generations but {len(truths)} true prices.")
    parsed = [parse_price(g) for g in generations]
    preds = [unparseable if p is None else p for p in parsed]
    errors = [abs(p - t) for p, t in zip(preds, truths)]
    n = max(len(errors), 1)
    return {"mae": sum(errors) / n, "parsed": sum(p is not None for p in parsed) / n, "predictions": preds}
