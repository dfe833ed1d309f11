"""The stage notebooks in JupyterLab: Jupytext's contents manager, which opens the text notebooks
(notebooks/NN_stage.py) as notebooks, giving one that names no kernel this environment's Python
kernel and that kernel's language_info, in memory only.

The text notebooks hold their cells and nothing else (jupytext.toml), so that saving one unedited
writes the same bytes. Opened as they are, JupyterLab would ask which kernel to start, then mark
the notebook modified when the kernel reports its language (Jupyter marks a notebook modified when
its language_info changes). Given both as the kernel will report them, the notebook opens on its
kernel, unmodified, and saving it still writes no metadata (jupytext.toml filters it out).

The server uses it where workbook.pipeline.kernel.configure_jupyter has set it, in the environment's
Jupyter config (every `python -m workbook run` does).
"""

from __future__ import annotations

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext.async_contentsmanager import build_async_jupytext_contents_manager_class

from workbook.pipeline.kernel import KERNELSPEC


def language_info() -> dict:
    """What this environment's Python kernel (ipykernel) reports of its language."""
    from ipykernel.ipkernel import IPythonKernel

    return dict(IPythonKernel.language_info)


class StageNotebooks(build_async_jupytext_contents_manager_class(AsyncLargeFileManager)):
    """Jupytext's contents manager; a notebook that names no kernel is read as naming Python's."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if content and model.get("type") == "notebook" and model.get("content") is not None:
            metadata = model["content"]["metadata"]
            metadata.setdefault("kernelspec", dict(KERNELSPEC))
            metadata.setdefault("language_info", language_info())
        return model
