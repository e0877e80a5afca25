"""A recipe with ``rl: dpo``: its preference datasets read and checked, the held-out pairs, and the DPO run.

``check_rl`` keeps the two apart: ``rl: dpo`` needs preference datasets, and they need ``rl: dpo``. Each
dataset entry says ``format: preference``: rows in any form ``preference.formats`` reads (TRL's four, an
UltraFeedback or hh-rlhf row). ``val_set_size`` holds out that many prompts (``preference.held_out_pairs``),
scored after training by DPOTrainer's evaluation (``dpo.EVAL_METRICS``).

    >>> from coursekit.recipes import load_recipe
    >>> train, held_out = dpo_recipe_rows(load_recipe("recipes/dpo_smoke.yml"))
    >>> len(train), len(held_out), sorted(held_out[0])
    (176, 24, ['chosen', 'prompt', 'rejected'])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coursekit.chat import DataError
from coursekit.dpo import DPOSettings, dpo_finetune
from coursekit.preference import explicit_prompt_rows, held_out_pairs
from coursekit.recipes.files import RecipeError, load_recipe_dataset, split_val_set
from coursekit.recipes.models import load_model
from coursekit.runtime import Profile
from coursekit.sft import SFTRun, lora_config

if TYPE_CHECKING:
    from coursekit.recipes import DatasetSpec, Recipe

__all__ = ["PREFERENCE_FORMAT", "RL_METHODS", "check_rl", "dpo_recipe_rows", "preference_rows", "run_dpo_recipe"]

PREFERENCE_FORMAT = "preference"  # a dataset entry's format for chosen/rejected pairs
RL_METHODS = ("dpo",)  # a recipe's rl: key (Axolotl's); none means SFT


def check_rl(recipe: Recipe) -> None:
    """``rl: dpo`` trains on preference pairs only, and pairs need ``rl: dpo``; DPO's β must be positive."""
    pairs = [d.format == PREFERENCE_FORMAT for d in recipe.datasets]
    if recipe.rl and not all(pairs):
        raise RecipeError(f"rl: {recipe.rl} trains on preference pairs: give every dataset format: "
                          f"{PREFERENCE_FORMAT} (rows with chosen and rejected).")
    if not recipe.rl and any(pairs):
        raise RecipeError(f"format: {PREFERENCE_FORMAT} holds chosen/rejected pairs, which SFT cannot train on: "
                          "add rl: dpo to the recipe.")
    if not recipe.beta > 0:
        raise RecipeError(f"beta (rl_beta) is {recipe.beta}: DPO needs beta > 0; DPOConfig's default is 0.1.")


def preference_rows(spec: DatasetSpec) -> list[dict[str, Any]]:
    """One dataset entry's pairs with an explicit prompt; a bad row names the dataset, the row and the field."""
    try:
        return explicit_prompt_rows([dict(r) for r in load_recipe_dataset(spec)])
    except DataError as err:
        raise DataError(err.index, err.field, err.problem, source=f"dataset {spec.path!r}") from None


def dpo_recipe_rows(recipe: Recipe) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, held_out)`` pairs of every dataset in the recipe (``held_out_pairs`` on ``val_set_size``)."""
    rows = [r for spec in recipe.datasets for r in preference_rows(spec)]
    return split_val_set(rows, recipe.val_set_size, recipe.training.seed, [d.path for d in recipe.datasets],
                         held_out_pairs)


def run_dpo_recipe(recipe: Recipe, rows: tuple[list, list], profile: Profile, evaluate: bool = True,
                   progress: bool = True) -> SFTRun:
    """Load the base, train a LoRA adapter with DPO (the reference: the base, adapter off), save adapter and
    tokenizer; with held-out pairs and ``evaluate``, ``run.eval_metrics`` holds their DPO evaluation."""
    train, held_out = rows
    model, tok = load_model(recipe, profile)
    lora = lora_config(recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target_modules)
    run = dpo_finetune(model, tok, train, DPOSettings.of(recipe.training, recipe.beta), output_dir=recipe.output_dir,
                       profile=profile, lora=lora, progress=progress, overwrite_output_dir=recipe.overwrite_output_dir,
                       eval_rows=held_out if held_out and evaluate else None)
    tok.save_pretrained(recipe.output_dir)
    return run
