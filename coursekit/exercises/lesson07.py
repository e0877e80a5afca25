"""Lesson 07's exercises: a block's parameters, gradient clipping, the LR schedule, gradient accumulation.

Each check runs the answer on tiny inputs and compares it with the finished copy it teaches: the parameter
count of ``coursekit.gpt2.Block``, ``torch.nn.utils.clip_grad_norm_`` (what ``coursekit.pretraining`` clips
with), ``coursekit.pretraining.lr_at`` at every step, and the gradient of one big batch of
``coursekit.gpt2.GPT2`` (what ``coursekit.pretraining``'s accumulation must reproduce, one micro-batch at a time)::

    >>> q1.check(lambda C: 12 * C * C)  # doctest: +ELLIPSIS
    ✗ q1: block_params(8) is 768; expected 872 (coursekit.gpt2.Block(n_embd=8) has 872 parameters). You are 104 short: ...
      Hint: Count each piece: c_attn is a C × 3C matrix plus 3C biases, ...
    >>> q1.check(block_params)
    ✓ q1: correct. 12·C² + 13·C: 7,087,872 per block of GPT-2 small (C = 768), 85M in its 12 blocks.
    >>> q2.grade(clip_grads).status, q3.grade(lr_at).status, q3.grade(lambda s, w, m, peak, low: peak).status
    ('correct', 'correct', 'wrong')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from coursekit import pretraining
from coursekit.exercises import Exercise, Wrong, expect_close, expect_tensor
from coursekit.gpt2 import GPT2, Block, GPT2Config

__all__ = ["EXERCISES", "q1", "q2", "q3", "q4"]

Batch = tuple[torch.Tensor, torch.Tensor]


# ---------------------------------------------------------------- q1: where a block's parameters live
def _block_numel(C: int) -> int:
    with torch.device("meta"):  # shapes only
        return sum(p.numel() for p in Block(GPT2Config(n_embd=C, n_head=1)).parameters())


def _check_block_params(f: Callable[[int], int]) -> str:
    for C in (8, 64, 768):
        got, want = f(C), _block_numel(C)
        if got != want:
            gap = want - got if isinstance(got, int) else None
            why = ""
            if gap == 13 * C:
                why = (f" You are {gap} short: 13·C = {13 * C} biases and LayerNorm parameters, and 12·C² = "
                       f"{12 * C * C} matrix weights are all there.")
            elif gap == 4 * C:
                why = f" You are {gap} short: the two LayerNorms (a gain and a bias per channel, 4·C) are missing."
            elif gap == 9 * C:
                why = f" You are {gap} short: the biases of the four linear layers (3C + C + 4C + C = 9·C) are missing."
            raise Wrong(f"block_params({C}) is {got!r}; expected {want} (coursekit.gpt2.Block(n_embd={C}) has "
                        f"{want} parameters).{why}")
    return f"12·C² + 13·C: {_block_numel(768):,} per block of GPT-2 small (C = 768), 85M in its 12 blocks."


def block_params(C: int) -> int:
    """Parameters of one GPT-2 block of width C."""
    attention = C * 3 * C + 3 * C + C * C + C  # c_attn (q, k, v) and c_proj, with biases
    mlp = C * 4 * C + 4 * C + 4 * C * C + C  # c_fc up to 4C, c_proj back down, with biases
    layer_norms = 2 * (C + C)  # ln_1 and ln_2: a gain and a bias per channel
    return attention + mlp + layer_norms


q1 = Exercise(
    "q1", "block_params(C): the number of parameters in one GPT-2 block of width C (attention, MLP, both LayerNorms).",
    checker=_check_block_params,
    hint_text="Count each piece: c_attn is a C × 3C matrix plus 3C biases, c_proj C × C plus C, the MLP C × 4C plus "
              "4C and 4C × C plus C, and each of the two LayerNorms has C gains and C biases.",
    reference=block_params,
    wrong=(lambda C: 12 * C * C, lambda C: 12 * C * C + 9 * C, lambda C: 12 * C * C + 4 * C))


# ---------------------------------------------------------------- q2: gradient clipping by hand
def _torch_clip(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    """What torch.nn.utils.clip_grad_norm_ does to parameters holding these gradients, and the norm it returns."""
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
    return [p.grad for p in params], total  # type: ignore[misc]


def _check_clip(f: Callable[[list[torch.Tensor], float], tuple[list[torch.Tensor], float]]) -> str:
    gen = torch.Generator().manual_seed(11)
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in ((3, 4), (5,), (2, 2, 2))]
    norms = [g.norm().item() for g in grads]
    total = math.sqrt(sum(n * n for n in norms))
    for max_norm in (1.0, 2 * total):  # the norm above max_norm, then below it
        want, want_norm = _torch_clip(grads, max_norm)
        got = f([g.clone() for g in grads], max_norm)  # copies: an in-place answer cannot touch ours
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Wrong(f"clip_grads returned a {type(got).__name__}; expected a tuple (clipped tensors, total norm).")
        clipped, got_norm = got
        try:
            value = float(got_norm)
        except (TypeError, ValueError):
            raise Wrong(f"the norm you return is {got_norm!r}, not a number; expected {want_norm:.4f}.") from None
        where = f"with max_norm = {max_norm:.4g} (the total norm is {total:.4f})"
        if math.isclose(value, sum(norms), rel_tol=1e-4):
            raise Wrong(f"{where}, your norm is {value:.4f}, the sum of the tensors' norms: the total L2 norm is "
                        "the square root of the sum of every squared entry, "
                        f"sqrt({' + '.join(f'{n:.2f}²' for n in norms)}) = {total:.4f}.")
        if max_norm < total and math.isclose(value, max_norm, rel_tol=1e-4):
            raise Wrong(f"{where}, your norm is {value:.4f} = max_norm: that is the norm after clipping. Return the "
                        f"norm before it ({want_norm:.4f}), as clip_grad_norm_ does: it is what a log of spikes needs.")
        expect_close(value, want_norm, f"the total norm {where}", rel=1e-4)
        if not isinstance(clipped, (list, tuple)) or len(clipped) != len(grads):
            raise Wrong(f"the clipped tensors are {type(clipped).__name__}; expected a list of {len(grads)} tensors.")
        got_norms = [c.detach().double().norm().item() if isinstance(c, torch.Tensor) else math.nan for c in clipped]
        if max_norm < total and all(math.isclose(n, min(n0, max_norm), rel_tol=1e-4)
                                    for n, n0 in zip(got_norms, norms, strict=True)):
            raise Wrong(f"{where}, each of your tensors has norm ≤ {max_norm:.4g} on its own (norms "
                        f"{', '.join(f'{n:.3f}' for n in got_norms)}): you clipped each tensor by its own norm. "
                        "Clipping scales all of them by one factor, so the gradient keeps its direction.")
        if max_norm > total and math.isclose(math.sqrt(sum(n * n for n in got_norms)), max_norm, rel_tol=1e-4):
            raise Wrong(f"{where}, your tensors were scaled up to total norm {max_norm:.4g}: the factor is "
                        "min(1, max_norm / total). Clipping only ever shrinks; a small gradient stays as it is.")
        for i, (c, w) in enumerate(zip(clipped, want, strict=True)):
            expect_tensor(c, w, f"clipped tensor {i} {where}", atol=1e-6, rtol=1e-4)
    return (f"total norm {total:.4f}: scaled by {1.0 / (total + 1e-6):.4f} to norm 1.0, and left alone under "
            f"max_norm = {2 * total:.3f}, as torch.nn.utils.clip_grad_norm_ does.")


def clip_grads(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    """Scale all the tensors by one factor so that their total L2 norm is at most max_norm; the norm before."""
    total = math.sqrt(sum((g.double() ** 2).sum().item() for g in grads))  # one norm over every entry of every tensor
    scale = min(1.0, max_norm / (total + 1e-6))  # never above 1: clipping only shrinks
    return [g * scale for g in grads], total


def _clip_each(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    total = math.sqrt(sum((g.double() ** 2).sum().item() for g in grads))
    return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads], total


def _always_scale(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    total = math.sqrt(sum((g.double() ** 2).sum().item() for g in grads))
    return [g * (max_norm / (total + 1e-6)) for g in grads], total


def _norm_after(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    clipped, _ = clip_grads(grads, max_norm)
    return clipped, math.sqrt(sum((c ** 2).sum().item() for c in clipped))


def _sum_of_norms(grads: list[torch.Tensor], max_norm: float) -> tuple[list[torch.Tensor], float]:
    total = sum(g.norm().item() for g in grads)
    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads], total


q2 = Exercise(
    "q2", "clip_grads(grads, max_norm): the total L2 norm of all the tensors together, and the tensors scaled by "
          "min(1, max_norm / (norm + 1e-6)); return (clipped tensors, the norm before clipping).",
    checker=_check_clip,
    hint_text="total = sqrt of the sum of (g ** 2).sum() over every tensor: one norm for all of them; scale = "
              "min(1.0, max_norm / (total + 1e-6)); return [g * scale for g in grads], total.",
    reference=clip_grads,
    wrong=(_clip_each, _always_scale, _norm_after, _sum_of_norms))


# ---------------------------------------------------------------- q3: the learning-rate schedule
SCHEDULES = ((8, 108, 6e-4, 6e-5), (4, 20, 1e-3, 2e-4))  # (warmup_steps, max_steps, peak_lr, min_lr)


def _finished_lr(step: int, warmup_steps: int, max_steps: int, peak_lr: float, min_lr: float) -> float:
    cfg = pretraining.PretrainConfig(max_steps=max_steps, warmup_steps=warmup_steps, learning_rate=peak_lr,
                                     min_lr_ratio=min_lr / peak_lr)
    return pretraining.lr_at(step, cfg)


def _check_lr(f: Callable[[int, int, int, float, float], float]) -> str:
    for w, m, peak, low in SCHEDULES:
        for s in range(m + 10):  # every step, the last one and past it
            got, want = f(s, w, m, peak, low), _finished_lr(s, w, m, peak, low)
            try:
                value = float(got)
            except (TypeError, ValueError):
                raise Wrong(f"lr_at({s}, {w}, {m}, {peak:g}, {low:g}) is {got!r}, not a number.") from None
            if math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-12 * peak):
                continue
            at = f"lr_at({s}, warmup_steps={w}, max_steps={m}, peak_lr={peak:g}, min_lr={low:g}) is {value:.4g}"
            if s == 0 and math.isclose(value, peak, rel_tol=1e-6):
                raise Wrong(f"{at} = peak_lr already: there is no warm-up. Rise linearly over the first {w} steps.")
            if s < w and math.isclose(value, peak * s / w, rel_tol=1e-6, abs_tol=1e-15):
                raise Wrong(f"{at} = peak_lr·{s}/{w}; expected {want:.4g}: an off-by-one. Step 0 is the first step "
                            f"and trains at peak_lr/{w}, not 0; step {w - 1}, the warm-up's last, trains at the peak.")
            if s < w:
                raise Wrong(f"{at}; expected {want:.4g} = peak_lr·({s} + 1)/{w}, on the linear warm-up.")
            if value > peak * (1 + 1e-6):
                raise Wrong(f"{at}, above peak_lr: the warm-up ends at step {w - 1}; from step {w} the LR decays.")
            end = float(f(m, w, m, peak, low))
            if s <= m and math.isclose(end, 0.0, abs_tol=1e-6 * peak):
                raise Wrong(f"at max_steps = {m} your LR is {end:.4g}: it decays to 0; expected min_lr = {low:g}.")
            if s <= m and math.isclose(end, low * peak, rel_tol=1e-6):
                raise Wrong(f"at max_steps = {m} your LR is {end:.4g} = min_lr·peak_lr: min_lr is the LR itself "
                            "here, not a fraction of the peak.")
            quarter = w + (m - w) // 4  # not halfway: there a cosine and a line agree
            linear = low + (peak - low) * (1 - (quarter - w) / (m - w))
            if s <= m and math.isclose(float(f(quarter, w, m, peak, low)), linear, rel_tol=1e-6):
                raise Wrong(f"at step {quarter}, a quarter into the decay, your LR is {linear:.4g}, on a straight line "
                            f"from peak_lr to min_lr; expected {_finished_lr(quarter, w, m, peak, low):.4g}: the decay "
                            "follows a cosine, min_lr + ½(1 + cos(π·progress))·(peak_lr − min_lr).")
            if s > m:
                raise Wrong(f"{at}; past max_steps = {m} the LR stays at min_lr = {low:g}.")
            raise Wrong(f"{at}; expected {want:.4g} (cosine decay, progress ({s} − {w})/({m} − {w})).")
    return "linear warm-up from peak/warmup_steps, then a cosine to min_lr, held past max_steps: pretraining.lr_at."


def lr_at(step: int, warmup_steps: int, max_steps: int, peak_lr: float, min_lr: float) -> float:
    """The LR of step ``step`` (0 is the first): linear warm-up, then cosine decay to min_lr at max_steps."""
    if step < warmup_steps:  # steps 0 .. warmup_steps - 1: peak/warmup_steps, ..., peak
        return peak_lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))  # 0 → 1, then held at 1
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (peak_lr - min_lr)


def _no_warmup(step: int, warmup_steps: int, max_steps: int, peak_lr: float, min_lr: float) -> float:
    progress = min(1.0, step / max_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (peak_lr - min_lr)


def _linear_decay(step: int, warmup_steps: int, max_steps: int, peak_lr: float, min_lr: float) -> float:
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return min_lr + (1 - min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))) * (peak_lr - min_lr)


def _to_zero(step: int, warmup_steps: int, max_steps: int, peak_lr: float, min_lr: float) -> float:
    return lr_at(step, warmup_steps, max_steps, peak_lr, 0.0)


def _warmup_off_by_one(step: int, warmup_steps: int, max_steps: int, peak_lr: float, min_lr: float) -> float:
    return peak_lr * step / warmup_steps if step < warmup_steps else lr_at(step, warmup_steps, max_steps, peak_lr,
                                                                             min_lr)


q3 = Exercise(
    "q3", "lr_at(step, warmup_steps, max_steps, peak_lr, min_lr): the learning rate of step `step` (0 is the first): "
          "linear warm-up to peak_lr, then cosine decay to min_lr at max_steps, min_lr after.",
    checker=_check_lr,
    hint_text="Below warmup_steps: peak_lr * (step + 1) / warmup_steps. After: progress = min(1, (step - "
              "warmup_steps) / (max_steps - warmup_steps)), and min_lr + 0.5 * (1 + cos(pi * progress)) * "
              "(peak_lr - min_lr).",
    reference=lr_at,
    wrong=(_no_warmup, _linear_decay, _to_zero, _warmup_off_by_one))


# ---------------------------------------------------------------- q4: gradient accumulation
def _tiny_model_and_batch() -> tuple[GPT2, torch.Tensor, torch.Tensor]:
    with torch.random.fork_rng():  # the student's global RNG stays where it was
        torch.manual_seed(0)
        model = GPT2(GPT2Config(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=32))
    x = torch.randint(0, 32, (4, 8), generator=torch.Generator().manual_seed(3))  # (B, T)
    return model, x, torch.roll(x, -1, dims=1)


def _grads(model: GPT2) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in model.parameters()])


def _check_accumulate(f: Callable[[GPT2, Sequence[Batch]], float]) -> str:
    model, x, y = _tiny_model_and_batch()
    full_loss = model(x, targets=y)[1]
    full_loss.backward()
    want = _grads(model)
    model.zero_grad(set_to_none=True)
    halves = [(x[:2], y[:2]), (x[2:], y[2:])]
    rows: list[int] = []  # the rows of each forward pass (the token embedding sees every one, however it is called)
    hook = model.transformer.wte.register_forward_hook(lambda _m, inputs, _out: rows.append(inputs[0].shape[0]))
    try:
        got_loss = f(model, halves)
    finally:
        hook.remove()
    got = _grads(model)
    if not got.abs().sum() > 0:
        raise Wrong("after your function every gradient is zero or None: call .backward() on each micro-batch's loss.")
    if len(rows) != len(halves):
        raise Wrong(f"your function ran the model {'once' if len(rows) == 1 else f'{len(rows)} times'}, on {' + '.join(map(str, rows))} rows, for "
                    f"{len(halves)} micro-batches of 2 rows: " + (
                        "that is one big batch: the point of accumulation is that only one micro-batch's activations "
                        "are alive at a time. Run forward and backward on each micro-batch in turn."
                        if len(rows) < len(halves) else "one forward pass per micro-batch; its loss serves both "
                        ".backward() and the total."))
    ratio = (got @ want / (want @ want)).item()
    if abs(ratio - 2) < 1e-3:
        raise Wrong(f"your gradients are {ratio:.3f}× the full batch's: each micro-batch's loss must be divided by "
                    "the number of micro-batches before .backward(), so that the sum is a mean.")
    model.zero_grad(set_to_none=True)
    (model(halves[-1][0], targets=halves[-1][1])[1] / len(halves)).backward()  # the last micro-batch alone
    if torch.allclose(got, _grads(model), atol=1e-7):
        raise Wrong("your gradients are the last micro-batch's alone: gradients must add up across micro-batches, "
                    "so zero them once before the loop, never inside it.")
    expect_tensor(got, want, "the accumulated gradient (all parameters, flattened)", atol=1e-6, rtol=1e-4)
    if math.isclose(float(got_loss), len(halves) * full_loss.item(), rel_tol=1e-5):
        raise Wrong(f"the gradients are right, but the returned loss {float(got_loss):.4f} is the sum over the "
                    f"{len(halves)} micro-batches; expected their mean, {full_loss.item():.4f}.")
    expect_close(float(got_loss), full_loss.item(), "the returned loss", rel=1e-5)
    return "2 micro-batches of 2 rows give one batch of 4's gradient and mean loss, as pretraining._Loop accumulates."


def accumulate(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    """Backpropagate every micro-batch so that the summed .grad is the whole batch's; return the mean loss."""
    total = 0.0
    for x, y in micro_batches:  # (B, T) each
        _, loss = model(x, targets=y)
        (loss / len(micro_batches)).backward()  # .grad adds up: a sum of means/N is the mean
        total += loss.item()
    return total / len(micro_batches)


