"""coursekit.quiet silences exactly the messages it lists, and nothing else.

Each filter is checked twice: the silenced message is gone, and a neighbour (same
text from another module, another message from the same module, another category)
still gets through. The library texts are read from the installed sources, so an
upstream rewording fails here instead of quietly letting the noise back.
"""

import importlib.util
import logging
import os
import re
import sys
import warnings
from pathlib import Path

import pytest

from coursekit import quiet

GC_TEXT = ("`is_gradient_checkpointing` is deprecated and will be removed in v6. "
           "Use `is_activation_checkpointing` instead.")
KERNELS_FORMAT = ("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make sure you already "
                  "`pip install kernels` and the kernels >= 0.11.1")

# Lines notebook 00 printed on this CPU-only machine before the fix (TensorFlow 2.21), verbatim.
TF_STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796225253.177174   32708 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796167384.971389    6830 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
    "GPU will not be used.",
    "I0000 00:00:1796167385.380770    6830 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796167409.211546    6830 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
]
NO_GPU_ONLY = {2, 5}  # cudart_stub and cuInit: news where a GPU exists
TF_REAL_ERROR = "E0000 00:00:1796167409.211546    6830 op_kernel.cc:1857] OP_REQUIRES failed at matmul_op.cc: bad"


def _source(module: str) -> str:
    """The installed source of ``module``, read without importing it (or its package)."""
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{top} is not installed")
    return Path(spec.submodule_search_locations[0], *rest.split("."))\
        .with_suffix(".py").read_text(encoding="utf-8")


