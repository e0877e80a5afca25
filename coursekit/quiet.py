"""A quiet, truthful run: silence the library noise checked to be harmless here, and nothing else.

Each message below was traced to the line that writes it, and each filter matches
that one message (its text, category and module, or its logger), so any other
warning still gets through. ``install()`` runs on ``import coursekit`` (a few
filters, nothing imported); set ``COURSEKIT_VERBOSE=1`` to keep every message.

Silenced, and why each is harmless:

* **FutureWarning "`is_gradient_checkpointing` is deprecated ... Use
  `is_activation_checkpointing` instead"** (``transformers.modeling_utils``).
  peft's ``PeftModel.__init__`` reads ``getattr(model, "is_gradient_checkpointing", True)``
  and TRL reads it around generation; the alias returns exactly
  ``is_activation_checkpointing``. The notice is for peft's and TRL's authors:
  coursekit never reads the old name. (``install``: a warnings filter.)
* **bitsandbytes "Paged optimizers are not supported on CPU. Falling back to non-paged optimizer
  behavior."** (UserWarning, ``bitsandbytes.optim.optimizer``, at a paged optimizer's first step on a CPU).
  The update is the same; only where its state lives differs. ``quant.optimizer_for``, which a recipe's
  optimizer goes through, says so in one line of its own before training. (``install``: a warnings filter.)
* **bitsandbytes "Failed to load CPU gemm_4bit_forward from kernels-community ...
  `pip install kernels`"** (logger ``bitsandbytes.backends.cpu.ops``, at import, on
  CPUs with AVX512-BF16 only). The optional ``kernels`` package would download a
  faster 4-bit kernel from the Hub (not reachable offline anyway); without it
  bitsandbytes registers its own compiled CPU kernel for the same op, so only speed
  differs. (``install``: a logging filter on that logger, for that message only.)
* **TensorFlow's start-up lines on a machine with no NVIDIA GPU** (written by its
  C++ code straight to file descriptor 2, so neither ``warnings`` nor ``logging``
  reaches them, and ``TF_CPP_MIN_LOG_LEVEL`` does not hide the first two):
  ``All log messages before absl::InitializeLog() ...``, ``cudart_stub.cc] Could not
  find cuda drivers on your machine, GPU will not be used.``, ``cpu_feature_guard.cc]
  This TensorFlow binary is optimized ...`` (+ its ``To enable the following
  instructions`` line) and ``cuda_platform.cc] failed call to cuInit``. TinyGPT is a
  2,453-parameter model that Keras runs on the CPU; with no GPU, "no CUDA driver"
  is the truth, and the CPU-instructions note is about speed only. Nothing hides a
  GPU (``CUDA_VISIBLE_DEVICES`` is left alone); where a GPU device node exists (``/dev/nvidia*``, WSL's
  ``/dev/dxg``) these lines are kept, since there they could mean a broken set-up. (``tensorflow_startup``,
  around ``import keras`` in ``coursekit.tinygpt``: every other line is passed through.)
* **transformers' "RobertaModel LOAD REPORT" when BERTScore loads roberta-large**
  (logger ``transformers.modeling_utils``). bert-score loads the bare encoder
  (``AutoModel``) from a masked-LM checkpoint, so the checkpoint's ``lm_head.*``
  tensors are UNEXPECTED and the ``pooler.*`` ones MISSING (newly initialised).
  BERTScore reads the hidden states of one encoder layer and never runs either.
  Only a report whose every row is one of those two is dropped; any other key
  (a missing encoder weight, a size mismatch) keeps the whole report.
  (``install``: a logging filter on that logger, for that report only.)
* **peft "Could not find a config file in <Hub id> - will assume that the vocabulary was not modified."**
  (UserWarning, ``peft.utils.save_and_load``, saving a Hub model's adapter offline, as the rehearsal does).
  Offline, peft cannot read the base's config to see whether the vocabulary was resized, and guesses not.
  ``peft_vocabulary_answered`` (``sft``'s save) reads the cached config.json: only a proven guess is dropped.
* **Progress bars inside loops**: ``progress_bars(False)`` turns off the bars of
  transformers ("Loading weights"), huggingface_hub and datasets ("Truncating train
  dataset", ...) for one block, then restores each library's previous setting;
  ``memory.measure_footprints`` uses it for its five loads (one outer bar instead).

Not silenced: **torch's UserWarning "bitsandbytes::gemv_4bit: an autograd kernel was
not registered ... This may lead to silently incorrect behavior"**. On a CPU with
AVX512-BF16, an eval-mode forward of a ``Linear4bit`` (e.g. generating before
training) repacks its weight for bitsandbytes' fused CPU kernel; training later
sends the activations, which then require grad, through that kernel, which has no
backward: the gradient through the frozen 4-bit weight comes back as zeros.
``quant.keep_4bit_trainable`` (which ``sft.finetune`` calls) removes that cause; the
warning stays on, since wherever it still shows, the gradients are wrong.

>>> import warnings
>>> with warnings.catch_warnings(record=True) as seen:
...     warnings.simplefilter("always")
...     install()
...     warnings.warn_explicit("`is_gradient_checkpointing` is deprecated and will be removed in v6.",
...                            FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
...     warnings.warn("an unrelated warning", FutureWarning)
>>> [str(w.message) for w in seen]
['an unrelated warning']
>>> is_tensorflow_startup_noise("I0000 00:00:1796167384.971389    6830 cudart_stub.cc:31] "
...                             "Could not find cuda drivers on your machine, GPU will not be used.", gpu=False)
True
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

__all__ = ["GEMV_4BIT_WARNING", "KERNELS_LOGGER", "KERNELS_MESSAGE", "LOAD_REPORT_LOGGER", "PEFT_VOCAB_GUESS",
           "TF_NO_GPU_LINES", "TF_STARTUP_LINES", "VERBOSE_VAR", "WARNINGS", "gpu_device_present", "install",
           "is_tensorflow_startup_noise", "is_unused_head_report", "peft_vocabulary_answered", "progress_bars",
           "tensorflow_startup", "verbose"]

VERBOSE_VAR = "COURSEKIT_VERBOSE"

# (message regex, category, module regex) for warnings.filterwarnings: the message's start, as re.match reads it
WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning, r"transformers\.modeling_utils$"),
    (r"Paged optimizers are not supported on CPU", UserWarning, r"bitsandbytes\.optim\.optimizer$"),
)

KERNELS_LOGGER = "bitsandbytes.backends.cpu.ops"
KERNELS_MESSAGE = "Failed to load CPU gemm_4bit_forward from kernels-community"  # the record's format string starts so

# What torch says when the gradient through bitsandbytes' 4-bit CPU kernel is dropped: deliberately NOT silenced.
GEMV_4BIT_WARNING = "bitsandbytes::gemv_4bit: an autograd kernel was not registered"

_ABSL = r"[IWE]\d{4} [\d:.]+\s+\d+ (?:[\w.-]+/)*"  # absl's prefix: severity, MMDD, time, thread id, [path/]
TF_STARTUP_LINES: tuple[str, ...] = (  # harmless everywhere: TensorFlow's own start-up notes
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    _ABSL + r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized to use available CPU instructions "
            r"in performance-critical operations\.",
    r"To enable the following instructions: [\w ,.]+, in other operations, rebuild TensorFlow with the "
    r"appropriate compiler flags\.",
    _ABSL + r"port\.cc:\d+\] oneDNN custom operations are on\. You may see slightly different numerical results "
            r"due to floating-point round-off errors from different computation orders\. To turn them off, set the "
            r"environment variable `TF_ENABLE_ONEDNN_OPTS=0`\.",
)
TF_NO_GPU_LINES: tuple[str, ...] = (  # harmless only where there is no GPU: then they are simply true
    _ABSL + r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine, GPU will not be used\.",
    _ABSL + r"cuda_platform\.cc:\d+\] failed call to cuInit: .*",
)


def verbose() -> bool:
    """True when ``$COURSEKIT_VERBOSE`` asks to keep every message (then nothing here silences anything).

    >>> os.environ[VERBOSE_VAR] = "1"; verbose()
    True
    >>> del os.environ[VERBOSE_VAR]; verbose()
    False
    """
    return os.environ.get(VERBOSE_VAR, "").strip().lower() in ("1", "true", "yes", "on")


class _DropKernelsHint(logging.Filter):
    """Drops bitsandbytes' "pip install kernels" record and nothing else from its logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(KERNELS_MESSAGE)