def _no_division(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    losses = [model(x, targets=y)[1] for x, y in micro_batches]
    for loss in losses:
        loss.backward()
    return sum(loss.item() for loss in losses) / len(losses)


def _zero_inside(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    total = 0.0
    for x, y in micro_batches:
        model.zero_grad()
        _, loss = model(x, targets=y)
        (loss / len(micro_batches)).backward()
        total += loss.item()
    return total / len(micro_batches)


def _returns_the_sum(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    return accumulate(model, micro_batches) * len(micro_batches)  # right gradients, the summed loss


def _one_big_batch(model: GPT2, micro_batches: Sequence[Batch]) -> float:
    x, y = torch.cat([x for x, _ in micro_batches]), torch.cat([y for _, y in micro_batches])
    _, loss = model(x, targets=y)  # every row's activations alive at once
    loss.backward()
    return loss.item()


q4 = Exercise(
    "q4", "accumulate(model, micro_batches): call backward on each (x, y) micro-batch so that the gradients add "
          "up to the whole batch's (the mean loss over all rows), and return that mean loss as a float.",
    checker=_check_accumulate,
    hint_text="For each (x, y): _, loss = model(x, targets=y); (loss / len(micro_batches)).backward(); add "
              "loss.item() to a total. Never zero the gradients inside the loop. Return total / len(micro_batches).",
    reference=accumulate,
    wrong=(_no_division, _zero_inside, _returns_the_sum, _one_big_batch))

EXERCISES = [q1, q2, q3, q4]
