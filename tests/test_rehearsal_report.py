"""tools/rehearsal_report.py: the rehearsal's table counts each profile's runs and the scale-only checks skipped,
and shows each recipe run through the CLI with its time and the samples it printed."""

import re

from tool_runs import load_tool, write_run

from coursekit import course, runtime
from coursekit.recipes.samples import format_samples

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


def _recipe_log(root, name, text):
    folder = root / "recipes"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.log").write_text(text)


STORIES = format_samples([("A bright student ...", "Once upon a time"), ("A global mission ...", "The end")])


def test_the_recipe_table_shows_each_recipe_its_time_and_the_samples_printed(tmp_path):
    _recipe_log(tmp_path, "tinyllama_storyteller", f"training...\n{STORIES}\nrehearse: exit 0 after 31 s\n")
    _recipe_log(tmp_path, "qwen3_medical", "Traceback ...\nrehearse: exit 1 after 12 s\n")
    table, ok = report.report(tmp_path, part="recipes")
    rows = {name: next((line for line in table.splitlines() if f"recipes/{name}.yml" in line), "")
            for name in report.RECIPES}
    assert "| pass · 31 s · 2 of 2 samples |" in rows["tinyllama_storyteller"], table
    assert "| FAIL (exit 1) · 12 s |" in rows["qwen3_medical"], table
    assert "| not run |" in rows["llama32_price_qlora"], table
    assert not ok and "00_tinygpt" not in table, table  # recipes only: no notebook table


def test_a_recipe_that_printed_too_few_samples_or_was_cut_off_fails(tmp_path):
    one_story = format_samples([("A bright student ...", "Once")])
    _recipe_log(tmp_path, "tinyllama_storyteller", f"{one_story}\nrehearse: exit 0 after 30 s\n")
    _recipe_log(tmp_path, "qwen3_medical", "training... (killed)\n")
    _recipe_log(tmp_path, "llama32_price_qlora", "rehearse: exit 0 after 25 s\n")
    table, ok = report.report(tmp_path, part="recipes")
    assert "FAIL · 30 s · 1 of 2 samples" in table and "FAIL (cut off) · ? s" in table, table
    assert "| `recipes/llama32_price_qlora.yml` | pass · 25 s |" in table and not ok, table


def test_every_recipe_passing_passes_and_the_report_names_what_course_sh_rehearses(tmp_path):
    for name in report.RECIPES:
        stories = STORIES if report.sample_prompts(name) else ""
        _recipe_log(tmp_path, name, f"{stories}\nrehearse: exit 0 after 20 s\n")
    table, ok = report.report(tmp_path, part="recipes")
    assert ok, table
    assert report.sample_prompts("tinyllama_storyteller") == 2
    listed = re.search(r"^REHEARSED_RECIPES=\((.*)\)$", (course.ROOT / "course.sh").read_text(), re.M)
    assert listed and tuple(listed.group(1).split()) == report.RECIPES, listed and listed.group(1)


def test_a_partial_notebook_rehearsal_fails_only_on_a_notebook_that_ran_and_failed(tmp_path):
    for prof in report.PROFILES:
        write_run(tmp_path / prof, "09_compute", True, 40.0, "")
    table, ok = report.report(tmp_path, part="notebooks")
    assert ok and "recipes/" not in table, table  # the other notebooks read "not run" without failing the run
    assert "not run" in next(line for line in table.splitlines() if "00_tinygpt" in line)
    assert not report.report(tmp_path, part="all")[1]  # the whole rehearsal needs every notebook and recipe
    (tmp_path / "colab" / "junit.xml").write_text((tmp_path / "colab" / "junit.xml").read_text().replace(
        "time='40.0'>", "time='40.0'><failure message='boom'/>"))
    assert not report.report(tmp_path, part="notebooks")[1]
