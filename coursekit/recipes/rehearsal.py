"""A recipe on this profile: smoke-sized in a rehearsal, the optimizer the device can run, a gated model's check.

``run_recipe`` passes every recipe through ``for_profile`` before loading anything. In a rehearsal
(``Profile.rehearsal``: ``COURSEKIT_REHEARSAL=1``, as ``bash course.sh rehearse`` sets) of the command line
(``python -m coursekit.finetune`` calls ``run_recipe(..., smoke_sized=True)``; a notebook sizes its recipe by its
profile already, and it runs as given) the recipe keeps its own
model, data, chat template, LoRA targets, k-bit loading, optimizer and packing, so the rehearsal runs its code
paths; only the amount of work shrinks to ``REHEARSAL_CAPS`` (and ``REHEARSAL_ROWS`` training rows, which
``rehearsal_rows`` keeps), and one printed line says what was capped. A gated model needs no token there: the
stand-in Hub serves it. On every profile the optimizer goes through ``quant.optimizer_for`` (one line where a
bitsandbytes optimizer cannot run as asked)::

    >>> from coursekit.recipes import load_recipe
    >>> from coursekit.runtime import Precision, Profile
    >>> R = Profile("colab", "a test", "cpu", Precision("fp32", "no CUDA"), rehearsal=True)
    >>> small = for_profile(load_recipe("recipes/qwen3_medical.yml"), R)
    rehearsal: smoke-sized run (max_steps 2 (was 1 epoch), max_length 128 (was 1024), batch 2×1 (was 4×4), 4 held out (was 100), at most 32 training rows)
    >>> small.base_model, small.training.max_steps, small.training.packing, small.lora_r
    ('Qwen/Qwen3-0.6B', 2, True, 16)
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from coursekit.hub import check_access
from coursekit.quant import optimizer_for
from coursekit.recipes.models import resolve_model_name
from coursekit.runtime import Profile

if TYPE_CHECKING:
    from coursekit.recipes import Recipe

__all__ = ["REHEARSAL_CAPS", "REHEARSAL_ROWS", "for_profile", "rehearsal_rows"]

# The most work a rehearsal does: a few CPU seconds per recipe, with the real vocabularies' logits.
REHEARSAL_CAPS: dict[str, int] = {"max_steps": 2, "max_length": 128, "batch_size": 2,
                                  "gradient_accumulation_steps": 1, "val_set_size": 4, "sample_max_new_tokens": 24}
REHEARSAL_ROWS = 32  # training rows kept, after the held-out prompts are set aside as the recipe says


def _steps(max_steps: int, epochs: float) -> str:
    return f"max_steps {max_steps}" if max_steps > 0 else f"{epochs:g} epoch" + ("" if epochs == 1 else "s")


def _capped(recipe: Recipe) -> tuple[Recipe, list[str]]:
    """The recipe within ``REHEARSAL_CAPS``, and a phrase per value that changed."""
    caps, t = REHEARSAL_CAPS, recipe.training
    steps = min(t.max_steps, caps["max_steps"]) if t.max_steps > 0 else caps["max_steps"]
    length = caps["max_length"] if t.max_length is None else min(t.max_length, caps["max_length"])
    training = replace(t, max_steps=steps, max_length=length, batch_size=min(t.batch_size, caps["batch_size"]),
                       gradient_accumulation_steps=caps["gradient_accumulation_steps"])
    small = replace(recipe, training=training, val_set_size=min(recipe.val_set_size, caps["val_set_size"]),
                    sample_max_new_tokens=min(recipe.sample_max_new_tokens, caps["sample_max_new_tokens"]))
    batch, was_batch = ((x.batch_size, x.gradient_accumulation_steps) for x in (training, t))
    said = [(f"max_steps {steps}", _steps(t.max_steps, t.num_train_epochs), steps != t.max_steps),
            (f"max_length {length}", str(t.max_length), length != t.max_length),
            ("batch {}×{}".format(*batch), "{}×{}".format(*was_batch), batch != was_batch),
            (f"{small.val_set_size} held out", str(recipe.val_set_size), small.val_set_size != recipe.val_set_size),
            (f"{small.sample_max_new_tokens} new tokens a sample", str(recipe.sample_max_new_tokens),
             bool(recipe.sample_prompts) and small.sample_max_new_tokens != recipe.sample_max_new_tokens)]
    phrases = [f"{now} (was {was})" for now, was, changed in said if changed]
    return small, phrases


def for_profile(recipe: Recipe, profile: Profile, smoke_sized: bool = True) -> Recipe:
    """The recipe as it runs on ``profile``: within ``REHEARSAL_CAPS`` in a rehearsal when ``smoke_sized`` (one
    printed line), the optimizer ``quant.optimizer_for`` chooses, and a gated base model checked for a token (waived
    in a rehearsal). A notebook that sizes its own work (``P.size``) runs its recipe with ``smoke_sized=False``."""
    waived = check_access(resolve_model_name(recipe.base_model), rehearsal=profile.rehearsal)
    phrases = []
    if profile.rehearsal and smoke_sized:
        recipe, phrases = _capped(recipe)
        phrases.append(f"at most {REHEARSAL_ROWS} training rows")
    if waived:
        phrases.append(f"gated {recipe.base_model} from the stand-in Hub, no HF_TOKEN needed")
    if phrases:
        print(f"rehearsal: {'smoke-sized run' if smoke_sized else 'the recipe as given'} ({', '.join(phrases)})")
    optim = optimizer_for(recipe.training.optim, profile.device)
    return recipe if optim == recipe.training.optim else replace(recipe, training=replace(recipe.training, optim=optim))


def rehearsal_rows(rows: tuple[list[Any], list[Any]], profile: Profile,
                   smoke_sized: bool = True) -> tuple[list[Any], list[Any]]:
    """``(train, held_out)`` with at most ``REHEARSAL_ROWS`` training rows in a smoke-sized rehearsal; else unchanged.

    >>> from coursekit.runtime import Precision, Profile
    >>> R = Profile("full", "a test", "cpu", Precision("fp32", "no CUDA"), rehearsal=True)
    >>> train, held_out = rehearsal_rows((list(range(100)), [7]), R)
    >>> len(train), held_out
    (32, [7])
    """
    train, held_out = rows
    return (train[:REHEARSAL_ROWS], held_out) if profile.rehearsal and smoke_sized else rows
