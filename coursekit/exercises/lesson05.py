"""Lesson 05's exercises: NF4 block quantisation by hand (the codes, then the weights back), the bytes per
parameter that a 4-bit weight really costs, and whether a QLoRA fine-tune fits in memory.

q1 and q2 run the student's answer on one small fixed float32 weight (4 blocks of 64; the same bits on any CPU)
and compare it with bitsandbytes' own result, ``bitsandbytes.functional.quantize_4bit`` / ``dequantize_4bit``
with ``quant_type="nf4", blocksize=64`` on the CPU. q3 compares with ``coursekit.memory.nf4_bytes_per_param``,
q4 with q3's reference for the base and, for the adapter, bytes counted on a real AdamW step. A wrong answer is
told which common mistake it matches, with values.

    >>> q3.check(lambda double_quant: 0.5)   # the 4 bits alone
    ✗ q3: nf4_bytes(double_quant=False) is 0.5; expected 0.0625 more. That is the 4 bits alone: each block of 64 weights also stores its absmax scale.
      Hint: 4 bits = 0.5 B. Plus one absmax per 64 weights: 4 bytes (fp32), or with double quant 1 byte plus one fp32 per 256 absmaxes.
    >>> q3.check(nf4_bytes)
    ✓ q3: correct. 0.5625 B plain, 0.5159 B with double quant, as coursekit.memory.nf4_bytes_per_param.
"""

from __future__ import annotations

from typing import Any

import torch

from coursekit.exercises import Exercise, Wrong, expect_close, expect_tensor
from coursekit.memory import DQ_BLOCK, NF4_BLOCK, nf4_bytes_per_param

__all__ = ["EXERCISES", "nf4_bytes", "nf4_dequantize", "nf4_quantize", "nf4_table",
           "q1", "q2", "q3", "q4", "qlora_gib"]

N_BLOCKS = 4  # 4 blocks of 64: not 64 blocks, so a transposed broadcast fails loudly


def nf4_table() -> torch.Tensor:
    """bitsandbytes' 16 NF4 code values, sorted from -1 to 1 (float32, CPU)."""
    from bitsandbytes.functional import get_4bit_type

    return get_4bit_type("nf4", device="cpu")


def _weight() -> torch.Tensor:
    """(4, 64) float32: a weight-like block set, one block with a large outlier (its scale is set by it)."""
    w = 0.02 * torch.randn(N_BLOCKS, NF4_BLOCK, generator=torch.Generator().manual_seed(5))
    w[2, 7] = 0.3
    return w


