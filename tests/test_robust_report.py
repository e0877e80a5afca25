"""tools/robust_report.py: the robustness run's table reads pass/fail and the key figure of each run."""

from tool_runs import load_tool, write_run

from coursekit import course

report = load_tool("robust_report")


def test_table_has_each_figure_and_fails_on_a_failed_or_missing_run(tmp_path):
    for pert, passed in zip(report.PERTURBATIONS, (True, True, False, True)):
        write_run(tmp_path / pert, "05_qlora", passed, 12.5, "after:  MAE $24.2 · 100% parsed\n")
    table, ok = report.notebook_table(tmp_path)
    row = next(line for line in table.splitlines() if "05_qlora" in line)
    assert row.count("pass · 24.2 · 12 s") == 3 and "FAIL · 24.2" in row, row
    assert not ok  # one failed run, and the other notebooks were not run at all
    assert "not run" in next(line for line in table.splitlines() if "00_tinygpt" in line)


def test_every_notebook_has_a_key_figure():
    assert {p.stem for p in course.notebook_paths()} <= set(report.KEY_FIGURES)


def test_two_tests_of_the_same_name_in_two_files_are_both_counted(tmp_path):
    xml = tmp_path / "tests-1worker.xml"
    xml.write_text("<testsuites><testsuite>"
                   "<testcase classname='tests.test_a' name='test_x' time='0.1'/>"
                   "<testcase classname='tests.test_b' name='test_x' time='0.2'><failure message='no'/></testcase>"
                   "</testsuite></testsuites>")
    results = report.junit_results(xml)
    assert len(results) == 2 and sorted(passed for passed, _ in results.values()) == [False, True], results
