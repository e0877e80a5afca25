"""coursekit.preference, proven equal to TRL 1.16 on the same inputs (tiny random Llama), and its bad-input errors.

Where TRL exposes the computation (the fused LM head's log-probs, ``extract_prompt``), it is called directly;
where it lives inside a trainer, the trainer is built on the tiny model and its own method runs on one batch:
``RewardTrainer.compute_loss``, ``DPOTrainer.compute_loss``, ``GRPOTrainer._generate_and_score_completions``
and ``compute_loss``, ``RLOOTrainer._generate_and_score_completions``; its loss and logged metrics are compared.
No optimizer step is taken: the proofs are of the formulas, on one batch. Tolerances allow float rounding only.
"""

import functools
import math
import random

import pytest
import torch

from coursekit import assets, data
from coursekit.chat import DataError
from coursekit.preference.grpo import TRAINER_KWARGS
from coursekit.preference import (
    arithmetic_preference_rows,
    arithmetic_prompt_rows,
    bradley_terry_loss,
    check_preference_rows,
    check_reward_fn,
    completion_labels,
    dpo_loss,
    exact_match_reward,
    group_advantages,
    kl_penalty,
    ppo_clipped_objective,
    reward_metrics,
    sequence_logps,
)

TOL = {"atol": 1e-5, "rtol": 1e-4}  # float32 sums in a different order: CPUs differ in the last digits


def close(a, b, tol=TOL):
    return math.isclose(float(a), float(b), abs_tol=tol["atol"], rel_tol=tol["rtol"])


