"""Running a stage: `python -m workbook run STAGE`, the cmd of every stage in dvc.yaml.

One process checks params.yaml (one line naming a bad key, before any work), hands the stage's
notebook exactly the params dvc.yaml declares for it (papermill injects them, so the executed
notebook shows them), renders it to HTML and records the stage's wall time. `execute` runs a
notebook the way the pipeline does, also for `python -m workbook compare`: papermill into a
temporary file, rendered to HTML in the same process, and only a notebook that ran to the end
renamed into place.
A notebook that fails leaves its partly executed copy under a `.tmp-` name beside the target
(ignored by git and DVC, swept by the next run), so the failing cell can be read.

The source notebooks are text (notebooks/NN_stage.py, Jupytext's percent format: see
jupytext.toml): read into a notebook in memory, executed, and written out as .ipynb and .html.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

from workbook.pipeline.atomic import TMP_PREFIX, atomic_path, write_json
from workbook.pipeline.contract import RUN_ENV, declared_params, notebook_name
from workbook.pipeline.kernel import KERNELSPEC, QUIET_ARGS, configure_jupyter
from workbook.pipeline.memory import PeakMemory
from workbook.pipeline.params import load_params, subset
from workbook.pipeline.paths import Paths, find_root


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the cell's error and where the partial copy is."""



def read_notebook(path: Path):
    """The notebook at `path` (a text notebook, or an .ipynb), as an nbformat notebook in memory.
    Raises on an .ipynb that is no notebook."""
    import jupytext

    return jupytext.read(Path(path))


def notebook_code(notebook) -> list[str]:
    """The Python of each code cell of `notebook` (a path, or a notebook read), without its lines of
    IPython magics and shell escapes. Raises on a file that is no notebook."""
    nb = read_notebook(notebook) if isinstance(notebook, (str, Path)) else notebook
    cells = [c for c in nb.cells if c.cell_type == "code"]
    return ["\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for c in cells]


def imported_modules(notebook) -> list[str]:
    """The modules the notebook's code cells import at their top level, in order, for
    workbook.pipeline.kernel.preload: `import a.b` gives "a.b"; `from a import b` gives "a.b" (a module, or
    a name that preload skips) after "a"."""
    import ast

    try:
        cells = notebook_code(notebook)
    except (OSError, ValueError, KeyError, TypeError):
        return []  # papermill reports what is wrong with the notebook
    modules: list[str] = []
    for code in cells:
        try:
            body = ast.parse(code).body
        except SyntaxError:
            continue  # the cell shows its own error when it runs
        for node in body:
            if isinstance(node, ast.Import):
                modules += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules += [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
    return list(dict.fromkeys(modules))


class _Kernel:
    """The notebook's kernel, talking to this process over Unix sockets in a private temporary
    folder: nothing listens on the network (over TCP, ipykernel warns of unencrypted traffic at
    every start), and the sockets go with the folder. Started first, and asked to import the
    notebook's modules as soon as they are read, while this process loads papermill
    (workbook.pipeline.kernel)."""

    def __init__(self, folder: str, cwd: Path):
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=KERNELSPEC["name"], transport="ipc", ip=os.path.join(folder, "kernel"))
        self.km.start_kernel(cwd=str(cwd), extra_arguments=QUIET_ARGS)
        self._preloading = None

    def preload(self, modules: list[str]) -> None:
        """Ask the kernel to import `modules` (workbook.pipeline.kernel.preload); returns at once."""
        self._preloading = self._request(f"preload({modules!r})")

    def _request(self, call: str):
        """Send `workbook.pipeline.kernel.<call>` as a silent request (no output in the notebook) from a
        client of its own; (client, msg_id). Every client of a kernel manager connects with its
        session's identity, and the kernel's socket hands that identity over to the newest
        connection (ipykernel sets ROUTER_HANDOVER): a client opened before papermill's is not
        answered after it, so each request has its own, closed by `_reply`."""
        client = self.km.client()
        client.start_channels()
        return client, client.execute(f"__import__('workbook.pipeline.kernel').pipeline.kernel.{call}", silent=True,
                                      store_history=False)

    def _reply(self, request, timeout: float | None = None) -> None:
        """Wait for the kernel's reply to `request` (or its death: papermill then reports the dead
        kernel; or `timeout` seconds), and close the request's client."""
        import queue

        client, msg_id = request
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        try:
            while self.km.is_alive() and time.monotonic() < deadline:
                try:
                    reply = client.get_shell_msg(timeout=1)
                except queue.Empty:
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    return
        finally:
            client.stop_channels()

    def preloaded(self) -> None:
        """Wait until the kernel has imported what `preload` asked: papermill's first request
        would queue behind it anyway, but under papermill's start-up timeout, and from a client
        that takes over the session."""
        if self._preloading:
            self._reply(self._preloading)
            self._preloading = None

    def close(self, ran: bool) -> None:
        """Shut the kernel down; after a notebook that `ran` to its end, with its objects frozen
        first (workbook.pipeline.kernel.before_exit), so that its exit does not walk them."""
        if self._preloading:  # never waited for: the block ended before papermill started
            self._preloading[0].stop_channels()
        if ran and self.km.is_alive():
            self._reply(self._request("before_exit()"), timeout=30)  # a moment; shut down anyway after
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=False)


