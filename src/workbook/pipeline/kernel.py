"""What `python -m workbook run` asks of a notebook's kernel besides its cells (workbook.pipeline.runner),
and the setting that keeps native start-up lines out of every kernel's cells.

An optional speed-up of the pipeline's runs, nothing more: each stage runs in a fresh kernel,
and two of its fixed costs are not the stage's work.

- `preload` imports what the notebook imports (TensorFlow takes seconds) as soon as the kernel is
  up, while the runner is still loading papermill, so the two overlap. It binds no name in the
  notebook's namespace: a cell that forgot an import still fails, as it would in JupyterLab.
- `before_exit` freezes the objects TensorFlow and Keras hold (hundreds of thousands) out of the
  garbage collector's way, so the kernel's exit does not walk them; exit handlers run as ever.

Both are sent by the runner as silent requests, outside the notebook's cells: they leave no trace
in the executed notebook, and nothing else calls them. `python -m workbook bench` shows the
fixed cost per stage they cut.

Quiet kernels: TensorFlow, absl and XNNPACK write their start-up lines from C++ to file
descriptor 2, and ipykernel copies what reaches the process's descriptors into the running cell
(`IPKernelApp.capture_fd_output`). Off, those lines stay in the terminal that started the kernel;
Python's warnings and prints still reach the cell. The runner starts its kernel so
(`QUIET_ARGS`), and `configure_jupyter` sets the same in this environment's IPython config, which
every kernel started from it reads: JupyterLab's, VS Code's, nbconvert's; with JupyterLab's
settings for the stage notebooks (workbook.tools.jupyterlab).
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
from pathlib import Path

from workbook.pipeline.atomic import write_text

QUIET = {"IPKernelApp": {"capture_fd_output": False}}
QUIET_ARGS = ["--IPKernelApp.capture_fd_output=False"]
# The kernel the runner starts, as the executed notebooks name it (the source notebooks name none).
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# JupyterLab: a double-clicked .py file opens as a notebook (Jupytext's viewer), and the server
# reads the text notebooks through workbook.tools.jupyterlab (their kernel, unmodified on opening).
LAB = {"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}}}
SERVER = {"ServerApp": {"contents_manager_class": "workbook.tools.jupyterlab.StageNotebooks"}}


def kernel_config(prefix: str | Path = sys.prefix) -> Path:
    """The IPython kernel config file of the environment at `prefix` (IPython reads
    PREFIX/etc/ipython/ after the user's profile)."""
    return Path(prefix) / "etc" / "ipython" / "ipython_kernel_config.json"


def configure_jupyter(prefix: str | Path = sys.prefix) -> bool:
    """The environment's Jupyter set-up for the stage notebooks, in its config files (each keeps
    what else it holds): quiet kernels (`QUIET`), JupyterLab's viewer for them (`LAB`), the server's
    contents manager (`SERVER`). False where a file cannot be read as JSON or written (it is left
    as it is: the runner's own kernel is quiet anyway)."""
    prefix = Path(prefix)
    return all([_merge(kernel_config(prefix), QUIET),
                _merge(prefix / "etc" / "jupyter" / "labconfig" / "default_setting_overrides.json", LAB),
                _merge(prefix / "etc" / "jupyter" / "jupyter_server_config.json", SERVER)])


def _merge(path: Path, settings: dict) -> bool:
    """`settings` put into the JSON file at `path` (nested keys merged, the rest kept); written
    only when that changes it."""
    try:
        config = json.loads(path.read_text()) if path.exists() else {}
        merged = _merged(config, settings)
        if merged != config:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(merged, indent=2) + "\n")
    except (OSError, ValueError, AttributeError, TypeError):
        return False
    return True


def _merged(config: dict, settings: dict) -> dict:
    out = dict(config)
    for key, value in settings.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def preload(modules: list[str]) -> None:
    """Import `modules` in order; a name that is not a module (`from a import b` gives "a.b") is
    skipped, and so is one that fails to import: the notebook's own import shows that error in
    its cell."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  the cell that imports it raises it where it can be read
            pass


def before_exit() -> None:
    """Move every object there is out of the garbage collector's way (`gc.freeze`), so that the
    process's exit does not walk them: exit handlers and module teardown run as ever."""
    gc.freeze()
