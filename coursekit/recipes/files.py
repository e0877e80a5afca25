"""A recipe's files: the YAML itself and its local dataset files, read with errors that name the file, the line
and the fix (``coursekit.recipes`` validates what they hold)::

    >>> read_recipe_file("recipes/no_such_recipe.yml")     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    coursekit.recipes.files.RecipeError: Recipe file 'recipes/no_such_recipe.yml' not found (looked in ...): give ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coursekit.data import DATA_DIR
from coursekit.hub import load_hub_dataset
from coursekit.quiet import progress_bars

if TYPE_CHECKING:
    from coursekit.recipes import DatasetSpec

__all__ = ["BUILDERS", "RecipeError", "check_local_file", "dataset_file", "load_local_dataset", "load_recipe_dataset",
           "local_file", "read_recipe_file", "split_val_set"]

BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}  # suffix -> datasets builder


class RecipeError(ValueError):
    """A recipe is invalid; the message says which key (or file and line) and what is allowed."""


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"{what} '{path}' not found (looked in {Path.cwd()}): give the path of a .yml recipe, "
                          "e.g. recipes/sft_smoke.yml") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise RecipeError(f"{what} '{path}' line {line} is not UTF-8 text (byte 0x{err.object[err.start]:02x}): "
                          "save the file as UTF-8") from None
    except OSError as err:
        raise RecipeError(f"{what} '{path}' cannot be read ({err.strerror or err}): give the path of a readable "
                          ".yml file") from None


def read_recipe_file(path: str | Path) -> Mapping[str, Any]:
    """The mapping a recipe's YAML file holds; a missing, unreadable or malformed file names itself and the line."""
    import yaml

    path = Path(path)
    text = _read_text(path, "Recipe file")
    try:
        raw = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"Recipe file '{path}'{where} is not valid YAML ({err.problem or err.context}): fix the "
                          "syntax there (one `key: value` per line, list items indented under their key)") from None
    except yaml.YAMLError as err:
        raise RecipeError(f"Recipe file '{path}' is not valid YAML ({err}): fix its syntax") from None
    if not isinstance(raw, Mapping):
        held = "nothing" if raw is None else f"a {type(raw).__name__}"
        raise RecipeError(f"Recipe file '{path}' holds {held}: a recipe is a YAML mapping of keys "
                          "(base_model: ..., datasets: ..., output_dir: ...)")
    return raw


def local_file(path: str) -> Path | None:
    """A dataset path as a local file, from the working folder or the repository; None when it is neither."""
    for base in (Path.cwd(), DATA_DIR.parent):
        candidate = (base / path).resolve()
        if candidate.is_file():
            return candidate
    return None


def _check_line(path: Path, number: int, line: bytes) -> None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RecipeError(f"Dataset file '{path}' line {number} is not UTF-8 (byte 0x{line[err.start]:02x} at "
                          f"column {err.start + 1}): save the file as UTF-8") from None
    if path.suffix != ".jsonl" or not text.strip():
        return
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecipeError(f"Dataset file '{path}' line {number} is not valid JSON ({err.msg} at column {err.colno}): "
                          "each line of a .jsonl file is one JSON object") from None
    if not isinstance(row, dict):
        raise RecipeError(f"Dataset file '{path}' line {number} holds a JSON {type(row).__name__}: each line of a "
                          ".jsonl file is one JSON object ({{\"prompt\": ..., \"completion\": ...}})")


def check_local_file(path: Path, where: str) -> None:
    """Before anything loads: a local dataset file has rows, is UTF-8 and (``.jsonl``) one JSON object a line."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RecipeError(f"Dataset file '{path}' ({where}) cannot be read ({err.strerror or err}): check its "
                          "permissions") from None
    if not data.strip():
        raise RecipeError(f"Dataset file '{path}' ({where}) is {'blank' if data else 'empty'}: it holds no rows; "
                          f"add rows, or point {where}.path at another file")
    if path.suffix == ".parquet":
        return
    for number, line in enumerate(data.split(b"\n"), 1):
        _check_line(path, number, line)


def load_local_dataset(path: Path, split: str, where: str) -> Any:
    """``datasets.load_dataset`` on a checked local file; what it still rejects (a bad split) names the file."""
    from datasets import load_dataset

    check_local_file(path, where)
    try:
        with progress_bars(False):  # a checked local file: no "Generating train split" bar
            return load_dataset(BUILDERS.get(path.suffix, "json"), data_files=str(path), split=split)
    except Exception as err:  # noqa: BLE001 - datasets raises many kinds; the student needs the file and the fix
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise RecipeError(f"Dataset file '{path}' ({where}, split {split!r}) could not be loaded ({reason}): check "
                          "the split (e.g. train or train[:100]) and the file's format") from None


def dataset_file(path: str, where: str) -> Path | None:
    """The local file a dataset path names; None for a Hub id; a file path that is not there is an error."""
    local = local_file(path)
    if local is None and Path(path).suffix in BUILDERS:
        raise RecipeError(f"Dataset file {path!r} ({where}) not found (looked in {Path.cwd()} and the repository): "
                          "fix the path, or run `python -m coursekit.make_data` for the course's data/*.jsonl")
    return local


def load_recipe_dataset(spec: DatasetSpec) -> Any:
    """Load one dataset entry (local file or Hub) and check that its field mapping names real columns."""
    local = dataset_file(spec.path, "a datasets entry")
    if local is not None:
        ds = load_local_dataset(local, spec.split, f"dataset {spec.path!r}")
    else:
        ds = load_hub_dataset(spec.path, spec.name, split=spec.split)  # an unreachable Hub: a clear AssetError
    missing = {k: v for k, v in spec.fields.items() if v not in ds.column_names}
    if missing:
        raise RecipeError(f"Dataset {spec.path!r}: the field mapping {missing} names column(s) it lacks. "
                          f"Its columns: {', '.join(ds.column_names)}.")
    return ds


def split_val_set(rows: list[dict[str, Any]], val_set_size: int, seed: int, paths: list[str],
                  split: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(train, held_out)``: ``split`` of the rows, ``val_set_size`` prompts held out with the training's random seed,
    when ``val_set_size`` > 0 (``chat.held_out_split`` for messages, ``preference.held_out_pairs`` for pairs); a
    split that cannot be made names the datasets' files."""
    if not val_set_size:
        return rows, []
    try:
        return split(rows, val_set_size, seed)
    except ValueError as err:
        raise RecipeError(f"val_set_size={val_set_size} ({', '.join(paths)}): {err}") from None
