"""GPT-2 from scratch, in one page, proven equal to transformers' GPT2LMHeadModel.

The course notes' model: 12 layers, 12 heads, width 768, context 1024, and
a vocabulary padded from 50,257 to 50,304 (a multiple of 64, kinder to GPU
matmuls). Pre-LayerNorm blocks, a fused qkv projection, causal
``scaled_dot_product_attention`` (flash kernels on GPU), a tanh-GELU MLP, tied
input/output embeddings, and residual projections initialised with std
0.02/sqrt(2·n_layer)::

    >>> cfg = GPT2Config(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=100)
    >>> model = GPT2(cfg)
    >>> logits, loss = model(torch.zeros(1, 8, dtype=torch.long), targets=torch.zeros(1, 8, dtype=torch.long))
    >>> tuple(logits.shape)
    (1, 8, 100)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from numbers import Integral
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPT2Config:
    """Sizes of a GPT-2. The defaults are GPT-2 small (124M parameters)."""

    block_size: int = 1024  # context length
    vocab_size: int = 50257  # the tokenizer's vocabulary
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    pad_vocab_to: int = 1  # round the embedding rows up to a multiple of this (64 → 50,304)
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}).")

    @property
    def padded_vocab_size(self) -> int:
        m = self.pad_vocab_to
        return (self.vocab_size + m - 1) // m * m

    @classmethod
    def gpt2_small(cls, padded: bool = True) -> GPT2Config:
        """The course notes' configuration: 124M parameters, vocabulary padded to 50,304."""
        return cls(pad_vocab_to=64 if padded else 1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # fused q, k, v
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.c_proj.RESIDUAL_SCALE = True  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 × (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.c_proj.RESIDUAL_SCALE = True  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # pre-LN: normalise, transform, add back
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    """GPT-2 language model. ``forward(idx, targets=None)`` returns ``(logits, loss)``."""

    def __init__(self, cfg: GPT2Config) -> None:
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict({
            "wte": nn.Embedding(cfg.padded_vocab_size, cfg.n_embd),
            "wpe": nn.Embedding(cfg.block_size, cfg.n_embd),
            "drop": nn.Dropout(cfg.dropout),
            "h": nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            "ln_f": nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps),
        })
        self.lm_head = nn.Linear(cfg.n_embd, cfg.padded_vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied: one matrix reads and writes tokens
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "RESIDUAL_SCALE", False):  # keep the residual stream's variance flat
                std /= math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (tied weights once); ``non_embedding`` drops the position table."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"Sequence length {T} exceeds the context (block_size={self.config.block_size}).")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V_padded)
        logits = logits[..., : self.config.vocab_size]  # padded rows are never predicted
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx`` (B, T) from ``softmax(logits / temperature)``,
        keeping only the ``top_k`` likeliest tokens when given."""
        _check_sampling(max_new_tokens, temperature, top_k)
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            probs = next_token_probs(logits[:, -1, :], temperature, top_k)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

    @classmethod
    def from_hf(cls, hf_model: Any, pad_vocab_to: int = 1) -> GPT2:
        """Copy a transformers ``GPT2LMHeadModel``; the logits come out the same.

        transformers stores its projections as ``Conv1D`` with weights (in, out),
        so those are transposed into our ``nn.Linear`` (out, in). A variant this
        model does not compute (untied head, another activation, other attention
        scaling, another MLP width, cross-attention) raises a ValueError naming the
        config field, before anything is built. Dropout rates are not copied: the
        copy has ``dropout=0.0`` (set ``model.config.dropout`` knowingly to train it).
        """
        _check_copyable(hf_model)
        hc = hf_model.config
        cfg = GPT2Config(block_size=hc.n_positions, vocab_size=hc.vocab_size, n_layer=hc.n_layer,
                         n_head=hc.n_head, n_embd=hc.n_embd, layer_norm_eps=hc.layer_norm_epsilon,
                         pad_vocab_to=pad_vocab_to)
        model = cls(cfg)
        theirs = hf_model.state_dict()
        conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        with torch.no_grad():
            for name, param in model.state_dict().items():
                if name == "lm_head.weight" or name.endswith(".attn.bias"):
                    continue  # tied to wte (checked above); HF's causal-mask buffer has no twin here
                src = theirs[name].t() if name.endswith(conv1d) else theirs[name]
                param[: src.shape[0]].copy_(src)  # padded vocabulary rows stay as initialised
        return model


def next_token_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None) -> torch.Tensor:
    """``softmax(logits / temperature)`` over the last axis, zero outside the ``top_k`` largest logits.

    >>> probs = next_token_probs(torch.tensor([[0.0, 0.0, 2.0 * math.log(3.0)]]), temperature=2.0)
    >>> [round(p, 6) for p in probs[0].tolist()]   # exp([0, 0, log 3]) / 5
    [0.2, 0.2, 0.6]
    >>> next_token_probs(torch.tensor([[1.0, 3.0, 2.0]]), top_k=1).tolist()
    [[0.0, 1.0, 0.0]]
    """
    logits = logits / temperature  # T < 1 sharpens, T > 1 flattens
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return F.softmax(logits, dim=-1)


def _check_sampling(max_new_tokens: int, temperature: float, top_k: int | None) -> None:
    if not isinstance(max_new_tokens, Integral) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens={max_new_tokens!r}: must be a whole number of tokens ≥ 0.")
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r}: must be > 0 (use top_k=1 for greedy decoding).")
    if top_k is not None and (not isinstance(top_k, Integral) or top_k < 1):
        raise ValueError(f"top_k={top_k!r}: must be ≥ 1 (top_k=1 is greedy; None keeps every token).")


# transformers' names for the tanh approximation of GELU, the one activation GPT2's MLP computes.
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def _unrepresentable(hf_model: Any) -> list[tuple[str, Any, str]]:
    """``(field, value, what GPT2 computes instead)`` for every GPT-2 variant this model cannot copy."""
    hc = hf_model.config
    head, wte = hf_model.get_output_embeddings(), hf_model.get_input_embeddings()
    tied = head is not None and (head.weight is wte.weight or torch.equal(head.weight, wte.weight))
    checks = [
        ("tie_word_embeddings", getattr(hc, "tie_word_embeddings", True), tied, "an LM head tied to wte"),
        ("activation_function", hc.activation_function, hc.activation_function in TANH_GELU, "the tanh GELU"),
        ("n_inner", hc.n_inner, hc.n_inner in (None, 4 * hc.n_embd), f"an MLP of width 4·n_embd={4 * hc.n_embd}"),
        ("scale_attn_weights", hc.scale_attn_weights, hc.scale_attn_weights, "attention scaled by 1/sqrt(head size)"),
        ("scale_attn_by_inverse_layer_idx", hc.scale_attn_by_inverse_layer_idx,
         not hc.scale_attn_by_inverse_layer_idx, "the same attention scale in every layer"),
        ("add_cross_attention", hc.add_cross_attention, not hc.add_cross_attention, "no cross-attention"),
    ]
    # reorder_and_upcast_attn is copyable: it only reorders the scaling and upcasts to fp32, which GPT2 computes in.
    return [(name, value, instead) for name, value, ok, instead in checks if not ok]


def _check_copyable(hf_model: Any) -> None:
    kind = getattr(getattr(hf_model, "config", None), "model_type", None)
    if kind != "gpt2" or not hasattr(hf_model, "transformer"):
        raise ValueError(f"GPT2.from_hf got a {type(hf_model).__name__} (model_type={kind!r}): "
                         "pass a transformers GPT2LMHeadModel.")
    bad = _unrepresentable(hf_model)
    if bad:
        name, value, instead = bad[0]
        raise ValueError(f"{name}={value!r}: GPT2 computes {instead}, so this model would not be copied exactly; "
                         "use transformers' GPT2LMHeadModel for this variant.")


def config_mismatch(a: GPT2Config, b: GPT2Config) -> list[str]:
    """Names of the fields where two configs differ (for clear checkpoint errors)."""
    return [f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)]
