"""What every notebook does first, and small display helpers for prose with measured numbers."""

from __future__ import annotations

import logging
import sys
import warnings

from workbook.params import Params, load_params
from workbook.paths import Paths


def setup(**params) -> tuple[Params, Paths]:
    """Check params.yaml with the notebook's parameters applied; log to the notebook's output.

    Run by papermill, the parameters are the stage's values from params.yaml (dvc.yaml passes
    them); run by hand in JupyterLab they are None and params.yaml is read directly.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    return load_params(**params), Paths.here()


def md(text: str) -> None:
    """Show Markdown built from measured values (f-strings), so prose and numbers agree."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show(obj) -> None:
    from IPython.display import display

    display(obj)


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"
