"""Which training method fits on which GPU: a memory model from a model's shape, checked against measurements.

Training memory is four parts, each computed from the shape of a Llama-style decoder (``ModelShape``):

* **weights**: fp32 (4 bytes) for full fine-tuning, whose weights are the ones trained (``torch.autocast`` computes
  in bf16 from them: HF Trainer's ``bf16=True``); bf16 (2 bytes) for LoRA's frozen base; nf4 + double quantization
  (~0.52 bytes) for QLoRA's linear layers, whose embeddings stay bf16 (bitsandbytes quantizes ``nn.Linear`` only);
* **trainable state**: per trained parameter, its fp32 gradient and Adam's two fp32 moments (12 bytes), plus for an
  adapter its own fp32 weight (16 in all). Full FT trains every parameter, LoRA and QLoRA only the adapter
  (``lora_params``): full FT comes to 16 bytes a parameter, ``memory.TRAINING_BYTES_PER_PARAM``'s figure;
* **activations**: what one forward pass saves for backward, per token and layer. Without checkpointing that is
  ``8·hidden + 4·intermediate + 2·kv`` values for full FT and ``6·hidden + 4·intermediate + 2·kv + 7·r`` for LoRA
  (kv: the key/value width, ``kv_heads · head_dim``; r: the adapter's rank), with SDPA or flash attention (no T²
  term). The coefficients are a fit to ``memory.saved_activation_bytes`` on five Llama shapes, within 1%;
  ``tests/test_gpu_fit.py`` measures them again. With checkpointing each layer keeps its input only (``hidden``
  values), and one layer at a time is recomputed in full;
* **logits**: the fp32 log-softmax of the LM head's (tokens, vocabulary) output, which the loss saves, unless a
  fused (chunked) LM head computes the loss, as TRL 1.16's SFT does (the default here).

Sizes are GiB (2**30 bytes), the unit ``nvidia-smi`` and ``torch.cuda`` report. A GPU's usable memory is its
total less ``RESERVED_GIB`` (the CUDA context and the allocator's slack).

>>> gib = memory_gib(SHAPES["8B"], "LoRA", tokens=4096)
>>> round(gib["weights"], 1), round(sum(gib.values()), 1)
(15.0, 17.2)
>>> fits(SHAPES["8B"], "LoRA", "L4 24 GB", tokens=4096), fits(SHAPES["8B"], "full FT", "H100 80 GB", tokens=4096)
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from coursekit.memory import nf4_bytes_per_param

__all__ = ["ADAPTER_BYTES", "BF16", "FP32", "GIB", "GPUS", "METHODS", "SHAPES", "STATE_BYTES", "ModelShape",
           "fit_table", "fits", "memory_gib", "shape_of"]

GIB = 2**30
METHODS = ("full FT", "LoRA", "QLoRA")
# Total memory as nvidia-smi reports it (MiB / 1024): what the marketing "16 GB" or "141 GB" really holds
GPUS: dict[str, float] = {
    "T4 16 GB": 15360 / 1024,
    "L4 24 GB": 23034 / 1024,
    "A100 40 GB": 40960 / 1024,
    "A100 80 GB": 81920 / 1024,
    "H100 80 GB": 81559 / 1024,
    "H200 141 GB": 143771 / 1024,
}
RESERVED_GIB = 1.0  # the CUDA context (~0.3-0.5 GiB) and the caching allocator's fragmentation
STATE_BYTES = 12  # a trained parameter's fp32 gradient + Adam's two fp32 moments
ADAPTER_BYTES = 4 + STATE_BYTES  # an adapter parameter also has its own fp32 weight
BF16, FP32 = 2, 4
# Tensors saved per token and layer, by width: (hidden-sized, intermediate-sized, kv-sized). The MLP saves gate, up,
# SiLU and their product; a frozen linear needs no copy of its input for its (absent) weight gradient, hence LoRA's 6.
SAVED_TENSORS = {"full FT": (8, 4, 2), "LoRA": (6, 4, 2), "QLoRA": (6, 4, 2)}


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a Llama-style decoder (Llama, Qwen2/3, SmolLM2, Mistral) that memory depends on."""

    name: str
    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool = False  # the LM head shares the embedding matrix

    def linears(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer of one decoder layer: q, k, v, o, gate, up, down.

        >>> SHAPES["3B"].linears()[:2]    # q: 24 heads × 128; k: 8 key-value heads × 128 (grouped-query attention)
        [(3072, 3072), (3072, 1024)]
        """
        h, kv = self.hidden, self.kv_heads * self.head_dim
        q = self.heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h), (h, self.intermediate), (h, self.intermediate),
                (self.intermediate, h)]

    def embedding_params(self) -> int:
        """The embedding matrix, and the LM head's when untied: the parameters QLoRA leaves in bf16."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def n_params(self) -> int:
        """Every parameter: embeddings, each layer's linears and its two RMSNorm weights, the final norm."""
        per_layer = sum(i * o for i, o in self.linears()) + 2 * self.hidden
        return self.embedding_params() + self.layers * per_layer + self.hidden

    def lora_params(self, r: int = 16) -> int:
        """A rank-``r`` adapter on every linear layer of every decoder layer: r·(in + out) each."""
        return self.layers * sum(r * (i + o) for i, o in self.linears())


def shape_of(config: Any, name: str = "") -> ModelShape:
    """The ``ModelShape`` of a transformers config (``LlamaConfig``, ``Qwen2Config``, ``Qwen3Config``, ...)."""
    heads = config.num_attention_heads
    return ModelShape(name or getattr(config, "_name_or_path", "") or config.model_type, config.hidden_size,
                      config.num_hidden_layers, config.intermediate_size, config.vocab_size, heads,
                      getattr(config, "num_key_value_heads", None) or heads,
                      getattr(config, "head_dim", None) or config.hidden_size // heads,
                      bool(getattr(config, "tie_word_embeddings", False)))


# Published configs (their config.json on the Hub), one per size class the notes discuss
SHAPES: dict[str, ModelShape] = {
    "0.5B": ModelShape("Qwen2.5-0.5B", 896, 24, 4864, 151936, 14, 2, 64, tied=True),
    "1.5B": ModelShape("Qwen2.5-1.5B", 1536, 28, 8960, 151936, 12, 2, 128, tied=True),
    "3B": ModelShape("Llama-3.2-3B", 3072, 28, 8192, 128256, 24, 8, 128, tied=True),
    "8B": ModelShape("Llama-3.1-8B", 4096, 32, 14336, 128256, 32, 8, 128),
    "13B": ModelShape("Llama-2-13B", 5120, 40, 13824, 32000, 40, 40, 128),
    "32B": ModelShape("Qwen2.5-32B", 5120, 64, 27648, 152064, 40, 8, 128),
    "70B": ModelShape("Llama-3.1-70B", 8192, 80, 28672, 128256, 64, 8, 128),
}


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}")


