"""What `python -m workbook run` asks of a notebook's kernel besides its cells (workbook.pipeline.runner).

Each stage runs in a fresh kernel, and two of its fixed costs are not the stage's work:

- Importing what the notebook imports: TensorFlow alone takes 6 to 9 s here. `preload` does it as
  soon as the kernel is up, while the runner is still loading papermill and nbconvert and
  preparing the notebook, so the two overlap. It imports modules only and binds no name in the
  notebook's namespace: a cell that forgot an import still fails, as it would in JupyterLab.
- Ending the kernel: a Python process that has imported TensorFlow took 1.4 s to exit here, most
  of it the garbage collector's passes, at finalization, over the 400,000 and more objects
  TensorFlow and Keras hold; with them frozen (`before_exit`, after the last cell) 0.15 s.
  Everything else of an exit (exit handlers, module teardown) runs as ever.

Both are sent by the runner as silent requests, outside the notebook's cells: they leave no trace
in the executed notebook, and nothing else calls them.
"""

from __future__ import annotations

import gc
import importlib


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
