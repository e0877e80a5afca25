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

Packing (``SFTSettings(packing=True)``, a recipe's ``sample_packing: true``) uses TRL's best-fit-decreasing
packing. It is padding-free: the examples of a pack sit in one row with their own ``position_ids``, and
transformers turns those into a block-diagonal causal mask, so no example attends to another
(``tests/test_sft.py`` checks it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coursekit.chat import prepare_dataset
from coursekit.objectives import IGNORE_INDEX
from coursekit.plots import plot_losses
from coursekit.quant import keep_4bit_trainable
from coursekit.quiet import progress_bars
from coursekit.runtime import Profile, effective_seed, get_profile

__all__ = ["SFTRun", "SFTSettings", "finetune", "lora_config", "plot_loss", "trl_arguments"]


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

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history]

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def _history(trainer: Any) -> list[dict[str, float]]:
    return [{"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h]


def _check_fits(dataset: Any, max_length: int | None, packing: bool) -> None:
    """TRL drops examples whose trained tokens all fall past ``max_length``; fail clearly if that is all of them."""
    if max_length is None or packing:
        return
    firsts = [next((i for i, lab in enumerate(ex) if lab != IGNORE_INDEX), None) for ex in dataset["labels"]]
    if not any(f is not None and f < max_length for f in firsts):
        longest = max(len(ids) for ids in dataset["input_ids"])
        raise ValueError(f"max_length (sequence_len) {max_length} cuts off every reply: no example would train. "
                         f"The longest example has {longest} tokens; raise max_length.")


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
             save: bool = True) -> SFTRun:
    """Fine-tune ``model`` with TRL's ``SFTTrainer`` (LoRA when ``lora`` is a ``LoraConfig``).

    ``dataset`` is rows of any form ``coursekit.chat`` accepts, or already tokenized (``input_ids`` +
    ``labels``). The precision is ``profile``'s (the current profile when None). The adapter is saved to
    ``output_dir`` unless ``save=False``. ``progress=False`` shows neither the bar nor the per-step log
    lines; the losses are in ``run.losses`` either way.
    """
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    settings = settings or SFTSettings()
    profile = profile or get_profile(verbose=False)
    if not (isinstance(dataset, Dataset) and "input_ids" in dataset.column_names):
        dataset = prepare_dataset(dataset, tokenizer)
    _check_fits(dataset, settings.max_length, settings.packing)
    if "bitsandbytes" in sys.modules:  # a 4-bit model: undo bitsandbytes' inference-only CPU repacking first
        keep_4bit_trainable(model)
    args = SFTConfig(output_dir=str(output_dir), **trl_arguments(settings, profile, progress))
    with progress_bars(progress):  # progress=False: no dataset-preparation bars either
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             peft_config=lora)
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # without a bar, Trainer prints every log dict instead
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    if save:
        trainer.save_model(str(output_dir))
    return SFTRun(trainer, trainer.model.eval(), _history(trainer), seconds, str(output_dir))


def plot_loss(runs: SFTRun | Mapping[str, SFTRun | Sequence[float]], ax: Any = None,
              title: str = "training loss") -> Any:
    """Loss against step for one run or several (``{"label": run_or_losses}``); returns the axes."""
    runs = {"loss": runs} if isinstance(runs, SFTRun) else runs
    histories = {label: run.losses if isinstance(run, SFTRun) else list(run) for label, run in runs.items()}
    return plot_losses(histories, ax, title=title, ylabel="loss (assistant tokens)")
