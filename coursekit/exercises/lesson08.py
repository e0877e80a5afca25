"""Lesson 08's exercises: the reward model's pairwise loss, DPO's loss, GRPO's group-relative advantages and the
k3 estimate of the KL to the reference.

Each check runs the student's function on small seeded tensors and compares it with the finished copy in
``coursekit.preference`` (each of which tests/test_preference.py proves equal to TRL 1.16). A wrong answer is
told which common mistake it matches, with the values.

    >>> q1.check(lambda r_chosen, r_rejected: -torch.log(torch.sigmoid(r_rejected - r_chosen)).mean())
    ✗ q1: bradley_terry gives 0.827232 on the check batch, the loss of preferring the REJECTED answers (r_rejected - r_chosen); the loss is -log σ(r_chosen - r_rejected) = 1.67726.
      Hint: -F.logsigmoid(r_chosen - r_rejected).mean(): the chosen reward first, the minus sign outside, the mean over pairs.
    >>> q1.check(bradley_terry)
    ✓ q1: correct. Equal to preference.bradley_terry_loss (RewardTrainer's loss) on 3 batches, and finite at a margin of 200.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from coursekit.exercises import Exercise, Wrong, as_number, expect_close, expect_tensor, matching_mistake
from coursekit.preference import EPS, bradley_terry_loss, dpo_loss, group_advantages, kl_penalty

__all__ = ["EXERCISES", "advantages", "bradley_terry", "dpo", "k3", "q1", "q2", "q3", "q4"]


def _batches(n_fields: int, seeds: tuple[int, ...] = (0, 1, 2), size: int = 6, scale: float = 2.0) -> list[tuple]:
    """Seeded batches of ``n_fields`` tensors of ``size`` values each (the same inputs every run)."""
    out = []
    for seed in seeds:
        g = torch.Generator().manual_seed(seed)
        out.append(tuple(scale * torch.randn(size, generator=g) for _ in range(n_fields)))
    return out


def _value(got: Any, what: str) -> float:
    if isinstance(got, torch.Tensor) and got.numel() != 1:
        raise Wrong(f"{what} returned a tensor of shape {tuple(got.shape)}; the loss is one number: take the "
                    ".mean() over the pairs.")
    return as_number(got, what)


# ---------------------------------------------------------------- q1: the reward model's loss
def bradley_terry(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """The Bradley-Terry loss of a batch of pairs: mean of -log σ(r_chosen - r_rejected)."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()   # logsigmoid: no overflow for a large margin


def _check_bt(f: Callable[..., Any]) -> str:
    for r_c, r_r in _batches(2):
        want = bradley_terry_loss(r_c, r_r).item()
        got = _value(f(r_c, r_r), "bradley_terry")
        mistake = matching_mistake(got, {
            f"the loss of preferring the REJECTED answers (r_rejected - r_chosen); the loss is -log σ(r_chosen - "
            f"r_rejected) = {want:.6g}": -F.logsigmoid(r_r - r_c).mean().item(),
            f"log σ without the minus sign: the loss must be positive, {want:.6g}": F.logsigmoid(r_c - r_r).mean().item(),
            f"σ itself, not -log σ: the probability the chosen answer wins, not the loss ({want:.6g})":
                torch.sigmoid(r_c - r_r).mean().item(),
            f"the sum over the pairs; the loss is their mean, {want:.6g}": -F.logsigmoid(r_c - r_r).sum().item(),
        }, rel=1e-5)
        if mistake:
            raise Wrong(f"bradley_terry gives {got:.6g} on the check batch, {mistake}.")
        expect_close(got, want, "bradley_terry on the check batch", rel=1e-5)
    got = _value(f(torch.tensor([0.0]), torch.tensor([200.0])), "bradley_terry")
    if got != got or got == float("inf"):  # nan or inf: log(sigmoid(-200)) underflows to log(0)
        raise Wrong(f"bradley_terry gives {got} for a margin of -200: σ(-200) underflows to 0 and its log to -inf; "
                    "F.logsigmoid computes log σ without forming σ.")
    expect_close(got, 200.0, "bradley_terry for r_chosen=0, r_rejected=200", rel=1e-4)
    return "Equal to preference.bradley_terry_loss (RewardTrainer's loss) on 3 batches, and finite at a margin of 200."


