"""Running a stage: `python -m workbook run STAGE`, the cmd of every stage in dvc.yaml.

One process checks params.yaml (one line naming a bad key, before any work), hands the stage's
notebook exactly the params dvc.yaml declares for it (papermill injects them, so the executed
notebook shows them), renders it to HTML and records the stage's wall time. `execute` runs a
notebook the way the pipeline does, also for `python -m workbook compare`: papermill into a
temporary file, rendered to HTML in the same process, and only a notebook that ran to the end
renamed into place.
A notebook that fails leaves its partly executed copy under a `.tmp-` name beside the target
(ignored by git and DVC, swept by the next run), so the failing cell can be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from workbook.atomic import TMP_PREFIX, atomic_path, write_json
from workbook.quiet import quiet_notebook
from workbook.params import load_params, subset
from workbook.paths import Paths, find_root
from workbook.stages import RUN_ENV, declared_params, notebook_name

class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the cell's error and where the partial copy is."""


@contextlib.contextmanager
def _kernel():
    """The notebook's kernel, talking to this process over Unix sockets in a private temporary
    folder: nothing listens on the network (over TCP, ipykernel warns of unencrypted traffic at
    every start), and the sockets go with the folder."""
    from jupyter_client.manager import KernelManager

    with tempfile.TemporaryDirectory(prefix="workbook-kernel-") as folder:
        km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(folder, "kernel"))
        try:
            yield km
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=False)


def execute(source: Path, target: Path, parameters: dict, cwd: Path, title: str | None = None) -> Path:
    """Run `source` with `parameters` injected; write `target` (.ipynb) and `target` .html.

    Returns the path of the executed notebook. Raises NotebookFailed when a cell fails.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    target = Path(target)
    partial = target.with_name(f"{TMP_PREFIX}{target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _kernel() as km:
            papermill.execute_notebook(str(source), str(partial), parameters=parameters, cwd=str(cwd), km=km,
                                       log_output=True, progress_bar=False, report_mode=False)
    except papermill.PapermillExecutionError as e:
        raise NotebookFailed(f"{source}: cell {e.exec_count} raised {e.ename}: {e.evalue}\n"
                             f"the partly executed notebook is {partial}") from None
    nb = nbformat.read(partial, as_version=4)
    if quiet_notebook(nb):  # native start-up lines that no setting reaches (workbook.quiet)
        nbformat.write(nb, partial)
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nb, resources={"metadata": {"name": title or target.stem}})
    with atomic_path(target.with_suffix(".html")) as tmp:
        tmp.write_text(html)
    os.replace(partial, target)
    return target


# ---------------------------------------------------------------------------------------------
# running a stage: `python -m workbook run STAGE`


def run_stage(stage: str, root: Path | None = None) -> Path:
    """Check params.yaml, execute the stage's notebook with its declared params, render it, and
    record the wall time. Raises ParamError before any work when a value is bad, and
    runner.NotebookFailed when a cell fails (nothing is renamed into reports/ then)."""
    started = time.time()
    root = root or find_root()
    paths = Paths(root)
    values = subset(load_params(paths.params), declared_params(stage, root))
    os.environ[RUN_ENV] = stage
    name = notebook_name(stage)
    executed = execute(root / "notebooks" / f"{name}.ipynb", paths.report(name), {"params": values},
                       cwd=root, title=name.replace("_", " ", 1))
    papermill = json.loads(executed.read_text())["metadata"].get("papermill", {})
    write_json(paths.timing(stage), {"wall_s": round(time.time() - started, 2),
                                     "notebook_s": round(papermill.get("duration") or 0.0, 2)})
    return executed