def _bnb(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """bitsandbytes' codes (n_blocks, 64), absmax (n_blocks,) and dequantised weight of ``w`` (CPU)."""
    from bitsandbytes.functional import dequantize_4bit, quantize_4bit

    packed, state = quantize_4bit(w.reshape(-1), blocksize=NF4_BLOCK, quant_type="nf4")
    flat = packed.reshape(-1)
    codes = torch.stack([flat >> 4, flat & 0xF], dim=1).reshape(w.shape).long()  # high nibble first
    return codes, state.absmax.clone(), dequantize_4bit(packed, state).reshape(w.shape)


# ---------------------------------------------------------------- q1: absmax and codes
def nf4_quantize(w: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NF4 codes of ``w`` (n_blocks, 64): each block's absmax, then the index of the nearest code value."""
    absmax = w.abs().amax(dim=1)                                   # (n_blocks,)
    scaled = w / absmax[:, None]                                   # (n_blocks, 64), in [-1, 1]
    codes = (scaled[..., None] - code).abs().argmin(dim=-1)        # (n_blocks, 64, 16) -> (n_blocks, 64)
    return codes, absmax


def _check_quantize(f: Any) -> str:
    w, code = _weight(), nf4_table()
    want_codes, want_absmax, _ = _bnb(w)
    got = f(w.clone(), code.clone())
    if not (isinstance(got, tuple | list) and len(got) == 2):
        raise Wrong(f"nf4_quantize returned a {type(got).__name__}; expected a pair (codes, absmax).")
    codes, absmax = got
    if isinstance(absmax, torch.Tensor) and absmax.numel() == 1:
        raise Wrong(f"your absmax is one number ({float(absmax):.4g}) for the whole weight; NF4 keeps one per "
                    f"block of 64, here {N_BLOCKS} (bitsandbytes: {[round(a, 4) for a in want_absmax.tolist()]}).")
    if isinstance(absmax, torch.Tensor) and absmax.shape == want_absmax.shape and \
            torch.allclose(absmax.float(), w.amax(dim=1)) and not torch.allclose(absmax.float(), want_absmax):
        raise Wrong(f"your absmax is each block's max {[round(a, 4) for a in absmax.tolist()]}, not its max |w| "
                    f"{[round(a, 4) for a in want_absmax.tolist()]}: a negative outlier would then fall below -1.")
    expect_tensor(absmax, want_absmax, "absmax", atol=0, rtol=1e-6)
    if not isinstance(codes, torch.Tensor) or codes.shape != want_codes.shape:
        expect_tensor(codes, want_codes.float(), "codes")
    scaled = w / want_absmax[:, None]
    uniform = torch.round((scaled + 1) / 2 * 15).long()
    if torch.equal(codes.long(), uniform):
        raise Wrong("your codes are a uniform 4-bit grid (16 evenly spaced levels); NF4's 16 values are spaced "
                    "like a normal distribution, dense near 0: take the nearest value of `code`.")
    bad = (codes.long() != want_codes).nonzero()
    if len(bad):
        b, i = (int(v) for v in bad[0])
        c, t = int(codes[b, i]), int(want_codes[b, i])
        yours = f"value {code[c]:.4f}" if 0 <= c < len(code) else "not an index of the 16 values"
        raise Wrong(f"{len(bad)} of {want_codes.numel()} codes differ from bitsandbytes', e.g. block {b} position "
                    f"{i}: w = {w[b, i]:.4g}, w / absmax = {scaled[b, i]:.4f}; your code {c} ({yours}), "
                    f"the nearest is {t} (value {code[t]:.4f}).")
    return f"all {want_codes.numel()} codes and {N_BLOCKS} absmax scales equal bitsandbytes' quantize_4bit (nf4)."


q1 = Exercise(
    "q1", "nf4_quantize(w, code): for w of shape (n_blocks, 64), return (codes, absmax): each block's max |w|, "
          "and for each weight the index (0-15) of the NF4 value in `code` nearest to w / absmax.",
    checker=_check_quantize,
    hint_text="absmax = w.abs().amax(dim=1); scaled = w / absmax[:, None]; the nearest code is "
              "(scaled[..., None] - code).abs().argmin(dim=-1).",
    reference=nf4_quantize,
    wrong=(lambda w, code: (((w / w.amax(1, keepdim=True))[..., None] - code).abs().argmin(-1), w.amax(1)),
           lambda w, code: (((w / w.abs().max())[..., None] - code).abs().argmin(-1), w.abs().max()),
           lambda w, code: (torch.round((w / w.abs().amax(1, keepdim=True) + 1) / 2 * 15).long(), w.abs().amax(1)),
           lambda w, code: (torch.searchsorted(code, (w / w.abs().amax(1, keepdim=True)).contiguous()).clamp(max=15),
                            w.abs().amax(1))),
)


# ---------------------------------------------------------------- q2: dequantise
def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """The weight back from its NF4 codes (n_blocks, 64) and absmax scales (n_blocks,)."""
    return code[codes] * absmax[:, None]                           # (n_blocks, 64) values in [-1, 1], rescaled


def _check_dequantize(f: Any) -> str:
    w, code = _weight(), nf4_table()
    codes, absmax, want = _bnb(w)
    got = f(codes.clone(), absmax.clone(), code.clone())
    if isinstance(got, torch.Tensor) and got.shape == want.shape:
        if torch.allclose(got.float(), code[codes]):
            raise Wrong(f"your weights are the code values alone, in [-1, 1] (max {got.abs().max():.3f}); "
                        f"multiply each block by its absmax ({[round(a, 4) for a in absmax.tolist()]}).")
        if torch.allclose(got.float(), code[codes] / absmax[:, None]):
            raise Wrong("you divided by absmax: quantising divided by it, so dequantising multiplies.")
    expect_tensor(got, want, "the dequantised weight", atol=0, rtol=1e-6)
    err = (w - want).abs()
    return (f"equal to bitsandbytes' dequantize_4bit. The round trip's error: max {err.max():.2e}, mean "
            f"{err.mean():.2e} (|w| mean {w.abs().mean():.2e}); each error is at most half a gap × absmax.")


q2 = Exercise(
    "q2", "nf4_dequantize(codes, absmax, code): the weight back, shape (n_blocks, 64), from the codes of q1.",
    checker=_check_dequantize,
    hint_text="code[codes] looks up each value (in [-1, 1]); then multiply row b by absmax[b]: absmax[:, None].",
    reference=nf4_dequantize,
    wrong=(lambda codes, absmax, code: code[codes],
           lambda codes, absmax, code: code[codes] / absmax[:, None],
           lambda codes, absmax, code: (codes / 15 * 2 - 1) * absmax[:, None],
           lambda codes, absmax, code: code[codes] * absmax[None, :]),
)


# ---------------------------------------------------------------- q3: bytes per parameter
def nf4_bytes(double_quant: bool) -> float:
    """Bytes per weight in nf4, blocks of 64: half a byte, plus its share of the block's absmax scale."""
    if double_quant:  # the absmax in 8 bits, and one fp32 scale per 256 of them
        return 0.5 + (1 + 4 / 256) / 64
    return 0.5 + 4 / 64


def _check_bytes(f: Any) -> str:
    plain, dq = nf4_bytes_per_param(False), nf4_bytes_per_param(True)
    got = f(False)
    try:
        value = float(got)
    except (TypeError, ValueError):
        value = None
    if value is not None and abs(value - 0.5) < 1e-9:
        raise Wrong(f"nf4_bytes(double_quant=False) is 0.5; expected {plain - 0.5:g} more. That is the 4 bits "
                    "alone: each block of 64 weights also stores its absmax scale.")
    expect_close(got, plain, "nf4_bytes(double_quant=False)")
    got = f(True)
    if isinstance(got, int | float) and abs(got - plain) < 1e-9:
        raise Wrong(f"nf4_bytes(double_quant=True) is {got:g}, the same as without: double quant stores each "
                    f"absmax in 1 byte instead of 4, so expected {dq:.6g}.")
    if isinstance(got, int | float) and abs(got - (0.5 + 1 / NF4_BLOCK)) < 1e-9:
        raise Wrong(f"nf4_bytes(double_quant=True) is {got:.6g}: the 8-bit absmax is right, but its own fp32 "
                    f"scale (one per {DQ_BLOCK} absmaxes) is missing; expected {dq:.6g}.")
    expect_close(got, dq, "nf4_bytes(double_quant=True)")
    return f"{plain:.4f} B plain, {dq:.4f} B with double quant, as coursekit.memory.nf4_bytes_per_param."


q3 = Exercise(
    "q3", "nf4_bytes(double_quant): bytes per weight in nf4 with blocks of 64, scales included.",
    checker=_check_bytes,
    hint_text="4 bits = 0.5 B. Plus one absmax per 64 weights: 4 bytes (fp32), or with double quant 1 byte plus "
              "one fp32 per 256 absmaxes.",
    reference=nf4_bytes,
    wrong=(lambda double_quant: 0.5, lambda double_quant: 0.5 + 4 / 64,
           lambda double_quant: 0.5 + (1 / 64 if double_quant else 4 / 64)),
)


# ---------------------------------------------------------------- q4: will a QLoRA fine-tune fit?
GIB = 2 ** 30


def qlora_gib(n_base: float, n_adapter: float) -> float:
    """GiB for a QLoRA fine-tune, activations excluded: the frozen base in nf4 with double quant (q3), and the
    adapter in fp32 with AdamW (4 B weight + 4 B grad + 8 B two moments = 16 B per parameter)."""
    return (n_base * nf4_bytes(True) + n_adapter * 16) / 2 ** 30


def _adamw_step_bytes() -> float:
    """Bytes per parameter after one AdamW step on a tiny fp32 layer: weight + grad + both moments."""
    layer = torch.nn.Linear(8, 4)
    opt = torch.optim.AdamW(layer.parameters())
    layer(torch.ones(2, 8)).sum().backward()
    opt.step()
    n = sum(p.numel() for p in layer.parameters())
    held = sum(p.numel() * p.element_size() + p.grad.numel() * p.grad.element_size() for p in layer.parameters())
    held += sum(t.numel() * t.element_size() for s in opt.state.values() for t in s.values() if t.dim() > 0)
    return held / n


FITS = [(7e9, 40e6), (3.21e9, 24.3e6)]  # a 7B base with an all-linear r = 16 adapter; Llama-3.2-3B with r = 16


def _check_fit(f: Any) -> str:
    dq, adam = nf4_bytes(True), _adamw_step_bytes()     # q3's reference (0.5159 B), and 16 B counted on a step
    for n_base, n_adapter in FITS:
        want = (n_base * dq + n_adapter * adam) / GIB
        call = f"qlora_gib({n_base:.3g}, {n_adapter:.3g})".replace("e+0", "e")   # qlora_gib(7e9, 4e7)
        got = f(n_base, n_adapter)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Wrong(f"{call} returned {got!r}; expected a number of GiB, about {want:.4g}.") from None
        mistakes = {
            f"that is GB (1e9 bytes); a GiB is 2**30 = {GIB:,} bytes, 7.4% more, so the same bytes are fewer GiB.":
                want * GIB / 1e9,
            f"the base is at 0.5 B per weight, the 4 bits alone: each block of {NF4_BLOCK} also stores its scale "
            f"(q3: {dq:.4f} B with double quant).": (n_base * 0.5 + n_adapter * adam) / GIB,
            f"the base is at {nf4_bytes(False):.4f} B per weight, nf4 without double quant; with it, {dq:.4f} B.":
                (n_base * nf4_bytes(False) + n_adapter * adam) / GIB,
            f"the adapter is at 4 B per parameter, its fp32 weights alone: training adds the gradient (4 B) and "
            f"AdamW's two moments (8 B), {adam:g} B in all.": (n_base * dq + n_adapter * 4) / GIB,
            "the base is at 2 B per weight, bf16: QLoRA stores the frozen base in nf4, "
            f"{dq:.4f} B per weight with double quant.": (n_base * 2 + n_adapter * adam) / GIB,
            f"the base is counted at {adam:g} B per weight, as if it trained too; it is frozen, so it has no "
            f"gradient and no AdamW state: {dq:.4f} B per weight in nf4.": (n_base + n_adapter) * adam / GIB,
        }
        for what, wrong in mistakes.items():
            if abs(value - wrong) <= 1e-6 * wrong and abs(value - want) > 1e-6 * want:
                raise Wrong(f"{call} is {value:.4g}; expected {want:.4g} GiB: {what}")
        expect_close(value, want, f"{call} (GiB)", rel=1e-6)
    n_base, n_adapter = FITS[0]
    base, adapter = n_base * dq / GIB, n_adapter * adam / GIB
    return (f"{base + adapter:.2f} GiB for a 7B base in nf4 + double quant ({base:.2f}) and a 40M-parameter "
            f"adapter with AdamW ({adapter:.2f}), before activations; the same base in bf16 is {n_base * 2 / GIB:.1f} "
            "GiB on its own.")


q4 = Exercise(
    "q4", "qlora_gib(n_base, n_adapter): GiB (2**30 bytes) for a frozen base in nf4 with double quant plus an "
          "adapter trained in fp32 with AdamW, activations excluded.",
    checker=_check_fit,
    hint_text="Base: n_base × q3's bytes per weight with double quant (0.5 + (1 + 4/256)/64). Adapter: n_adapter × "
              "16 (fp32 weight, gradient, AdamW's two moments). Divide the bytes by 2**30.",
    reference=qlora_gib,
    wrong=(lambda n_base, n_adapter: (n_base * nf4_bytes(True) + n_adapter * 16) / 1e9,
           lambda n_base, n_adapter: (n_base * 0.5 + n_adapter * 16) / 2 ** 30,
           lambda n_base, n_adapter: (n_base * nf4_bytes(True) + n_adapter * 4) / 2 ** 30,
           lambda n_base, n_adapter: (n_base * 2 + n_adapter * 16) / 2 ** 30),
)

EXERCISES = [q1, q2, q3, q4]
