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
(`QUIET_ARGS`), and `quiet_kernels` sets the same in this environment's IPython config, which
every kernel started from it reads: JupyterLab's, VS Code's, nbconvert's.
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


def kernel_config(prefix: str | Path = sys.prefix) -> Path:
    """The IPython kernel config file of the environment at `prefix` (IPython reads
    PREFIX/etc/ipython/ after the user's profile)."""
    return Path(prefix) / "etc" / "ipython" / "ipython_kernel_config.json"


def quiet_kernels(prefix: str | Path = sys.prefix) -> bool:
    """Set `QUIET` in the environment's kernel config, keeping what else it holds; False where the
    file cannot be read as JSON or written (left as it is: the runner's own kernel is quiet anyway)."""
    path = kernel_config(prefix)
    try:
        config = json.loads(path.read_text()) if path.exists() else {}
        app = config.setdefault("IPKernelApp", {})
        if app.get("capture_fd_output") is False:
            return True
        app.update(QUIET["IPKernelApp"])
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(config, indent=2) + "\n")
    except (OSError, ValueError, AttributeError):
        return False
    return True


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
