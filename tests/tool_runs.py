"""Helpers for the tests of tools/*_report.py: load a tool as a module, and write a fake nbmake run."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from coursekit import course


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, course.ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(folder: Path, notebook: str, passed: bool, seconds: float, stdout: str) -> None:
    """``folder/junit.xml`` with one notebook test, and the executed notebook printing ``stdout``."""
    folder.mkdir(parents=True)
    body = "" if passed else "<failure message='boom'/>"
    (folder / "junit.xml").write_text(f"<testsuites><testsuite><testcase classname='x' name='{notebook}.ipynb' "
                                      f"time='{seconds}'>{body}</testcase></testsuite></testsuites>")
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": stdout}]}]}
    (folder / f"{notebook}.ipynb").write_text(json.dumps(nb))
