"""coursekit.recipes: YAML validation, training a tiny recipe (LoRA and QLoRA), gated models, the CLI."""

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from coursekit import assets, course, finetune, hub, quant, recipes
from coursekit.runtime import get_profile

RECIPES = sorted((course.ROOT / "recipes").glob("*.yml"))


def tiny_recipe(tmp_path, **kw):
    base = {"base_model": "tiny:llama", "datasets": [{"path": "data/units.jsonl", "split": "train[:48]"}],
            "output_dir": str(tmp_path / "out"), "max_steps": 3, "batch_size": 4, "learning_rate": 1e-3,
            "max_length": 128, "lora_target_modules": "all-linear", "val_set_size": 4}
    return {**base, **kw}


# ---------------------------------------------------------------- recipes
@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates(path):
    recipe = recipes.load_recipe(path)
    assert recipe.datasets and recipe.output_dir and recipe.base_model
    assert recipes.describe(recipe)


def test_the_shipped_recipes_cover_the_course_notes_models():
    bases = {recipes.load_recipe(p).base_model for p in RECIPES}
    assert {"packaged:smollm2", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "Qwen/Qwen3-0.6B",
            "meta-llama/Llama-3.2-3B"} <= bases
    qlora = recipes.load_recipe(course.ROOT / "recipes" / "llama32_price_qlora.yml")
    assert qlora.load_in_4bit and qlora.bnb_4bit_quant_type == "nf4" and qlora.bnb_4bit_use_double_quant


def test_unknown_key_lists_the_valid_ones(tmp_path):
    with pytest.raises(recipes.RecipeError) as err:
        recipes.load_recipe(tiny_recipe(tmp_path, lr=1e-3))
    msg = str(err.value)
    assert "'lr'" in msg and "Valid keys:" in msg and "learning_rate" in msg and "micro_batch_size" in msg
    with pytest.raises(recipes.RecipeError, match="Valid keys: path, name, split, format, fields, system"):
        recipes.load_recipe(tiny_recipe(tmp_path, datasets=[{"path": "data/units.jsonl", "type": "alpaca"}]))


@pytest.mark.parametrize("change, match", [
    ({"datasets": [{"split": "train"}]}, r"datasets\[0\] is missing 'path'"),
    ({"base_model": None}, "missing required key.*base_model"),
    ({"datasets": [{"path": "data/units.jsonl", "format": "sharegpt"}]}, "valid formats"),
    ({"datasets": [{"path": "data/units.jsonl", "fields": {"answer": "x"}}]}, "valid fields"),
    ({"optimizer": "adam_w"}, "valid values: adamw_torch"),
    ({"learning_rate": "fast"}, "'learning_rate' must be a float"),
])
def test_bad_recipes_fail_clearly(tmp_path, change, match):
    with pytest.raises(recipes.RecipeError, match=match):
        recipes.load_recipe(tiny_recipe(tmp_path, **change))


def test_a_field_mapping_to_a_missing_column_names_it(tmp_path):
    spec = recipes.load_recipe(tiny_recipe(tmp_path, datasets=[
        {"path": "data/products.jsonl", "fields": {"prompt": "description", "completion": "short_story"}}])).datasets[0]
    with pytest.raises(recipes.RecipeError, match="'short_story'.*Its columns: description, category"):
        recipes.load_recipe_dataset(spec)


def test_yaml_numbers_and_qlora_are_read_as_meant(tmp_path):
    path = tmp_path / "r.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, learning_rate="2e-4", adapter="qlora")))
    recipe = recipes.load_recipe(path)
    assert recipe.training.learning_rate == 2e-4 and recipe.load_in_4bit  # YAML reads 2e-4 as a string


# ---------------------------------------------------------------- training
def test_tiny_recipe_trains_and_saves_the_adapter(tmp_path):
    run = recipes.run_recipe(tiny_recipe(tmp_path))
    assert len(run.losses) == 3 and all(math.isfinite(x) for x in run.losses)
    out = Path(run.output_dir)
    assert (out / "adapter_model.safetensors").exists() and (out / "adapter_config.json").exists()
    assert (out / "tokenizer_config.json").exists()
    assert set(run.eval_metrics) == {"loss", "token_accuracy", "exact_match"}
    assert math.isfinite(run.eval_metrics["loss"])


