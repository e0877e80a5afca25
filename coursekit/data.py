"""Offline corpora and seeded datasets with known answers.

Three kinds of data, all available without a network:

* **Corpora that ship with Python**: the pydoc topic help (English technical
  prose) and the standard library's own sources (code).
* **Texts written for the course**: a Chinese story with its English
  translation, paragraph by paragraph, and multilingual strings that a
  byte-level tokenizer must round-trip (``MULTILINGUAL_SAMPLES``).
* **Generated datasets** whose answers are known, so that learning is
  measurable. Each generator is seeded; ``write_all()`` writes them to
  ``data/*.jsonl`` and regenerating gives byte-identical files::

    >>> rows = arithmetic_rows(2, seed=0)
    >>> [m["content"] for m in rows[0]["messages"][1:]]  # the answer is computed, so right
    ['What is 99 + 55?', '154']

The Hub datasets of the colab and full profiles are named once, in ``HUB_DATASETS``.
Load a written file with the Hub's own API::

    >>> ds = load_jsonl("arithmetic")   # datasets.load_dataset("json", ...)
"""

from __future__ import annotations

import json
import random
import sysconfig
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from coursekit.runtime import cache_dir

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SYSTEM_PROMPT = "You are a concise assistant. Answer with the result only."
# The Hub datasets the colab and full profiles use, by role (the stand-in Hub builds one of each)
HUB_DATASETS: dict[str, str] = {
    "alpaca": "tatsu-lab/alpaca",
    "prices": "ed-donner/items_prompts_lite",
    "stories": "jaydenccc/AI_Storyteller_Dataset",
    "medical": "OpenMed/Medical-Reasoning-SFT-GPT-OSS-120B",
    "fineweb": "HuggingFaceFW/fineweb-edu",
    "hellaswag": "Rowan/hellaswag",
    "preference": "trl-lib/ultrafeedback_binarized",
}


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


def arithmetic_rows(n: int, seed: int = 0, max_operand: int = 99) -> list[dict[str, Any]]:
    """Chat rows like "What is 23 + 58?" → "81". The answer is computed, so it is right.

    Operands run from 2 to ``max_operand`` (a product's second one to at most 12); a small ``max_operand``
    gives the easy questions a small model answers right some of the time, which GRPO needs.

    >>> [r["messages"][1]["content"] for r in arithmetic_rows(2, seed=0, max_operand=9)]
    ['What is 8 + 2?', 'What is 9 + 8?']
    """
    if max_operand < 2:
        raise ValueError(f"max_operand={max_operand}: operands start at 2; pass max_operand >= 2")
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        op = rng.choice(sorted(_OPS))
        a, b = rng.randint(2, max_operand), rng.randint(2, max_operand if op != "*" else min(12, max_operand))
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
    "hellaswag_mc": lambda: multiple_choice_rows(64),
}


# ---------------------------------------------------------------- files
def to_jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    """Stable bytes: one JSON object per line, key order kept, UTF-8, ``\\n`` endings."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def write_all(data_dir: Path | str = DATA_DIR,
              datasets: dict[str, Callable[[], list[dict[str, Any]]]] | None = None) -> list[Path]:
    """(Re)generate every dataset in ``datasets`` (default ``DATASETS``) as ``<data_dir>/<name>.jsonl``."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in (DATASETS if datasets is None else datasets).items():
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
        data_dir = cache_dir() / "data"
        if not (data_dir / f"{name}.jsonl").exists():
            write_all(data_dir)
    path = Path(data_dir) / f"{name}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Regenerate it with: python -m coursekit.make_data")
    return path


def load_jsonl(name: str, data_dir: Path | str = DATA_DIR) -> Any:
    """Load a shipped dataset through ``datasets.load_dataset("json", ...)`` (the Hub's API)."""
    from datasets import load_dataset

    return load_dataset("json", data_files=str(dataset_path(name, data_dir)), split="train")


