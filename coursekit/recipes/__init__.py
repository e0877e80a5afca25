"""Axolotl-style YAML recipes for SFT: validate a recipe, then load its model and data and train it.

A recipe names every choice of a run in one file (``recipes/*.yml``): base model, datasets (path, format,
field mapping), training settings, precision, LoRA and k-bit loading, output folder. ``load_recipe`` checks
every key; a typo is an error naming the nearest valid key. ``run_recipe`` then trains with
``coursekit.sft.finetune``. A worked example, on a tiny random model (``tiny:llama``) in place of the recipe's
SmolLM2::

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> recipe = load_recipe("recipes/sft_smoke.yml", base_model="tiny:llama", max_length=128, max_steps=3,
    ...                      output_dir=out)
    >>> print(describe(recipe))                      # doctest: +ELLIPSIS
    tiny:llama (full precision) on data/units.jsonl [train]
    LoRA r=8 alpha=16 dropout=0 targets=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
    max_steps 3, batch 4×1, lr 0.001 (constant), adamw_torch, max_length 128, packing False → /tmp/...
    >>> run = run_recipe(recipe, progress=False)     # LoRA adapter + tokenizer saved to recipe.output_dir
    >>> len(run.losses), sorted(run.eval_metrics)    # 24 held-out prompts scored after training
    (3, ['exact_match', 'loss', 'token_accuracy'])
    >>> load_recipe("recipes/sft_smoke.yml", learning_rte=1e-3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    coursekit.recipes.files.RecipeError: Unknown recipe key(s): 'learning_rte' (did you mean 'learning_rate'?). ...

**One vocabulary.** The training settings are ``coursekit.sft.SFTSettings``, with Hugging Face's names.
A recipe may use Axolotl's names instead; this one table maps them, at the YAML boundary only::

    >>> print(alias_table())
    | Axolotl key | coursekit (Hugging Face) key |
    | --- | --- |
    | micro_batch_size | batch_size |
    | sequence_len | max_length |
    | num_epochs | num_train_epochs |
    | lr_scheduler | lr_scheduler_type |
    | optimizer | optim |
    | sample_packing | packing |
    | rl_beta | beta |

YAML reads ``2e-4`` as a string, and ``HfArgumentParser.parse_dict`` neither converts nor checks types,
so ``load_recipe`` gives each key the type of its default and names the key when that fails.

``load_in_4bit: true`` (or ``adapter: qlora``) loads the base through bitsandbytes (nf4 + double
quantization by default, compute dtype = the training precision) and runs peft's
``prepare_model_for_kbit_training``; where bitsandbytes cannot run, one printed line says so and the model
loads unquantized. The command line is ``python -m coursekit.finetune recipes/<name>.yml``.

**Before the model loads**, ``run_recipe`` checks what would fail at the end (``check_recipe``: local dataset
files, ``output_dir``, the rows and ``val_set_size``); ``recipes.files`` reads files with errors naming file and line.
``recipes.rehearsal`` fits the recipe to the profile (a rehearsal's smoke sizes, the optimizer the device runs);
``sample_prompts`` are answered after training (``recipes.samples``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from coursekit.chat import FIELD_NAMES, FORMATS, DataError, convert_rows, held_out_split, prepare_dataset
from coursekit.evals.answers import score_answers
from coursekit.recipes.files import (RecipeError, check_local_file, dataset_file, load_recipe_dataset, local_file,
                                     read_recipe_file, split_val_set)
from coursekit.recipes.models import load_model, quantization_config, resolve_model_name
from coursekit.recipes.preference import PREFERENCE_FORMAT, RL_METHODS, check_rl, dpo_recipe_rows, run_dpo_recipe
from coursekit.recipes.rehearsal import for_profile, rehearsal_rows
from coursekit.recipes.samples import check_samples, recipe_samples
from coursekit.runtime import Profile, get_profile
from coursekit.sft import SFTRun, SFTSettings, check_output_dir, finetune, lora_config

__all__ = ["AXOLOTL_ALIASES", "DatasetSpec", "Recipe", "RecipeError", "alias_table", "check_recipe", "describe",
           "load_model", "load_recipe", "load_recipe_dataset", "quantization_config", "recipe_dataset", "recipe_rows",
           "resolve_model_name", "run_recipe"]

# Axolotl's name -> ours (Hugging Face's). The only place the two vocabularies meet.
AXOLOTL_ALIASES: dict[str, str] = {
    "micro_batch_size": "batch_size",
    "sequence_len": "max_length",
    "num_epochs": "num_train_epochs",
    "lr_scheduler": "lr_scheduler_type",
    "optimizer": "optim",
    "sample_packing": "packing",
    "rl_beta": "beta",
}


@dataclass
class DatasetSpec:
    """One entry of a recipe's ``datasets`` list."""

    path: str  # a Hub id, or a local .jsonl/.json/.csv/.parquet file
    name: str | None = None  # the Hub dataset's config name
    split: str = "train"  # any datasets split expression, e.g. "train[:160]"
    format: str = "auto"  # auto | messages | prompt_completion | alpaca
    fields: dict[str, str] = field(default_factory=dict)  # our field name -> the dataset's column
    system: str | None = None  # a system prompt added to rows without one


