"""Notebook gates that nbmake does not have, for every notebook run (``tests`` and ``notebooks``).

Every notebook nbmake executes is also checked for its figures: a cell that calls
``plt.show()`` must carry an image output (``course.figure_problems``), or the
notebook fails. With ``$COURSEKIT_EXECUTED_DIR`` set, each executed notebook is
saved there (the robustness run reads its printed figures from these copies).
"""

import os
from pathlib import Path

from coursekit import course


def _gate_executed_notebooks() -> None:
    try:
        from nbmake.nb_result import NotebookError
        from nbmake.nb_run import NotebookRun
    except ImportError:  # nbmake not installed: no notebooks are run
        return
    if getattr(NotebookRun.execute, "coursekit_gated", False):
        return
    run_notebook = NotebookRun.execute

    def execute(self):
        result = run_notebook(self)
        keep = os.environ.get("COURSEKIT_EXECUTED_DIR")
        if keep:
            import nbformat

            Path(keep).mkdir(parents=True, exist_ok=True)
            nbformat.write(result.nb, str(Path(keep) / Path(self.filename).name))
        problems = course.figure_problems(result.nb)
        if result.error is None and problems:
            summary = f"{Path(self.filename).name}: {problems[0]}"
            result.error = NotebookError(summary=summary, trace="\n".join(problems),
                                         failing_cell_index=int(problems[0].split()[1]))
        return result

    execute.coursekit_gated = True
    NotebookRun.execute = execute


def pytest_configure(config):
    _gate_executed_notebooks()
