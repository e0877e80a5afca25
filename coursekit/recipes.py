"""Axolotl-style YAML recipes for SFT: validate a recipe, load its model and data, train, and the CLI.

A recipe names every choice of a run in one file (``recipes/*.yml``): base
model, datasets (path, format, field mapping), sizes, optimiser, precision,
LoRA and k-bit loading, output folder. ``load_recipe`` checks every key, and
a typo is an error that lists the valid keys; ``run_recipe`` then trains with
the helpers of ``coursekit.sft``. A worked example, on a tiny random model
(``tiny:llama``) in place of the recipe's SmolLM2::

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> recipe = load_recipe("recipes/sft_smoke.yml", base_model="tiny:llama", sequence_len=128, max_steps=3,
    ...                      output_dir=out)
    >>> print(describe(recipe))                      # doctest: +ELLIPSIS
    tiny:llama (full precision) on data/units.jsonl [train]
    LoRA r=8 alpha=16 dropout=0 targets=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']
    max_steps 3, batch 4×1, lr 0.001 (constant), adamw_torch, seq 128, packing False → /tmp/...
    >>> run = run_recipe(recipe, progress=False)     # LoRA adapter + tokenizer saved to recipe.output_dir
    >>> len(run.losses), sorted(run.eval_metrics)    # 24 held-out prompts scored after training
    (3, ['exact_match', 'loss', 'token_accuracy'])
    >>> load_recipe("recipes/sft_smoke.yml", lr=1e-3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    coursekit.recipes.RecipeError: Unknown recipe key(s): 'lr'. Valid keys: base_model, datasets, output_dir, ...

From the command line (``coursekit.sft`` forwards to this module's ``main``)::

    $ python -m coursekit.sft recipes/sft_smoke.yml
    $ python -m coursekit.recipes recipes/qwen3_medical.yml --check  # validate only

``load_in_4bit: true`` (or ``adapter: qlora``) loads the base through
bitsandbytes (nf4 + double quantization by default, compute dtype = the
training precision) and runs peft's ``prepare_model_for_kbit_training``;
bitsandbytes 0.50 does this on a CPU too. Where bitsandbytes cannot run,
one printed line says so and the model loads unquantized.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from coursekit.hub import check_access
from coursekit.runtime import Precision, get_device
from coursekit.sft import (FIELD_NAMES, FORMATS, DataError, SFTRun, convert_rows, held_out_split, lora_config,
                           prepare_dataset, resolve_precision, score_answers, train)

__all__ = [
    "DatasetSpec",
    "Recipe",
    "RecipeError",
    "describe",
    "load_model",
    "load_recipe",
    "load_recipe_dataset",
    "main",
    "quantization_config",
    "recipe_dataset",
    "recipe_rows",
    "resolve_model_name",
    "run_recipe",
]


class RecipeError(ValueError):
    """A recipe is invalid; the message says which key and what is allowed."""




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
    """An Axolotl-style training recipe; ``load_recipe`` builds one from YAML and validates it."""

    base_model: str  # Hub id, local folder, "packaged:smollm2" or "tiny:llama"
    datasets: list[DatasetSpec]
    output_dir: str
    chat_template: str = "auto"  # auto (the tokenizer's, else plain) | tokenizer | plain | chatml
    val_set_size: int = 0  # prompts held out (never trained on) and scored after training
    sequence_len: int = 512
    micro_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    num_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_epochs
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_steps: int = 0
    optimizer: str = "adamw_torch"
    weight_decay: float = 0.0
    bf16: bool | str = "auto"  # auto | true | false
    fp16: bool = False
    adapter: str = "lora"  # lora | qlora (qlora = lora on a 4-bit base)
    lora_r: int = 8
    lora_alpha: float = 16
    lora_dropout: float = 0.05
    lora_target_modules: list[str] | str = field(default_factory=lambda: ["q_proj", "v_proj"])
    load_in_4bit: bool = False
    load_in_8bit: bool = False
    bnb_4bit_quant_type: str = "nf4"  # nf4 | fp4
    bnb_4bit_use_double_quant: bool = True
    sample_packing: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0
    logging_steps: int = 1


RECIPE_KEYS = tuple(f.name for f in fields(Recipe))
DATASET_KEYS = tuple(f.name for f in fields(DatasetSpec))
_REQUIRED = ("base_model", "datasets", "output_dir")
_CHOICES = {"adapter": ("lora", "qlora"), "bnb_4bit_quant_type": ("nf4", "fp4"), "bf16": ("auto", True, False)}


def _unknown(keys: Iterable[str], valid: Sequence[str], where: str) -> None:
    bad = [k for k in keys if k not in valid]
    if bad:
        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, valid, 1)) else repr(k)
                 for k in bad]
        raise RecipeError(f"Unknown {where} key(s): {', '.join(hints)}. Valid keys: {', '.join(valid)}.")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """YAML reads ``2e-4`` as a string and ``1`` as an int: give each key the type of its default."""
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
    if fmt not in ("auto", *FORMATS):
        raise RecipeError(f"datasets[{i}].format is {fmt!r}; valid formats: auto, {', '.join(FORMATS)}.")
    fmap = dict(entry.get("fields") or {})
    bad = [k for k in fmap if k not in FIELD_NAMES]
    if bad:
        raise RecipeError(f"datasets[{i}].fields maps unknown field(s) {bad}; valid fields: {', '.join(FIELD_NAMES)}.")
    return DatasetSpec(**{**entry, "fields": fmap})


def load_recipe(source: str | Path | Mapping[str, Any] | Recipe, **overrides: Any) -> Recipe:
    """Read a YAML file (or take a dict), validate every key, and apply ``overrides``.

    >>> load_recipe({"base_model": "tiny:llama", "datasets": [{"path": "data/units.jsonl"}],
    ...              "output_dir": "runs/x", "lr": 1e-3})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    coursekit.recipes.RecipeError: Unknown recipe key(s): 'lr'. Valid keys: base_model, datasets, output_dir, ...
    """
    import yaml

    if isinstance(source, Recipe):
        return replace(source, **overrides)
    raw = dict(source) if isinstance(source, Mapping) else yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    if not isinstance(raw, Mapping):
        raise RecipeError(f"A recipe must be a YAML mapping of keys; got {type(raw).__name__}.")
    raw = {**raw, **overrides}
    _unknown(raw, RECIPE_KEYS, "recipe")
    missing = [k for k in _REQUIRED if raw.get(k) in (None, "", [])]
    if missing:
        raise RecipeError(f"Recipe is missing required key(s): {', '.join(missing)}.")
    if not isinstance(raw["datasets"], list):
        raise RecipeError("Recipe key 'datasets' must be a list of {path, name, split, format, fields, system}.")
    defaults = {f.name: f.default for f in fields(Recipe) if f.default is not MISSING}
    values = {k: _coerce(k, v, defaults.get(k)) for k, v in raw.items()}
    values["datasets"] = [_dataset_spec(d, i) for i, d in enumerate(raw["datasets"])]
    for key, allowed in _CHOICES.items():
        if key in values and values[key] not in allowed:
            raise RecipeError(f"Recipe key {key!r} is {values[key]!r}; valid values: {', '.join(map(str, allowed))}.")
    _check_names(values)
    recipe = Recipe(**values)
    if recipe.adapter == "qlora" and not recipe.load_in_8bit:
        recipe.load_in_4bit = True
    if recipe.load_in_4bit and recipe.load_in_8bit:
        raise RecipeError("Choose one of load_in_4bit and load_in_8bit, not both.")
    return recipe


def _check_names(values: Mapping[str, Any]) -> None:
    """``optimizer`` and ``lr_scheduler`` must be names transformers knows."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    for key, enum in (("optimizer", OptimizerNames), ("lr_scheduler", SchedulerType)):
        valid = [e.value for e in enum]
        if key in values and values[key] not in valid:
            raise RecipeError(f"Recipe key {key!r} is {values[key]!r}; valid values: {', '.join(valid)}.")


