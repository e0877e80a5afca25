"""Offline corpora and seeded datasets with known answers.

Two kinds of data, both available without a network:

* **Corpora that ship with Python**: the pydoc topic help (English technical
  prose) and the standard library's own sources (code).
* **Generated datasets** whose answers are known, so that learning is
  measurable. Each generator is seeded; ``write_all()`` writes them to
  ``data/*.jsonl`` and regenerating gives byte-identical files::

    >>> rows = arithmetic_rows(2, seed=0)
    >>> [m["content"] for m in rows[0]["messages"][1:]]  # the answer is computed, so right
    ['What is 99 + 55?', '154']

Load a written file with the Hub's own API::

    >>> ds = load_jsonl("arithmetic")   # datasets.load_dataset("json", ...)
"""

from __future__ import annotations

import json
import random
import sysconfig
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SYSTEM_PROMPT = "You are a concise assistant. Answer with the result only."


# ---------------------------------------------------------------- corpora
def pydoc_documents() -> list[str]:
    """The 79-odd help topics shipped in ``pydoc_data`` (~465 KB of English prose)."""
    from pydoc_data.topics import topics

    return [topics[key] for key in sorted(topics)]


def pydoc_text() -> str:
    """All pydoc topics joined into one string."""
    return "\n\n".join(pydoc_documents())


def stdlib_sources(max_files: int = 50, max_bytes: int = 2_000_000) -> list[str]:
    """Source files of the standard library (code corpus), in sorted path order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if total + len(text) > max_bytes or len(out) >= max_files:
            break
        out.append(text)
        total += len(text)
    return out


# ---------------------------------------------------------------- generators
def _chat(user: str, answer: str) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


_OPS: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
}


def arithmetic_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Chat rows like "What is 23 + 58?" → "81". The answer is computed, so it is right."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        op = rng.choice(sorted(_OPS))
        a, b = rng.randint(2, 99), rng.randint(2, 99 if op != "*" else 12)
        rows.append(_chat(f"What is {a} {op} {b}?", str(_OPS[op](a, b))))
    return rows


_UNITS = [  # (from, to, factor)
    ("kilometers", "meters", 1000),
    ("meters", "centimeters", 100),
    ("kilograms", "grams", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("liters", "milliliters", 1000),
]


def unit_rows(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """Chat rows like "Convert 7 hours to minutes." → "420"."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        src, dst, factor = rng.choice(_UNITS)
        x = rng.randint(1, 20)
        rows.append(_chat(f"Convert {x} {src} to {dst}.", str(x * factor)))
    return rows


PRODUCT_CATEGORIES = {"toaster": 20, "kettle": 15, "blender": 40, "headphones": 50, "lamp": 10}
PRODUCT_FEATURES = {"stainless steel": 10, "wireless": 25, "smart": 30, "compact": 5, "premium": 40}


def product_price(category: str, features: Iterable[str], warranty_years: int) -> int:
    """The known pricing rule: category base + feature extras + 8 per warranty year."""
    return PRODUCT_CATEGORIES[category] + sum(PRODUCT_FEATURES[f] for f in features) + 8 * warranty_years


def product_rows(n: int, seed: int = 2) -> list[dict[str, Any]]:
    """Product descriptions with a price set by ``product_price`` (the QLoRA price task)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        category = rng.choice(sorted(PRODUCT_CATEGORIES))
        features = sorted(rng.sample(sorted(PRODUCT_FEATURES), rng.randint(0, 2)))
        years = rng.randint(0, 3)
        warranty = f"a {years}-year warranty" if years else "no warranty"
        desc = f"A {' '.join(features + [category])} with {warranty}."
        price = product_price(category, features, years)
        rows.append({"description": desc, "category": category, "features": features,
                     "warranty_years": years, "price": price,
                     "prompt": f"How much does this cost to the nearest dollar?\n{desc}\nPrice is $",
                     "completion": f"{price}.00"})
    return rows


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


_MC_TEMPLATES = [
    ("{name} fills a glass with water. {name}", "drinks the water slowly.",
     ["paints the ceiling blue.", "sings to the refrigerator.", "folds the water into a square."]),
    ("{name} puts bread in the toaster. After a minute, {name}", "takes out the warm toast.",
     ["plants the toaster in the garden.", "reads the bread aloud.", "swims across the kitchen."]),
    ("{name} ties the laces of the running shoes. Then {name}", "goes out for a run.",
     ["eats the shoes for lunch.", "mails the laces to the moon.", "irons the road."]),
    ("{name} opens an umbrella because {name}", "sees that it is raining.",
     ["wants to cook pasta.", "is brushing the cat's teeth.", "hears the piano sneeze."]),
]
_NAMES = ["Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goro", "Hana"]


def multiple_choice_rows(n: int, seed: int = 4) -> list[dict[str, Any]]:
    """HellaSwag-format items: ``ctx``, four ``endings`` and the ``label`` of the right one."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        ctx, good, bad = _MC_TEMPLATES[i % len(_MC_TEMPLATES)]
        name = rng.choice(_NAMES)
        endings = [good, *bad]
        rng.shuffle(endings)
        rows.append({"ind": i, "ctx": ctx.format(name=name), "endings": endings,
                     "label": endings.index(good)})
    return rows


DATASETS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "arithmetic": lambda: arithmetic_rows(400),
    "units": lambda: unit_rows(200),
    "products": lambda: product_rows(300),
    "stories": lambda: story_rows(120),
    "hellaswag_mc": lambda: multiple_choice_rows(64),
}


# ---------------------------------------------------------------- files
def to_jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    """Stable bytes: one JSON object per line, key order kept, UTF-8, ``\\n`` endings."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def write_all(data_dir: Path | str = DATA_DIR) -> list[Path]:
    """(Re)generate every dataset in ``DATASETS`` as ``<data_dir>/<name>.jsonl``."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in DATASETS.items():
        path = data_dir / f"{name}.jsonl"
        path.write_bytes(to_jsonl(make()))
        paths.append(path)
    return paths


def dataset_path(name: str, data_dir: Path | str = DATA_DIR) -> Path:
    """Path of a shipped dataset, with a clear error naming the valid ones.

    A pip-installed coursekit (on Colab, say) has no ``data/`` folder beside it:
    the files are then regenerated, byte-identical, into the cache once.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Valid names: {', '.join(DATASETS)}.")
    if Path(data_dir) == DATA_DIR and not DATA_DIR.is_dir():
        from coursekit.assets import cache_dir

        data_dir = cache_dir() / "data"
        if not (data_dir / f"{name}.jsonl").exists():
            write_all(data_dir)
    path = Path(data_dir) / f"{name}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Regenerate it with: python -m coursekit.data")
    return path


def load_jsonl(name: str, data_dir: Path | str = DATA_DIR) -> Any:
    """Load a shipped dataset through ``datasets.load_dataset("json", ...)`` (the Hub's API)."""
    from datasets import load_dataset

    return load_dataset("json", data_files=str(dataset_path(name, data_dir)), split="train")


def main() -> None:
    for path in write_all():
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
