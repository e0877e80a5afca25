"""Entry point: fine-tune with a YAML recipe (``coursekit.recipes``), or only validate it.

    $ python -m coursekit.finetune recipes/sft_smoke.yml
    $ python -m coursekit.finetune recipes/qwen3_medical.yml --check   # validate only, no download
    $ python -m coursekit.finetune recipes/sft_smoke.yml --overwrite-output-dir  # replace an earlier run
    $ python -m coursekit.finetune --aliases                           # Axolotl's keys and ours

After training it prints the loss, the held-out scores (``val_set_size``) and the trained model's reply to
each of the recipe's ``sample_prompts``. In a rehearsal (``COURSEKIT_REHEARSAL=1`` against the stand-in Hub,
as ``bash course.sh rehearse`` runs the course's recipes) the run is smoke-sized, and says so in one line.

``--check`` checks what it can without a download: the keys, every local dataset file and its rows, and that
``output_dir`` can take the adapter. Every problem ends as one line, ``error: ...``, and exit code 2::

    >>> main(["recipes/sft_smoke.yml", "--check"])     # doctest: +ELLIPSIS
    packaged:smollm2 (full precision) on data/units.jsonl [train]
    ...
    recipe OK
    0
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from coursekit.chat import DataError
from coursekit.hub import AssetError
from coursekit.recipes import RecipeError, alias_table, check_recipe, describe, load_recipe, run_recipe
from coursekit.recipes.samples import format_samples
from coursekit.sft import OutputDirError

# What a student can fix from the message alone: reported as one line, not a traceback.
PROBLEMS = (RecipeError, DataError, AssetError, OutputDirError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m coursekit.finetune", description="Run an SFT recipe (YAML).")
    parser.add_argument("recipe", nargs="?", help="path to a recipe, e.g. recipes/sft_smoke.yml")
    parser.add_argument("--check", action="store_true", help="validate the recipe and stop (no download)")
    parser.add_argument("--aliases", action="store_true", help="print the Axolotl key aliases and stop")
    parser.add_argument("--max-steps", type=int, help="override max_steps")
    parser.add_argument("--output-dir", help="override output_dir")
    parser.add_argument("--overwrite-output-dir", action="store_true", default=None,
                        help="replace the files of an earlier run in output_dir")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    given = (("max_steps", args.max_steps), ("output_dir", args.output_dir),
             ("overwrite_output_dir", args.overwrite_output_dir))
    return {k: v for k, v in given if v is not None}


def main(argv: Sequence[str] | None = None) -> int:
    """Validate a recipe (``--check``) or run it; 2 on a bad recipe, dataset file or row, or output folder, else 0."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.aliases:
        print(alias_table())
        return 0
    if not args.recipe:
        parser.error("give a recipe, e.g. recipes/sft_smoke.yml")
    try:
        recipe = load_recipe(args.recipe, **_overrides(args))
        print(describe(recipe))
        if args.check:
            check_recipe(recipe)
            print("recipe OK")
            return 0
        run = run_recipe(recipe, smoke_sized=True)  # only a rehearsal caps the work (recipes.rehearsal)
    except PROBLEMS as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)  # one line, whatever the message held
        return 2
    print(f"trained {len(run.history)} logged steps in {run.seconds:.1f} s; final loss {run.final_loss:.4f}; "
          f"adapter saved to {run.output_dir}")
    if run.eval_metrics:
        print("held-out: " + ", ".join(f"{k} {v:.4f}" for k, v in run.eval_metrics.items()))
    if run.samples:  # the recipe's sample_prompts, answered by the trained model
        print(format_samples(run.samples))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