_KERNELS_FILTER = _DropKernelsHint()

LOAD_REPORT_LOGGER = "transformers.modeling_utils"
# one row of the report's table: "<key> | <status> |"; the unused masked-LM head and the unused pooler
_UNUSED_HEAD_ROW = re.compile(r"(lm_head\.\S+\s*\|\s*UNEXPECTED|pooler\.\S+\s*\|\s*MISSING)\s*\|")


def is_unused_head_report(message: str) -> bool:
    """True for a load report whose rows are all an encoder's unused masked-LM head or pooler.

    >>> is_unused_head_report("RobertaModel LOAD REPORT from: roberta-large\\nKey | Status | \\n---+---+-\\n"
    ...                       "lm_head.bias | UNEXPECTED | \\npooler.dense.bias | MISSING | \\n\\nNotes:\\n- ...")
    True
    >>> is_unused_head_report("RobertaModel LOAD REPORT from: x\\nKey | Status | \\n"
    ...                       "lm_head.bias | UNEXPECTED | \\nencoder.layer.0.output.dense.bias | MISSING | \\n")
    False
    """
    if "LOAD REPORT" not in message:
        return False
    rows = [line for line in message.split("\n\n")[0].splitlines()[1:] if "|" in line and not line.startswith(("Key", "-"))]
    return bool(rows) and all(_UNUSED_HEAD_ROW.match(row) for row in rows)


