"""A recipe's sample prompts: after training, the trained model's reply to each, printed by the command line.

``sample_prompts`` (a list of strings) and ``sample_max_new_tokens`` are recipe keys. ``run_recipe`` answers each
prompt after training into ``run.samples``, and ``python -m coursekit.finetune`` prints them. A prompt is framed as
the rows were trained: the user's turn, after the first dataset's ``system`` prompt when it has one, rendered
with the recipe's ``chat_template``. Decoding is greedy (as the course notes' test script), so a rerun prints
the same text::

    >>> check_samples(["A fox in a forest.", " "], max_new_tokens=64)
    Traceback (most recent call last):
    coursekit.recipes.files.RecipeError: sample_prompts[1] is blank: give each prompt some text, or remove the line.
    >>> print(format_samples([("A fox in a forest.", "Once upon a time\\nthe end")]))
    sample 1/1 · A fox in a forest.
        Once upon a time
        the end
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from coursekit.chat import chat_template_for
from coursekit.recipes.files import RecipeError
from coursekit.sampling import sample_generations

if TYPE_CHECKING:
    from coursekit.recipes import Recipe

__all__ = ["SAMPLE_LINE", "check_samples", "format_samples", "recipe_samples"]

SAMPLE_LINE = "sample "  # each printed sample's first line starts so (tools/rehearsal_report.py counts them)


def check_samples(prompts: Any, max_new_tokens: int) -> list[str]:
    """``prompts`` as a list of strings, each with some text, and ``max_new_tokens`` ≥ 1; anything else is a
    ``RecipeError`` naming the fix.

    >>> check_samples(["A fox in a forest."], max_new_tokens=64)
    ['A fox in a forest.']
    """
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise RecipeError(f"sample_prompts must be a list of strings, got {prompts!r}: write each prompt on its "
                          "own line, starting with '- '.")
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise RecipeError(f"sample_prompts[{i}] is {prompt!r}, not a string: quote it, e.g. \"{prompt}\".")
        if not prompt.strip():
            raise RecipeError(f"sample_prompts[{i}] is blank: give each prompt some text, or remove the line.")
    if max_new_tokens < 1:
        raise RecipeError(f"sample_max_new_tokens={max_new_tokens}: must be at least 1 token per sample.")
    return list(prompts)


def recipe_samples(recipe: Recipe, model: Any, tokenizer: Any) -> list[tuple[str, str]]:
    """``(prompt, reply)`` for each of the recipe's ``sample_prompts``: greedy, at most ``sample_max_new_tokens``.

    >>> from coursekit.assets import load_tiny
    >>> from coursekit.recipes import load_recipe
    >>> model, tok = load_tiny("llama")                  # random weights: the reply is noise
    >>> recipe = load_recipe("recipes/sft_smoke.yml", sample_prompts=["2 + 2 ="], sample_max_new_tokens=4)
    >>> [(prompt, type(reply).__name__) for prompt, reply in recipe_samples(recipe, model, tok)]
    [('2 + 2 =', 'str')]
    """
    template = {"chat_template": chat_template_for(tokenizer, recipe.chat_template), "enable_thinking": False}
    system = recipe.datasets[0].system
    framing = [{"role": "system", "content": system}] if system else []
    samples = []
    for prompt in recipe.sample_prompts:
        # max_length=None: a checkpoint's own (TinyLlama's 2048) would only add a warning beside max_new_tokens
        g = sample_generations(model, tokenizer, [*framing, {"role": "user", "content": prompt}],
                               template_kwargs=template, do_sample=False,
                               max_new_tokens=recipe.sample_max_new_tokens, max_length=None)
        samples.append((prompt, g.texts[0].strip()))
    return samples


def format_samples(samples: Sequence[tuple[str, str]]) -> str:
    """Each sample as ``sample i/n · prompt``, then its reply indented (what the command line prints)."""
    blocks = []
    for i, (prompt, reply) in enumerate(samples, 1):
        body = "\n".join("    " + line for line in (reply or "(an empty reply)").splitlines())
        blocks.append(f"{SAMPLE_LINE}{i}/{len(samples)} · {prompt}\n{body}")
    return "\n".join(blocks)
