"""Where am I running, and what should a lesson use here?

Every notebook starts with a *profile cell*. It asks this module for a profile (``smoke`` / ``colab`` / ``full``),
a device and a precision, and takes every size, model and step count from there. One line says what was chosen
and why (the device and precision follow, e.g. ``device cpu · fp32``)::

    >>> P = get_profile("smoke")     # doctest: +ELLIPSIS
    profile: smoke (asked for by name) · device ...
    >>> P.pick(smoke="packaged SmolLM2", colab="Qwen/Qwen3-0.6B", full="Qwen/Qwen3-0.6B")
    'packaged SmolLM2'
    >>> P.size(smoke=20, colab=500, full=2000)
    20

``pick`` chooses *which* (models, data, templates, code paths) and ``size`` *how much* (steps, rows, lengths).
The two differ only in a **rehearsal** (``COURSEKIT_REHEARSAL=1``, ``bash course.sh rehearse``): the colab or full
profile runs its own models, data and code on a CPU against a local stand-in Hub, with smoke-sized work.
``P.at_scale(what)`` guards the checks that only hold at real scale; a rehearsal skips them, each with a line::

    >>> R = Profile("colab", "a test", "cpu", Precision("fp32", "no CUDA"), rehearsal=True)
    >>> R.pick(smoke="smollm2", colab="qwen3", full="qwen3"), R.size(smoke=20, colab=500, full=2000)
    ('qwen3', 20)
    >>> R.at_scale("the loss halves")
    rehearsal: skipped a check that needs real scale (1 so far): the loss halves
    False
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import platform
import random
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

PROFILES: dict[str, str] = {
    "smoke": "CPU, offline, tiny configs: seconds to a minute per notebook",
    "colab": "a free Colab T4 (16 GB, fp16): Hub models at lesson scale",
    "full": "A100/H100 class (bf16, torch.compile): the course notes' real sizes",
}
FULL_MIN_GPU_GB = 40
ENV_VAR = "COURSEKIT_PROFILE"
REHEARSAL_VAR = "COURSEKIT_REHEARSAL"
SKIP_LINE = "rehearsal: skipped a check that needs real scale"  # tools/rehearsal_report.py counts these lines
PRECISIONS = ("bf16", "fp16", "fp32")


@dataclass(frozen=True)
class Precision:
    """The training/inference precision chosen for a device, with the reason."""

    name: str  # "bf16" | "fp16" | "fp32"
    reason: str

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS:
            raise ValueError(f"Unknown precision {self.name!r}: use one of {', '.join(PRECISIONS)}.")

    @property
    def dtype(self) -> Any:
        import torch
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.name]

    @property
    def weights_dtype(self) -> Any:
        """Weights that train: bf16 under bf16, else fp32 (fp16 mixed precision keeps fp32 master weights)."""
        import torch
        return torch.bfloat16 if self.name == "bf16" else torch.float32

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    @property
    def fp16(self) -> bool:
        return self.name == "fp16"

    def autocast(self, device: str) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast`` in this precision on ``device`` (``"cuda:1"`` works too); fp32: no autocast."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        import torch
        return torch.autocast(device_type=device.split(":")[0], dtype=self.dtype)


@dataclass(frozen=True)
class Profile:
    """What a lesson should use on this machine."""

    name: str
    reason: str
    device: str
    precision: Precision
    fallback: str = ""  # set when the profile wanted a GPU and got the CPU
    rehearsal: bool = False  # colab/full models and code, smoke-sized work (see the module docstring)
    skipped: list[str] = field(default_factory=list, compare=False)  # the at_scale checks a rehearsal skipped

    def __post_init__(self) -> None:
        # smoke's sizes are its real sizes: a smoke "rehearsal" is a plain smoke run
        object.__setattr__(self, "rehearsal", self.rehearsal and self.name != "smoke")

    @property
    def dtype(self) -> Any:
        """The precision's dtype: what autocast computes in, and what ``load_causal_lm(profile=P)`` loads."""
        return self.precision.dtype

    def autocast(self, scaled: bool = True) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for a forward pass: ``with P.autocast(): loss = model(x)``; fp32: a no-op.

        ``scaled=False`` is for a loop without a GradScaler: fp16 (a T4) then runs in fp32, bf16 still autocasts.
        """
        if self.precision.fp16 and not scaled:
            return contextlib.nullcontext()
        return self.precision.autocast(self.device)

    def place(self, model: Any) -> Any:
        """``model`` on this profile's device; a model placed at load time (quantized, or ``device_map``) stays."""
        if getattr(model, "is_quantized", False) or getattr(model, "hf_device_map", None) is not None:
            return model
        return model.to(self.device)

    def asking(self, *, bf16: bool | str = "auto", fp16: bool = False) -> Profile:
        """This profile with the precision a recipe asks for (``bf16: auto|true|false``, ``fp16``).

        ``auto`` keeps the profile's; a request is judged against what the device can do (``pick_precision``),
        and one it cannot honour falls back, in one printed line.
        """
        if bf16 == "auto" and not fp16:
            return self
        return replace(self, precision=requested_precision(pick_precision(self.device), self.device, bf16, fp16))

    @property
    def offline(self) -> bool:
        """True when the lesson must use only packaged, offline assets."""
        return self.name == "smoke"

    def pick(self, *, smoke: T, colab: T, full: T) -> T:
        """Choose *which* per profile (a model, a dataset, a code path): ``P.pick(smoke=a, colab=b, full=c)``."""
        return {"smoke": smoke, "colab": colab, "full": full}[self.name]

    def size(self, *, smoke: T, colab: T, full: T, rehearsal: T | None = None) -> T:
        """Choose *how much* per profile (steps, rows, lengths): ``P.size(smoke=20, colab=500, full=2000)``.

        A rehearsal takes ``rehearsal`` where given, else the smoke value.
        """
        if self.rehearsal:
            return smoke if rehearsal is None else rehearsal
        return self.pick(smoke=smoke, colab=colab, full=full)

    def at_scale(self, what: str) -> bool:
        """Whether to run a check that holds only at this profile's real sizes; a rehearsal skips it, saying so."""
        if not self.rehearsal:
            return True
        self.skipped.append(what)
        print(f"{SKIP_LINE} ({len(self.skipped)} so far): {what}")
        return False

    def summary(self) -> str:
        line = (f"profile: {self.name} ({self.reason}) · device {self.device} · "
                f"{self.precision.name} ({self.precision.reason})")
        line += f" · {self.fallback}" if self.fallback else ""
        if self.rehearsal:
            line += " · rehearsal: this profile's models and code, smoke-sized work, scale-only checks skipped"
        return line


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _cuda_memory_gb() -> float:
    import torch
    return torch.cuda.get_device_properties(0).total_memory / 1024**3 if torch.cuda.is_available() else 0.0


