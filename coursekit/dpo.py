"""Direct preference optimisation (DPO) with TRL's ``DPOTrainer`` and LoRA: preference pairs in, an adapter out.

``dpo_finetune`` is ``sft.finetune``'s twin for paired preferences: ``DPOSettings`` are ``SFTSettings`` (Hugging
Face's names) plus DPO's ``beta``, and the output-folder rules are the same (checked before training;
``overwrite_output_dir``; a failed final save kept elsewhere). The rows may be in any form ``preference.formats`` reads (TRL's four, an
UltraFeedback or hh-rlhf row). With a LoRA adapter and no reference model, TRL's reference is the policy with
its adapter switched off: the frozen base, at no extra memory. ``notebooks/08_preference`` builds the loss
by hand first (``preference.dpo_loss``)::

    >>> import tempfile
    >>> from coursekit.assets import load_tiny
    >>> from coursekit.preference import arithmetic_preference_rows
    >>> from coursekit.sft import lora_config
    >>> model, tok = load_tiny("llama")
    >>> run = dpo_finetune(model, tok, arithmetic_preference_rows(8), DPOSettings(max_steps=2, learning_rate=1e-3),
    ...                    lora=lora_config(), output_dir=tempfile.mkdtemp(), progress=False)
    >>> len(run.losses), run.trainer.ref_model is None   # the reference: the adapter switched off
    (2, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from coursekit.preference import check_beta, explicit_prompt_rows
from coursekit.quiet import progress_bars
from coursekit.runtime import Profile, get_profile
from coursekit.sft import SFTRun, SFTSettings, prepare_output_dir, train_and_save, trl_arguments

__all__ = ["EVAL_METRICS", "DPOSettings", "dpo_arguments", "dpo_finetune"]

EVAL_METRICS = ("loss", "rewards/accuracies", "rewards/margins")  # of DPOTrainer.evaluate, without "eval_"


@dataclass
class DPOSettings(SFTSettings):
    """``SFTSettings`` plus DPO's ``beta`` (DPOConfig's default, 0.1); packing is refused, since DPO scores each
    answer of a pair whole. ``DPOSettings.of(sft_settings, beta)`` carries a recipe's settings over."""

    beta: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_beta(self.beta)
        if self.packing:
            raise ValueError("packing=True (sample_packing): DPO does not pack, it scores each answer of a pair "
                             "whole; set packing to False")

    @classmethod
    def of(cls, settings: SFTSettings, beta: float = 0.1) -> DPOSettings:
        """The same training settings with DPO's ``beta``."""
        return cls(**{**asdict(settings), "beta": beta})


def dpo_arguments(settings: DPOSettings, profile: Profile, progress: bool = True) -> dict[str, Any]:
    """TRL ``DPOConfig`` keyword arguments: ``sft.trl_arguments`` without packing, plus ``beta``."""
    args = trl_arguments(settings, profile, progress)
    del args["packing"]
    return {**args, "beta": settings.beta}


def dpo_finetune(model: Any, tokenizer: Any, rows: Any, settings: DPOSettings | None = None, *,
                 output_dir: str | Path, profile: Profile | None = None, lora: Any = None, progress: bool = True,
                 overwrite_output_dir: bool = False, eval_rows: Any = None) -> SFTRun:
    """Train ``model`` with DPO on preference ``rows`` (a list, or a ``datasets.Dataset``) and return the run.

    Every row is checked before the model trains (``preference.explicit_prompt_rows``: a bad one names its index
    and field), and so is ``output_dir`` (``sft.prepare_output_dir``); the adapter is saved there. ``run.losses`` is the DPO loss per logged
    step; ``run.trainer.state.log_history`` also holds TRL's ``rewards/*`` metrics. With ``eval_rows`` (held-out
    pairs), ``run.eval_metrics`` gets DPOTrainer's evaluation after training: the loss, ``rewards/accuracies``
    (the share of pairs whose chosen answer has the higher implicit reward) and ``rewards/margins``.
    """
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    settings = settings or DPOSettings()
    if not isinstance(settings, DPOSettings):
        raise TypeError(f"settings is a {type(settings).__name__}: DPO takes DPOSettings (beta included); "
                        "use DPOSettings.of(settings, beta=0.1)")
    profile = profile or get_profile(verbose=False)
    args = dpo_arguments(settings, profile, progress)
    output_dir = prepare_output_dir(output_dir, True, overwrite_output_dir)
    rows = explicit_prompt_rows(list(rows))
    held_out = Dataset.from_list(explicit_prompt_rows(list(eval_rows))) if eval_rows is not None else None
    config = DPOConfig(output_dir=str(output_dir), **args)
    with progress_bars(progress):
        trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), eval_dataset=held_out,
                             processing_class=tokenizer, peft_config=lora)
    run = train_and_save(trainer, output_dir, progress=progress, overwrite_output_dir=overwrite_output_dir)
    if held_out is not None:
        found = trainer.evaluate()
        run.eval_metrics = {k: found[f"eval_{k}"] for k in EVAL_METRICS}
    return run
