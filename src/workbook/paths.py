"""The one place that knows where the workbook's files live (dvc.yaml names the same paths)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LABELS_FILE = "labels.txt"  # shipped beside the model, one display name per line, in class order

STAGES = ("data", "features", "tune", "train", "finetune", "evaluate", "quantize", "report")


def find_root(start: str | Path | None = None) -> Path:
    """The repository root: the nearest folder at or above `start` (default: cwd) holding params.yaml."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file() and (folder / "dvc.yaml").is_file():
            return folder
    raise FileNotFoundError(f"no params.yaml + dvc.yaml at or above {here}; run inside the repository")


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def here(cls) -> "Paths":
        return cls(find_root())

    # inputs
    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def data_dvc(self) -> Path:
        return self.root / "data.dvc"

    # data stage
    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def prepared(self) -> Path:
        return self.root / "data" / "prepared"

    @property
    def manifest(self) -> Path:
        return self.prepared / "manifest.csv"

    @property
    def skipped(self) -> Path:
        return self.prepared / "skipped.csv"

    @property
    def classes(self) -> Path:
        return self.prepared / "classes.txt"

    # features stage
    @property
    def features(self) -> Path:
        return self.root / "data" / "features"

    # models (train, finetune, quantize)
    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def head_model(self) -> Path:
        return self.models / "head.keras"

    @property
    def model(self) -> Path:
        return self.models / "model.keras"

    @property
    def tflite_float(self) -> Path:
        return self.models / "model_float32.tflite"

    @property
    def tflite_int8(self) -> Path:
        return self.models / "model_int8.tflite"

    @property
    def labels(self) -> Path:
        return self.models / LABELS_FILE

    # metrics and plots (what dvc metrics / dvc plots read)
    @property
    def metrics(self) -> Path:
        return self.root / "metrics"

    def stage_metrics(self, stage: str) -> Path:
        return self.metrics / f"{stage}.json"

    def history(self, stage: str) -> Path:
        return self.metrics / f"{stage}_history.csv"

    @property
    def tune_trials(self) -> Path:
        return self.metrics / "tune_trials.csv"

    @property
    def eval_predictions(self) -> Path:
        return self.metrics / "eval_predictions.csv"

    @property
    def timings(self) -> Path:
        return self.metrics / "timings"

    def stage_timing(self, stage: str) -> Path:
        return self.timings / f"{stage}.json"

    # reports
    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def figures(self, stage: str) -> Path:
        return self.reports / "figures" / stage

    @property
    def index(self) -> Path:
        return self.reports / "index.html"