@contextlib.contextmanager
def _kernel(cwd: Path):
    """A started kernel, shut down when the block ends."""
    with tempfile.TemporaryDirectory(prefix="workbook-kernel-") as folder:
        kernel = _Kernel(folder, cwd)
        ran = False
        try:
            yield kernel
            ran = True
        finally:
            kernel.close(ran)


def execute(source: Path, target: Path, parameters: dict, cwd: Path, title: str | None = None) -> Path:
    """Run `source` with `parameters` injected; write `target` (.ipynb) and `target` .html.

    Returns the path of the executed notebook. Raises NotebookFailed when a cell fails.
    """
    target = Path(target)
    partial = target.with_name(f"{TMP_PREFIX}{target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    configure_jupyter()  # for JupyterLab, and the kernels it and nbconvert start from this environment
    with _kernel(cwd) as kernel:
        nb = read_notebook(source)  # while the kernel starts
        kernel.preload(imported_modules(nb))
        import papermill
        from nbconvert import HTMLExporter

        nb.metadata.pop("jupytext", None)
        nb.metadata.update(kernelspec=KERNELSPEC, language_info={"name": "python"})
        kernel.preloaded()
        try:
            nb = papermill.execute_notebook(nb, str(partial), parameters=parameters, cwd=str(cwd), km=kernel.km,
                                            log_output=True, progress_bar=False, report_mode=False)
        except papermill.PapermillExecutionError as e:
            raise NotebookFailed(f"{source}: cell {e.exec_count} raised {e.ename}: {e.evalue}\n"
                                 f"the partly executed notebook is {partial}") from None
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
    record the wall time and the peak memory of the stage's processes (workbook.pipeline.memory).
    Raises ParamError before any work when a value is bad, and
    runner.NotebookFailed when a cell fails (nothing is renamed into reports/ then)."""
    started = time.time()
    root = root or find_root()
    paths = Paths(root)
    values = subset(load_params(paths.params), declared_params(stage, root))
    os.environ[RUN_ENV] = stage
    name = notebook_name(stage)
    with PeakMemory() as peak:
        executed = execute(root / "notebooks" / f"{name}.py", paths.report(name), {"params": values},
                           cwd=root, title=name.replace("_", " ", 1))
    papermill = json.loads(executed.read_text())["metadata"].get("papermill", {})
    write_json(paths.timing(stage), {"wall_s": round(time.time() - started, 2),
                                     "notebook_s": round(papermill.get("duration") or 0.0, 2),
                                     "peak_memory_mb": peak.mb})
    return executed