def check_profile_name(name: str) -> str:
    """Return ``name`` normalised, or raise a ValueError listing the valid names."""
    key = name.strip().lower()
    if key not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}. Valid profiles: {', '.join(PROFILES)}. "
                         f"Pass one of them to get_profile() or set {ENV_VAR}.")
    return key


def detect_profile() -> tuple[str, str]:
    """The profile this machine should get, and why: Colab → colab, a CUDA GPU of ≥ 40 GB → full, else smoke."""
    if in_colab():
        return "colab", "running in Google Colab"
    gb = _cuda_memory_gb()
    if gb >= FULL_MIN_GPU_GB:
        return "full", f"CUDA GPU with {gb:.0f} GB ≥ {FULL_MIN_GPU_GB} GB"
    if gb > 0:
        return "smoke", f"CUDA GPU with only {gb:.0f} GB < {FULL_MIN_GPU_GB} GB"
    return "smoke", "no CUDA GPU"


def get_device() -> str:
    """``"cuda"`` if available, else ``"mps"`` (Apple silicon), else ``"cpu"``."""
    import torch
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def pick_precision(device: str | None = None) -> Precision:
    """bf16 where the GPU does it natively, fp16 on older GPUs (T4), fp32 otherwise.

    ``including_emulation=False`` matters: a T4 *emulates* bf16 slowly, and
    would otherwise be told it supports it.
    """
    import torch

    device = device or get_device()
    if device == "cuda":
        if torch.cuda.is_bf16_supported(including_emulation=False):
            return Precision("bf16", "GPU supports bf16 natively")
        return Precision("fp16", "GPU has no native bf16 (e.g. T4): fp16 with loss scaling")
    if device == "mps":
        return Precision("fp32", "Apple MPS: fp32 is the safe default")
    return Precision("fp32", "no CUDA: fp32 on CPU")


