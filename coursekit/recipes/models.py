"""A recipe's base model: a name resolved to a folder or Hub id, its k-bit config on this profile, and the load.

    >>> resolve_model_name("tiny:llama").endswith("llama")
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coursekit import assets
from coursekit.hub import check_access
from coursekit.quant import kbit_config
from coursekit.runtime import Profile

if TYPE_CHECKING:
    from coursekit.recipes import Recipe

__all__ = ["load_model", "quantization_config", "resolve_model_name"]


def resolve_model_name(spec: str) -> str:
    """``packaged:smollm2`` and ``tiny:llama`` → local folders; anything else unchanged."""
    if spec.startswith("tiny:"):
        return str(assets.tiny_model_path(spec.split(":", 1)[1]))
    return str(assets.resolve(spec))


def quantization_config(recipe: Recipe, profile: Profile) -> Any:
    """The ``BitsAndBytesConfig`` the recipe's base loads with on this profile (None: unquantized)."""
    bits = 4 if recipe.load_in_4bit else 8 if recipe.load_in_8bit else None
    return kbit_config(bits, profile, recipe.bnb_4bit_quant_type, recipe.bnb_4bit_use_double_quant)


def load_model(recipe: Recipe, profile: Profile) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for the recipe on the profile's device: full precision, or k-bit and ready for QLoRA."""
    name = resolve_model_name(recipe.base_model)
    check_access(name, rehearsal=profile.rehearsal)  # the stand-in Hub needs no token
    quant = quantization_config(recipe, profile)
    model, tok = assets.load_causal_lm(name, profile=profile, quantization_config=quant)
    if quant is None:
        return model, tok
    from peft import prepare_model_for_kbit_training

    # Checkpointing is left to the trainer (TrainingArguments' activation_checkpointing, and TRL makes the inputs
    # require grad for a peft model): peft's own switch goes through transformers' deprecated alias.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False), tok
