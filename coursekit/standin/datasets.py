"""The stand-in datasets: generated rows with the columns, configs and splits each real Hub dataset publishes.

``DATASETS`` says, per Hub id, the config and a row generator per split; ``build_dataset`` writes one
into the ``datasets`` cache, in the layout ``standin.layout`` names. The rows come from ``coursekit.data``'s
generators (known answers) and the pydoc corpus, every one seeded.

    >>> sorted(DATASETS["Rowan/hellaswag"].splits), DATASETS["HuggingFaceFW/fineweb-edu"].config
    (['test', 'train', 'validation'], 'sample-10BT')
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coursekit.data import arithmetic_rows, multiple_choice_rows, product_rows, pydoc_documents, unit_rows
from coursekit.standin.layout import STANDINS, datasets_folder, readme, revision

ALPACA_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further "
                     "context. Write a response that appropriately completes the request.\n\n"
                     "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n")
ALPACA_NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes "
                   "the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n")


def alpaca_rows(n: int, seed: int = 5) -> list[dict[str, str]]:
    """Alpaca-format rows (instruction, input, output, text) with computed answers; every other one has an input.

    >>> row = alpaca_rows(1)[0]
    >>> sorted(row), row["text"].endswith("### Response:\\n" + row["output"])
    (['input', 'instruction', 'output', 'text'], True)
    """
    chats = arithmetic_rows(n - n // 2, seed=seed) + unit_rows(n // 2, seed=seed + 1)
    random.Random(seed).shuffle(chats)
    rows = []
    for i, chat in enumerate(chats):
        question, answer = chat["messages"][1]["content"], chat["messages"][2]["content"]
        if i % 2 and question.startswith("What is "):
            instruction, extra = "Compute the value of the expression.", question[len("What is "):].rstrip("?")
        else:
            instruction, extra = question, ""
        prompt = (ALPACA_WITH_INPUT if extra else ALPACA_NO_INPUT).format(instruction=instruction, input=extra)
        rows.append({"instruction": instruction, "input": extra, "output": answer, "text": prompt + answer})
    return rows


_DRUGS = ["amoxicillin", "paracetamol", "ibuprofen", "cefazolin", "gentamicin"]


def medical_rows(n: int, seed: int = 6) -> list[dict[str, Any]]:
    """Single-turn chats with ``role``, ``content`` and ``reasoning_content`` (the assistant's worked steps).

    >>> [m["role"] for m in medical_rows(1)[0]["messages"]]
    ['user', 'assistant']
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            kg, per_kg, drug = rng.randint(40, 110), rng.choice([2, 5, 10, 15]), rng.choice(_DRUGS)
            question = (f"A patient weighing {kg} kg is prescribed {drug} at {per_kg} mg/kg. "
                        "What single dose should be given?")
            answer, steps = f"{kg * per_kg} mg.", f"The dose is weight-based: {per_kg} mg/kg × {kg} kg = {kg * per_kg} mg."
        elif kind == 1:
            f = rng.randint(970, 1050) / 10
            c = round((f - 32) * 5 / 9, 1)
            question = f"A patient's temperature is {f} °F. What is it in degrees Celsius?"
            answer, steps = f"{c} °C.", f"°C = (°F − 32) × 5/9 = ({f} − 32) × 5/9 = {c}."
        else:
            cm, kg = rng.randint(150, 195), rng.randint(45, 120)
            bmi = round(kg / (cm / 100) ** 2, 1)
            question = f"An adult is {cm} cm tall and weighs {kg} kg. What is their body-mass index?"
            answer, steps = f"A BMI of {bmi} kg/m².", f"BMI = weight / height² = {kg} / {cm / 100:.2f}² = {bmi}."
        rows.append({"messages": [{"role": "user", "content": question, "reasoning_content": None},
                                  {"role": "assistant", "content": answer, "reasoning_content": steps}]})
    return rows


def fineweb_rows(min_chars: int = 1200, seed: int = 7) -> list[dict[str, Any]]:
    """FineWeb-Edu-format documents (text, id, url, score, ...) cut from the pydoc corpus at paragraph breaks.

    >>> docs = fineweb_rows()
    >>> len(docs) > 200, docs[0]["language"], sorted(docs[0])[:3]
    (True, 'en', ['dump', 'file_path', 'id'])
    """
    rng = random.Random(seed)
    rows = []
    for i, text in enumerate(_pydoc_chunks(min_chars)):
        url = f"https://docs.python.org/3/reference/standin-{i}.html"
        score = round(rng.uniform(2.5, 4.8), 6)
        rows.append({"text": text, "id": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>",
                     "dump": "CC-MAIN-2024-10", "url": url,
                     "file_path": f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/standin/{i:05d}.warc.gz",
                     "language": "en", "language_score": round(rng.uniform(0.9, 1.0), 6),
                     "token_count": round(len(text.split()) * 4 / 3), "score": score, "int_score": round(score)})
    return rows


def _pydoc_chunks(min_chars: int) -> list[str]:
    """The pydoc corpus cut at paragraph breaks into texts of ``min_chars`` or more (a document's last: fewer)."""
    texts: list[str] = []
    for doc in pydoc_documents():
        chunk: list[str] = []
        for para in doc.split("\n\n"):
            chunk.append(para)
            if sum(map(len, chunk)) >= min_chars:
                texts.append("\n\n".join(chunk).strip())
                chunk = []
        if chunk and "".join(chunk).strip():
            texts.append("\n\n".join(chunk).strip())
    return texts


def hellaswag_rows(n: int, split: str, seed: int) -> list[dict[str, Any]]:
    """HellaSwag-format items (``label`` a string, empty in ``test``), from ``data.multiple_choice_rows``.

    >>> row = hellaswag_rows(1, "validation", seed=0)[0]
    >>> len(row["endings"]), row["label"] in "0123", row["ctx"] == (row["ctx_a"] + " " + row["ctx_b"]).strip()
    (4, True, True)
    """
    rows = []
    for item in multiple_choice_rows(n, seed=seed):
        ctx = item["ctx"]
        head, sep, tail = ctx.rpartition(". ")
        ctx_a, ctx_b = (head + ".", tail) if sep else (ctx, "")
        rows.append({"ind": item["ind"], "activity_label": "Everyday life", "ctx_a": ctx_a, "ctx_b": ctx_b,
                     "ctx": ctx, "endings": item["endings"], "source_id": f"standin~{split}~{item['ind']}",
                     "split": {"validation": "val"}.get(split, split),
                     "split_type": "indomain" if item["ind"] % 2 == 0 else "zeroshot",
                     "label": "" if split == "test" else str(item["label"])})
    return rows


def _price_rows(n: int, seed: int) -> list[dict[str, str]]:
    return [{"prompt": r["prompt"], "completion": r["completion"]} for r in product_rows(n, seed=seed)]


_HEROES = ["a young fox", "an old sailor", "a curious robot", "a shy dragon", "a brave baker"]
_PLACES = ["a misty forest", "a busy harbour", "a quiet library", "a mountain village", "a desert city"]
_GOALS = ["find a lost key", "win the spring race", "learn to sing", "fix a broken clock", "make a friend"]


def story_rows(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """Synopsis → story pairs; every story names the synopsis' hero, place and goal."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        hero, place, goal = rng.choice(_HEROES), rng.choice(_PLACES), rng.choice(_GOALS)
        synopsis = f"{hero.capitalize()} in {place} wants to {goal}."
        story = (f"Once upon a time, in {place}, there lived {hero}. Every day the hero dreamed "
                 f"of a single thing: to {goal}. After many tries and one good friend's help, "
                 f"the hero managed to {goal} at last, and everyone in {place} cheered.")
        rows.append({"synopsis": synopsis, "story": story})
    return rows


def ultrafeedback_rows(n: int, seed: int) -> list[dict[str, Any]]:
    """trl-lib/ultrafeedback_binarized's form: ``chosen`` and ``rejected`` each the user's turn and one reply (the
    implicit prompt), and a score for each (1-10, the chosen one higher), from seeded arithmetic pairs.

    >>> row = ultrafeedback_rows(1, seed=0)[0]
    >>> [m["role"] for m in row["chosen"]], row["score_chosen"] > row["score_rejected"]
    (['user', 'assistant'], True)
    """
    from coursekit.preference import arithmetic_preference_rows

    rng = random.Random(seed)
    rows = []
    for pair in arithmetic_preference_rows(n, seed=seed, rejected="mixed"):
        user = pair["prompt"][-1:]  # no system turn: UltraFeedback's prompts are the user's alone
        high = rng.choice([7.0, 8.0, 9.0, 10.0])
        rows.append({"chosen": user + pair["chosen"], "rejected": user + pair["rejected"],
                     "score_chosen": high, "score_rejected": high - rng.choice([1.0, 2.0, 3.0, 5.0])})
    return rows


def _story_rows(n: int) -> list[dict[str, str]]:
    return [{"synopsis": r["synopsis"], "short_story": r["story"]} for r in story_rows(n, seed=8)]


def _features(kind: str) -> Any:
    from datasets import Features, List, Value

    text = Value("string")
    if kind == "hellaswag":
        return Features({"ind": Value("int32"), "activity_label": text, "ctx_a": text, "ctx_b": text, "ctx": text,
                         "endings": List(text), "source_id": text, "split": text, "split_type": text,
                         "label": text})
    if kind == "fineweb":
        return Features({"text": text, "id": text, "dump": text, "url": text, "file_path": text, "language": text,
                         "language_score": Value("float64"), "token_count": Value("int64"),
                         "score": Value("float64"), "int_score": Value("int64")})
    if kind == "medical":
        return Features({"messages": List({"role": text, "content": text, "reasoning_content": text})})
    return None


@dataclass(frozen=True)
class DatasetSpec:
    """One stand-in dataset: its config name and, per split, a function making the rows."""

    config: str
    splits: dict[str, Callable[[], list[dict[str, Any]]]]
    features: str = ""  # a key of _features, for the columns whose types inference would get wrong


DATASETS: dict[str, DatasetSpec] = {
    "tatsu-lab/alpaca": DatasetSpec("default", {"train": lambda: alpaca_rows(300)}),
    "ed-donner/items_prompts_lite": DatasetSpec("default", {"train": lambda: _price_rows(400, 20),
                                                            "val": lambda: _price_rows(60, 21),
                                                            "test": lambda: _price_rows(60, 22)}),
    "jaydenccc/AI_Storyteller_Dataset": DatasetSpec("default", {"train": lambda: _story_rows(200)}),
    "OpenMed/Medical-Reasoning-SFT-GPT-OSS-120B": DatasetSpec("default", {"train": lambda: medical_rows(300)},
                                                              "medical"),
    "HuggingFaceFW/fineweb-edu": DatasetSpec("sample-10BT", {"train": fineweb_rows}, "fineweb"),
    "Rowan/hellaswag": DatasetSpec("default", {"train": lambda: hellaswag_rows(400, "train", 30),
                                               "test": lambda: hellaswag_rows(400, "test", 31),
                                               "validation": lambda: hellaswag_rows(10042, "validation", 32)},
                                   "hellaswag"),
    "trl-lib/ultrafeedback_binarized": DatasetSpec("default", {"train": lambda: ultrafeedback_rows(300, 40),
                                                               "test": lambda: ultrafeedback_rows(60, 41)}),
}


def build_dataset(cache: Path, repo_id: str) -> dict[str, Any]:
    """Write ``repo_id``'s stand-in into the ``datasets`` cache ``cache`` (an Arrow file a split); say what it holds."""
    from datasets import Dataset, DatasetInfo, SplitDict, SplitInfo
    from datasets.arrow_writer import ArrowWriter
    from datasets.naming import filenames_for_dataset_split

    spec = DATASETS[repo_id]
    name = repo_id.split("/")[-1]
    folder = cache / datasets_folder(repo_id) / spec.config / "0.0.0" / revision(repo_id)[:16]
    folder.mkdir(parents=True)
    splits = SplitDict(dataset_name=name)
    features = _features(spec.features)
    counts = {}
    for split, make in spec.splits.items():
        ds = Dataset.from_list(make(), features=features)
        features = ds.features
        path = filenames_for_dataset_split(str(folder), name, split, filetype_suffix="arrow")[0]
        with ArrowWriter(path=path, features=ds.features) as writer:
            writer.write_table(ds.data.table)
            num_examples, num_bytes = writer.finalize()
        splits.add(SplitInfo(name=split, num_bytes=num_bytes, num_examples=num_examples, dataset_name=name))
        counts[split] = num_examples
    info = DatasetInfo(description=readme(repo_id, STANDINS[repo_id]), features=features, splits=splits,
                       builder_name="parquet", dataset_name=name, config_name=spec.config, version="0.0.0")
    info.write_to_directory(str(folder))
    return {"config": spec.config, "splits": counts, "columns": list(features), "path": str(folder)}
