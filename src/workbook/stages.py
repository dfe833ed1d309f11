"""What every stage does around its notebook: time it, render it, move it into reports/.

A stage runs as  `python -m workbook check STAGE && papermill notebooks/NN_STAGE.ipynb
reports/.tmp-NN_STAGE.ipynb ... && python -m workbook publish STAGE`  (see dvc.yaml): papermill
writes its cell-by-cell output under a temporary name, and only a notebook that ran to the end
is rendered and renamed into reports/, so reports/ never holds a half-executed notebook.
"""

from __future__ import annotations

import json
import os
import time

from workbook.atomic import TMP_PREFIX, atomic_path, write_json
from workbook.paths import STAGES, Paths


def notebook_name(stage: str) -> str:
    """"data" -> "01_data": the source notebook is notebooks/01_data.ipynb."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return f"{STAGES.index(stage) + 1:02d}_{stage}"


def stage_number(stage: str) -> str:
    """"data" -> "01": the stage's place in the pipeline, as its notebooks are numbered."""
    return notebook_name(stage)[:2]


def _stamp(paths: Paths, stage: str):
    return paths.reports / f"{TMP_PREFIX}{notebook_name(stage)}.start"


def mark_start(stage: str, paths: Paths | None = None) -> None:
    paths = paths or Paths.here()
    paths.reports.mkdir(parents=True, exist_ok=True)
    _stamp(paths, stage).write_text(repr(time.time()))


def publish(stage: str, paths: Paths | None = None) -> None:
    """Render reports/.tmp-NN.ipynb to HTML; rename both into place; record the stage's time."""
    import nbformat
    from nbconvert import HTMLExporter

    paths = paths or Paths.here()
    name = notebook_name(stage)
    executed = paths.reports / f"{TMP_PREFIX}{name}.ipynb"
    nb = nbformat.read(executed, as_version=4)
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nb, resources={"metadata": {"name": name.replace("_", " ", 1)}})
    with atomic_path(paths.reports / f"{name}.html") as tmp:
        tmp.write_text(html)
    os.replace(executed, paths.reports / f"{name}.ipynb")
    stamp = _stamp(paths, stage)
    started = float(stamp.read_text()) if stamp.exists() else None
    timing = {"stage": stage, "wall_s": round(time.time() - started, 2) if started else None,
              "notebook_s": round(nb.metadata.get("papermill", {}).get("duration") or 0, 2)}
    write_json(paths.stage_timing(stage), timing)
    stamp.unlink(missing_ok=True)


def read_timings(paths: Paths) -> dict[str, dict]:
    out = {}
    for stage in STAGES:
        f = paths.stage_timing(stage)
        if f.exists():
            out[stage] = json.loads(f.read_text())
    return out
