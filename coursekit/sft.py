"""Supervised fine-tuning (SFT) with TRL and LoRA: the settings, the trainer and its result.

``finetune`` wraps TRL's ``SFTTrainer`` + peft's ``LoraConfig``. The data side (row formats, chat templates,
assistant-only labels) is ``coursekit.chat``; the device and precision come from the profile
(``coursekit.runtime``); the scores after training are ``coursekit.evals``. ``SFTSettings`` names every
training knob with Hugging Face's names, so a setting reads the same here, in TRL's ``SFTConfig`` and in a
recipe (``coursekit.recipes``, which also accepts Axolotl's names)::

    >>> import tempfile
    >>> from coursekit.assets import load_tiny
    >>> model, tok = load_tiny("llama")
    >>> rows = [{"prompt": f"{a} + {a} =", "completion": str(2 * a)} for a in range(8)]
    >>> settings = SFTSettings(max_steps=20, learning_rate=1e-2)
    >>> run = finetune(model, tok, rows, settings, lora=lora_config(r=8), output_dir=tempfile.mkdtemp(),
    ...                progress=False)
    >>> len(run.losses), run.final_loss < run.losses[0]
    (20, True)

**The output folder** follows Hugging Face's ``overwrite_output_dir``: before any training, ``finetune`` checks
that ``output_dir`` can be written, and refuses a folder that already holds files (an earlier run's adapter)
unless ``overwrite_output_dir=True``, which empties it just before the final save (one printed line says so),
so no stale file of the old run stays beside the new adapter. If that final save fails all the same (a full
disk), the adapter is saved to a fresh temporary folder and the ``OutputDirError`` names it::

    >>> finetune(model, tok, rows, settings, output_dir=run.output_dir)   # doctest: +ELLIPSIS
    Traceback (most recent call last):
    coursekit.sft.OutputDirError: output_dir /tmp/... already holds files (...): pass overwrite_output_dir=True ...

Packing (``SFTSettings(packing=True)``, a recipe's ``sample_packing: true``) uses TRL's best-fit-decreasing
packing. It is padding-free: the examples of a pack sit in one row with their own ``position_ids``, and
transformers turns those into a block-diagonal causal mask, so no example attends to another
(``tests/test_sft.py`` checks it).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.chat import prepare_dataset
from coursekit.objectives import IGNORE_INDEX
from coursekit.plots import plot_losses
from coursekit.quant import keep_4bit_trainable
from coursekit.quiet import peft_vocabulary_answered, progress_bars
from coursekit.runtime import Profile, effective_seed, get_profile

__all__ = ["OutputDirError", "SFTRun", "SFTSettings", "check_output_dir", "finetune", "lora_config", "plot_loss",
           "prepare_output_dir", "train_and_save", "trl_arguments"]


class OutputDirError(OSError):
    """``output_dir`` cannot take the adapter; the message names the folder and the fix (``run``: the trained run
    when the final save failed, else None)."""

    run: Any = None


@dataclass
class SFTSettings:
    """Every training setting of a fine-tuning run, with Hugging Face's names and the one set of defaults."""

    max_steps: int = -1  # > 0 overrides num_train_epochs
    num_train_epochs: float = 1.0
    batch_size: int = 4  # per device (TRL's per_device_train_batch_size)
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "constant"
    warmup_steps: int = 0
    optim: str = "adamw_torch"
    weight_decay: float = 0.0
    max_length: int | None = 512  # tokens per example (or per pack)
    packing: bool = False
    gradient_checkpointing: bool = False
    seed: int = 0
    logging_steps: int = 1

    def __post_init__(self) -> None:
        _check_settings(self)


def _check_settings(s: SFTSettings) -> None:
    """A setting TRL would misread (``max_steps=0`` trains one step, 0 epochs trains none) fails here, by name."""
    if s.max_steps == 0 or s.max_steps < -1:
        raise ValueError(f"max_steps={s.max_steps}: must be a positive number of optimizer steps; "
                         "use -1 to train by epochs (num_train_epochs)")
    if s.max_steps == -1 and not s.num_train_epochs > 0:
        raise ValueError(f"num_train_epochs={s.num_train_epochs}: must be > 0 to train by epochs; "
                         "set num_train_epochs > 0, or max_steps to a positive number of steps")
    for name in ("batch_size", "gradient_accumulation_steps", "logging_steps"):
        if getattr(s, name) < 1:
            raise ValueError(f"{name}={getattr(s, name)}: must be a positive whole number; use 1 or more")
    if s.max_length is not None and s.max_length < 1:
        raise ValueError(f"max_length={s.max_length}: must be a positive number of tokens; use None for no limit")
    if s.warmup_steps < 0 or s.learning_rate < 0:
        raise ValueError(f"warmup_steps={s.warmup_steps}, learning_rate={s.learning_rate}: neither may be negative")


