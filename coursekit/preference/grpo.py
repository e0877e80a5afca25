"""GRPO's pieces: a verifiable reward, the checks a reward function must pass, and group-relative advantages.

GRPO (TRL 1.16 ``GRPOTrainer``) samples ``num_generations`` completions per prompt (GRPOConfig's default 8),
scores each with the reward functions, and scores a completion *relative to its group*: its reward minus the
group's mean, divided by the group's standard deviation. No value model is needed: the group is the baseline.

* ``arithmetic_prompt_rows``: GRPO's dataset for the arithmetic task, a ``prompt`` and its ``answer``.
* ``exact_match_reward``: 1.0 when a completion is the answer, else 0.0, in TRL's reward-function shape.
* ``check_reward_fn``: calls a reward function the way GRPOTrainer does and names it when it misbehaves.
* ``group_advantages``: ``(r - group mean) / (group std + 1e-4)``, GRPOTrainer's, for each ``scale_rewards``.

>>> rows = arithmetic_prompt_rows(1, seed=0)
>>> rows[0]["prompt"][-1]["content"], rows[0]["answer"]
('What is 99 + 55?', '154')
>>> rewards = check_reward_fn(exact_match_reward, ["154", "155", " 154", "15"], answer=["154"] * 4)
>>> rewards
[1.0, 0.0, 1.0, 0.0]
>>> group_advantages(rewards, group_size=4)  # two right, two wrong: ±1 over the group's std (≈ 0.577)
tensor([ 0.8659, -0.8659,  0.8659, -0.8659])
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch

from coursekit.data import arithmetic_rows

EPS = 1e-4  # GRPOTrainer's: added to the std so that a group of equal rewards gives 0, not 0/0
SCALE_REWARDS = ("group", "batch", "none")  # GRPOConfig.scale_rewards (True means "group", False "none")
# What GRPOTrainer passes to every reward function besides prompts, completions and the dataset's columns
TRAINER_KWARGS = ("completion_ids", "trainer_state", "log_extra", "log_metric")


# ---------------------------------------------------------------- the task and its reward
def arithmetic_prompt_rows(n: int, seed: int = 0, max_operand: int = 99) -> list[dict[str, Any]]:
    """GRPO rows for ``data.arithmetic_rows(n, seed=seed, max_operand=max_operand)``: a conversational ``prompt``
    (system and user turns) and the computed ``answer``, which GRPOTrainer hands to the reward functions as
    ``answer=[...]``.

    >>> arithmetic_prompt_rows(1, seed=0)[0]["prompt"][0]["role"]
    'system'
    """
    rows = []
    for row in arithmetic_rows(n, seed, max_operand):
        system, user, assistant = row["messages"]
        rows.append({"prompt": [system, user], "answer": assistant["content"]})
    return rows


def _text(completion: str | Sequence[dict[str, str]]) -> str:
    """A completion's text: GRPOTrainer gives a string for a string prompt, else a list of messages."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def exact_match_reward(completions: Sequence[Any], answer: Sequence[str], **kwargs: Any) -> list[float]:
    """1.0 for each completion whose text, stripped of surrounding whitespace, is its answer; else 0.0.

    A verifiable reward: the answer is computed, so the reward cannot be argued with (and has nothing to
    exploit but the answer itself). No other normalization: ``"-5"`` is not ``"5"``, and ``"154."`` is wrong,
    as the system prompt asks for the result only. ``**kwargs`` takes what else GRPOTrainer passes.

    >>> exact_match_reward([[{"role": "assistant", "content": "46"}], "47"], answer=["46", "46"])
    [1.0, 0.0]
    """
    return [float(_text(c).strip() == str(a).strip()) for c, a in zip(completions, answer, strict=True)]


# ---------------------------------------------------------------- a reward function, checked
def reward_fn_name(fn: Callable[..., Any]) -> str:
    """The name GRPOTrainer logs a reward function under (``rewards/<name>/mean``): a function's name, the
    wrapped function's for a ``functools.partial``, the class name for a callable object.

    >>> reward_fn_name(functools.partial(exact_match_reward, answer=["4"]))
    'exact_match_reward'
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


def _check_signature(fn: Callable[..., Any], name: str, columns: Sequence[str]) -> None:
    """GRPOTrainer passes everything by keyword, so the function must take each name, or ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    missing = [k for k in ("prompts", "completions", *TRAINER_KWARGS, *columns) if k not in params]
    if missing:
        raise ValueError(f"reward function {name!r} does not take {', '.join(missing)}: GRPOTrainer calls it with "
                         "prompts=, completions=, completion_ids=, trainer_state=, log_extra=, log_metric= and every "
                         "dataset column by keyword; add **kwargs to its parameters")


