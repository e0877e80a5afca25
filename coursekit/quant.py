"""Loading a model in 4 or 8 bits with bitsandbytes, and keeping a 4-bit model trainable (QLoRA).

* ``bnb_config``: the ``BitsAndBytesConfig`` for 8-bit (LLM.int8) or 4-bit (nf4/fp4, double quantization).
* ``kbit_config``: the same for a profile, or None with one printed line where bitsandbytes cannot run
  (the model then loads unquantized).
* ``optimizer_for``: a bitsandbytes optimizer (``paged_adamw_32bit``, ``adamw_bnb_8bit``, ...) where it runs,
  else torch's nearest, with one printed line.
* ``keep_4bit_trainable``: undoes bitsandbytes' inference-only CPU repacking before training.
* ``embeddings_quantized``: whether the embeddings or the LM head were quantized (they should not be).

    >>> import torch
    >>> cfg = bnb_config(4, torch.bfloat16)
    >>> cfg.load_in_4bit, cfg.bnb_4bit_quant_type, cfg.bnb_4bit_use_double_quant, cfg.bnb_4bit_compute_dtype
    (True, 'nf4', True, torch.bfloat16)
"""

from __future__ import annotations

import importlib.util
from typing import Any

from coursekit.runtime import Profile

__all__ = ["BNB_OPTIMIZERS", "bnb_config", "embeddings_quantized", "kbit_config", "keep_4bit_trainable",
           "optimizer_for"]

# transformers' optimizer names that build a bitsandbytes optimizer (tests/test_quant.py checks its list agrees)
BNB_OPTIMIZERS = ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_32bit", "paged_adamw_8bit", "ademamix",
                  "ademamix_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit", "lion_32bit", "lion_8bit",
                  "paged_lion_32bit", "paged_lion_8bit", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit")


def bnb_config(bits: int, compute_dtype: Any = None, quant_type: str = "nf4", double_quant: bool = True) -> Any:
    """The ``BitsAndBytesConfig`` for 8-bit (LLM.int8) or 4-bit (nf4/fp4, optionally double-quantized) loading.

    """
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    if bits != 4:
        raise ValueError(f"bitsandbytes loads 4- or 8-bit weights; got bits={bits}.")
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                              bnb_4bit_use_double_quant=double_quant, bnb_4bit_compute_dtype=compute_dtype)


def _bnb_problem(device: str) -> str | None:
    """Why bitsandbytes cannot quantize here, or None when it can."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    if device == "mps":
        return "bitsandbytes has no Apple MPS backend"
    return None


def kbit_config(bits: int | None, profile: Profile, quant_type: str = "nf4", double_quant: bool = True) -> Any:
    """``bnb_config(bits, profile.dtype, ...)``, or None for ``bits=None`` or where bitsandbytes cannot run here.

    In the second case one line says so, and the model loads unquantized.
    """
    if bits is None:
        return None
    problem = _bnb_problem(profile.device)
    if problem:
        print(f"{bits}-bit loading asked for, but {problem}: loading the model unquantized instead.")
        return None
    return bnb_config(bits, profile.dtype, quant_type, double_quant)


def optimizer_for(optim: str, device: str) -> str:
    """The optimizer a run asking for ``optim`` trains with on ``device``; one printed line when that differs.

    Where bitsandbytes cannot run, its optimizers become torch's nearest (``rmsprop`` for its RMSprop, else
    ``adamw_torch``). bitsandbytes 0.50 runs its 8-bit and 32-bit optimizers on a CPU too, but pages their
    state only from a CUDA GPU: a paged one then keeps the same update in ordinary memory, and says so.

    >>> optimizer_for("adamw_torch", "cpu")
    'adamw_torch'
    >>> optimizer_for("paged_adamw_32bit", "mps")
    optimizer paged_adamw_32bit asked for, but bitsandbytes has no Apple MPS backend: training with adamw_torch.
    'adamw_torch'
    """
    if optim not in BNB_OPTIMIZERS:
        return optim
    problem = _bnb_problem(device)
    if problem:
        chosen = "rmsprop" if optim.startswith("rmsprop") else "adamw_torch"
        print(f"optimizer {optim} asked for, but {problem}: training with {chosen}.")
        return chosen
    if optim.startswith("paged_") and device != "cuda":
        print(f"optimizer {optim} on {device}: bitsandbytes pages optimizer state only from a CUDA GPU, so it "
              "keeps it in ordinary memory here (the same update, unpaged).")
    return optim


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


def embeddings_quantized(model: Any) -> bool:
    """True if the input embedding or the LM head is a bitsandbytes quantized parameter."""
    layers = [model.get_input_embeddings(), model.get_output_embeddings()]
    return any(type(layer.weight).__name__ in ("Params4bit", "Int8Params") for layer in layers if layer is not None)