# ---------------------------------------------------------------- texts written for the course
# A Chinese story and its paragraph-by-paragraph English translation (the project's own, so no licence
# questions): "how many tokens for the same content?" is then a fair question.
CHINESE_PARAGRAPHS: tuple[str, ...] = (
    "江南的小镇上有一条清澈的小河，河边住着一位会做茶的老人。每天清晨，太阳还没有升起，"
    "他就把炉子点着，烧一壶山泉水。镇上的人都说，他泡的茶有一种特别的香味，喝了以后心里很安静。",
    "老人有一个孙女，名叫小雨。小雨喜欢读书，也喜欢问问题。她常常问爷爷：“为什么同样的茶叶，"
    "别人泡出来的味道不一样？”爷爷笑着说：“水的温度、时间的长短，还有泡茶人的心情，都会改变茶的味道。”",
    "后来，小雨去城里的大学学习计算机。她第一次知道，电脑并不认识汉字，它只认识数字。"
    "每一个字都要先变成一串字节，再由程序把常见的字节组合成更大的单位。这个过程叫做分词，是训练语言模型的第一步。",
    "小雨发现，很多分词器是用英文资料训练的。英文单词常常只需要一个词元，而一个汉字却可能被切成两三个碎片。"
    "同样一句话，用中文写出来，模型要读的词元反而更多，计算的成本也更高。",
    "于是她决定用中文文章训练一个自己的分词器。她收集了小说、新闻和家乡的故事，让程序反复统计最常见的相邻字节，"
    "然后把它们合并。几千次合并之后，“我们”、“时候”、“学习”这样的常用词都变成了一个词元。",
    "放假回家的时候，小雨把这件事讲给爷爷听。爷爷想了想，说：“这和泡茶很像。先认识每一片叶子，"
    "再知道哪些叶子放在一起最好。”小雨笑了，她觉得爷爷说得很有道理。",
    "第二年春天，河边的柳树又绿了。小雨带着笔记本电脑回到小镇，在茶馆里给孩子们讲语言模型的故事。"
    "孩子们听得很认真，有人问：“电脑也会喝茶吗？”大家都笑了起来。",
    "小雨知道，好的工具要为使用它的人服务。一个只懂英文的分词器，对说中文的人并不公平。"
    "她希望将来的模型能够平等地对待每一种语言，让每个人都能用自己的母语和机器交流。",
)

ENGLISH_PARAGRAPHS: tuple[str, ...] = (
    "In a small town south of the river there is a clear stream, and by the stream lives an old man who "
    "makes tea. Every morning, before the sun is up, he lights the stove and boils a pot of spring water. "
    "People in the town say that his tea has a special fragrance, and that after drinking it the heart feels calm.",
    "The old man has a granddaughter called Xiaoyu. Xiaoyu loves to read and loves to ask questions. She often "
    "asks her grandfather: \"Why does the same tea taste different when other people make it?\" Grandfather "
    "smiles and says: \"The temperature of the water, the length of the time, and the mood of the person "
    "making it all change the taste of the tea.\"",
    "Later, Xiaoyu went to university in the city to study computing. For the first time she learned that a "
    "computer does not know Chinese characters; it only knows numbers. Every character must first become a "
    "string of bytes, and then a program groups common bytes into larger units. This process is called "
    "tokenization, and it is the first step in training a language model.",
    "Xiaoyu found that many tokenizers were trained on English material. An English word often needs only one "
    "token, while a Chinese character may be cut into two or three fragments. The same sentence written in "
    "Chinese gives the model more tokens to read, and the cost of computing is higher too.",
    "So she decided to train a tokenizer of her own on Chinese writing. She collected novels, news and stories "
    "from her home town, and let the program count the most common adjacent bytes again and again, then merge "
    "them. After a few thousand merges, common words such as \"we\", \"when\" and \"study\" had each become a "
    "single token.",
    "When she went home for the holidays, Xiaoyu told her grandfather about it. Grandfather thought for a "
    "moment and said: \"This is a lot like making tea. First you get to know every leaf, then you learn which "
    "leaves go best together.\" Xiaoyu laughed; she felt her grandfather was quite right.",
    "The next spring, the willows by the stream turned green again. Xiaoyu came back to the town with her "
    "laptop and told the children in the tea house the story of language models. The children listened "
    "carefully, and someone asked: \"Can computers drink tea too?\" Everyone burst out laughing.",
    "Xiaoyu knew that a good tool should serve the people who use it. A tokenizer that only understands "
    "English is not fair to people who speak Chinese. She hoped that future models would treat every "
    "language equally, so that everyone could talk to machines in their own mother tongue.",
)

# Strings a byte-level tokenizer must give back exactly: scripts, emoji sequences, accents, code.
MULTILINGUAL_SAMPLES: dict[str, str] = {
    "chinese": "分词是训练语言模型的第一步。",
    "japanese": "東京は日本の首都です。ひらがなとカタカナ、そして漢字。",
    "korean": "안녕하세요, 세계!",
    "arabic": "مرحبا بالعالم",
    "emoji_zwj": "family 👨‍👩‍👧‍👦, flag 🇯🇵, skin tone 👍🏽, rainbow flag 🏳️‍🌈",
    "accents_composed": "café naïve résumé Ångström",
    "accents_decomposed": "cafe\u0301 nai\u0308ve",  # e + combining acute: looks the same, different bytes
    "code_indentation": "def f(x):\n    if x:\n\t\treturn [x ** 2  for _ in range(3)]\n    return None\n",
    "whitespace": "  leading, trailing   \n\n\r\n\t end  ",
    "math_and_symbols": "∑ᵢ xᵢ² ≤ ∞ — “quotes” ‹›  ½ € ₹",
}


def split_paragraphs(paragraphs: Sequence[str], held_out: int = 2) -> tuple[str, str]:
    """Join all but the last ``held_out`` paragraphs (training text) and the rest (test text)."""
    if not 0 < held_out < len(paragraphs):
        raise ValueError(f"held_out must be between 1 and {len(paragraphs) - 1}, got {held_out}.")
    return "\n".join(paragraphs[:-held_out]), "\n".join(paragraphs[-held_out:])

