"""The two pairwise preference losses: a reward model's Bradley–Terry loss, and DPO's, from sequence log-probs.

* ``bradley_terry_loss``: ``mean(-log σ(r_chosen - r_rejected - margin))``, plus an optional pull of the
  rewards towards zero: TRL 1.16 ``RewardTrainer.compute_loss`` (its ``margin`` column, and
  ``RewardConfig.center_rewards_coefficient``, default ``None``, i.e. off). ``reward_metrics`` gives what
  that trainer logs (``accuracy``, ``margin``, ``min_reward``, ``mean_reward``, ``max_reward``).
* ``sequence_logps``: log p(completion | prompt), the sum of the completion tokens' log-probs, as
  ``DPOTrainer`` computes it (next-token shift; label ``-100`` marks a prompt or padding token).
* ``dpo_loss``: ``DPOTrainer``'s default ``loss_type="sigmoid"`` with its logged ``rewards/*`` metrics.

A worked pair: the policy raised the chosen answer's log-prob by 1 over the reference and lowered the
rejected one's by 1, so the implicit rewards are ±β and the loss is ``-log σ(2β)``::

    >>> import torch
    >>> out = dpo_loss(torch.tensor([-4.0]), torch.tensor([-9.0]), torch.tensor([-5.0]), torch.tensor([-8.0]),
    ...                beta=0.1)
    >>> round(out.loss.item(), 4), round(out.metrics()["rewards/margins"], 4)
    (0.5981, 0.2)
    >>> round(bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])).item(), 4)  # -log σ(2)
    0.1269
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from coursekit.objectives import IGNORE_INDEX


# ---------------------------------------------------------------- the reward model's loss
def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center_rewards_coefficient: float | None = None) -> torch.Tensor:
    """Mean ``-log σ(r_chosen - r_rejected - margin)`` over the pairs, the reward model's loss.

    Bradley–Terry models P(chosen ≻ rejected) = σ(r_chosen - r_rejected); the loss is that probability's
    negative log-likelihood. ``margin`` (one per pair) asks for a gap at least that large (Llama 2's
    graded preferences); ``center_rewards_coefficient`` adds ``c · mean((r_c + r_r)²)``, which keeps the rewards
    near zero (a reward's offset is otherwise free: the loss sees only differences). Both as in TRL 1.16.

    >>> import torch
    >>> r_c, r_r = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # one pair right, one wrong
    >>> round(bradley_terry_loss(r_c, r_r).item(), 4)  # (-log σ(1) - log σ(-1)) / 2
    0.8133
    """
    # 1. The reward gap of each pair; a margin moves the point where the loss starts to be small
    gap = r_chosen - r_rejected
    if margin is not None:
        gap = gap - margin
    # 2. -log σ(gap), with logsigmoid: log(sigmoid(x)) underflows to -inf for a very negative gap
    loss = -F.logsigmoid(gap).mean()
    # 3. Optionally, pull the pair's summed rewards towards zero (the loss above cannot see their offset)
    if center_rewards_coefficient is not None:
        loss = loss + center_rewards_coefficient * torch.mean((r_chosen + r_rejected) ** 2)
    return loss


def reward_metrics(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> dict[str, float]:
    """What ``RewardTrainer`` logs for a batch: pairwise ``accuracy`` (chosen scored strictly higher), the
    mean ``margin``, and ``min_reward``/``mean_reward``/``max_reward`` over every reward of the batch.

    >>> import torch
    >>> reward_metrics(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]))  # a tie is not a win
    {'min_reward': 0.0, 'mean_reward': 0.75, 'max_reward': 2.0, 'accuracy': 0.5, 'margin': 0.5}
    """
    every = torch.cat([r_chosen, r_rejected]).detach().float()
    return {"min_reward": every.min().item(), "mean_reward": every.mean().item(), "max_reward": every.max().item(),
            "accuracy": (r_chosen > r_rejected).float().mean().item(),
            "margin": (r_chosen - r_rejected).float().mean().item()}


# ---------------------------------------------------------------- log-probs of a completion
def completion_labels(input_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """``input_ids`` with every token outside the completion (prompt, padding) set to ``-100``, as DPOTrainer
    makes its labels from its collator's ``completion_mask``.

    >>> import torch
    >>> completion_labels(torch.tensor([[5, 6, 7, 0]]), torch.tensor([[0, 1, 1, 0]]))
    tensor([[-100,    6,    7, -100]])
    """
    return input_ids.masked_fill(completion_mask == 0, IGNORE_INDEX)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of log p(token | the tokens before it) over the tokens whose label is not ``-100``, per sequence.

    ``logits`` (batch, seq, vocab) are the model's for ``input_ids``; ``labels`` (batch, seq) are those ids
    with the prompt and padding set to ``-100`` (``completion_labels``). Position t's logits predict token
    t + 1, so both are shifted by one, the way the model's own loss is.

    >>> import torch
    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: each scored token costs log 4
    >>> sequence_logps(logits, torch.tensor([[-100, 2, 3]]))  # two scored tokens: 2 · log(1/4)
    tensor([-2.7726])
    """
    # 1. Shift: the logits at t score the token at t + 1; the first token has no prediction
    logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != IGNORE_INDEX
    # 2. The log-softmax of each position, in fp32 (a bf16 logsumexp over a vocabulary loses digits)
    logps = torch.log_softmax(logits.float(), dim=-1)
    # 3. Pick each label's log-prob (-100 is no index, so gather a 0 there and mask it out)
    per_token = logps.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    # 4. Sum over the completion: the log-prob of the whole completion given the prompt
    return (per_token * mask).sum(-1)