def lora_config(r: int = 8, lora_alpha: float = 16, lora_dropout: float = 0.0,
                target_modules: str | Sequence[str] = ("q_proj", "v_proj")) -> Any:
    """peft ``LoraConfig`` for a causal LM (peft's names). ``target_modules="all-linear"`` targets every linear layer."""
    from peft import LoraConfig

    targets = target_modules if isinstance(target_modules, str) else list(target_modules)
    return LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules=targets, bias="none",
                      task_type="CAUSAL_LM")


@dataclass
class SFTRun:
    """What ``finetune`` returns: the trainer, the (peft) model, and the loss per logged step."""

    trainer: Any
    model: Any
    history: list[dict[str, float]]
    seconds: float
    output_dir: str
    eval_metrics: dict[str, float] = field(default_factory=dict)  # recipes.run_recipe, val_set_size > 0
    samples: list[tuple[str, str]] = field(default_factory=list)  # recipes.run_recipe: (prompt, reply)

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history]

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def _history(trainer: Any) -> list[dict[str, float]]:
    return [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]


def _check_fits(dataset: Any, max_length: int | None, packing: bool) -> None:
    """Truncated to ``max_length``, an example whose reply starts past it trains on nothing: fail clearly if that is
    every example, and say in one line how many when it is only some."""
    if len(dataset) == 0:
        raise ValueError("The training dataset has no rows: give finetune at least one row to train on.")
    if max_length is None or packing:
        return
    firsts = [next((i for i, lab in enumerate(ex) if lab != IGNORE_INDEX), None) for ex in dataset["labels"]]
    lost = [i for i, f in enumerate(firsts) if f is None or f >= max_length]
    longest = max(len(ids) for ids in dataset["input_ids"])
    if len(lost) == len(firsts):
        raise ValueError(f"max_length (sequence_len) {max_length} cuts off every reply: no example would train. "
                         f"The longest example has {longest} tokens; raise max_length to {longest}.")
    if lost:
        print(f"{len(lost)} of {len(firsts)} examples (first: row {lost[0]}) have their reply past max_length "
              f"{max_length} and train on nothing; raise max_length to {longest} to keep them.")


def _earlier_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def _refuse_to_empty(path: Path) -> None:
    """``overwrite_output_dir`` empties a run folder, never the working folder, a home or a repository."""
    here, resolved = Path.cwd().resolve(), path.resolve()
    if resolved in (here, *here.parents, Path.home().resolve()) or (resolved / ".git").exists():
        raise OutputDirError(f"output_dir {path} is the working folder, one above it, a home or a repository: "
                             "overwrite_output_dir would empty it; give the run a folder of its own, e.g. "
                             f"{path / 'run'}")


def _check_writable(path: Path) -> None:
    base = next(p for p in (path, *path.parents) if p.exists())
    if not base.is_dir():
        raise OutputDirError(f"output_dir {path}: {base} is a file, so the folder cannot be made there; "
                             "choose another output_dir")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as err:
        raise OutputDirError(f"output_dir {path} is not writable ({err.strerror or err} in {base}): choose a folder "
                             f"you can write to (e.g. under {tempfile.gettempdir()}) or fix its permissions") from None


def check_output_dir(output_dir: str | Path, overwrite_output_dir: bool = False) -> Path:
    """Before any training: the adapter can be saved in ``output_dir`` (else an ``OutputDirError`` naming the fix).

    A folder that already holds files is refused unless ``overwrite_output_dir`` (Hugging Face's name), which
    lets ``finetune`` empty it before its final save. Nothing is created here.

    >>> check_output_dir("pyproject.toml/run")     # doctest: +ELLIPSIS
    Traceback (most recent call last):
    coursekit.sft.OutputDirError: output_dir pyproject.toml/run: pyproject.toml is a file, so the folder cannot be ...
    """
    path = Path(output_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"output_dir {path} is a file, not a folder: choose a folder for the adapter")
    earlier = _earlier_files(path)
    if earlier and not overwrite_output_dir:
        shown = ", ".join(earlier[:3]) + (", ..." if len(earlier) > 3 else "")
        raise OutputDirError(f"output_dir {path} already holds files ({shown}): pass overwrite_output_dir=True to "
                             "replace them (the folder is emptied before the save), or choose a new output_dir")
    if earlier:
        _refuse_to_empty(path)
    _check_writable(path)
    return path


def _empty(path: Path) -> None:
    earlier = _earlier_files(path)
    for item in path.iterdir() if earlier else ():
        shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
    if earlier:
        print(f"overwrite_output_dir: removed the {len(earlier)} file(s) of the earlier run from {path}")


