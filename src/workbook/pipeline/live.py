"""DVCLive inside the pipeline: each stage logs into its own folder under dvclive/, with no DVC
experiment and no dvc.yaml of its own (the project's dvc.yaml declares the plots), quietly."""

from __future__ import annotations

import logging


def live(folder):
    """A dvclive.Live writing into `folder` (a context manager; its step starts at 0)."""
    from dvclive import Live

    logging.getLogger("dvclive").setLevel(logging.WARNING)  # "Logging to experiment ..." each run
    return Live(dir=str(folder), save_dvc_exp=False, dvcyaml=None, report=None)