q1 = Exercise(
    "q1", "bradley_terry(r_chosen, r_rejected): the reward model's loss, mean -log σ(r_chosen - r_rejected).",
    checker=_check_bt,
    hint_text="-F.logsigmoid(r_chosen - r_rejected).mean(): the chosen reward first, the minus sign outside, the "
              "mean over pairs.",
    reference=bradley_terry,
    wrong=(lambda r_chosen, r_rejected: -torch.log(torch.sigmoid(r_rejected - r_chosen)).mean(),
           lambda r_chosen, r_rejected: F.logsigmoid(r_chosen - r_rejected).mean(),
           lambda r_chosen, r_rejected: -F.logsigmoid(r_chosen - r_rejected).sum(),
           lambda r_chosen, r_rejected: -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()),  # overflows
)


# ---------------------------------------------------------------- q2: DPO's loss
def dpo(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
        ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's loss from sequence log-probs: Bradley-Terry on the implicit rewards β · (log π - log π_ref)."""
    chosen_reward = beta * (policy_chosen - ref_chosen)        # how much more likely the policy makes it
    rejected_reward = beta * (policy_rejected - ref_rejected)
    return -F.logsigmoid(chosen_reward - rejected_reward).mean()


def _check_dpo(f: Callable[..., Any]) -> str:
    for beta in (0.1, 0.5):
        for pc, pr, rc, rr in _batches(4, scale=5.0):
            want = dpo_loss(pc, pr, rc, rr, beta=beta).loss.item()
            got = _value(f(pc, pr, rc, rr, beta), "dpo")
            mistake = matching_mistake(got, {
                "the policy's log-probs alone: without the reference, nothing holds the policy near it":
                    -F.logsigmoid(beta * (pc - pr)).mean().item(),
                "β missing: it scales the log-ratios inside σ": -F.logsigmoid((pc - rc) - (pr - rr)).mean().item(),
                "β outside the loss: it scales the log-ratios inside σ, not the loss":
                    (-beta * F.logsigmoid((pc - rc) - (pr - rr))).mean().item(),
                "the log-ratios the wrong way round (log π_ref - log π)":
                    -F.logsigmoid(beta * ((rc - pc) - (rr - pr))).mean().item(),
            }, rel=1e-5)
            if mistake:
                raise Wrong(f"dpo gives {got:.6g} for beta={beta}, {mistake}; DPOTrainer's loss is {want:.6g}.")
            expect_close(got, want, f"dpo for beta={beta}", rel=1e-5)
    same = torch.full((3,), -4.0)
    expect_close(f(same, same, same, same, 0.1), 0.6931471805599453, "dpo when the policy is the reference (log 2)",
                 rel=1e-5)
    return "Equal to preference.dpo_loss (DPOTrainer's sigmoid loss) for β = 0.1 and 0.5, and log 2 at the start."


q2 = Exercise(
    "q2", "dpo(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta): DPO's loss from sequence log-probs.",
    checker=_check_dpo,
    hint_text="Each answer's implicit reward is beta * (log π - log π_ref); the loss is -logsigmoid(chosen reward - "
              "rejected reward), averaged over the pairs.",
    reference=dpo,
    wrong=(lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * (pc - pr)).mean(),
           lambda pc, pr, rc, rr, beta: -F.logsigmoid((pc - rc) - (pr - rr)).mean(),
           lambda pc, pr, rc, rr, beta: (-beta * F.logsigmoid((pc - rc) - (pr - rr))).mean(),
           lambda pc, pr, rc, rr, beta: -F.logsigmoid(beta * ((rc - pc) - (rr - pr))).mean()),
)


