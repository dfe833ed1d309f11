"""The real pipeline, end to end: `dvc repro` in a copy of the repository, on a tiny folder set
(some grayscale images, one corrupt file) with random-init weights. Minutes, not seconds."""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest
import yaml

from workbook.paths import STAGES
from workbook.stages import notebook_name

from conftest import copy_repo, make_folder_set, tiny_params

pytestmark = pytest.mark.slow

QUALITY = {  # metrics that must not change between two runs with the same params (timings aside)
    "data": ["classes", "train_images", "val_images", "skipped", "converted"],
    "tune": ["best_lr", "best_val_loss", "best_val_accuracy"],
    "train": ["val_accuracy", "val_loss"],
    "finetune": ["val_accuracy", "val_loss"],
    "evaluate": ["accuracy", "head_accuracy", "baseline_accuracy", "macro_f1"],
    "quantize": ["float_accuracy", "int8_accuracy", "agreement"],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One tiny study, run once by `dvc repro`; tests below read it (and the last breaks it)."""
    tmp = tmp_path_factory.mktemp("study")
    repo = copy_repo(tmp / "repo")
    images = make_folder_set(tmp / "images")
    repo.write_params(tiny_params(images))
    repo.run("git", "commit", "-qam", "tiny params")
    proc = repo.dvc("repro")
    repo.first_output = proc.stdout + proc.stderr
    return repo


def stages_of(repo) -> list[str]:
    return list(yaml.safe_load((repo.root / "dvc.yaml").read_text())["stages"])


def metrics(repo, stage) -> dict:
    return json.loads((repo.root / "metrics" / f"{stage}.json").read_text())


def test_every_stage_ran_and_wrote_its_reports(study):
    for stage in stages_of(study):
        name = notebook_name(stage)
        html = (study.root / "reports" / f"{name}.html").read_text()
        assert "<html" in html.lower() and len(html) > 10_000
        nb = json.loads((study.root / "reports" / f"{name}.ipynb").read_text())
        assert nb["metadata"]["papermill"]["exception"] is None
        assert json.loads((study.root / "metrics" / "timings" / f"{stage}.json").read_text())["wall_s"] > 0
    assert not list((study.root / "reports").glob(".tmp-*")), "temporary notebooks left behind"
    source = json.loads((study.root / "notebooks" / "01_data.ipynb").read_text())
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")


def test_data_stage_reports_conversions_and_the_corrupt_file(study):
    m = metrics(study, "data")
    assert (m["classes"], m["train_images"], m["val_images"]) == (3, 18, 9)
    assert m["converted"] == 6 and m["converted_by_mode"] == {"L": 6} and m["skipped"] == 1
    skipped = pd.read_csv(study.root / "data" / "prepared" / "skipped.csv")
    assert skipped.file.tolist() == ["ant/broken.jpg"] and skipped.reason[0].startswith("truncated")
    html = (study.root / "reports" / "01_data.html").read_text()
    assert "ant/broken.jpg" in html and "Where the images come from" in html


def test_study_metrics_are_there_for_dvc(study):
    ev = metrics(study, "evaluate")
    assert 0 <= ev["accuracy"] <= 1 and 0 <= ev["head_accuracy"] <= 1
    assert ev["baseline_accuracy"] is None and "skipped" in ev["baseline_note"]
    tune = metrics(study, "tune")
    assert 1e-5 <= tune["best_lr"] <= 1e-2 and tune["trials"] == 2
    shown = json.loads(study.dvc("metrics", "show", "--json").stdout)
    flat = json.dumps(shown)
    assert "head_accuracy" in flat and "best_lr" in flat
    study.dvc("plots", "show", "-o", "plots_out")
    assert (study.root / "plots_out" / "index.html").exists()
    curves = pd.concat([pd.read_csv(study.root / "metrics" / f"{s}_history.csv") for s in ("train", "finetune")])
    assert curves.epoch.tolist() == [1, 2]  # fine-tuning continues the head's epochs


def test_nothing_changed_means_nothing_runs(study):
    start = time.perf_counter()
    out = study.dvc("repro").stdout
    assert time.perf_counter() - start < 10
    assert "Running stage" not in out


def test_changing_finetune_epochs_reruns_only_what_depends_on_it(study):
    out = study.dvc("exp", "run", "-S", "finetune.epochs=2").stdout
    ran = re.findall(r"Running stage '(\w+)'", out)
    downstream = STAGES[STAGES.index("finetune"):]
    assert ran and set(ran) <= set(downstream) and "finetune" in ran
    assert pd.read_csv(study.root / "metrics" / "finetune_history.csv").epoch.tolist() == [2, 3]


def test_same_params_give_the_same_metrics(study):
    """Reproducibility: every stage run again from scratch gives identical quality metrics."""
    before = {s: metrics(study, s) for s in QUALITY if (study.root / "metrics" / f"{s}.json").exists()}
    study.dvc("repro", "--force")
    for stage, values in before.items():
        after = metrics(study, stage)
        for key in QUALITY[stage]:
            assert after[key] == values[key], f"{stage}.{key}: {values[key]} then {after[key]}"


def test_a_bad_param_stops_the_run_at_once_naming_the_key(study):
    params = yaml.safe_load((study.root / "params.yaml").read_text())
    params["data"]["image_size"] = -5
    study.write_params(params)
    start = time.perf_counter()
    proc = study.dvc("repro", check=False)
    assert proc.returncode != 0 and time.perf_counter() - start < 30
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert errors == ["error: params.yaml: data.image_size = -5: must be an integer from 32 to 1024"]
    assert "Running stage 'features'" not in proc.stdout
    assert not list((study.root / "reports").glob(".tmp-*.ipynb"))
    prepared = study.root / "data" / "prepared"
    assert not prepared.exists() or (prepared / "manifest.csv").exists()  # old or absent, never partial