# ---------------------------------------------------------------- DPO
@dataclass
class DPOLoss:
    """``dpo_loss``'s result: the loss, and per pair the implicit rewards and their margins."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor    # β · (log π(y_c|x) - log π_ref(y_c|x)), per pair, no gradient
    rejected_rewards: torch.Tensor  # β · (log π(y_r|x) - log π_ref(y_r|x))
    margins: torch.Tensor           # chosen_rewards - rejected_rewards

    def metrics(self) -> dict[str, float]:
        """The batch means DPOTrainer logs, under its names.

        >>> import torch
        >>> zero = torch.zeros(2)
        >>> dpo_loss(zero, zero, zero, zero, beta=0.1).metrics()["rewards/accuracies"]  # a tie is not a win
        0.0
        """
        return {"rewards/chosen": self.chosen_rewards.mean().item(),
                "rewards/rejected": self.rejected_rewards.mean().item(),
                "rewards/accuracies": (self.chosen_rewards > self.rejected_rewards).float().mean().item(),
                "rewards/margins": self.margins.mean().item()}


def check_beta(beta: float) -> None:
    """DPO's β must be a positive number; anything else is a ``ValueError`` saying why and the usual value."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta={beta}: DPO needs beta > 0 (DPOConfig's default is 0.1); at 0 the loss is log 2 "
                         "whatever the policy does, and below 0 it prefers the rejected answers")


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor, beta: float = 0.1) -> DPOLoss:
    """DPO's loss, mean ``-log σ(β · ((log π_c - log π_ref,c) - (log π_r - log π_ref,r)))``, with its rewards.

    Each argument is one sequence log-prob per pair (``sequence_logps``), of the policy being trained or the
    frozen reference. β (DPOConfig's default is 0.1) is the strength of the pull back to the reference: the
    implicit reward of an answer is β times how much more likely the policy makes it than the reference does.

    >>> import torch
    >>> logps = torch.tensor([-3.0])
    >>> round(dpo_loss(logps, logps, logps, logps).loss.item(), 4)  # no change from the reference: log 2
    0.6931
    >>> dpo_loss(logps, logps, logps, logps, beta=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: beta=0: DPO needs beta > 0 (DPOConfig's default is 0.1); at 0 the loss is log 2 whatever ...
    """
    check_beta(beta)
    # 1. How far the policy moved from the reference on each answer (log-ratios)
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    # 2. The loss: Bradley–Terry on the implicit rewards β · log-ratio, as -logsigmoid for stability
    loss = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios)).mean()
    # 3. The implicit rewards, detached: they are reported, not trained on
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return DPOLoss(loss, chosen_rewards, rejected_rewards, chosen_rewards - rejected_rewards)