@dataclass
class Recipe:
    """A training recipe: what to train on what, and how (``training``); ``load_recipe`` builds and validates one."""

    base_model: str  # Hub id, local folder, "packaged:smollm2" or "tiny:llama"
    datasets: list[DatasetSpec]
    output_dir: str
    overwrite_output_dir: bool = False  # Hugging Face's name: replace an earlier run's files in output_dir
    training: SFTSettings = field(default_factory=SFTSettings)  # flat keys in the YAML
    chat_template: str = "auto"  # auto (the tokenizer's, else plain) | tokenizer | plain | chatml
    val_set_size: int = 0  # prompts held out (never trained on) and scored after training
    bf16: bool | str = "auto"  # auto | true | false
    fp16: bool = False
    adapter: str = "lora"  # lora | qlora (qlora = lora on a 4-bit base)
    lora_r: int = 8  # the defaults of sft.lora_config (tests/test_recipes.py checks they agree)
    lora_alpha: float = 16
    lora_dropout: float = 0.0
    lora_target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "v_proj"])
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    bnb_4bit_quant_type: str = "nf4"  # nf4 | fp4
    bnb_4bit_use_double_quant: bool = True
    rl: str | None = None  # Axolotl's: "dpo" trains on preference pairs (recipes.preference); none is SFT
    beta: float = 0.1  # DPO's β (DPOConfig's default); Axolotl's rl_beta
    sample_prompts: list[str] = field(default_factory=list)  # answered after training (recipes.samples)
    sample_max_new_tokens: int = 256


TRAINING_KEYS = tuple(f.name for f in fields(SFTSettings))
RECIPE_KEYS = tuple(f.name for f in fields(Recipe) if f.name != "training")
VALID_KEYS = (*RECIPE_KEYS, *TRAINING_KEYS, *AXOLOTL_ALIASES)
DATASET_KEYS = tuple(f.name for f in fields(DatasetSpec))
_REQUIRED = ("base_model", "datasets", "output_dir")
_CHOICES = {"adapter": ("lora", "qlora"), "bnb_4bit_quant_type": ("nf4", "fp4"), "bf16": ("auto", True, False),
            "rl": (None, *RL_METHODS)}
_DEFAULTS = {f.name: f.default for c in (Recipe, SFTSettings) for f in fields(c) if f.default is not MISSING}


def alias_table() -> str:
    """``AXOLOTL_ALIASES`` as a Markdown table (the recipe docs print it)."""
    rows = [f"| {ours} | {theirs} |" for ours, theirs in AXOLOTL_ALIASES.items()]
    return "\n".join(["| Axolotl key | coursekit (Hugging Face) key |", "| --- | --- |", *rows])


