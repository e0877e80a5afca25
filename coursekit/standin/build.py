"""Build the stand-in Hub: every model and dataset the course names, written once under a root folder.

``build(root)`` writes ``hub/``, ``datasets/`` and ``tiktoken/`` (``standin.layout``) and returns a summary
of what they hold; ``describe`` prints it one line per id. The weights are random, so a rehearsal checks
that everything loads, trains and is scored, not what the numbers are.

    >>> summary = {"models": {"m/x": {"class": "LlamaForCausalLM", "dtype": "torch.bfloat16", "parameters": 1234,
    ...                               "tokenizer": "stand-in"}},
    ...            "datasets": {"d/y": {"config": "default", "splits": {"train": 300}, "columns": ["text"]}}}
    >>> print(describe(summary))
    model   m/x: LlamaForCausalLM (bfloat16, 1,234 parameters) · tokenizer: stand-in
    dataset d/y [default]: train 300 · columns text
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from coursekit.data import HUB_DATASETS
from coursekit.standin.datasets import DATASETS, build_dataset
from coursekit.standin.layout import STANDIN_VERSION, env, write_json
from coursekit.standin.models import MODELS, build_model
from coursekit.standin.tokenizers import build_tiktoken_cache

STAMP = "standin.json"


def build(root: str | Path, force: bool = False) -> dict[str, Any]:
    """Write the stand-in Hub under ``root`` (``hub/``, ``datasets/``) and return what it holds.

    Seeded and idempotent (the same bytes every time): a second call finds ``root/standin.json``
    and returns at once (``force`` rebuilds). ``root/tiktoken`` holds tiktoken's cache for GPT-2.
    Everything is built in a temporary folder inside ``root`` and moved into place at the end, so a
    crash never leaves half a cache. About 20 s on 2 cores, most of it imports.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    built = None if force else _already_built(root)
    if built is not None:
        return built
    model_ids, dataset_ids = _course_hub_ids()
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        models = {rid: build_model(tmp / "hub", rid) for rid in model_ids}
        datasets = {rid: build_dataset(tmp / "datasets", rid) for rid in dataset_ids}
        tiktoken = {"gpt2": build_tiktoken_cache(tmp / "tiktoken")}
        for part in ("hub", "datasets", "tiktoken"):
            shutil.rmtree(root / part, ignore_errors=True)
            (tmp / part).rename(root / part)
        for entry in (*models.values(), *datasets.values()):
            entry["path"] = entry["path"].replace(str(tmp), str(root), 1)
        (root / "home").mkdir(exist_ok=True)
        summary = {"version": STANDIN_VERSION, "root": str(root), "models": models, "datasets": datasets,
                   "tiktoken": tiktoken, "env": env(root)}
        write_json(root / STAMP, summary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _already_built(root: Path) -> dict[str, Any] | None:
    """The summary of a complete stand-in of this version under ``root``, else None."""
    stamp = root / STAMP
    if not stamp.is_file():
        return None
    summary = json.loads(stamp.read_text(encoding="utf-8"))
    if summary.get("version") == STANDIN_VERSION and all((root / p).is_dir() for p in ("hub", "datasets")):
        return summary
    return None


def _course_hub_ids() -> tuple[list[str], list[str]]:
    """Every model and dataset id the course names, failing on any that has no stand-in."""
    from coursekit.assets import HUB_MODELS  # assets imports torch: a stand-in already built returns without it

    model_ids = sorted({rid for per_profile in HUB_MODELS.values() for rid in per_profile.values()})
    dataset_ids = sorted(set(HUB_DATASETS.values()))
    missing = [rid for rid in model_ids if rid not in MODELS] + [rid for rid in dataset_ids if rid not in DATASETS]
    if missing:
        raise ValueError(f"No stand-in for {', '.join(missing)}: add one to coursekit.standin.models.MODELS / "
                         "coursekit.standin.datasets.DATASETS.")
    return model_ids, dataset_ids


def describe(summary: dict[str, Any]) -> str:
    """One line per model and dataset of a ``build()`` summary."""
    lines = []
    for rid, m in summary["models"].items():
        lines.append(f"model   {rid}: {m['class']} ({m['dtype'].replace('torch.', '')}, {m['parameters']:,} "
                     f"parameters) · tokenizer: {m['tokenizer']}")
    for rid, d in summary["datasets"].items():
        splits = ", ".join(f"{s} {n:,}" for s, n in d["splits"].items())
        lines.append(f"dataset {rid} [{d['config']}]: {splits} · columns {', '.join(d['columns'])}")
    lines += [f"tiktoken {name}: {source}" for name, source in summary.get("tiktoken", {}).items()]
    return "\n".join(lines)