def activation_values_per_token_layer(shape: ModelShape, method: str, lora_r: int = 16) -> int:
    """Values one layer saves for backward per token, without checkpointing (see the module docstring); an
    adapter also saves each of its 7 linears' rank-``lora_r`` A output.

    >>> activation_values_per_token_layer(SHAPES["3B"], "LoRA")  # 6·3072 + 4·8192 + 2·1024 + 7·16
    53360
    """
    _check_method(method)
    n_hidden, n_inter, n_kv = SAVED_TENSORS[method]
    adapter = 0 if method == "full FT" else len(shape.linears()) * lora_r
    return n_hidden * shape.hidden + n_inter * shape.intermediate + n_kv * shape.kv_heads * shape.head_dim + adapter


def memory_gib(shape: ModelShape, method: str, tokens: int, checkpointing: bool = True,
               fused_lm_head: bool = True, lora_r: int = 16) -> dict[str, float]:
    """GiB of each part of one training step of ``method`` on ``tokens`` tokens (batch × sequence length), bf16.

    >>> parts = memory_gib(SHAPES["3B"], "QLoRA", tokens=512)
    >>> {k: round(v, 2) for k, v in parts.items()}
    {'weights': 2.09, 'trainable state': 0.36, 'activations': 0.13, 'logits': 0.0}
    """
    _check_method(method)
    if tokens < 1:
        raise ValueError(f"tokens={tokens}: a training step needs at least one token (batch size × sequence length)")
    n, embed = shape.n_params(), shape.embedding_params()
    if method == "QLoRA":  # bitsandbytes quantizes the linear layers; embeddings and norms stay bf16
        weights = (n - embed) * nf4_bytes_per_param(True) + embed * BF16
    else:
        weights = n * (FP32 if method == "full FT" else BF16)
    state = n * STATE_BYTES if method == "full FT" else shape.lora_params(lora_r) * ADAPTER_BYTES
    per_layer = activation_values_per_token_layer(shape, method, lora_r) * tokens * BF16
    if checkpointing:  # every layer keeps its input; one layer at a time is recomputed in full for backward
        activations = shape.layers * shape.hidden * tokens * BF16 + per_layer
    else:
        activations = shape.layers * per_layer
    logits = 0 if fused_lm_head else tokens * shape.vocab * 4  # the loss's fp32 log-softmax
    return {"weights": weights / GIB, "trainable state": state / GIB,
            "activations": activations / GIB, "logits": logits / GIB}


def usable_gib(gpu: str) -> float:
    if gpu not in GPUS:
        raise ValueError(f"Unknown GPU {gpu!r}: use one of {', '.join(GPUS)}")
    return GPUS[gpu] - RESERVED_GIB


def fits(shape: ModelShape, method: str, gpu: str, tokens: int, checkpointing: bool = True) -> bool:
    """Whether one training step of ``method`` on ``tokens`` tokens fits in ``gpu``'s usable memory."""
    return sum(memory_gib(shape, method, tokens, checkpointing).values()) <= usable_gib(gpu)


def fit_table(shapes: Mapping[str, ModelShape] | None = None, gpus: Iterable[str] = GPUS,
              tokens: int = 4096, checkpointing: bool = True) -> dict[str, dict[str, dict[str, float]]]:
    """``{size: {method: {gpu: GiB needed / GiB usable}}}``: a ratio ≤ 1 fits.

    >>> table = fit_table({"8B": SHAPES["8B"]}, ["T4 16 GB", "A100 80 GB"])
    >>> {m: {g: round(r, 2) for g, r in v.items()} for m, v in table["8B"].items()}
    {'full FT': {'T4 16 GB': 8.67, 'A100 80 GB': 1.54}, 'LoRA': {'T4 16 GB': 1.23, 'A100 80 GB': 0.22}, \
'QLoRA': {'T4 16 GB': 0.54, 'A100 80 GB': 0.1}}
    """
    shapes = SHAPES if shapes is None else shapes
    gpus = list(gpus)
    return {size: {m: {g: sum(memory_gib(s, m, tokens, checkpointing).values()) / usable_gib(g) for g in gpus}
                   for m in METHODS} for size, s in shapes.items()}
