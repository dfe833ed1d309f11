"""A stage's contract with dvc.yaml: what it declares there, and how its notebook starts.

dvc.yaml is the one declaration of a stage: its params, its code and data dependencies, its
outputs. `python -m workbook run STAGE` (workbook.pipeline.runner) hands the stage's notebook exactly the
params dvc.yaml declares for it. In the notebook, `start(STAGE, params)` turns what it was
handed into the stage's view of the params (reading an undeclared one is an error) and the paths
it may write:

- run by `python -m workbook run` (under `dvc repro`): the outputs dvc.yaml declares;
- run by hand (JupyterLab, `jupyter nbconvert --execute`): the same files under scratch/,
  ignored by git and DVC, while it reads the pipeline's outputs; it says so in its first output.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from workbook.pipeline.params import StageParams, load_params
from workbook.pipeline.paths import SCRATCH, STAGES, Paths, find_root

RUN_ENV = "WORKBOOK_RUN"  # set by `python -m workbook run STAGE` (workbook.pipeline.runner) for the notebook's kernel


def notebook_name(stage: str) -> str:
    """"data" -> "01_data": the source notebook is notebooks/01_data.py (a text notebook)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return f"{STAGES.index(stage) + 1:02d}_{stage}"


def stage_number(stage: str) -> str:
    """"data" -> "01": the stage's place in the pipeline, as its notebooks are numbered."""
    return notebook_name(stage)[:2]


@functools.cache
def _pipeline(dvc_yaml: Path, mtime: float) -> dict:
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


def spec(stage: str, root: Path) -> dict:
    """The stage's entry in dvc.yaml."""
    dvc_yaml = root / "dvc.yaml"
    stages = _pipeline(dvc_yaml, dvc_yaml.stat().st_mtime)
    if stage not in stages:
        raise ValueError(f"{dvc_yaml}: no stage {stage!r}; stages: {', '.join(stages)}")
    return stages[stage]


def declared_params(stage: str, root: Path) -> list[str]:
    """The params dvc.yaml declares for the stage ("seed", "train", "data.image_size", ...)."""
    return [str(p) for p in spec(stage, root).get("params") or []]


def _path(entry) -> str:
    return next(iter(entry)) if isinstance(entry, dict) else str(entry)


def declared_outputs(stage: str, root: Path) -> list[str]:
    """Every path the stage writes, as dvc.yaml declares it (outs, metrics and plots)."""
    s = spec(stage, root)
    return [_path(e) for kind in ("outs", "metrics", "plots") for e in s.get(kind) or []]



def read_timings(paths: Paths) -> dict[str, dict]:
    """Each stage's recorded times and peak memory ({stage: {"wall_s", "notebook_s", "peak_memory_mb"}}),
    for the stages that have one."""
    out = {}
    for stage in STAGES:
        f = paths.timing(stage)
        if f.exists():
            out[stage] = json.loads(f.read_text())
    return out


# ---------------------------------------------------------------------------------------------
# inside the notebook


@dataclass(frozen=True)
class Stage:
    name: str
    P: StageParams  # the stage's params; reading one dvc.yaml does not declare raises
    paths: Paths  # where it reads and writes (its outputs under scratch/ when run by hand)
    by_hand: bool


def start(stage: str, params: dict | None = None) -> Stage:
    """The first call of every stage notebook: its params and paths, and logs into the notebook.

    `params` is what the parameters cell received: the stage's params from dvc.yaml, injected by
    `python -m workbook run`; None (run by hand) reads them from params.yaml.
    """
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    root = find_root()
    declared = declared_params(stage, root)
    by_hand = os.environ.get(RUN_ENV) != stage
    P = StageParams(load_params(root / "params.yaml", values=params), declared, stage)
    if not by_hand:
        return Stage(stage, P, Paths(root), False)
    outputs = tuple(declared_outputs(stage, root))
    # the executed notebook, its HTML and the stage's time are written by the runner, not here
    written = [o for o in outputs if not o.startswith(("reports/", "results/timings/"))]
    print(f"Exploring: this notebook was not started by the pipeline, so it reads the pipeline's outputs "
          f"and writes its own under {SCRATCH}/ (ignored by git and DVC), not over them: "
          f"{', '.join(f'{SCRATCH}/{o}' for o in written)}. `dvc repro` writes the real ones.")
    return Stage(stage, P, Paths(root, redirected=outputs), True)
