"""Progress bars that stay readable in a terminal and in JupyterLab, and stay out of the reports.

Under the pipeline (`python -m workbook run STAGE`, which sets RUN_ENV for the notebook's kernel)
a bar goes to the kernel's own standard error, file descriptor 2, which is the terminal (or log)
of `dvc repro`: the runner starts its kernel with capture_fd_output off (workbook.pipeline.kernel),
so what reaches that descriptor never becomes a cell's output. The executed notebooks and their
HTML pages in reports/ hold no bar, and whoever runs the pipeline still sees it move.
"""

from __future__ import annotations

import os
import sys
import warnings

from tqdm import TqdmWarning
from tqdm import tqdm as _tqdm

# tqdm.auto warns inside Jupyter kernels without ipywidgets; these bars are plain text on purpose.
warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)

# workbook.pipeline.contract.RUN_ENV, spelled out: a presentation-only module imports nothing that
# computes or that dvc.yaml would have to list (tests/test_contract.py; tests/test_report.py checks
# the two names agree)
RUN_ENV = "WORKBOOK_RUN"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


class tqdm(_tqdm):  # noqa: N801 (a drop-in for tqdm.tqdm)
    """tqdm for logs. Under the pipeline, to the process's real standard error (see the module's
    docstring). Elsewhere, with nobody at a terminal (JupyterLab, CI) it writes plain lines to
    stdout every 10 s, so a notebook keeps a short record instead of hundreds of redraws."""

    def __init__(self, *args, **kwargs):
        if "file" not in kwargs and os.environ.get(RUN_ENV):
            kwargs["file"] = sys.__stderr__
            if sys.__stderr__ is None:  # a process without one: nowhere to draw
                kwargs["disable"] = True
        interactive = _isatty(kwargs.get("file") or sys.stderr)
        kwargs.setdefault("mininterval", 0.2 if interactive else 10.0)
        kwargs.setdefault("ascii", not interactive)
        kwargs.setdefault("dynamic_ncols", interactive)
        if not interactive:
            kwargs.setdefault("file", sys.stdout)
        super().__init__(*args, **kwargs)


def progress(iterable=None, **kwargs) -> tqdm:
    return tqdm(iterable, **kwargs)
