"""The runner's kernel: what it imports before the first cell, and that it goes away after.

The stages themselves run through it in tests/test_pipeline.py; here, small notebooks.
"""

from __future__ import annotations

import gc
import json
import sys

import nbformat
import psutil
import pytest
from nbformat.reader import NotJSONError
from nbformat.v4 import new_code_cell, new_notebook

from workbook.pipeline import kernel
from workbook.pipeline.runner import (
    NotebookFailed,
    execute,
    imported_modules,
    notebook_code,
)


def notebook(path, *cells: str):
    nb = new_notebook(cells=[new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def outputs(path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    return ["".join(o.get("text", "")) for c in nb.cells for o in c.get("outputs", [])]


def text_notebook(path, *cells: str):
    """A notebook as the project keeps them: percent-format text, no metadata (jupytext.toml)."""
    path.write_text("".join(f"# %%\n{c}\n\n" for c in cells))
    return path


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


def test_a_file_that_is_no_notebook_fails_as_its_reader_says_and_leaves_no_kernel(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    assert imported_modules(bad) == []
    with pytest.raises(NotJSONError):
        execute(bad, tmp_path / "out" / "bad.ipynb", {}, cwd=tmp_path)
    assert kernels_left() == [] and not (tmp_path / "out" / "bad.ipynb").exists()


def test_a_text_notebook_runs_with_its_parameters_and_is_written_as_an_executed_notebook(tmp_path):
    nb = tmp_path / "a.py"
    nb.write_text('# %% [markdown]\n# A title\n\n# %% tags=["parameters"]\nx = None\n\n# %%\nprint(x * 2)\n')
    assert notebook_code(nb) == ["x = None", "print(x * 2)"]
    out = execute(nb, tmp_path / "out" / "a.ipynb", {"x": 21}, cwd=tmp_path)
    assert outputs(out) == ["42\n"]
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata.kernelspec.name == "python3" and "jupytext" not in executed.metadata
    assert "A title" in (tmp_path / "out" / "a.html").read_text()
    assert nb.read_text().endswith("print(x * 2)\n"), "the source is left as it was"


def test_what_native_code_writes_to_the_process_stays_out_of_the_cells_and_python_warnings_do_not(tmp_path):
    nb = text_notebook(tmp_path / "a.py",
                       "import os\nos.write(2, b'E0000 node_def_util.cc:682] native chatter\\n')\n"
                       "os.write(1, b'native stdout\\n')",
                       "import warnings\nwarnings.warn('a warning that matters')\nprint('printed')")
    text = "".join(outputs(execute(nb, tmp_path / "out" / "a.ipynb", {}, cwd=tmp_path)))
    assert "native" not in text
    assert "UserWarning: a warning that matters" in text and "printed" in text


def test_the_jupyter_set_up_goes_into_the_environments_config_and_keeps_the_rest(tmp_path):
    config = kernel.kernel_config(tmp_path)
    lab = tmp_path / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json"
    server = tmp_path / "etc" / "jupyter" / "jupyter_server_config.json"
    assert kernel.configure_jupyter(tmp_path)
    assert json.loads(config.read_text()) == {"IPKernelApp": {"capture_fd_output": False}}
    assert json.loads(lab.read_text()) == kernel.LAB and json.loads(server.read_text()) == kernel.SERVER
    config.write_text(json.dumps({"IPKernelApp": {"capture_fd_output": True, "matplotlib": "inline"}, "A": {"b": 1}}))
    server.write_text(json.dumps({"ServerApp": {"port": 9999}}))
    assert kernel.configure_jupyter(tmp_path)
    assert json.loads(config.read_text()) == {"IPKernelApp": {"capture_fd_output": False, "matplotlib": "inline"},
                                              "A": {"b": 1}}
    assert json.loads(server.read_text()) == {"ServerApp": {"port": 9999, **kernel.SERVER["ServerApp"]}}
    config.write_text("not json")
    assert not kernel.configure_jupyter(tmp_path) and config.read_text() == "not json"


def test_a_kernel_of_this_environment_reads_the_quiet_setting(tmp_path):
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    kernel.configure_jupyter()  # what every stage run does
    nb = new_notebook(cells=[new_code_cell("import os\nos.write(2, b'native chatter\\n')\nprint('printed')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert [o.get("text") for o in nb.cells[0].outputs] == ["printed\n"]
