"""Progress bars that stay readable in a terminal, in JupyterLab and in papermill's saved output."""

from __future__ import annotations

import sys
import warnings

from tqdm import TqdmWarning
from tqdm import tqdm as _tqdm

# tqdm.auto warns inside Jupyter kernels without ipywidgets; these bars are plain text on purpose.
warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)


class tqdm(_tqdm):  # noqa: N801 (a drop-in for tqdm.tqdm)
    """tqdm for logs: with nobody at a terminal (papermill, CI) it writes plain lines to stdout
    every 10 s, so an executed notebook keeps a short record instead of hundreds of redraws."""

    def __init__(self, *args, **kwargs):
        interactive = sys.stderr.isatty()
        kwargs.setdefault("mininterval", 0.2 if interactive else 10.0)
        kwargs.setdefault("ascii", not interactive)
        kwargs.setdefault("dynamic_ncols", interactive)
        if not interactive:
            kwargs.setdefault("file", sys.stdout)
        super().__init__(*args, **kwargs)


def progress(iterable=None, **kwargs) -> tqdm:
    return tqdm(iterable, **kwargs)
