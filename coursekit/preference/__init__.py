"""Preference tuning, from scratch and proven equal to TRL 1.16 (lesson 08): one topic per file.

* ``preference.pairs``: ``check_preference_rows`` (TRL's paired-preference forms, a bad row named by index and
  field), ``arithmetic_preference_rows`` (seeded pairs whose preference is known) and ``held_out_pairs``.
* ``preference.losses``: ``bradley_terry_loss`` and ``reward_metrics`` (RewardTrainer's), ``sequence_logps``
  and ``completion_labels`` (DPOTrainer's log-probs), ``dpo_loss`` (DPOTrainer's "sigmoid" loss and rewards).
* ``preference.grpo``: ``arithmetic_prompt_rows``, ``exact_match_reward``, ``check_reward_fn`` and
  ``group_advantages`` (GRPOTrainer's).
* ``preference.formats``: ``explicit_prompt_rows`` (the Hub's forms, hh-rlhf's plain dialogues included, as
  conversational rows with an explicit prompt) and ``load_preference_dataset``.
* ``preference.ppo``: ``ppo_clipped_objective`` and ``kl_penalty`` (k1 as RLOOTrainer, k3 as GRPOTrainer).

A preference pair, its reward-model loss and its DPO loss::

    >>> import torch
    >>> check_preference_rows(arithmetic_preference_rows(4, seed=0)).style
    'conversational'
    >>> round(bradley_terry_loss(torch.tensor([0.0]), torch.tensor([0.0])).item(), 4)  # undecided: log 2
    0.6931
    >>> group_advantages([1.0, 0.0], group_size=2, scale=False)
    tensor([ 0.5000, -0.5000])
"""

from coursekit.preference.formats import explicit_prompt_rows, hh_messages, load_preference_dataset
from coursekit.preference.grpo import (
    EPS,
    SCALE_REWARDS,
    arithmetic_prompt_rows,
    check_reward_fn,
    exact_match_reward,
    group_advantages,
    reward_fn_name,
)
from coursekit.preference.losses import (
    DPOLoss,
    bradley_terry_loss,
    check_beta,
    completion_labels,
    dpo_loss,
    reward_metrics,
    sequence_logps,
)
from coursekit.preference.pairs import (
    REJECTED_KINDS,
    PreferenceFormat,
    arithmetic_preference_rows,
    check_preference_rows,
    held_out_pairs,
)
from coursekit.preference.ppo import KL_ESTIMATORS, kl_penalty, ppo_clipped_objective

__all__ = [
    "EPS",
    "KL_ESTIMATORS",
    "REJECTED_KINDS",
    "SCALE_REWARDS",
    "DPOLoss",
    "PreferenceFormat",
    "arithmetic_preference_rows",
    "arithmetic_prompt_rows",
    "bradley_terry_loss",
    "check_beta",
    "check_preference_rows",
    "check_reward_fn",
    "completion_labels",
    "dpo_loss",
    "exact_match_reward",
    "explicit_prompt_rows",
    "group_advantages",
    "held_out_pairs",
    "hh_messages",
    "kl_penalty",
    "load_preference_dataset",
    "ppo_clipped_objective",
    "reward_fn_name",
    "reward_metrics",
    "sequence_logps",
]
