"""The rehearsal's table: notebook × profile, pass or fail, time, and the scale-only checks it skipped.

``bash course.sh rehearse`` runs every notebook in the colab and the full profile against the
stand-in Hub (junit XML and the executed notebooks under ``runs/rehearse/<profile>/``), then calls
this script. Each skip is a line that ``Profile.at_scale`` printed; the table counts them and lists
what was skipped. It exits non-zero if a notebook failed or did not run.

    python tools/rehearsal_report.py runs/rehearse
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_report import printed_text, run_table  # noqa: E402

from coursekit.course import notebook_paths  # noqa: E402
from coursekit.runtime import SKIP_LINE  # noqa: E402  (the line Profile.at_scale prints)

PROFILES = ("colab", "full")


def skipped_checks(notebook: Path) -> list[str]:
    """What each skip line of an executed notebook names, in order."""
    if not notebook.exists():
        return []
    return [line.split("): ", 1)[-1] for line in printed_text(notebook).splitlines() if line.startswith(SKIP_LINE)]


def report(root: Path) -> tuple[str, bool]:
    names = {p.stem for prof in PROFILES for p in (root / prof).glob("*.ipynb")} | {p.stem for p in notebook_paths()}
    reasons: dict[str, set[str]] = {}
    total = 0

    def cell(name: str, prof: str, passed: bool, seconds: float) -> str:
        nonlocal total
        skips = skipped_checks(root / prof / f"{name}.ipynb")
        total += len(skips)
        reasons.setdefault(name, set()).update(skips)
        return f"{'pass' if passed else 'FAIL'} · {seconds:.0f} s · {len(skips)} skipped"

    lines, ok = run_table(root, PROFILES, names, cell)
    lines += ["", f"Scale-only checks skipped: {total} in all."]
    lines += [f"- `{name}`: " + "; ".join(sorted(why)) for name, why in sorted(reasons.items()) if why]
    return "\n".join(lines), ok


def main(argv: list[str]) -> int:
    table, ok = report(Path(argv[1] if len(argv) > 1 else "runs/rehearse"))
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