class _DropUnusedHeadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not is_unused_head_report(str(record.msg))


_LOAD_REPORT_FILTER = _DropUnusedHeadReport()


def install() -> None:
    """Install the warnings and logging filters listed above (idempotent; nothing is imported).

    >>> install(); install()
    >>> sum(f is _KERNELS_FILTER for f in logging.getLogger(KERNELS_LOGGER).filters)
    1
    """
    if verbose():
        return
    for message, category, module in WARNINGS:
        # filterwarnings drops an identical filter before inserting it, so calling this twice adds nothing
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    kernels_logger = logging.getLogger(KERNELS_LOGGER)  # the same object bitsandbytes gets, imported or not
    if _KERNELS_FILTER not in kernels_logger.filters:
        kernels_logger.addFilter(_KERNELS_FILTER)
    report_logger = logging.getLogger(LOAD_REPORT_LOGGER)  # transformers' loggers are plain logging loggers
    if _LOAD_REPORT_FILTER not in report_logger.filters:
        report_logger.addFilter(_LOAD_REPORT_FILTER)


PEFT_VOCAB_GUESS = r"Could not find a config file in .* - will assume that the vocabulary was not modified"


@contextlib.contextmanager
def peft_vocabulary_answered(model: object) -> Iterator[None]:
    """Save a peft adapter inside this block: peft's offline guess that the vocabulary was not resized is dropped
    when the base's cached ``config.json`` shows the guess is right (same ``vocab_size``), and kept otherwise."""
    from huggingface_hub import try_to_load_from_cache

    base = getattr(getattr(model, "active_peft_config", None), "base_model_name_or_path", None)
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    try:
        cached = try_to_load_from_cache(base, "config.json") if base and vocab else None
    except ValueError:  # a folder's path is no Hub id; peft reads that folder's config.json itself, no warning
        cached = None
    same = isinstance(cached, str) and json.loads(Path(cached).read_text()).get("vocab_size") == vocab
    with warnings.catch_warnings():
        if same and not verbose():
            warnings.filterwarnings("ignore", PEFT_VOCAB_GUESS, UserWarning, r"peft\.utils\.save_and_load$")
        yield


# ================================================================ TensorFlow's native start-up lines
def gpu_device_present() -> bool:
    """True if this machine has an NVIDIA device node (``/dev/nvidia*``, or WSL's ``/dev/dxg``): a cheap
    check that imports nothing and never hides a GPU; it only decides whether "no CUDA" lines are news."""
    dev = Path("/dev")
    try:
        return (dev / "dxg").exists() or any(dev.glob("nvidia*"))
    except OSError:
        return True  # cannot tell: assume a GPU, and keep the lines