def check_reward_fn(fn: Callable[..., Any], completions: Sequence[Any], prompts: Sequence[Any] | None = None,
                    **columns: Sequence[Any]) -> list[float]:
    """Call ``fn`` as GRPOTrainer does and return its rewards as floats (``None`` becomes NaN, as in TRL: no
    reward for that completion); a ``ValueError`` naming ``fn`` says what is wrong with what it returned.

    ``columns`` are the dataset columns GRPOTrainer would pass (one value per completion), e.g. ``answer``.

    >>> def bad_length(completions, **kwargs):
    ...     return [1.0]
    >>> check_reward_fn(bad_length, ["4", "5"])
    Traceback (most recent call last):
    ...
    ValueError: reward function 'bad_length' returned 1 rewards for 2 completions; return one number per completion
    """
    name, n = reward_fn_name(fn), len(completions)
    prompts = [""] * n if prompts is None else prompts
    for column, values in {"prompts": prompts, **columns}.items():
        if len(values) != n:
            raise ValueError(f"check_reward_fn: {column} has {len(values)} values for {n} completions; "
                             "give one per completion (repeat a prompt's values for each of its completions)")
    _check_signature(fn, name, list(columns))
    # 1. The call, by keyword, with the trainer's extra arguments (neutral stand-ins: no ids, no state, no logs)
    out = fn(prompts=prompts, completions=completions, completion_ids=[[] for _ in range(n)], trainer_state=None,
             log_extra=lambda column, values: None, log_metric=lambda metric, value: None, **columns)
    # 2. One reward per completion, in a list (a 1-D tensor or array counts as one; TRL iterates over it)
    if hasattr(out, "tolist") and not isinstance(out, list | tuple):
        out = out.tolist()  # a 0-d one gives a bare number, refused below
    if not isinstance(out, list | tuple):
        raise ValueError(f"reward function {name!r} returned a {type(out).__name__}, not a list of rewards; "
                         f"return one number per completion (a list of {n})")
    if len(out) != n:
        raise ValueError(f"reward function {name!r} returned {len(out)} rewards for {n} completions; "
                         "return one number per completion")
    # 3. Each reward a finite number, or None for "no reward here" (a NaN is the same)
    rewards = []
    for i, r in enumerate(out):
        if r is None:
            rewards.append(math.nan)
        elif not isinstance(r, numbers.Real):
            raise ValueError(f"reward function {name!r} returned a {type(r).__name__} ({r!r}) for completion {i}; "
                             "each reward must be a number, or None for no reward")
        elif math.isinf(r):
            raise ValueError(f"reward function {name!r} returned {r} for completion {i}; rewards must be finite "
                             "(an infinite reward makes every advantage of its group NaN)")
        else:
            rewards.append(float(r))
    return rewards


# ---------------------------------------------------------------- group-relative advantages
def _nanstd(x: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """The std over the non-NaN values, unbiased (n - 1, Bessel), NaN with fewer than two: TRL's ``nanstd``."""
    mean = torch.nanmean(x, dim=dim, keepdim=True)
    variance = torch.nanmean((x - mean) ** 2, dim=dim, keepdim=True)
    count = (~torch.isnan(x)).sum(dim=dim, keepdim=True)
    correction = torch.where(count > 1, count / (count - 1), torch.full_like(variance, math.nan))
    std = torch.sqrt(variance * correction)
    return std.squeeze(dim) if dim is not None else std.squeeze()


def group_advantages(rewards: torch.Tensor | Sequence[float | None], group_size: int,
                     scale: bool | str = True) -> torch.Tensor:
    """Each completion's advantage: its reward minus its group's mean, over the std (GRPOTrainer's formula).

    ``rewards`` are in TRL's order, the ``group_size`` completions of each prompt next to each other.
    ``scale``: ``True`` or ``"group"`` (TRL's default) divides by the group's std + 1e-4; ``"batch"`` by the
    whole batch's; ``False`` or ``"none"`` does not divide (Dr. GRPO: dividing weights easy and hard prompts
    alike). The std is unbiased (n - 1). A NaN (``None``) reward is left out of its group's statistics and gets
    advantage 0, as does every completion of a group with fewer than two rewards.

    >>> group_advantages([1.0, 0.0, 1.0, 1.0], group_size=2, scale=False)  # a group of equals learns nothing
    tensor([ 0.5000, -0.5000,  0.0000,  0.0000])
    """
    mode = {True: "group", False: "none"}[scale] if isinstance(scale, bool) else scale  # GRPOConfig's mapping
    if mode not in SCALE_REWARDS:
        raise ValueError(f"scale={scale!r}: valid values are True, False, {', '.join(map(repr, SCALE_REWARDS))}")
    if isinstance(rewards, torch.Tensor):
        r = rewards.detach().float().flatten()
    else:
        r = torch.tensor([math.nan if x is None else float(x) for x in rewards], dtype=torch.float32)
    if group_size < 1 or r.numel() % group_size:
        raise ValueError(f"group_size={group_size}: {r.numel()} rewards do not split into groups of {group_size}; "
                         "give every prompt's group_size completions (GRPOConfig.num_generations)")
    # 1. Each group's mean reward, spread back over its completions: the baseline a value model would learn
    grouped = r.view(-1, group_size)
    mean = torch.nanmean(grouped, dim=1).repeat_interleave(group_size)
    # 2. The spread to divide by: the group's, or the whole batch's
    if mode == "batch":
        std = _nanstd(r).expand_as(r) if r.numel() > 1 else torch.zeros_like(r)
    else:
        std = _nanstd(grouped, dim=1).repeat_interleave(group_size) if group_size > 1 else torch.zeros_like(r)
    # 3. Better than the group: positive; worse: negative
    advantages = r - mean
    if mode != "none":
        advantages = advantages / (std + EPS)
    # 4. No reward, or a group with no spread to speak of: no signal
    return torch.nan_to_num(advantages, nan=0.0)