def requested_precision(best: Precision, device: str, bf16: bool | str = "auto", fp16: bool = False) -> Precision:
    """The precision to train in when a recipe asks: ``fp16: true`` wins over ``bf16: auto``; ``bf16: auto``
    alone keeps ``best``; bf16 where the GPU lacks it → fp16, and anything on a CPU → ``best``, each said in
    one printed line."""
    if fp16 and bf16 in ("auto", False):
        want = "fp16"
    elif bf16 == "auto":
        return best
    elif bf16 is False:
        return Precision("fp32", "bf16: false, fp16: false")
    else:
        want = "bf16"
    if device != "cuda":
        print(f"{want} asked for, but there is no CUDA GPU: training in {best.name} ({best.reason})")
        return best
    if want == "bf16" and not best.bf16:
        print("bf16 asked for, but this GPU has no native bf16: falling back to fp16 (with loss scaling)")
        return Precision("fp16", "bf16 requested; GPU lacks it")
    return Precision(want, f"{want} requested")


def get_profile(name: str | None = None, *, verbose: bool = True) -> Profile:
    """Choose the profile: ``name``, else ``$COURSEKIT_PROFILE``, else from the machine.

    ``colab`` or ``full`` on a machine without CUDA still runs, on the CPU, and
    says so in the printed line.
    """
    if name is not None:
        key, reason = check_profile_name(name), "asked for by name"
    elif os.environ.get(ENV_VAR):
        key, reason = check_profile_name(os.environ[ENV_VAR]), f"from ${ENV_VAR}"
    else:
        key, reason = detect_profile()
    device = get_device()
    fallback = ""
    if key != "smoke" and device != "cuda":
        fallback = f"no CUDA GPU here, so '{key}' falls back to {device} (it will be slow)"
    rehearsal = os.environ.get(REHEARSAL_VAR, "").strip() not in ("", "0")
    profile = Profile(key, reason, device, pick_precision(device), fallback, rehearsal=rehearsal)
    if verbose:
        print(profile.summary())
    return profile


CACHE_VERSION = "1"  # bump to rebuild every cached asset


def cache_dir() -> Path:
    """``$COURSEKIT_CACHE``, else ``~/.cache/coursekit``: converted models, tiny models, regenerated data."""
    root = os.environ.get("COURSEKIT_CACHE") or Path.home() / ".cache" / "coursekit"
    path = Path(root) / f"v{CACHE_VERSION}"
    path.mkdir(parents=True, exist_ok=True)
    return path


SEED_VAR = "COURSEKIT_SEED"


def seed_offset() -> int:
    """The shift ``$COURSEKIT_SEED`` asks for (0 when unset): every lesson seed ``s`` becomes ``s + offset``.

    One variable moves every seed of a run at once: a student tries another seed without editing the lesson:

    >>> import os
    >>> os.environ[SEED_VAR] = "7"; seed_offset()
    7
    >>> del os.environ[SEED_VAR]; seed_offset()
    0
    """
    raw = os.environ.get(SEED_VAR, "").strip() or "0"
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"${SEED_VAR}={raw!r} is not an integer: set it to a whole number, e.g. {SEED_VAR}=1") from None


def effective_seed(seed: int) -> int:
    """``seed`` shifted by ``$COURSEKIT_SEED``: what every seeded trainer in coursekit really uses."""
    return seed + seed_offset()


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy, torch (CPU and CUDA) and, if imported, TensorFlow/Keras; return the random seed used.

    The seed used is ``seed`` shifted by ``$COURSEKIT_SEED`` (``seed_offset``); a shift is said in one line.
    """
    used = effective_seed(seed)
    if used != seed:
        print(f"seed {used} (the lesson's {seed}, shifted by ${SEED_VAR}={seed_offset()})")
    random.seed(used)
    np.random.seed(used)
    os.environ["PYTHONHASHSEED"] = str(used)
    if "torch" in sys.modules or importlib.util.find_spec("torch"):
        import torch

        torch.manual_seed(used)  # also seeds every CUDA device
    if "keras" in sys.modules:
        sys.modules["keras"].utils.set_random_seed(used)
    return used


VERSIONED = ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "keras", "tensorflow")


def versions() -> dict[str, str]:
    """Installed versions of Python and the course's main libraries."""
    out = {"python": platform.python_version()}
    for pkg in VERSIONED:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def versions_line() -> str:
    return " · ".join(f"{k} {v}" for k, v in versions().items())