def _perturb(model, scale=0.05, seed=1):
    """Move a model off its copy, so that policy and reference differ (a zero log-ratio proves nothing)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn_like(p))


def _common(tmp_path):
    return {"output_dir": str(tmp_path), "report_to": "none", "bf16": False, "use_cpu": True,
            "dataloader_pin_memory": False, "disable_tqdm": True, "activation_checkpointing": False}


# ================================================================ pairs
def test_arithmetic_pairs_have_a_known_preference_and_repeat_for_the_same_random_seed():
    rows = arithmetic_preference_rows(12, seed=3)
    assert rows == arithmetic_preference_rows(12, seed=3)
    assert rows != arithmetic_preference_rows(12, seed=4)
    sft = data.arithmetic_rows(12, seed=3)
    for row, ref in zip(rows, sft):
        question = row["prompt"][-1]["content"]
        assert row["prompt"] == ref["messages"][:2]  # the SFT rows' system and user turns
        a, op, b = question.removeprefix("What is ").removesuffix("?").split()
        right = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
        assert row["chosen"] == [{"role": "assistant", "content": str(right)}]
        assert int(row["rejected"][0]["content"]) != right
    verbose = arithmetic_preference_rows(4, seed=3, rejected="verbose")
    assert all(len(r["rejected"][0]["content"]) > 3 * len(r["chosen"][0]["content"]) for r in verbose)
    assert all(r["chosen"][0]["content"] in r["rejected"][0]["content"] for r in verbose)  # right, but wordy
    assert check_preference_rows(arithmetic_preference_rows(4, seed=3, conversational=False)) == ("standard",
                                                                                                 "explicit")


def test_the_forms_agree_with_trls_reading_of_them():
    from trl import extract_prompt, is_conversational

    msgs = [{"role": "user", "content": "What is 2 + 2?"}]
    implicit_chat = {"chosen": msgs + [{"role": "assistant", "content": "4"}],
                     "rejected": msgs + [{"role": "assistant", "content": "5"}]}
    cases = [(arithmetic_preference_rows(1, seed=0)[0], ("conversational", "explicit")),
             ({"prompt": "2 + 2 =", "chosen": " 4", "rejected": " 5"}, ("standard", "explicit")),
             ({"chosen": "2 + 2 = 4", "rejected": "2 + 2 = 5"}, ("standard", "implicit")),
             (implicit_chat, ("conversational", "implicit"))]
    for row, form in cases:
        assert check_preference_rows([row]) == form
        assert is_conversational(row) == (form[0] == "conversational")
        if form[1] == "implicit":  # TRL's cut leaves a prompt and a non-empty answer on each side
            cut = extract_prompt(row)
            assert cut["prompt"] and cut["chosen"] and cut["rejected"] and cut["chosen"] != cut["rejected"]


BAD_ROWS = [  # (rows, what the message must contain)
    ([{"prompt": "p", "chosen": "4", "rejected": "5"}, {"prompt": "p", "rejected": "5"}],
     ["row 1:", "field 'chosen' is missing", "add the better answer"]),
    ([{"prompt": "p", "chosen": "4", "rejected": "   "}], ["row 0:", "field 'rejected' is empty", "worse answer"]),
    ([{"prompt": "p", "chosen": "4", "rejected": "5"}] * 2 + [{"prompt": "p", "chosen": "4", "rejected": "4"}],
     ["row 2:", "field 'rejected' equals 'chosen'", "make 'rejected' a worse answer"]),
    ([{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": ""}],
       "rejected": [{"role": "assistant", "content": "5"}]}], ["row 0:", "field 'chosen' is empty"]),
    ([{"prompt": "q", "chosen": [{"role": "assistant", "content": "4"}],
       "rejected": [{"role": "assistant", "content": "5"}]}], ["row 0:", "'prompt' is a string", "all messages"]),
    ([{"prompt": "q", "chosen": 4, "rejected": "5"}], ["row 0:", "field 'chosen' must be a string or a list"]),
    ([{"prompt": [{"role": "human", "content": "q"}], "chosen": [{"role": "assistant", "content": "4"}],
       "rejected": [{"role": "assistant", "content": "5"}]}], ["row 0:", "'prompt[0].role' is 'human'"]),
    ([{"prompt": "q", "completion": "4", "label": True}], ["row 0:", "'chosen' is missing", "unpaired", "KTO"]),
    ([{"messages": [{"role": "user", "content": "q"}]}], ["row 0:", "'chosen' is missing", "SFT row"]),
    (["q 4 5"], ["row 0:", "must be a dict with 'chosen' and 'rejected'", "got str"]),
    ([{"chosen": "4", "rejected": "5"}], ["row 0:", "share no start", "add a 'prompt' field"]),
    ([{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}],
       "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "5"}]}],
     ["row 0:", "field 'chosen' has nothing after the start it shares", "add a 'prompt' field"]),
    ([{"prompt": "p", "chosen": "4", "rejected": "5"}, {"chosen": "p 4", "rejected": "p 5"}],
     ["row 1:", "implicit prompt", "row 0 is standard with an explicit prompt", "same form"]),
]


@pytest.mark.parametrize("rows, parts", BAD_ROWS, ids=[p[1] for _, p in BAD_ROWS])
def test_a_bad_preference_row_is_named_by_index_and_field(rows, parts):
    with pytest.raises(DataError) as err:
        check_preference_rows(rows)
    message = str(err.value)
    assert "\n" not in message and all(p in message for p in parts), message


def test_no_rows_or_one_bare_row_is_refused():
    with pytest.raises(ValueError, match="non-empty list of rows"):
        check_preference_rows([])
    with pytest.raises(ValueError, match="got one dict: wrap it in a list"):
        check_preference_rows({"prompt": "p", "chosen": "4", "rejected": "5"})
    with pytest.raises(ValueError, match="rejected='bad': valid kinds are wrong, verbose, mixed"):
        arithmetic_preference_rows(2, rejected="bad")


# ================================================================ losses
def test_sequence_logps_equal_trls_fused_lm_head():
    from trl.trainer.utils import add_fused_lm_head, selective_log_softmax

    model, _ = assets.load_tiny("llama")
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (3, 12))
    completion = torch.zeros_like(ids)
    completion[0, 4:], completion[1, 7:10], completion[2, 1:] = 1, 1, 1  # a prompt, a padded tail, no prompt
    labels = completion_labels(ids, completion)
    with torch.no_grad():
        ours = sequence_logps(model(input_ids=ids).logits, labels)
        # TRL's other helper, by hand-shifting: log_softmax + gather over the next tokens, masked
        theirs_gather = (selective_log_softmax(model(input_ids=ids).logits[:, :-1], ids[:, 1:])
                         * completion[:, 1:]).sum(1)
        add_fused_lm_head(model)  # DPOTrainer's head: model(..., labels, fused_lm_head=True).log_probs
        theirs = model(input_ids=ids, labels=labels, fused_lm_head=True).log_probs.sum(1)
    torch.testing.assert_close(ours, theirs, **TOL)
    torch.testing.assert_close(ours, theirs_gather, **TOL)
    assert (ours < 0).all()


@pytest.fixture(scope="module")
def preference_rows():
    return arithmetic_preference_rows(4, seed=0, rejected="mixed")


def test_dpo_loss_equals_dpo_trainers_loss_and_logged_rewards(tmp_path, preference_rows):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy, tok = assets.load_tiny("llama")
    ref, _ = assets.load_tiny("llama")
    args = DPOConfig(**_common(tmp_path), beta=0.25, per_device_train_batch_size=4, max_length=128)
    trainer = DPOTrainer(model=policy, ref_model=ref, args=args, processing_class=tok,
                         train_dataset=Dataset.from_list(preference_rows))
    _perturb(trainer.model)  # the policy has moved away from the reference
    trainer.model.train()  # as in a training step (dropout is off: DPOConfig.disable_dropout)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch)
        logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
        labels = completion_labels(batch["input_ids"], batch["completion_mask"])
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        policy_c, policy_r = sequence_logps(trainer.model(**inputs).logits, labels).chunk(2)
        ref_c, ref_r = sequence_logps(trainer.ref_model(**inputs).logits, labels).chunk(2)
    ours = dpo_loss(policy_c, policy_r, ref_c, ref_r, beta=0.25)
    assert close(ours.loss, loss), (ours.loss, loss)
    for key, value in ours.metrics().items():
        assert close(value, logged[key]), (key, value, logged[key])
    assert close(policy_c.mean(), logged["logps/chosen"]) and close(policy_r.mean(), logged["logps/rejected"])
    assert abs(logged["rewards/margins"]) > 1e-3, "a zero margin would prove nothing"


def test_reward_model_loss_equals_reward_trainers(tmp_path, preference_rows):
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    tok = assets.load_tiny("llama")[1]
    model = AutoModelForSequenceClassification.from_pretrained(str(assets.tiny_model_path("llama")), num_labels=1)
    torch.manual_seed(0)
    with torch.no_grad():
        model.score.weight.normal_(0, 1.0)  # rewards of order 1, so that the loss is not log 2 to the last digit
    rows = [{**row, "margin": 0.5 * i} for i, row in enumerate(preference_rows)]
    args = RewardConfig(**_common(tmp_path), per_device_train_batch_size=4, center_rewards_coefficient=0.01)
    trainer = RewardTrainer(model=model, args=args, processing_class=tok, train_dataset=Dataset.from_list(rows))
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()  # as in a training step (dropout is off: RewardConfig.disable_dropout)
    with torch.no_grad():
        r_c, r_r = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                                 ).logits.squeeze(-1).chunk(2)
        for margin, coefficient in ((batch["margin"], 0.01), (None, None)):  # RewardConfig's default: neither
            inputs = {k: v for k, v in batch.items() if k != "margin" or margin is not None}
            trainer.args.center_rewards_coefficient = coefficient
            loss = trainer.compute_loss(trainer.model, inputs)
            ours = bradley_terry_loss(r_c, r_r, margin=margin, center_rewards_coefficient=coefficient)
            assert close(ours, loss), (margin, coefficient, ours, loss)
    logged = {k: v[-1] for k, v in trainer._metrics["train"].items()}
    for key, value in reward_metrics(r_c, r_r).items():
        assert close(value, logged[key]), (key, value, logged[key])
    assert not close(bradley_terry_loss(r_c, r_r), math.log(2)), "rewards near zero would prove little"


@pytest.mark.parametrize("beta", [0, -0.1])
def test_dpo_refuses_a_beta_that_is_not_positive(beta):
    logps = torch.tensor([-3.0])
    with pytest.raises(ValueError, match=rf"beta={beta}: DPO needs beta > 0 \(DPOConfig's default is 0.1\)"):
        dpo_loss(logps, logps, logps, logps, beta=beta)


# ================================================================ GRPO
class RecordingReward:
    """A reward with a spread inside a group whatever the sampled texts (the completion's place in its group plus
    its length / 100; text lengths alone may all tie); every completion of the second prompt gets the same reward
    (a zero-std group), and the first completion none (None: TRL leaves it out). Keeps what it gave."""

    def __init__(self, constant_answer):
        self.constant_answer, self.given, self.keywords = constant_answer, [], set()

    def __call__(self, completions, answer, **kwargs):
        texts = [c[-1]["content"] for c in completions]
        rewards = [1.0 if a == self.constant_answer else i % GROUP + len(t) / 100
                   for i, (t, a) in enumerate(zip(texts, answer))]
        rewards[0] = None
        self.given.append(rewards)
        self.keywords = {"completions", "answer", *kwargs}
        return rewards


GROUP = 4
BETA = 0.05


@pytest.fixture(scope="module")
def grpo(tmp_path_factory):
    """A GRPOTrainer on the tiny Llama with a KL term (beta > 0) and the token-mean loss, plus two prompts,
    each repeated GROUP times the way its sampler repeats them."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, tok = assets.load_tiny("llama")
    rows = arithmetic_prompt_rows(2, seed=0)
    reward = RecordingReward(constant_answer=rows[1]["answer"])
    args = GRPOConfig(**_common(tmp_path_factory.mktemp("grpo")), num_generations=GROUP,
                      per_device_train_batch_size=2 * GROUP, max_completion_length=8, beta=BETA,
                      loss_type="bnpo", use_bias_correction_kl=False)
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args,
                          processing_class=tok, train_dataset=Dataset.from_list(rows))
    trainer.model.eval()  # TRL's eval mode: no gradient-accumulation scaling of the loss
    return trainer, reward, [rows[0]] * GROUP + [rows[1]] * GROUP


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_equal_grpo_trainers(grpo, scale):
    trainer, reward, inputs = grpo
    trainer.scale_rewards = scale  # GRPOConfig.scale_rewards, as the trainer holds it
    out = trainer._generate_and_score_completions(inputs)
    rewards = reward.given[-1]
    ours = group_advantages(rewards, group_size=GROUP, scale={"group": True, "none": False}.get(scale, scale))
    torch.testing.assert_close(ours, out["advantages"], **TOL)
    assert ours[0] == 0 and (ours[GROUP:] == 0).all()  # no reward, and a group of equal rewards: no signal
    assert ours[1:GROUP].abs().max() > 0.1, f"the first group's rewards {rewards[:GROUP]} should differ"
    # check_reward_fn calls a reward function with what GRPOTrainer passes, by the same keywords
    assert reward.keywords == {"prompts", "completions", "answer", *TRAINER_KWARGS}


