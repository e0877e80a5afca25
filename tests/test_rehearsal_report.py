"""tools/rehearsal_report.py: the rehearsal's table counts each profile's runs and the scale-only checks skipped."""

from tool_runs import load_tool, write_run

from coursekit import runtime

report = load_tool("rehearsal_report")


def _skips(*what: str) -> str:
    return "".join(f"{runtime.SKIP_LINE} ({i + 1} so far): {w}\n" for i, w in enumerate(what))


def test_table_counts_skips_and_fails_on_a_failed_or_missing_run(tmp_path):
    write_run(tmp_path / "colab", "02_peft_lora", True, 61.2, _skips("the loss halves", "MAE falls"))
    write_run(tmp_path / "full", "02_peft_lora", False, 61.2, _skips("the loss halves"))
    table, ok = report.report(tmp_path)
    row = next(line for line in table.splitlines() if "02_peft_lora" in line)
    assert "pass · 61 s · 2 skipped" in row and "FAIL · 61 s · 1 skipped" in row, row
    assert "Scale-only checks skipped: 3 in all." in table and "MAE falls; the loss halves" in table, table
    assert not ok
    assert "not run" in next(line for line in table.splitlines() if "00_tinygpt" in line)


def test_a_run_with_no_skips_lists_none(tmp_path):
    for prof in report.PROFILES:
        write_run(tmp_path / prof, "03_bpe", True, 19.0, "no skips here\n")
    table, _ = report.report(tmp_path)
    assert "pass · 19 s · 0 skipped" in table and "Scale-only checks skipped: 0 in all." in table, table
    assert "- `03_bpe`" not in table
