"""The robustness run's table: notebook × perturbation, pass or fail and the key figure.

``bash course.sh robust`` runs every notebook once per perturbation (junit XML and the
executed notebooks under ``runs/robust/<perturbation>/``), then the unit tests in random
order and with one worker, and calls this script on ``runs/robust``. It prints a Markdown
table for ``benchmarks/RESULTS.md`` and exits non-zero if any run failed.

    python tools/robust_report.py runs/robust
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

PERTURBATIONS = ("default", "threads2", "seed1", "seed2")
# The one number per lesson that a perturbation would move first, read from its printed output.
KEY_FIGURES: dict[str, tuple[str, str]] = {
    "00_tinygpt": ("final loss", r"final loss ([\d.]+)"),
    "01_transformers": ("CLM loss", r"model loss ([\d.]+)"),
    "02_peft_lora": ("LoRA held-out loss", r"→ LoRA ([\d.]+)"),
    "03_bpe": ("bytes/token, whole corpus", r"\(([\d.]+) bytes/token\)"),
    "04_sft_lora": ("exact match after", r"exact match: before \d+% → after (\d+%)"),
    "05_qlora": ("test MAE after ($)", r"after:\s+MAE \$([\d.]+)"),
    "06_evals": ("final LoRA loss", r"loss [\d.]+ -> ([\d.]+)"),
    "07_gpt2_pretrain": ("final loss", r"final loss ([\d.]+)"),
    "08_preference": ("DPO held-out win rate", r"held-out: win rate (\d+%)"),
    "09_compute": ("QLoRA loss after", r"QLoRA loss [\d.]+ -> ([\d.]+)"),
}


def junit_results(path: Path) -> dict[str, tuple[bool, float]]:
    """``{test name: (passed, seconds)}`` from a pytest junit XML file; a name that two files share (the same test
    function name in two modules) is kept twice, the second as ``classname::name``, so every test is counted."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        failed = any(child.tag in ("failure", "error") for child in case)
        name = case.get("name", "")
        key = name if name not in results else f"{case.get('classname', '')}::{name}"
        results[key] = (not failed, float(case.get("time", 0)))
    return results


def printed_text(notebook: Path) -> str:
    """Everything an executed notebook printed (stdout streams), in cell order."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    parts = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out.get("text", "")
                parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


def key_figure(name: str, notebook: Path) -> str:
    if name not in KEY_FIGURES or not notebook.exists():
        return "?"
    match = re.search(KEY_FIGURES[name][1], printed_text(notebook))
    return match.group(1) if match else "?"


def run_table(root: Path, columns: Sequence[str], names: Iterable[str], cell: Callable[[str, str, bool, float], str],
              label: Callable[[str], str] = lambda name: f"`{name}`") -> tuple[list[str], bool]:
    """A Markdown table, one row per notebook and one column per run (``root/<column>/junit.xml``).

    ``cell(name, column, passed, seconds)`` writes a cell; a notebook missing from a run reads "not run".
    The flag is False when any run failed or is missing.
    """
    ok = True
    lines = ["| notebook | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
    results = {col: junit_results(root / col / "junit.xml") if (root / col / "junit.xml").exists() else {}
               for col in columns}
    for name in sorted(set(names)):
        cells = []
        for col in columns:
            hit = next((v for k, v in results[col].items() if k.startswith(name)), None)
            ok &= hit is not None and hit[0]
            cells.append("not run" if hit is None else cell(name, col, *hit))
        lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
    return lines, ok


def notebook_table(root: Path) -> tuple[str, bool]:
    names = {p.stem for d in PERTURBATIONS for p in (root / d).glob("*.ipynb")} | set(KEY_FIGURES)

    def cell(name: str, pert: str, passed: bool, seconds: float) -> str:
        figure = key_figure(name, root / pert / f"{name}.ipynb")
        return f"{'pass' if passed else 'FAIL'} · {figure} · {seconds:.0f} s"

    lines, ok = run_table(root, PERTURBATIONS, names, cell,
                          label=lambda name: f"`{name}` ({KEY_FIGURES.get(name, ('', ''))[0]})")
    lines[0] = lines[0].replace("| notebook |", "| notebook (key figure) |", 1)
    return "\n".join(lines), ok


def tests_lines(root: Path) -> tuple[str, bool]:
    lines, ok = [], True
    for xml in sorted(root.glob("tests-*.xml")):
        results = junit_results(xml)
        failed = [k for k, (passed, _) in results.items() if not passed]
        ok &= not failed
        lines.append(f"- `{xml.stem}`: {len(results) - len(failed)} passed, {len(failed)} failed"
                     + (f" ({', '.join(failed[:5])})" if failed else ""))
    return "\n".join(lines), ok


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "runs/robust")
    table, nb_ok = notebook_table(root)
    tests, tests_ok = tests_lines(root)
    print(table + "\n\nUnit tests:\n" + tests)
    return 0 if nb_ok and tests_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