def _local_file(path: str) -> Path | None:
    from coursekit.data import DATA_DIR

    for base in (Path.cwd(), DATA_DIR.parent):
        candidate = (base / path).resolve()
        if candidate.is_file():
            return candidate
    return None


_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


def load_recipe_dataset(spec: DatasetSpec) -> Any:
    """Load one dataset entry (local file or Hub) and check that its field mapping names real columns."""
    from datasets import load_dataset

    local = _local_file(spec.path)
    if local is not None:
        ds = load_dataset(_BUILDERS.get(local.suffix, "json"), data_files=str(local), split=spec.split)
    elif Path(spec.path).suffix in _BUILDERS:
        raise RecipeError(f"Dataset file {spec.path!r} not found (looked in {Path.cwd()} and the repository).")
    else:
        from coursekit.hub import load_hub_dataset

        ds = load_hub_dataset(spec.path, spec.name, split=spec.split)  # an unreachable Hub: a clear AssetError
    missing = {k: v for k, v in spec.fields.items() if v not in ds.column_names}
    if missing:
        raise RecipeError(f"Dataset {spec.path!r}: the field mapping {missing} names column(s) it lacks. "
                          f"Its columns: {', '.join(ds.column_names)}.")
    return ds


def recipe_rows(recipe: Recipe) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, held_out)`` message rows of every dataset in the recipe (``held_out_split`` on ``val_set_size``)."""
    rows = [r for s in recipe.datasets for r in convert_rows(load_recipe_dataset(s), s.format, s.fields, s.system)]
    return held_out_split(rows, recipe.val_set_size, recipe.seed) if recipe.val_set_size else (rows, [])


def recipe_dataset(recipe: Recipe, tokenizer: Any) -> tuple[Any, Any]:
    """``(train, held_out)`` tokenized with assistant-only labels (``held_out`` is None without ``val_set_size``)."""
    train_rows, test_rows = recipe_rows(recipe)
    train_ds = prepare_dataset(train_rows, tokenizer, template=recipe.chat_template)
    return train_ds, (prepare_dataset(test_rows, tokenizer, template=recipe.chat_template) if test_rows else None)


def resolve_model_name(spec: str) -> str:
    """``packaged:smollm2`` and ``tiny:llama`` → local folders; anything else unchanged."""
    from coursekit import assets

    if spec.startswith("tiny:"):
        return str(assets.tiny_model_path(spec.split(":", 1)[1]))
    return str(assets.resolve(spec))


def _bnb_problem(device: str) -> str | None:
    """Why bitsandbytes cannot quantize here, or None when it can."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    if device == "mps":
        return "bitsandbytes has no Apple MPS backend"
    return None