def _shown(*emit):
    """Messages of the warnings that get through ``quiet.install()``, each emitted by ``warn_explicit``."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet.install()
        for text, category, module in emit:
            warnings.warn_explicit(text, category, f"{module.rsplit('.', 1)[-1]}.py", 1, module=module)
    return [(str(w.message), w.category) for w in seen]


@pytest.fixture(autouse=True)
def _not_verbose(monkeypatch):
    monkeypatch.delenv(quiet.VERBOSE_VAR, raising=False)


# ---------------------------------------------------------------- warnings
def test_gradient_checkpointing_notice_is_silenced_only_from_transformers():
    shown = _shown((GC_TEXT, FutureWarning, "transformers.modeling_utils"),             # silenced
                   (GC_TEXT, FutureWarning, "my_notebook_helpers"),                     # same text, elsewhere
                   (GC_TEXT, UserWarning, "transformers.modeling_utils"),               # another category
                   ("`foo` is deprecated", FutureWarning, "transformers.modeling_utils"))  # another message
    assert shown == [(GC_TEXT, FutureWarning), (GC_TEXT, UserWarning), ("`foo` is deprecated", FutureWarning)]


PAGED_TEXT = "Paged optimizers are not supported on CPU. Falling back to non-paged optimizer behavior."


def test_the_paged_optimizer_notice_is_silenced_only_from_bitsandbytes_optimizers():
    shown = _shown((PAGED_TEXT, UserWarning, "bitsandbytes.optim.optimizer"),            # silenced
                   (PAGED_TEXT, UserWarning, "my_notebook_helpers"),                     # same text, elsewhere
                   (PAGED_TEXT, FutureWarning, "bitsandbytes.optim.optimizer"),          # another category
                   ("Paged optimizers: something else", UserWarning, "bitsandbytes.optim.adamw"))  # another module
    assert shown == [(PAGED_TEXT, UserWarning), (PAGED_TEXT, FutureWarning),
                     ("Paged optimizers: something else", UserWarning)], shown


def test_the_paged_filter_matches_what_bitsandbytes_really_says():
    source = _source("bitsandbytes.optim.optimizer")
    message, category, module = quiet.WARNINGS[1]
    assert re.match(module, "bitsandbytes.optim.optimizer") and category is UserWarning
    assert f'"{PAGED_TEXT}"' in source, "bitsandbytes no longer warns this way: update the filter in coursekit.quiet"
    assert re.match(message, PAGED_TEXT)


def test_gemv_4bit_warning_is_deliberately_kept():
    text = (f"{quiet.GEMV_4BIT_WARNING} to the Autograd key(s) but we are trying to backprop through it. "
            "This may lead to silently incorrect behavior.")
    assert _shown((text, UserWarning, "torch.autograd.graph")) == [(text, UserWarning)]


def test_the_filter_matches_what_transformers_really_says():
    source = _source("transformers.modeling_utils")
    message, category, module = quiet.WARNINGS[0]
    assert re.match(module, "transformers.modeling_utils") and category is FutureWarning
    said = re.search(r'"(`is_gradient_checkpointing` is deprecated[^"]*)"\s*"([^"]*)",\s*FutureWarning', source)
    assert said, "transformers no longer warns this way: drop or update the filter in coursekit.quiet"
    assert said.group(1) + said.group(2) == GC_TEXT and re.match(message, GC_TEXT)


def test_the_warnings_filter_is_installed_once():
    with warnings.catch_warnings():
        quiet.install()
        quiet.install()
        ours = [f for f in warnings.filters if f[1] is not None and f[1].pattern == quiet.WARNINGS[0][0]]
    assert len(ours) == 1


# ---------------------------------------------------------------- bitsandbytes' logger
def test_kernels_hint_is_dropped_and_other_bitsandbytes_warnings_kept(caplog):
    quiet.install()
    log = logging.getLogger(quiet.KERNELS_LOGGER)
    with caplog.at_level(logging.WARNING, logger=quiet.KERNELS_LOGGER):
        log.warning(KERNELS_FORMAT, ModuleNotFoundError("No module named 'kernels'"))
        log.warning("Input type into Linear4bit is torch.float16, but bnb_4bit_compute_dtype=torch.float32")
    assert [r.getMessage()[:26] for r in caplog.records] == ["Input type into Linear4bit"]


def test_the_logging_filter_matches_what_bitsandbytes_really_logs():
    source = _source("bitsandbytes.backends.cpu.ops")
    assert "logger = logging.getLogger(__name__)" in source  # so the logger's name is the module's
    assert f'"{KERNELS_FORMAT}"' in source and KERNELS_FORMAT.startswith(quiet.KERNELS_MESSAGE)


# ---------------------------------------------------------------- TensorFlow's C++ start-up lines
@pytest.mark.parametrize("index", range(len(TF_STARTUP)))
def test_tensorflow_startup_lines(index):
    line = TF_STARTUP[index]
    assert quiet.is_tensorflow_startup_noise(line + "\n", gpu=False)
    assert quiet.is_tensorflow_startup_noise(line, gpu=True) is (index not in NO_GPU_ONLY)


def test_other_tensorflow_lines_are_not_noise():
    for line in (TF_REAL_ERROR, "Traceback (most recent call last):", TF_STARTUP[2].replace("cudart", "cudnn"), ""):
        assert not quiet.is_tensorflow_startup_noise(line, gpu=False), line


def test_tensorflow_startup_drops_only_its_lines_at_the_file_descriptor(capfd):
    written = "".join(line + "\n" for line in [*TF_STARTUP, TF_REAL_ERROR, "plain C++ output"])
    with quiet.tensorflow_startup(gpu=False):
        os.write(2, written.encode())
        print("python's own stderr", file=sys.stderr)
    os.write(2, b"after the block\n")
    err = capfd.readouterr().err
    assert not any(line in err for line in TF_STARTUP), err
    for kept in (TF_REAL_ERROR, "plain C++ output", "python's own stderr", "after the block"):
        assert kept in err


def test_tensorflow_startup_keeps_the_no_gpu_lines_where_a_gpu_exists(capfd):
    with quiet.tensorflow_startup(gpu=True):
        os.write(2, "".join(line + "\n" for line in TF_STARTUP).encode())
    err = capfd.readouterr().err
    assert [line for line in TF_STARTUP if line in err] == [TF_STARTUP[i] for i in sorted(NO_GPU_ONLY)]


def test_verbose_keeps_everything(capfd, monkeypatch):
    monkeypatch.setenv(quiet.VERBOSE_VAR, "1")
    with quiet.tensorflow_startup(gpu=False):
        os.write(2, (TF_STARTUP[0] + "\n").encode())
    assert TF_STARTUP[0] in capfd.readouterr().err
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet.install()
        warnings.warn_explicit(GC_TEXT, FutureWarning, "modeling_utils.py", 1, module="transformers.modeling_utils")
    assert len(seen) == 1


def test_importing_coursekit_imports_no_heavy_library():
    import subprocess

    heavy = "('torch', 'tensorflow', 'transformers', 'numpy')"
    code = f"import sys, coursekit; print(sorted(m for m in {heavy} if m in sys.modules))"

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- progress bars
def test_progress_bars_are_off_inside_and_restored_after():
    hf_logging = pytest.importorskip("transformers.utils.logging")
    ds_utils = pytest.importorskip("datasets.utils")
    hub_tqdm = sys.modules["huggingface_hub.utils.tqdm"]

    def state():
        return hf_logging.is_progress_bar_enabled(), ds_utils.are_progress_bars_disabled(), \
            dict(hub_tqdm.progress_bar_states)

    before = state()
    try:
        hf_logging.enable_progress_bar()            # (this resets hub's per-group settings, so set one after it)
        hub_tqdm.disable_progress_bars("peft.foo")  # a per-group hub setting must survive the block too
        ds_utils.enable_progress_bars()
        outer = state()
        with quiet.progress_bars(False):
            assert state()[:2] == (False, True) and hub_tqdm.are_progress_bars_disabled()
            assert type(hf_logging.tqdm(range(2), desc="Loading weights")).__name__ == "EmptyTqdm"
        assert state() == outer
        with pytest.raises(KeyError), quiet.progress_bars(False):  # restored on an error too
            raise KeyError("boom")
        assert state() == outer
        hf_logging.disable_progress_bar()           # already off: the block changes and restores nothing
        ds_utils.disable_progress_bars()
        already_off = state()
        with quiet.progress_bars(False):
            assert state() == already_off
        assert state() == already_off
    finally:
        (hf_logging.enable_progress_bar if before[0] else hf_logging.disable_progress_bar)()
        hub_tqdm.progress_bar_states.clear()
        hub_tqdm.progress_bar_states.update(before[2])
        (ds_utils.disable_progress_bars if before[1] else ds_utils.enable_progress_bars)()
    assert state() == before


# ---------------------------------------------------------------- transformers' load report for BERTScore's encoder
class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _encoder_load_reports(tmp_path, drop_encoder_weight: bool) -> list[str]:
    """Save a tiny RobertaForMaskedLM and load it as a bare AutoModel, as bert-score does; the reports logged."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    RobertaForMaskedLM(RobertaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=40)).save_pretrained(tmp_path)
    if drop_encoder_weight:  # a real problem: a weight the encoder uses is not in the checkpoint
        weights = load_file(tmp_path / "model.safetensors")
        del weights[next(k for k in weights if "encoder.layer.0.output.dense.bias" in k)]
        save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    handler = _Records()
    log = logging.getLogger(quiet.LOAD_REPORT_LOGGER)
    log.addHandler(handler)
    try:
        AutoModel.from_pretrained(tmp_path)
    finally:
        log.removeHandler(handler)
    return [m for m in handler.messages if "LOAD REPORT" in m]