def _save(run: SFTRun, output_dir: Path, overwrite_output_dir: bool) -> None:
    """The final save; if it fails, the adapter goes to a fresh temporary folder, which the error names."""
    try:
        if overwrite_output_dir:
            _empty(output_dir)
        with peft_vocabulary_answered(run.trainer.model):
            run.trainer.save_model(str(output_dir))
        return
    except OSError as err:
        problem = f"{type(err).__name__}: {err.strerror or err}"
    fallback = Path(tempfile.mkdtemp(prefix="coursekit-adapter-"))
    try:
        run.trainer.save_model(str(fallback))
    except OSError as err:
        error = OutputDirError(f"Could not save the adapter to {output_dir} ({problem}) nor to {fallback} "
                               f"({err.strerror or err}): it is only in memory, as this error's .run.model; "
                               "free some disk space and call .run.trainer.save_model(folder)")
    else:
        run.output_dir = str(fallback)
        error = OutputDirError(f"Could not save the adapter to {output_dir} ({problem}); it was saved to {fallback} "
                               "instead: move it from there (this error's .run is the trained run)")
    error.run = run
    raise error


def trl_arguments(settings: SFTSettings, profile: Profile, progress: bool = True) -> dict[str, Any]:
    """TRL ``SFTConfig`` keyword arguments for these settings: the precision and (CPU or not) the device are the
    profile's, the random seed is shifted by ``$COURSEKIT_SEED``, nothing is saved mid-run or reported."""
    s = settings
    return dict(
        max_steps=s.max_steps, num_train_epochs=s.num_train_epochs, per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps, learning_rate=s.learning_rate,
        lr_scheduler_type=s.lr_scheduler_type, warmup_steps=s.warmup_steps, optim=s.optim,
        weight_decay=s.weight_decay, max_length=s.max_length, packing=s.packing,
        activation_checkpointing=s.gradient_checkpointing, seed=effective_seed(s.seed), logging_steps=s.logging_steps,
        bf16=profile.precision.bf16, fp16=profile.precision.fp16, use_cpu=profile.device == "cpu",
        save_strategy="no", report_to="none", disable_tqdm=not progress, dataloader_pin_memory=False)


def finetune(model: Any, tokenizer: Any, dataset: Any, settings: SFTSettings | None = None, *,
             output_dir: str | Path, profile: Profile | None = None, lora: Any = None, progress: bool = True,
             save: bool = True, overwrite_output_dir: bool = False) -> SFTRun:
    """Fine-tune ``model`` with TRL's ``SFTTrainer`` (LoRA when ``lora`` is a ``LoraConfig``).

    ``dataset`` is rows of any form ``coursekit.chat`` accepts, or already tokenized (``input_ids`` +
    ``labels``). The precision is ``profile``'s (the current profile when None). The adapter is saved to
    ``output_dir`` unless ``save=False``; before any training, ``check_output_dir`` makes sure it can be: a
    folder that already holds files needs ``overwrite_output_dir=True`` (emptied before the save). A failed
    final save keeps the adapter in a temporary folder that the ``OutputDirError`` names. ``progress=False``
    shows neither the bar nor the per-step log lines; the losses are in ``run.losses`` either way.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    settings = settings or SFTSettings()
    profile = profile or get_profile(verbose=False)
    output_dir = prepare_output_dir(output_dir, save, overwrite_output_dir)
    if not (isinstance(dataset, Dataset) and "input_ids" in dataset.column_names):
        dataset = prepare_dataset(dataset, tokenizer)
    _check_fits(dataset, settings.max_length, settings.packing)
    if "bitsandbytes" in sys.modules:  # a 4-bit model: undo bitsandbytes' inference-only CPU repacking first
        keep_4bit_trainable(model)
    args = SFTConfig(output_dir=str(output_dir), **trl_arguments(settings, profile, progress))
    with progress_bars(progress):  # progress=False: no dataset-preparation bars either
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
    return train_and_save(trainer, output_dir, progress=progress, save=save, overwrite_output_dir=overwrite_output_dir)


def prepare_output_dir(output_dir: str | Path, save: bool = True, overwrite_output_dir: bool = False) -> Path:
    """Before any training: ``check_output_dir`` when the run will be saved, else only that TRL can make the folder."""
    if save:
        return check_output_dir(output_dir, overwrite_output_dir)
    path = Path(output_dir).expanduser()
    _check_writable(path)
    return path


def train_and_save(trainer: Any, output_dir: Path, *, progress: bool = True, save: bool = True,
                   overwrite_output_dir: bool = False) -> SFTRun:
    """Train a TRL trainer built on ``prepare_output_dir``'s folder, time it, and save the adapter (``_save``: a
    failed save keeps it elsewhere); SFT and DPO (``coursekit.dpo``) both end here."""
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # without a bar, Trainer prints every log dict instead
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    run = SFTRun(trainer, trainer.model.eval(), _history(trainer), seconds, str(output_dir))
    if save:
        _save(run, output_dir, overwrite_output_dir)
    return run


def plot_loss(runs: SFTRun | Mapping[str, SFTRun | Sequence[float]], ax: Any = None,
              title: str = "training loss") -> Any:
    """Loss against step for one run or several (``{"label": run_or_losses}``); returns the axes."""
    runs = {"loss": runs} if isinstance(runs, SFTRun) else runs
    histories = {label: run.losses if isinstance(run, SFTRun) else list(run) for label, run in runs.items()}
    return plot_losses(histories, ax, title=title, ylabel="loss (assistant tokens)")
