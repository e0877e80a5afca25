"""coursekit.dpo and a recipe's rl: dpo: DPOTrainer with LoRA on preference pairs (the reference: the base with
the adapter off), its settings and rows checked before training, the recipe's keys and files, and the CLI."""

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from coursekit import assets, dpo, finetune, recipes
from coursekit.preference import arithmetic_preference_rows, held_out_pairs
from coursekit.runtime import get_profile
from coursekit.dpo import DPOSettings
from coursekit.sft import SFTSettings, lora_config

ROWS = arithmetic_preference_rows(12, seed=0, rejected="mixed")
STEPS = DPOSettings(max_steps=2, batch_size=4, learning_rate=1e-3, beta=0.2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    model, tok = assets.load_tiny("llama")
    train, test = held_out_pairs(ROWS, 4, seed=0)
    return dpo.dpo_finetune(model, tok, train, STEPS, lora=lora_config(),
                            output_dir=tmp_path_factory.mktemp("dpo") / "out", progress=False, eval_rows=test)


def test_dpo_trains_a_lora_adapter_whose_reference_is_the_base_with_the_adapter_off(run):
    assert len(run.losses) == 2 and run.trainer.ref_model is None, (run.losses, run.trainer.ref_model)
    assert run.trainer.args.beta == 0.2 and not hasattr(run.trainer.args, "packing")
    batch = run.trainer.data_collator([run.trainer.train_dataset[0]])
    with torch.no_grad():
        policy = run.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        with run.model.disable_adapter():
            base = run.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert (policy - base).abs().max() > 1e-6, "the adapter trained nothing, so the reference test proves nothing"
    saved = json.loads((Path(run.output_dir) / "adapter_config.json").read_text())
    assert saved["r"] == 8 and saved["task_type"] == "CAUSAL_LM", saved


def test_held_out_pairs_are_scored_with_dpotrainers_evaluation(run):
    assert sorted(run.eval_metrics) == sorted(dpo.EVAL_METRICS), run.eval_metrics
    assert 0.0 <= run.eval_metrics["rewards/accuracies"] <= 1.0, run.eval_metrics


@pytest.mark.parametrize(("change", "message"), [
    ({"beta": 0}, r"beta=0: DPO needs beta > 0"),
    ({"beta": -1.0}, r"beta=-1.0: DPO needs beta > 0"),
    ({"beta": "0.1"}, r"beta=0.1: DPO needs beta > 0"),
    ({"packing": True}, r"packing=True \(sample_packing\): DPO does not pack"),
])
def test_dpo_settings_refuse_a_beta_that_is_not_positive_and_packing(change, message):
    with pytest.raises(ValueError, match=message):
        DPOSettings(max_steps=1, **change)


@pytest.mark.parametrize(("settings", "rows", "error", "message"), [
    (STEPS, [*ROWS[:3], {**ROWS[3], "rejected": ROWS[3]["chosen"]}], ValueError,
     r"^row 3: field 'rejected' equals 'chosen'"),
    (SFTSettings(max_steps=1), ROWS, TypeError, r"settings is a SFTSettings: DPO takes DPOSettings"),
])
def test_bad_rows_or_settings_fail_before_the_trainer_is_built(tmp_path, monkeypatch, settings, rows, error, message):
    import trl

    monkeypatch.setattr(trl, "DPOTrainer", lambda *a, **k: pytest.fail("the trainer was built"))
    with pytest.raises(error, match=message):
        dpo.dpo_finetune(None, None, rows, settings, output_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_dpo_arguments_are_sfts_without_packing_plus_beta():
    from trl import DPOConfig

    settings = DPOSettings.of(SFTSettings(max_steps=3, learning_rate=1e-4), beta=0.3)
    args = dpo.dpo_arguments(settings, get_profile(verbose=False))
    assert (args["beta"], args["max_steps"], args["learning_rate"]) == (0.3, 3, 1e-4) and "packing" not in args, args
    DPOConfig(output_dir="/tmp/unused", **args)  # every key is one DPOConfig takes


# ---------------------------------------------------------------- the recipe
def _recipe(tmp_path, **changes):
    raw = yaml.safe_load(open("recipes/dpo_smoke.yml", encoding="utf-8"))
    raw.update(base_model="tiny:llama", output_dir=str(tmp_path / "out"), max_steps=2, **changes)
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_the_dpo_recipe_runs_from_the_cli_and_scores_its_held_out_pairs(tmp_path, capsys):
    assert finetune.main([str(_recipe(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "DPO beta 0.1 (reference: the base, adapter off)" in out, out
    assert "held-out: loss" in out and "rewards/accuracies" in out, out
    assert (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_rl_beta_is_axolotls_name_for_beta(tmp_path):
    assert recipes.load_recipe(_recipe(tmp_path, rl_beta=0.5)).beta == 0.5


@pytest.mark.parametrize(("changes", "expected"), [
    ({"rl": "ppo"}, r"error: Recipe key 'rl' is 'ppo'; valid values: None, dpo\."),
    ({"rl": None}, r"error: format: preference holds chosen/rejected pairs, which SFT cannot train on: add rl: dpo"),
    ({"datasets": [{"path": "data/units.jsonl"}]}, r"error: rl: dpo trains on preference pairs: give every dataset "
                                                    r"format: preference"),
    ({"rl_beta": 0}, r"error: beta \(rl_beta\) is 0.0: DPO needs beta > 0"),
    ({"val_set_size": 500}, r"error: val_set_size=500 \(data/arithmetic_preference.jsonl\): holding out 500 prompts"),
])
def test_a_bad_dpo_recipe_is_one_error_line_at_check(tmp_path, capsys, changes, expected):
    assert finetune.main([str(_recipe(tmp_path, **changes)), "--check"]) == 2
    err = capsys.readouterr().err
    assert re.search(expected, err), err


def test_a_bad_pair_in_the_recipes_file_names_the_file_and_row(tmp_path, capsys):
    rows = arithmetic_preference_rows(30, seed=3)
    rows[7]["chosen"] = []
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = _recipe(tmp_path, datasets=[{"path": str(path), "format": "preference"}], val_set_size=4)
    assert finetune.main([str(recipe), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"error: dataset '{path}', row 7: field 'chosen' is empty" in err, err


def test_held_out_pairs_keep_every_pair_of_a_test_prompt_out_of_training():
    rows = ROWS + ROWS[:5]  # five prompts twice
    train, test = held_out_pairs(rows, 6, seed=1)
    prompts = {repr(r["prompt"]) for r in test}
    assert len(test) == 6 == len(prompts) and not prompts & {repr(r["prompt"]) for r in train}
    assert len(train) + sum(rows.count(r) for r in test) == len(rows)
    assert held_out_pairs(rows, 6, seed=1) == (train, test), "the same random seed gives the same split"
    with pytest.raises(ValueError, match="hold out fewer than 12"):
        held_out_pairs(rows, 12)

