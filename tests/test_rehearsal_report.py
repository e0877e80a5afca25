"""tools/rehearsal_report.py: the rehearsal's table counts each profile's runs and the scale-only checks skipped."""

import importlib.util
import json

from coursekit import course, runtime

spec = importlib.util.spec_from_file_location("rehearsal_report", course.ROOT / "tools" / "rehearsal_report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def _write_run(root, profile, passed, skips):
    run = root / profile
    run.mkdir(parents=True)
    body = "" if passed else "<failure message='boom'/>"
    (run / "junit.xml").write_text(f"<testsuites><testsuite><testcase classname='x' name='02_peft_lora.ipynb' "
                                   f"time='61.2'>{body}</testcase></testsuite></testsuites>")
    text = "".join(f"{runtime.SKIP_LINE} ({i + 1} so far): {what}\n" for i, what in enumerate(skips))
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": text}]}]}
    (run / "02_peft_lora.ipynb").write_text(json.dumps(nb))


def test_the_report_reads_the_line_the_profile_prints():
    assert report.SKIP_LINE == runtime.SKIP_LINE


def test_table_counts_skips_and_fails_on_a_failed_or_missing_run(tmp_path):
    _write_run(tmp_path, "colab", True, ["the loss halves", "MAE falls"])
    _write_run(tmp_path, "full", False, ["the loss halves"])
    table, ok = report.report(tmp_path)
    row = next(line for line in table.splitlines() if "02_peft_lora" in line)
    assert "pass · 61 s · 2 skipped" in row and "FAIL · 61 s · 1 skipped" in row, row
    assert "Scale-only checks skipped: 3 in all." in table and "MAE falls; the loss halves" in table, table
    assert not ok
    assert "not run" in next(line for line in table.splitlines() if "00_tinygpt" in line)
    _write_run(tmp_path / "ok", "colab", True, [])
    _write_run(tmp_path / "ok", "full", True, [])
    assert "FAIL" not in report.report(tmp_path / "ok")[0]