def is_tensorflow_startup_noise(line: str, gpu: bool | None = None) -> bool:
    """Whether ``line`` is one of TensorFlow's harmless start-up lines (the "no CUDA" ones only when ``gpu`` is
    False; ``None`` asks ``gpu_device_present``).

    >>> is_tensorflow_startup_noise("E0000 00:00:1.5  42 cuda_platform.cc:52] failed call to cuInit: x", gpu=True)
    False
    >>> is_tensorflow_startup_noise("E0000 00:00:1.5  42 some_op.cc:7] a real error", gpu=False)
    False
    """
    patterns = TF_STARTUP_LINES + (TF_NO_GPU_LINES if not (gpu_device_present() if gpu is None else gpu) else ())
    line = line.rstrip("\r\n")
    return any(re.fullmatch(p, line) for p in patterns)


@contextlib.contextmanager
def tensorflow_startup(gpu: bool | None = None) -> Iterator[None]:
    """Import TensorFlow (or Keras on it) inside this block: what its C++ code writes to file descriptor 2 is
    held in a temporary file, and on leaving every line but the harmless start-up ones is written back.

    Before leaving, if TensorFlow was imported, it lists its GPUs once, so the CUDA platform's one-time start-up
    (the ``cuInit`` line) happens inside the block rather than at the first model build.

    >>> first = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n"
    >>> with tensorflow_startup(gpu=False):    # TensorFlow's first line: dropped
    ...     written = os.write(2, first)
    >>> written == len(first)    # the write reached the held file, and nothing of it came back
    True
    """
    if verbose():
        yield
        return
    import tempfile

    gpu = gpu_device_present() if gpu is None else gpu
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
            if "tensorflow" in sys.modules:
                sys.modules["tensorflow"].config.list_physical_devices("GPU")
        finally:
            for stream in (sys.stderr, sys.__stderr__):  # Python's own writes to fd 2 land in order, too
                with contextlib.suppress(Exception):
                    stream.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines(keepends=True) if not is_tensorflow_startup_noise(line, gpu)]
            if kept:
                os.write(2, "".join(kept).encode("utf-8"))


# ================================================================ progress bars
@contextlib.contextmanager
def progress_bars(enabled: bool = False) -> Iterator[None]:
    """Turn the progress bars of transformers, huggingface_hub and datasets off (or on) inside the block, then
    give each library back its own previous setting. An environment variable that forces a library's bars
    (``HF_HUB_DISABLE_PROGRESS_BARS``, ``HF_DATASETS_DISABLE_PROGRESS_BARS``) is obeyed: that library is left alone.

    >>> from transformers.utils import logging as hf_logging
    >>> before = hf_logging.is_progress_bar_enabled()
    >>> with progress_bars(False):
    ...     hf_logging.is_progress_bar_enabled()     # "Loading weights" shows no bar here
    False
    >>> hf_logging.is_progress_bar_enabled() == before
    True
    """
    if verbose():
        yield
        return
    restore: list = []
    try:
        with contextlib.suppress(ImportError):
            _switch_transformers(enabled, restore)
        with contextlib.suppress(ImportError):
            _switch_datasets(enabled, restore)
        yield
    finally:
        for undo in reversed(restore):
            undo()


def _switch_transformers(enabled: bool, restore: list) -> None:
    import importlib

    from huggingface_hub import constants
    from transformers.utils import logging as hf_logging

    hub_tqdm = importlib.import_module("huggingface_hub.utils.tqdm")  # the module (``.utils.tqdm`` is the class)

    if constants.HF_HUB_DISABLE_PROGRESS_BARS is not None:  # the user's HF_HUB_DISABLE_PROGRESS_BARS decides
        return
    was_on = hf_logging.is_progress_bar_enabled()
    hub_states = dict(hub_tqdm.progress_bar_states)  # hub's per-group settings, which transformers' switch resets
    if was_on == enabled and hub_tqdm.are_progress_bars_disabled() == (not enabled):
        return

    def undo() -> None:
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(hub_states)

    restore.append(undo)
    (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()


def _switch_datasets(enabled: bool, restore: list) -> None:
    from datasets import config
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if config.HF_DATASETS_DISABLE_PROGRESS_BARS is not None:  # the user's HF_DATASETS_DISABLE_PROGRESS_BARS decides
        return
    was_on = not are_progress_bars_disabled()
    if was_on == enabled:
        return
    restore.append(enable_progress_bars if was_on else disable_progress_bars)
    (enable_progress_bars if enabled else disable_progress_bars)()
