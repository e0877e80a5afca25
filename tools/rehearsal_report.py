"""The rehearsal's tables: notebook × profile (pass or fail, time, the scale-only checks it skipped), then each
recipe run through the CLI (pass or fail, time, the samples it printed).

``bash course.sh rehearse`` runs every notebook in the colab and the full profile against the
stand-in Hub (junit XML and the executed notebooks under ``runs/rehearse/<profile>/``), then each of
``RECIPES`` through ``python -m coursekit.finetune`` (its output in ``runs/rehearse/recipes/<name>.log``,
ending with ``rehearse: exit CODE after SECONDS s``), then calls this script. Each skip is a line that
``Profile.at_scale`` printed; the table counts them and lists what was skipped. A recipe passes when it
exited 0 and printed a sample for each of its ``sample_prompts``. The script exits non-zero if anything
failed or did not run; ``--part notebooks`` (some notebooks rehearsed) fails only on one that ran and
failed, ``--part recipes`` reports the recipes alone.

    python tools/rehearsal_report.py runs/rehearse [--part all|notebooks|recipes]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_report import printed_text, run_table  # noqa: E402

from coursekit.course import ROOT, notebook_paths  # noqa: E402
from coursekit.recipes.samples import SAMPLE_LINE  # noqa: E402  (each printed sample's first line)
from coursekit.runtime import SKIP_LINE  # noqa: E402  (the line Profile.at_scale prints)

PROFILES = ("colab", "full")
RECIPES = ("tinyllama_storyteller", "qwen3_medical", "llama32_price_qlora")  # course.sh's REHEARSED_RECIPES
EXIT_LINE = re.compile(r"^rehearse: exit (\d+) after (\d+) s$", re.M)  # course.sh appends it to each log
SAMPLE = re.compile(rf"^{re.escape(SAMPLE_LINE)}\d+/\d+ · ", re.M)


def skipped_checks(notebook: Path) -> list[str]:
    """What each skip line of an executed notebook names, in order."""
    if not notebook.exists():
        return []
    return [line.split("): ", 1)[-1] for line in printed_text(notebook).splitlines() if line.startswith(SKIP_LINE)]


def notebook_report(root: Path, missing_fails: bool = True) -> tuple[str, bool]:
    names = {p.stem for prof in PROFILES for p in (root / prof).glob("*.ipynb")} | {p.stem for p in notebook_paths()}
    reasons: dict[str, set[str]] = {}
    total, failed = 0, []

    def cell(name: str, prof: str, passed: bool, seconds: float) -> str:
        nonlocal total
        failed.extend([] if passed else [name])
        skips = skipped_checks(root / prof / f"{name}.ipynb")
        total += len(skips)
        reasons.setdefault(name, set()).update(skips)
        return f"{'pass' if passed else 'FAIL'} · {seconds:.0f} s · {len(skips)} skipped"

    lines, ok = run_table(root, PROFILES, names, cell)
    if not missing_fails:  # some notebooks rehearsed: only one that ran and failed fails the run
        ok = not failed
    lines += ["", f"Scale-only checks skipped: {total} in all."]
    lines += [f"- `{name}`: " + "; ".join(sorted(why)) for name, why in sorted(reasons.items()) if why]
    return "\n".join(lines), ok


def sample_prompts(name: str) -> int:
    """How many ``sample_prompts`` the shipped recipe ``recipes/<name>.yml`` has."""
    return len(yaml.safe_load((ROOT / "recipes" / f"{name}.yml").read_text(encoding="utf-8")).get("sample_prompts")
               or [])


def recipe_cell(log: Path, wanted: int) -> tuple[str, bool]:
    """One recipe's cell, read from its log: ``pass · 31 s`` (``· 2 of 2 samples`` when it has sample prompts)."""
    if not log.exists():
        return "not run", False
    text = log.read_text(encoding="utf-8", errors="replace")
    ends = EXIT_LINE.findall(text)
    printed = len(SAMPLE.findall(text))
    code, seconds = (int(ends[-1][0]), ends[-1][1]) if ends else (None, "?")
    passed = code == 0 and printed >= wanted
    status = "pass" if passed else "FAIL" + (" (cut off)" if code is None else f" (exit {code})" if code else "")
    samples = f" · {printed} of {wanted} samples" if wanted else ""
    return f"{status} · {seconds} s{samples}", passed


def recipe_report(root: Path) -> tuple[str, bool]:
    lines, ok = ["| recipe (python -m coursekit.finetune, colab profile) | result |", "| --- | --- |"], True
    for name in RECIPES:
        cell, passed = recipe_cell(root / "recipes" / f"{name}.log", sample_prompts(name))
        ok &= passed
        lines.append(f"| `recipes/{name}.yml` | {cell} |")
    return "\n".join(lines), ok


def report(root: Path, part: str = "all") -> tuple[str, bool]:
    """The tables for ``part`` (all, notebooks or recipes) and whether everything in them passed."""
    tables, ok = [], True
    if part in ("all", "notebooks"):
        table, nb_ok = notebook_report(root, missing_fails=part == "all")
        tables.append(table)
        ok &= nb_ok
    if part in ("all", "recipes"):
        table, recipes_ok = recipe_report(root)
        tables.append(table)
        ok &= recipes_ok
    return "\n\n".join(tables), ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tools/rehearsal_report.py", description="The rehearsal's tables.")
    parser.add_argument("root", nargs="?", default="runs/rehearse")
    parser.add_argument("--part", choices=("all", "notebooks", "recipes"), default="all")
    args = parser.parse_args(argv[1:])
    table, ok = report(Path(args.root), args.part)
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
