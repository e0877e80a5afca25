"""tools/robust_report.py: the robustness run's table reads pass/fail and the key figure of each run."""

import importlib.util
import json

from coursekit import course

spec = importlib.util.spec_from_file_location("robust_report", course.ROOT / "tools" / "robust_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def _write_run(root, name, passed, stdout):
    run = root / name
    run.mkdir(parents=True)
    body = "" if passed else "<failure message='boom'/>"
    (run / "junit.xml").write_text(f"<testsuites><testsuite><testcase classname='x' name='05_qlora.ipynb' time='12.5'>"
                                   f"{body}</testcase></testsuite></testsuites>")
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": stdout}]}]}
    (run / "05_qlora.ipynb").write_text(json.dumps(nb))


def test_table_has_each_figure_and_fails_on_a_failed_or_missing_run(tmp_path):
    for pert, passed in zip(report.PERTURBATIONS, (True, True, False, True)):
        _write_run(tmp_path, pert, passed, "after:  MAE $24.2 · 100% parsed\n")
    table, ok = report.notebook_table(tmp_path)
    row = next(line for line in table.splitlines() if "05_qlora" in line)
    assert row.count("pass · 24.2 · 12 s") == 3 and "FAIL · 24.2" in row, row
    assert not ok  # one failed run, and the other notebooks were not run at all
    assert "not run" in next(line for line in table.splitlines() if "00_tinygpt" in line)


def test_every_notebook_has_a_key_figure():
    assert {p.stem for p in course.notebook_paths()} <= set(report.KEY_FIGURES)