def _unknown(keys: Iterable[str], valid: Sequence[str], where: str) -> None:
    bad = [k for k in keys if k not in valid]
    if bad:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, valid, 1)) else repr(k)
                 for k in bad]
        raise RecipeError(f"Unknown {where} key(s): {', '.join(hints)}. Valid keys: {', '.join(valid)}.")


def _canonical(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Axolotl's names → ours; the same setting under both names is an error."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = AXOLOTL_ALIASES.get(key, key)
        if name in out:
            raise RecipeError(f"Recipe sets {name!r} twice (as {key!r} and {name!r}): keep one.")
        out[name] = value
    return out


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Give a key the type of its default (YAML reads ``2e-4`` as a string and ``1`` as an int)."""
    try:
        if isinstance(default, bool) or value is None or isinstance(value, bool):
            return value
        if isinstance(default, float):
            return float(value)
        if isinstance(default, int):
            return int(value)
    except (TypeError, ValueError):
        raise RecipeError(f"Recipe key {name!r} must be a {type(default).__name__}, got {value!r}.") from None
    return value


def _dataset_spec(entry: Any, i: int) -> DatasetSpec:
    if not isinstance(entry, Mapping):
        raise RecipeError(f"datasets[{i}] must be a mapping with at least 'path'; got {entry!r}.")
    _unknown(entry, DATASET_KEYS, f"datasets[{i}]")
    if not entry.get("path"):
        raise RecipeError(f"datasets[{i}] is missing 'path' (a Hub id or a local .jsonl file).")
    fmt = entry.get("format", "auto")
    if fmt not in ("auto", *FORMATS, PREFERENCE_FORMAT):
        raise RecipeError(f"datasets[{i}].format is {fmt!r}; valid formats: auto, {', '.join(FORMATS)}, "
                          f"{PREFERENCE_FORMAT} (chosen/rejected pairs, with rl: dpo).")
    fmap = dict(entry.get("fields") or {})
    bad = [k for k in fmap if k not in FIELD_NAMES]
    if bad:
        raise RecipeError(f"datasets[{i}].fields maps unknown field(s) {bad}; valid fields: {', '.join(FIELD_NAMES)}.")
    return DatasetSpec(**{**entry, "fields": fmap})


def _check_choices(values: Mapping[str, Any]) -> None:
    """Fixed choices, and the optimizer and scheduler names transformers knows."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    choices = {**_CHOICES, "optim": tuple(e.value for e in OptimizerNames),
               "lr_scheduler_type": tuple(e.value for e in SchedulerType)}
    for key, allowed in choices.items():
        if key in values and values[key] not in allowed:
            raise RecipeError(f"Recipe key {key!r} is {values[key]!r}; valid values: {', '.join(map(str, allowed))}.")


def _flat(recipe: Recipe) -> dict[str, Any]:
    """A recipe as the flat mapping a YAML file holds (training settings at the top level)."""
    values = {f.name: getattr(recipe, f.name) for f in fields(Recipe) if f.name != "training"}
    values["datasets"] = [asdict(d) for d in recipe.datasets]
    return {**values, **asdict(recipe.training)}


def _settings(values: dict[str, Any], raw_keys: Iterable[str]) -> SFTSettings:
    """The training settings; one that TRL would misread names itself as the recipe spelled it."""
    try:
        return SFTSettings(**{k: values.pop(k) for k in TRAINING_KEYS if k in values})
    except ValueError as err:
        spelled = [f"{k} is {AXOLOTL_ALIASES[k]}" for k in raw_keys
                   if k in AXOLOTL_ALIASES and AXOLOTL_ALIASES[k] in str(err)]
        raise RecipeError(f"Recipe: {err}" + (f" (the recipe's {', '.join(spelled)})" if spelled else "")) from None