def test_ppo_objective_and_k3_penalty_equal_grpo_trainers_loss(grpo):
    trainer, _, inputs = grpo
    out = trainer._generate_and_score_completions(inputs)
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    attention = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    mask = out["completion_mask"]
    with torch.no_grad():
        logp, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, mask.size(1))
    torch.manual_seed(0)  # an older sampler and a reference that differ from the policy, token by token
    old, ref = logp + 0.3 * torch.randn_like(logp), logp + 0.3 * torch.randn_like(logp)
    advantages = torch.randn(logp.size(0))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, {**out, "old_per_token_logps": old, "ref_per_token_logps": ref,
                                                    "advantages": advantages})
    kl = kl_penalty(logp, ref, "k3")
    mean_kl = (kl * mask).sum() / mask.sum()
    objective = ppo_clipped_objective(logp, old, advantages, clip_eps=trainer.epsilon_low, mask=mask)
    assert close(trainer._metrics["eval"]["kl"][-1], mean_kl)
    assert close(loss, -objective + BETA * mean_kl), (loss, objective, mean_kl)
    ratio = torch.exp(logp - old)[mask.bool()]
    assert ((ratio < 0.8) | (ratio > 1.2)).any(), "some tokens must be clipped for the proof to cover clipping"


def test_k1_penalty_equals_rloo_trainers_kl(tmp_path):
    from datasets import Dataset
    from trl import RLOOConfig, RLOOTrainer

    model, tok = assets.load_tiny("llama")
    rows = arithmetic_prompt_rows(2, seed=0)
    args = RLOOConfig(**_common(tmp_path), num_generations=2, per_device_train_batch_size=4,
                      max_completion_length=8, beta=BETA)
    trainer = RLOOTrainer(model=model, reward_funcs=exact_match_reward, args=args, processing_class=tok,
                          train_dataset=Dataset.from_list(rows))
    _perturb(trainer.model)  # the policy has moved away from its reference copy
    trainer.model.eval()
    out = trainer._generate_and_score_completions([rows[0]] * 2 + [rows[1]] * 2)
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    attention = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    mask = out["completion_mask"]
    with torch.no_grad():
        logp, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, mask.size(1))
        ref, _, _ = trainer._get_per_token_logps_and_entropies(trainer.ref_model, ids, attention, mask.size(1))
    k1 = kl_penalty(logp, ref, "k1")
    assert close(trainer._metrics["eval"]["kl"][-1], (k1 * mask).sum() / mask.sum())
    assert (k1 * mask).abs().sum() > 1e-3, "a zero KL would prove nothing"
    # exact_match_reward ran inside the trainer with TRL's arguments, and is logged under its name
    texts = tok.batch_decode(out["completion_ids"], skip_special_tokens=True)
    matches = exact_match_reward(texts, [r["answer"] for r in [rows[0]] * 2 + [rows[1]] * 2])
    assert close(trainer._metrics["eval"]["rewards/exact_match_reward/mean"][-1], sum(matches) / len(matches))


