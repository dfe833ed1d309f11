"""The one place that knows where the workbook's files live (dvc.yaml declares the same paths,
and tests/test_contract.py checks that every output a stage writes is one it declares).

A stage notebook run by hand (JupyterLab, nbconvert) gets a `Paths` whose outputs of that stage
lie under scratch/ instead: it reads the pipeline's outputs and never writes over them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_RECORD = "data.dvc"  # where the default images come from (workbook.pipeline.params.read_pin)
LABELS_FILE = "labels.txt"  # shipped beside the model, one display name per line, in class order
SCRATCH = "scratch"  # where notebooks run by hand write; ignored by git (.gitignore) and DVC (.dvcignore)

STAGES = ("data", "features", "tune", "train", "finetune", "control", "evaluate", "quantize", "report")


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
    # Outputs (paths relative to root, as dvc.yaml names them) that go under scratch/ instead.
    redirected: tuple[str, ...] = ()

    @classmethod
    def here(cls) -> "Paths":
        return cls(find_root())

    def _at(self, rel: str) -> Path:
        for out in self.redirected:
            if rel == out or rel.startswith(out.rstrip("/") + "/"):
                return self.root / SCRATCH / rel
        return self.root / rel

    @property
    def scratch(self) -> Path:
        return self.root / SCRATCH

    # inputs
    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def dvc_yaml(self) -> Path:
        return self.root / "dvc.yaml"

    @property
    def data_dvc(self) -> Path:
        return self.root / DATA_RECORD

    # download and data stages
    @property
    def download(self) -> Path:
        """Where the download stage keeps the default archive (workbook.pipeline.source)."""
        return self.root / "data" / "download"

    @property
    def prepared(self) -> Path:
        return self._at("data/prepared")

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
        return self._at("data/features")

    # models (train, finetune, quantize)
    @property
    def head_model(self) -> Path:
        return self._at("models/head.keras")

    @property
    def selection_head(self) -> Path:
        """The head trained on the drawn images outside the hold-out only: what the finetune stage
        scores on the hold-out against fine-tuning, to choose the model that ships."""
        return self._at("models/selection_head.keras")

    @property
    def finetuned(self) -> Path:
        """The fine-tuned classifier, whether it ships or not."""
        return self._at("models/finetuned.keras")

    @property
    def model(self) -> Path:
        """The classifier that ships (the fine-tuned one or the head on the base, by finetune's
        rule); the quantize stage converts it."""
        return self._at("models/model.keras")

    @property
    def tflite_float(self) -> Path:
        return self._at("models/model_float32.tflite")

    @property
    def tflite_int8(self) -> Path:
        return self._at("models/model_int8.tflite")

    @property
    def labels(self) -> Path:
        return self._at(f"models/{LABELS_FILE}")

    # the from-scratch control (control stage; its predictions are read by evaluate)
    @property
    def control_model(self) -> Path:
        return self._at("models/control.keras")

    @property
    def control_predictions(self) -> Path:
        """The control's class probabilities of each val image, in val order (float32, images x classes)."""
        return self._at("results/control_val.npy")

    # each stage's results in detail (read by later stages and the report; not DVC metrics)
    def details(self, stage: str) -> Path:
        return self._at(f"results/{stage}.json")

    def table(self, name: str) -> Path:
        """A results table (CSV), e.g. "tune_trials"."""
        return self._at(f"results/{name}.csv")

    def timing(self, stage: str) -> Path:
        return self._at(f"results/timings/{stage}.json")

    def live(self, stage: str) -> Path:
        """DVCLive's folder for a stage: its plots/ (declared in dvc.yaml, read by `dvc plots`)
        and the summary DVCLive keeps beside them."""
        return self._at(f"dvclive/{stage}/plots").parent

    # the headline numbers: the one file dvc.yaml declares as metrics (`dvc exp show`)
    @property
    def headline(self) -> Path:
        return self._at("metrics/study.json")

    # reports
    @property
    def reports(self) -> Path:
        return self._at("reports")

    def report(self, name: str) -> Path:
        """reports/<name>.ipynb (its .html beside it)."""
        return self._at(f"reports/{name}.ipynb")

    @property
    def index(self) -> Path:
        return self._at("reports/index.html")

    @property
    def compare(self) -> Path:
        """reports/compare.ipynb (and .html): written by `python -m workbook compare`, no stage."""
        return self._at("reports/compare.ipynb")