def load_recipe(source: str | Path | Mapping[str, Any] | Recipe, **overrides: Any) -> Recipe:
    """Read a YAML file (or take a dict or a Recipe), apply ``overrides``, and validate every key.

    Keys and overrides may use our names or Axolotl's (``AXOLOTL_ALIASES``).
    """
    if isinstance(source, Recipe):
        raw = _flat(source)
    else:
        raw = dict(source) if isinstance(source, Mapping) else read_recipe_file(source)
    if not isinstance(raw, Mapping):
        raise RecipeError(f"A recipe must be a YAML mapping of keys; got {type(raw).__name__}.")
    _unknown([*raw, *overrides], VALID_KEYS, "recipe")
    values = {**_canonical(raw), **_canonical(overrides)}
    missing = [k for k in _REQUIRED if values.get(k) in (None, "", [])]
    if missing:
        raise RecipeError(f"Recipe is missing required key(s): {', '.join(missing)}.")
    if not isinstance(values["datasets"], list):
        raise RecipeError("Recipe key 'datasets' must be a list of {path, name, split, format, fields, system}.")
    values = {k: _coerce(k, v, _DEFAULTS.get(k)) for k, v in values.items()}
    _check_choices(values)
    training = _settings(values, [*raw, *overrides])
    if values.get("val_set_size", 0) < 0:
        raise RecipeError(f"val_set_size={values['val_set_size']}: must be 0 (nothing held out) or a number of "
                          "prompts to hold out")
    values["datasets"] = [_dataset_spec(d, i) for i, d in enumerate(values["datasets"])]
    recipe = Recipe(**values, training=training)
    if recipe.adapter == "qlora" and not recipe.load_in_8bit:
        recipe.load_in_4bit = True
    if recipe.load_in_4bit and recipe.load_in_8bit:
        raise RecipeError("Choose one of load_in_4bit and load_in_8bit, not both.")
    check_rl(recipe)
    check_samples(recipe.sample_prompts, recipe.sample_max_new_tokens)
    return recipe


def check_recipe(recipe: Recipe, read_rows: bool = True) -> None:
    """What can be checked without a download: every local dataset file, ``output_dir`` (``sft.check_output_dir``),
    and (``read_rows``, all datasets local) every row and ``val_set_size``. ``run_recipe`` runs it first."""
    for i, spec in enumerate(recipe.datasets):
        local = dataset_file(spec.path, f"datasets[{i}]")
        if local is not None:
            check_local_file(local, f"datasets[{i}]")
    check_output_dir(recipe.output_dir, recipe.overwrite_output_dir)
    if read_rows and all(local_file(s.path) for s in recipe.datasets):
        recipe_rows(recipe)


def _rows(spec: DatasetSpec) -> list[dict[str, Any]]:
    try:
        return convert_rows(load_recipe_dataset(spec), spec.format, spec.fields, spec.system)
    except DataError as err:  # name the file as well as the row
        raise DataError(err.index, err.field, err.problem, source=f"dataset {spec.path!r}") from None