# ---------------------------------------------------------------- q3: GRPO's advantages
def advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Each completion's reward against its group's (one prompt's completions, side by side in ``rewards``)."""
    groups = rewards.view(-1, group_size)                      # (prompts, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)                      # unbiased (n - 1), as GRPOTrainer
    return ((groups - mean) / (std + EPS)).view(-1)            # EPS: a group of equal rewards gives 0, not 0/0


def _check_advantages(f: Callable[..., Any]) -> str:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5])  # 3 groups of 4
    want = group_advantages(rewards, group_size=4)
    got = f(rewards.clone(), 4)
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"advantages returned a {type(got).__name__}; return a tensor, one advantage per completion.")
    if got.shape == want.shape and torch.isnan(got).any():
        raise Wrong(f"advantages gives {[round(x, 3) for x in got.tolist()]}: nan for the group whose rewards are all 0 (its std is 0); "
                    "add GRPOTrainer's 1e-4 to the std.")
    flat = rewards - rewards.mean()
    mistakes = {
        "the batch's mean and std, not each group's: a completion is judged against its own prompt's others":
            flat / (rewards.std() + EPS),
        "the population std (n); GRPOTrainer's torch.std is the sample std (n - 1)":
            ((rewards.view(-1, 4) - rewards.view(-1, 4).mean(1, keepdim=True))
             / (rewards.view(-1, 4).std(1, unbiased=False, keepdim=True) + EPS)).view(-1),
        "only the group's mean subtracted; scale by the group's std (+ 1e-4) too (scale_rewards='group')":
            (rewards.view(-1, 4) - rewards.view(-1, 4).mean(1, keepdim=True)).view(-1),
    }
    for why, value in mistakes.items():
        if got.shape == value.shape and torch.allclose(got.float(), value, atol=1e-5):
            raise Wrong(f"advantages gives {[round(x, 3) for x in got.tolist()]}: {why}.")
    expect_tensor(got, want, "advantages of 3 groups of 4 rewards")
    return "Equal to preference.group_advantages (GRPOTrainer's, scale_rewards='group'); the all-zero group gets 0."


q3 = Exercise(
    "q3", "advantages(rewards, group_size): GRPO's group-relative advantage of each completion.",
    checker=_check_advantages,
    hint_text="rewards.view(-1, group_size): subtract each row's mean, divide by its std (torch's default, n - 1) "
              "plus 1e-4, and flatten back with .view(-1).",
    reference=advantages,
    wrong=(lambda rewards, group_size: (rewards - rewards.mean()) / (rewards.std() + 1e-4),
           lambda rewards, group_size: ((rewards.view(-1, group_size) - rewards.view(-1, group_size).mean(1, keepdim=True))
                                        / rewards.view(-1, group_size).std(1, keepdim=True)).view(-1),
           lambda rewards, group_size: (rewards.view(-1, group_size)
                                        - rewards.view(-1, group_size).mean(1, keepdim=True)).view(-1)),
)


# ---------------------------------------------------------------- q4: the KL penalty, k3
def k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per token, GRPOTrainer's estimate of KL(π ‖ π_ref) from the sampled token's two log-probs: always ≥ 0."""
    log_ratio = ref_logp - logp                                # log (π_ref / π) of the sampled token
    return torch.exp(log_ratio) - log_ratio - 1                # r - log r - 1 ≥ 0, and unbiased under π


def _check_k3(f: Callable[..., Any]) -> str:
    for logp, noise in _batches(2, scale=1.0):
        logp = -logp.abs() - 0.1            # log-probs are negative
        ref = logp + 0.5 * noise
        want = kl_penalty(logp, ref, "k3")
        got = f(logp, ref)
        if isinstance(got, torch.Tensor) and got.shape == want.shape:
            if torch.allclose(got, logp - ref, atol=1e-6):
                raise Wrong("k3 gives log π - log π_ref: that is k1, unbiased but often negative per token; k3 is "
                            "r - log r - 1 with r = π_ref / π.")
            if torch.allclose(got, kl_penalty(ref, logp, "k3"), atol=1e-6):
                raise Wrong("k3 has π and π_ref swapped: r is π_ref / π, the reference over the policy.")
            if torch.allclose(got, want + 1, atol=1e-6):
                raise Wrong(f"k3 gives {got[0].item():.4f} where it should give {want[0].item():.4f}: the - 1 is "
                            "missing, and without it k3 is not 0 when the policy equals the reference.")
        expect_tensor(got, want, "k3 per token")
    return "Equal to preference.kl_penalty(..., 'k3'), GRPOTrainer's per-token KL, on 3 batches."


q4 = Exercise(
    "q4", "k3(logp, ref_logp): GRPOTrainer's per-token estimate of the KL from the policy to the reference.",
    checker=_check_k3,
    hint_text="With log_ratio = ref_logp - logp: torch.exp(log_ratio) - log_ratio - 1.",
    reference=k3,
    wrong=(lambda logp, ref_logp: logp - ref_logp,
           lambda logp, ref_logp: torch.exp(logp - ref_logp) - (logp - ref_logp) - 1,
           lambda logp, ref_logp: torch.exp(ref_logp - logp) - (ref_logp - logp)),
)

EXERCISES = [q1, q2, q3, q4]