def test_group_advantages_by_hand_and_trls_nanstd():
    from trl.trainer.utils import nanstd

    r = torch.tensor([3.0, 1.0, 2.0, float("nan"), 5.0, float("nan")])
    assert close(torch.nanmean(r[:3]), 2.0) and close(nanstd(r[:3]), 1.0)  # unbiased: sqrt((1 + 1 + 0) / 2)
    adv = group_advantages([3.0, 1.0, 2.0, None, 5.0, None], group_size=3)
    torch.testing.assert_close(adv[:3], torch.tensor([1.0, -1.0, 0.0]) / (1.0 + 1e-4), **TOL)
    assert torch.isnan(nanstd(r[3:])) and (adv[3:] == 0).all()  # one reward in a group: no std, no signal


@pytest.mark.parametrize("kwargs, match", [
    ({"group_size": 3}, r"group_size=3: 4 rewards do not split into groups of 3; give every prompt's group_size"),
    ({"group_size": 0}, r"group_size=0"),
    ({"group_size": 2, "scale": "std"}, r"scale='std': valid values are True, False, 'group', 'batch', 'none'"),
])
def test_group_advantages_refuse_a_bad_group_or_scale(kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_advantages([1.0, 0.0, 1.0, 0.0], **kwargs)


# ---------------------------------------------------------------- reward functions, checked
def short(completions, **kwargs):
    return [1.0]


def stringy(completions, **kwargs):
    return ["1.0" for _ in completions]


def scalar(completions, **kwargs):
    return 1.0


def infinite(completions, **kwargs):
    return [math.inf for _ in completions]


def strict(completions, answer):
    return [1.0 for _ in completions]


class Keyword:  # a callable object: TRL names it by its class
    def __call__(self, completions, **kwargs):
        return ["yes"] * len(completions)


@pytest.mark.parametrize("fn, parts", [
    (short, ["reward function 'short' returned 1 rewards for 2 completions", "one number per completion"]),
    (stringy, ["reward function 'stringy' returned a str ('1.0') for completion 0", "must be a number"]),
    (scalar, ["reward function 'scalar' returned a float, not a list of rewards", "(a list of 2)"]),
    (infinite, ["reward function 'infinite' returned inf for completion 0", "finite"]),
    (strict, ["reward function 'strict' does not take prompts, completion_ids, trainer_state, log_extra, "
              "log_metric", "add **kwargs"]),
    (functools.partial(short, answer=["4", "4"]), ["reward function 'short' returned 1 rewards"]),
    (Keyword(), ["reward function 'Keyword' returned a str ('yes')"]),
], ids=["length", "str", "scalar", "inf", "no kwargs", "partial", "callable object"])
def test_a_bad_reward_function_is_named(fn, parts):
    with pytest.raises(ValueError) as err:
        check_reward_fn(fn, ["4", "5"], answer=["4", "4"])
    assert all(p in str(err.value) for p in parts), str(err.value)


def test_check_reward_fn_passes_good_rewards_through():
    chat = [[{"role": "assistant", "content": "-5"}], [{"role": "assistant", "content": "5"}]]
    assert check_reward_fn(exact_match_reward, chat, answer=["-5", "-5"]) == [1.0, 0.0]  # the sign counts
    as_tensor = check_reward_fn(lambda completions, **kw: torch.tensor([0.5, 2.0]), ["a", "b"])
    assert as_tensor == [0.5, 2.0]
    with_none = check_reward_fn(lambda completions, **kw: [None, 1], ["a", "b"])
    assert math.isnan(with_none[0]) and with_none[1] == 1.0
    with pytest.raises(ValueError, match=r"check_reward_fn: answer has 1 values for 2 completions"):
        check_reward_fn(exact_match_reward, ["a", "b"], answer=["a"])


# ---------------------------------------------------------------- PPO by hand
def test_ppo_clipping_by_hand():
    logp_old = torch.log(torch.tensor([[0.5, 0.5, 0.5, 0.5]]))
    logp_new = torch.log(torch.tensor([[0.8, 0.55, 0.2, 0.5]]))  # ρ = 1.6, 1.1, 0.4, 1.0
    pos, neg = torch.tensor([1.0]), torch.tensor([-1.0])
    # A > 0: ρ capped at 1.2 (no gain from raising a good token further); ρ < 1 is kept (pessimistic)
    assert close(ppo_clipped_objective(logp_new, logp_old, pos), (1.2 + 1.1 + 0.4 + 1.0) / 4)
    # A < 0: ρ floored at 0.8 (no gain from lowering a bad token further); ρ > 1 kept in full
    assert close(ppo_clipped_objective(logp_new, logp_old, neg), -(1.6 + 1.1 + 0.8 + 1.0) / 4)
    mask = torch.tensor([[1, 1, 0, 0]])
    assert close(ppo_clipped_objective(logp_new, logp_old, pos, mask=mask), (1.2 + 1.1) / 2)
    # k3 is never negative and is 0 only where the two agree; k1 can be negative
    k3, k1 = kl_penalty(logp_new, logp_old, "k3"), kl_penalty(logp_new, logp_old, "k1")
    assert (k3 >= 0).all() and k3[0, 3] == 0 and (k1 < 0).any()
    with pytest.raises(ValueError, match=r"estimator='k2': valid KL estimators are k1, k3"):
        kl_penalty(logp_new, logp_old, "k2")
    with pytest.raises(ValueError, match=r"clip_eps=0: the clip range \[1 - eps, 1 \+ eps\] needs eps > 0"):
        ppo_clipped_objective(logp_new, logp_old, pos, clip_eps=0)
