"""PPO in one picture: the clipped surrogate objective, and the KL penalty that keeps a policy near its
reference.

PPO improves a policy on samples drawn from an older copy of itself. The probability ratio
``ρ = π_new(token) / π_old(token)`` reweights each sampled token's advantage, and clipping ρ to
``[1 - ε, 1 + ε]`` removes the incentive to move further once a token's probability has changed by ε:
``objective = mean(min(ρ·A, clip(ρ, 1-ε, 1+ε)·A))``. TRL 1.16 has no PPOTrainer; GRPOTrainer's loss is this
objective, negated (``epsilon=0.2``; ``loss_type="bnpo"`` averages it over the completion tokens as here).

The KL penalty estimates KL(π ‖ π_ref) from the sampled tokens' log-probs alone (J. Schulman, "Approximating
KL Divergence", 2020): ``k1 = log π - log π_ref`` (unbiased, but negative for some tokens; RLOOTrainer
subtracts β · its sum from the reward) and ``k3 = exp(log π_ref - log π) - (log π_ref - log π) - 1`` (also
unbiased, never negative; GRPOTrainer adds β · k3 to each token's loss when ``beta > 0``).

>>> import torch
>>> new, old = torch.log(torch.tensor([0.6, 0.3])), torch.log(torch.tensor([0.4, 0.4]))  # ρ = 1.5 and 0.75
>>> ppo_clipped_objective(new, old, torch.tensor([1.0, 1.0]), clip_eps=0.2)  # (1.2 + 0.75) / 2: 1.5 clipped
tensor(0.9750)
>>> kl_penalty(new, old, "k1"), kl_penalty(new, old, "k3")
(tensor([ 0.4055, -0.2877]), tensor([0.0721, 0.0457]))
"""

from __future__ import annotations

import torch

KL_ESTIMATORS = ("k1", "k3")


def ppo_clipped_objective(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                          clip_eps: float = 0.2, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PPO's clipped surrogate, ``mean(min(ρ·A, clip(ρ, 1 - ε, 1 + ε)·A))`` over the (masked) tokens; maximize it.

    ``logp_new``/``logp_old``: per-token log-probs of the sampled tokens under the policy being trained and
    the one that sampled them, shape (batch, tokens) or (tokens,). ``advantages``: one per token, or one per
    sequence (broadcast over its tokens). ``mask``: 1 for completion tokens, 0 for padding.

    >>> import torch
    >>> lp = torch.log(torch.tensor([[0.5, 0.5]]))
    >>> ppo_clipped_objective(lp, lp, torch.tensor([2.0]))  # on-policy (ρ = 1): the advantage itself
    tensor(2.)
    """
    if not clip_eps > 0:
        raise ValueError(f"clip_eps={clip_eps}: the clip range [1 - eps, 1 + eps] needs eps > 0 (PPO's and TRL's "
                         "default is 0.2)")
    # 1. A sequence's advantage applies to each of its tokens
    if advantages.dim() == 1 and logp_new.dim() == 2:
        advantages = advantages.unsqueeze(1)
    # 2. The probability ratio π_new / π_old, from log-probs (a ratio of tiny probabilities underflows)
    ratio = torch.exp(logp_new - logp_old)
    # 3. The pessimistic (smaller) of the plain and the clipped surrogate: no gain from moving past 1 ± ε
    surrogate = torch.min(ratio * advantages, torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * advantages)
    # 4. The mean over the real tokens
    mask = torch.ones_like(surrogate) if mask is None else mask.to(surrogate.dtype)
    return (surrogate * mask).sum() / mask.sum().clamp(min=1.0)


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """A per-token estimate of KL(π ‖ π_ref) on tokens sampled from π: ``"k1"`` (the log-ratio, as RLOOTrainer)
    or ``"k3"`` (``exp(-x) + x - 1`` of the log-ratio x; ≥ 0; GRPOTrainer's).

    >>> import torch
    >>> kl_penalty(torch.tensor([-1.0]), torch.tensor([-1.0]))  # the same distribution: no penalty
    tensor([0.])
    """
    # The log-ratio log π - log π_ref: its mean over samples of π is the KL itself (k1)
    log_ratio = logp - ref_logp
    if estimator == "k1":
        return log_ratio
    if estimator == "k3":
        # k3 adds (π_ref/π - 1), zero in expectation under π, which makes every term ≥ 0 and lowers the variance
        return torch.exp(-log_ratio) + log_ratio - 1
    raise ValueError(f"estimator={estimator!r}: valid KL estimators are {', '.join(KL_ESTIMATORS)}")