def quantization_config(recipe: Recipe, precision: Precision, device: str) -> Any:
    """``BitsAndBytesConfig`` for 4-bit (nf4 + double quant by default) or 8-bit, or None.

    Where bitsandbytes cannot run, one line says so and the model loads unquantized.
    """
    if not (recipe.load_in_4bit or recipe.load_in_8bit):
        return None
    problem = _bnb_problem(device)
    if problem:
        bits = 4 if recipe.load_in_4bit else 8
        print(f"{bits}-bit loading asked for, but {problem}: loading the model unquantized instead.")
        return None
    from coursekit.quant import bnb_config

    if recipe.load_in_8bit:
        return bnb_config(8)
    return bnb_config(4, precision.dtype, recipe.bnb_4bit_quant_type, recipe.bnb_4bit_use_double_quant)


def load_model(recipe: Recipe, precision: Precision, device: str | None = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for the recipe: full precision, or k-bit and ready for QLoRA."""
    from coursekit.assets import load_causal_lm

    device = device or get_device()
    name = resolve_model_name(recipe.base_model)
    check_access(name)
    quant = quantization_config(recipe, precision, device)
    kwargs = {"quantization_config": quant, "device_map": {"": device}} if quant is not None else {}
    model, tok = load_causal_lm(name, dtype=precision.dtype, **kwargs)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=recipe.gradient_checkpointing)
    elif device != "cpu":
        model = model.to(device)
    return model, tok


def run_recipe(source: str | Path | Mapping[str, Any] | Recipe, evaluate: bool = True, progress: bool = True,
               **overrides: Any) -> SFTRun:
    """Validate, load the model and data, train with LoRA, save the adapter and tokenizer.

    With ``val_set_size`` > 0 and ``evaluate``, the held-out prompts are scored
    after training (``score_answers``) into ``run.eval_metrics``.

    ``progress=False`` trains without the bar and the per-step log lines.
    The module docstring runs one end to end.
    """
    recipe = load_recipe(source, **overrides)
    device = get_device()
    precision = resolve_precision(recipe.bf16, recipe.fp16, device)
    model, tok = load_model(recipe, precision, device)
    dataset, held_out = recipe_dataset(recipe, tok)
    lora = lora_config(recipe.lora_r, recipe.lora_alpha, recipe.lora_dropout, recipe.lora_target_modules)
    run = train(model, tok, dataset, output_dir=recipe.output_dir, lora=lora, max_steps=recipe.max_steps,
                num_epochs=recipe.num_epochs, batch_size=recipe.micro_batch_size,
                grad_accum=recipe.gradient_accumulation_steps, learning_rate=recipe.learning_rate,
                lr_scheduler=recipe.lr_scheduler, warmup_steps=recipe.warmup_steps, optimizer=recipe.optimizer,
                weight_decay=recipe.weight_decay, max_length=recipe.sequence_len, packing=recipe.sample_packing,
                gradient_checkpointing=recipe.gradient_checkpointing, precision=precision, seed=recipe.seed,
                logging_steps=recipe.logging_steps, progress=progress)
    tok.save_pretrained(recipe.output_dir)
    if held_out is not None and evaluate:
        run.eval_metrics = score_answers(run.model, tok, held_out)
    return run


def describe(recipe: Recipe) -> str:
    """One line per setting that matters, for the CLI and the notebooks."""
    data = ", ".join(f"{d.path} [{d.split}]" for d in recipe.datasets)
    steps = f"max_steps {recipe.max_steps}" if recipe.max_steps > 0 else f"{recipe.num_epochs:g} epoch(s)"
    quant = "4-bit" if recipe.load_in_4bit else "8-bit" if recipe.load_in_8bit else "full precision"
    return (f"{recipe.base_model} ({quant}) on {data}\n"
            f"LoRA r={recipe.lora_r} alpha={recipe.lora_alpha:g} dropout={recipe.lora_dropout:g} "
            f"targets={recipe.lora_target_modules}\n"
            f"{steps}, batch {recipe.micro_batch_size}×{recipe.gradient_accumulation_steps}, "
            f"lr {recipe.learning_rate:g} ({recipe.lr_scheduler}), {recipe.optimizer}, seq {recipe.sequence_len}, "
            f"packing {recipe.sample_packing} → {recipe.output_dir}")


def main(argv: Sequence[str] | None = None, prog: str = "python -m coursekit.recipes") -> int:
    """The CLI: validate a recipe (``--check``) or run it; 2 on a bad recipe or dataset row, else 0."""
    parser = argparse.ArgumentParser(prog=prog, description="Run an SFT recipe (YAML).")
    parser.add_argument("recipe", help="path to a recipe, e.g. recipes/sft_smoke.yml")
    parser.add_argument("--check", action="store_true", help="validate the recipe and stop (no download)")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    parser.add_argument("--output-dir", help="override output_dir")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("max_steps", args.max_steps), ("output_dir", args.output_dir)) if v is not None}
    try:
        recipe = load_recipe(args.recipe, **overrides)
        print(describe(recipe))
        if args.check:
            print("recipe OK")
            return 0
        run = run_recipe(recipe)
    except (RecipeError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"trained {len(run.history)} logged steps in {run.seconds:.1f} s; final loss {run.final_loss:.4f}; "
          f"adapter saved to {run.output_dir}")
    if run.eval_metrics:
        print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in run.eval_metrics.items()))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