def recipe_rows(recipe: Recipe) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, held_out)`` message rows of every dataset in the recipe (``held_out_split`` on ``val_set_size``);
    preference pairs for ``rl: dpo`` (``recipes.preference.dpo_recipe_rows``)."""
    if recipe.rl == "dpo":
        return dpo_recipe_rows(recipe)
    rows = [r for s in recipe.datasets for r in _rows(s)]
    return split_val_set(rows, recipe.val_set_size, recipe.training.seed, [d.path for d in recipe.datasets],
                         held_out_split)


def _tokenized(rows: tuple[list, list], tokenizer: Any, template: str) -> tuple[Any, Any]:
    train_rows, test_rows = rows
    train_ds = prepare_dataset(train_rows, tokenizer, template=template)
    return train_ds, (prepare_dataset(test_rows, tokenizer, template=template) if test_rows else None)


def recipe_dataset(recipe: Recipe, tokenizer: Any) -> tuple[Any, Any]:
    """``(train, held_out)`` tokenized with assistant-only labels (``held_out`` is None without ``val_set_size``)."""
    return _tokenized(recipe_rows(recipe), tokenizer, recipe.chat_template)


def run_recipe(source: str | Path | Mapping[str, Any] | Recipe, evaluate: bool = True, progress: bool = True,
               smoke_sized: bool = False, **overrides: Any) -> SFTRun:
    """Validate, check (``check_recipe``), load the data and then the model, train with LoRA (SFT, or DPO with
    ``rl: dpo``), save the adapter and tokenizer (``overwrite_output_dir`` replaces an earlier run's files in ``output_dir``).

    With ``val_set_size`` > 0 and ``evaluate``, the held-out prompts are scored after training
    (``evals.score_answers``) into ``run.eval_metrics``, and ``sample_prompts`` answered into ``run.samples``.
    With ``smoke_sized`` (the command line), a rehearsal's work is capped (``rehearsal.for_profile``). ``progress=False`` trains without the bar and
    the per-step log lines. The module docstring runs one end to end.
    """
    recipe = load_recipe(source, **overrides)
    check_recipe(recipe, read_rows=False)
    profile = get_profile(verbose=False).asking(bf16=recipe.bf16, fp16=recipe.fp16)
    recipe = for_profile(recipe, profile, smoke_sized)  # a gated model without a token fails here, before any download
    rows = rehearsal_rows(recipe_rows(recipe), profile, smoke_sized)
    run = (run_dpo_recipe if recipe.rl == "dpo" else _run_sft)(recipe, rows, profile, evaluate, progress)
    if recipe.sample_prompts and evaluate:
        run.samples = recipe_samples(recipe, run.model, run.trainer.processing_class)
    return run


def _run_sft(recipe: Recipe, rows: tuple[list, list], profile: Profile, evaluate: bool, progress: bool) -> SFTRun:
    model, tok = load_model(recipe, profile)
    dataset, held_out = _tokenized(rows, tok, recipe.chat_template)
    lora = lora_config(recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target_modules)
    run = finetune(model, tok, dataset, recipe.training, output_dir=recipe.output_dir, profile=profile, lora=lora,
                   progress=progress, overwrite_output_dir=recipe.overwrite_output_dir)
    tok.save_pretrained(recipe.output_dir)
    if held_out is not None and evaluate:
        run.eval_metrics = score_answers(run.model, tok, held_out)
    return run


def describe(recipe: Recipe) -> str:
    """One line per setting that matters, for the CLI and the notebooks."""
    t = recipe.training
    data = ", ".join(f"{d.path} [{d.split}]" for d in recipe.datasets)
    steps = f"max_steps {t.max_steps}" if t.max_steps > 0 else f"{t.num_train_epochs:g} epoch(s)"
    quant = "4-bit" if recipe.load_in_4bit else "8-bit" if recipe.load_in_8bit else "full precision"
    return (f"{recipe.base_model} ({quant}) on {data}\n"
            f"LoRA r={recipe.lora_r} alpha={recipe.lora_alpha:g} dropout={recipe.lora_dropout:g} "
            f"targets={recipe.lora_target_modules}\n"
            f"{steps}, batch {t.batch_size}×{t.gradient_accumulation_steps}, lr {t.learning_rate:g} "
            f"({t.lr_scheduler_type}), {t.optim}, max_length {t.max_length}, packing {t.packing} → {recipe.output_dir}"
            + (f"\n{recipe.rl.upper()} beta {recipe.beta:g} (reference: the base, adapter off)" if recipe.rl else "")
            + (f"\nafter training: {len(recipe.sample_prompts)} sample prompt(s), up to {recipe.sample_max_new_tokens} "
               "new tokens each" if recipe.sample_prompts else ""))