def test_bertscores_unused_head_report_is_dropped_and_a_real_problem_kept(tmp_path):
    quiet.install()
    assert _encoder_load_reports(tmp_path / "ok", drop_encoder_weight=False) == []
    kept = _encoder_load_reports(tmp_path / "broken", drop_encoder_weight=True)
    assert len(kept) == 1 and "encoder.layer.0.output.dense.bias" in kept[0] and "lm_head" in kept[0], kept


def test_without_the_filter_transformers_does_report_the_unused_head(tmp_path):
    log = logging.getLogger(quiet.LOAD_REPORT_LOGGER)
    filters = [f for f in log.filters if isinstance(f, quiet._DropUnusedHeadReport)]
    for f in filters:
        log.removeFilter(f)
    try:
        reports = _encoder_load_reports(tmp_path, drop_encoder_weight=False)
    finally:
        for f in filters:
            log.addFilter(f)
    assert len(reports) == 1 and quiet.is_unused_head_report(reports[0]), reports  # what the filter is written for


# ---------------------------------------------------------------- peft's offline vocabulary guess
HUB_ID = "coursekit-test/tiny-llama"
PEFT_WRAPS = pytest.mark.filterwarnings(r"ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # silenced


def _cache_config(cache, vocab_size):
    """A Hub cache holding only HUB_ID's config.json, as a download of it leaves it."""
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123" / "config.json").write_text(f'{{"vocab_size": {vocab_size}}}')


def _save_warnings(tmp_path, monkeypatch, cached_vocab, answered=True):
    """The warnings peft gives saving a LoRA adapter of the tiny Llama, its base named by a Hub id, offline."""
    from huggingface_hub import constants
    from peft import LoraConfig, get_peft_model

    from coursekit import assets

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    if cached_vocab is not None:
        _cache_config(tmp_path / "hub", cached_vocab)
    model, _ = assets.load_tiny("llama")
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    peft_model.active_peft_config.base_model_name_or_path = HUB_ID
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet.peft_vocabulary_answered(peft_model) if answered else warnings.catch_warnings():
            peft_model.save_pretrained(tmp_path / "adapter")
    return [str(w.message) for w in seen if "vocabulary" in str(w.message)], model.config.vocab_size


@PEFT_WRAPS
def test_peft_offline_guesses_the_vocabulary_and_warns(tmp_path, monkeypatch):
    said, vocab = _save_warnings(tmp_path, monkeypatch, cached_vocab=None, answered=False)
    assert len(said) == 1 and re.match(quiet.PEFT_VOCAB_GUESS, said[0]) and HUB_ID in said[0], said


@PEFT_WRAPS
def test_a_guess_the_cached_config_proves_is_dropped(tmp_path, monkeypatch):
    from transformers import AutoConfig

    from coursekit import assets

    vocab = AutoConfig.from_pretrained(assets.tiny_model_path("llama")).vocab_size
    said, saved_vocab = _save_warnings(tmp_path, monkeypatch, cached_vocab=vocab)
    assert said == [] and saved_vocab == vocab, (said, saved_vocab, vocab)


@PEFT_WRAPS
@pytest.mark.parametrize("cached", ["resized", "absent"])
def test_a_guess_nothing_proves_keeps_its_warning(tmp_path, monkeypatch, cached):
    vocab = 7 if cached == "resized" else None  # the cached base has another vocabulary, or no config at all
    said, _ = _save_warnings(tmp_path, monkeypatch, cached_vocab=vocab)
    assert len(said) == 1 and HUB_ID in said[0], said
