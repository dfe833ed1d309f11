"""The runner's kernel: what it imports before the first cell, and that it goes away after.

The stages themselves run through it in tests/test_pipeline.py; here, small notebooks.
"""

from __future__ import annotations

import gc
import sys

import nbformat
import psutil
import pytest
from nbformat.reader import NotJSONError
from nbformat.v4 import new_code_cell, new_notebook

from workbook.pipeline import kernel
from workbook.pipeline.runner import NotebookFailed, execute, imported_modules


def notebook(path, *cells: str):
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def outputs(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return ["".join(o.get("text", "")) for c in nb.cells for o in c.get("outputs", [])]


def kernels_left() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


def test_the_modules_a_notebook_imports_at_its_top_level_in_order(tmp_path):
    nb = notebook(tmp_path / "a.ipynb",
                  "%matplotlib inline\nimport numpy as np, os.path\nfrom workbook.stages import data\nfrom workbook.analysis import plots",
                  "!ls\nfrom workbook.analysis.results import details\n\ndef f():\n    import colorsys\n",
                  "import numpy\nfrom . import nothing\nx = (")
    assert imported_modules(nb) == ["numpy", "os.path", "workbook.stages", "workbook.stages.data", "workbook.analysis",
                                    "workbook.analysis.plots",
                                    "workbook.analysis.results", "workbook.analysis.results.details"]


def test_preload_imports_modules_and_skips_other_names():
    sys.modules.pop("colorsys", None)
    kernel.preload(["colorsys", "colorsys.rgb_to_hsv", "no_such_module_anywhere", "workbook.analysis.results.details"])
    assert "colorsys" in sys.modules and "workbook.analysis.results" in sys.modules


def test_before_exit_freezes_what_exists():
    try:
        kernel.before_exit()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_modules_are_imported_before_the_first_cell_but_no_name_is_bound(tmp_path):
    nb = notebook(tmp_path / "a.ipynb",
                  "import sys\nprint('colorsys' in sys.modules)",
                  "print('colorsys' in dir())",
                  "import colorsys")
    out = execute(nb, tmp_path / "out" / "a.ipynb", {}, cwd=tmp_path)
    assert outputs(out) == ["True\n", "False\n"]
    assert (tmp_path / "out" / "a.html").is_file()
    assert kernels_left() == []


def test_a_cell_that_needs_an_import_of_a_later_cell_still_fails(tmp_path):
    nb = notebook(tmp_path / "a.ipynb", "colorsys.rgb_to_hsv(1, 0, 0)", "import colorsys")
    with pytest.raises(NotebookFailed, match="NameError: name 'colorsys' is not defined"):
        execute(nb, tmp_path / "out" / "a.ipynb", {}, cwd=tmp_path)
    assert not (tmp_path / "out" / "a.ipynb").exists()
    assert kernels_left() == []


def test_a_file_that_is_no_notebook_fails_as_papermill_says_and_leaves_no_kernel(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    assert imported_modules(bad) == []
    with pytest.raises(NotJSONError):
        execute(bad, tmp_path / "out" / "bad.ipynb", {}, cwd=tmp_path)
    assert kernels_left() == [] and not (tmp_path / "out" / "bad.ipynb").exists()