def test_qlora_recipe_loads_4bit_on_cpu(tmp_path):
    pytest.importorskip("bitsandbytes")
    run = recipes.run_recipe(tiny_recipe(tmp_path, adapter="qlora", max_steps=2, val_set_size=0))
    kinds = {type(m).__name__ for m in run.model.modules()}
    assert "Linear4bit" in kinds and all(math.isfinite(x) for x in run.losses)


def test_a_checkpointed_qlora_recipe_trains_checkpointed_without_the_deprecated_switch(tmp_path):
    """peft's own checkpointing switch calls transformers' deprecated alias; the trainer's does the same work."""
    pytest.importorskip("bitsandbytes")
    recipe = tiny_recipe(tmp_path, adapter="qlora", gradient_checkpointing=True, max_steps=2, val_set_size=0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run = recipes.run_recipe(recipe, progress=False)
    deprecated = [str(w.message) for w in seen if "gradient_checkpointing_enable" in str(w.message)]
    base = run.model.get_base_model()
    assert deprecated == [] and base.is_activation_checkpointing, (deprecated, base.is_activation_checkpointing)
    assert run.trainer.args.activation_checkpointing and all(math.isfinite(x) for x in run.losses), run.losses


# ---------------------------------------------------------------- bad input: tokens, bitsandbytes
def test_gated_model_without_token_names_hf_token(monkeypatch):
    monkeypatch.setattr(hub, "_hf_token", lambda: None)
    with pytest.raises(assets.AssetError, match="HF_TOKEN"):
        recipes.run_recipe(course.ROOT / "recipes" / "llama32_price_qlora.yml")


def test_kbit_where_bitsandbytes_cannot_falls_back_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(quant, "_bnb_problem", lambda device: "bitsandbytes cannot run here")
    assert quant.kbit_config(8, get_profile("smoke", verbose=False)) is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "8-bit" in out and "unquantized" in out


# ---------------------------------------------------------------- CLI
def test_cli_runs_a_recipe(tmp_path):
    path = tmp_path / "tiny.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, max_steps=2)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "coursekit.finetune", str(path)], capture_output=True, text=True,
                          env=env, cwd=course.ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "adapter saved to" in done.stdout and (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_cli_check_reports_a_bad_recipe(tmp_path, capsys):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path, epochs=3)))
    assert finetune.main([str(path), "--check"]) == 2
    assert "Valid keys" in capsys.readouterr().err
    assert finetune.main([str(RECIPES[0]), "--check"]) == 0


def test_cli_prints_the_alias_table(capsys):
    assert finetune.main(["--aliases"]) == 0
    assert capsys.readouterr().out.strip() == recipes.alias_table()


# ---------------------------------------------------------------- one vocabulary, Axolotl's names at the boundary
def test_axolotl_and_hugging_face_names_give_the_same_recipe(tmp_path):
    base = {k: v for k, v in tiny_recipe(tmp_path).items() if k not in ("batch_size", "max_length")}
    axolotl = recipes.load_recipe({**base, "micro_batch_size": 2, "sequence_len": 96, "num_epochs": 2,
                                   "lr_scheduler": "cosine", "optimizer": "sgd", "sample_packing": True})
    ours = recipes.load_recipe({**base, "batch_size": 2, "max_length": 96, "num_train_epochs": 2,
                                "lr_scheduler_type": "cosine", "optim": "sgd", "packing": True})
    assert axolotl == ours and ours.training.batch_size == 2 and ours.training.packing is True
    assert set(recipes.AXOLOTL_ALIASES.values()) <= {*recipes.TRAINING_KEYS, *recipes.RECIPE_KEYS}


def test_a_setting_under_both_names_is_an_error(tmp_path):
    with pytest.raises(recipes.RecipeError, match="'batch_size' twice"):
        recipes.load_recipe(tiny_recipe(tmp_path, micro_batch_size=2))


def test_a_typo_names_the_nearest_key(tmp_path):
    with pytest.raises(recipes.RecipeError, match="'learning_rte' \\(did you mean 'learning_rate'\\?\\)"):
        recipes.load_recipe(tiny_recipe(tmp_path, learning_rte=1e-3))


def test_shipped_recipes_name_the_registered_hub_datasets():
    from coursekit.data import HUB_DATASETS

    hub_paths = {d.path for f in sorted((course.ROOT / "recipes").glob("*.yml")) for d in recipes.load_recipe(f).datasets
                 if not d.path.startswith("data/")}
    assert hub_paths and hub_paths <= set(HUB_DATASETS.values())  # one registry of Hub dataset ids
