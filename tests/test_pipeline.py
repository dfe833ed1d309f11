"""The real pipeline, end to end: `dvc repro` in a copy of the repository, on a tiny folder set
(some grayscale images, one corrupt file) with random-init weights. Minutes, not seconds.

The stage contract on a finished study: editing any module makes `dvc status` list every stage
that imports it; `seed` reaches neither the data nor the features stage; notebooks run by hand
write into scratch/ and leave the pipeline's outputs as they were.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from workbook.paths import STAGES
from workbook.report import HEADLINE_KEYS
from workbook.stages import notebook_name

from conftest import copy_repo, make_folder_set, tiny_params
from test_contract import PRESENTATION_ONLY, closure, module_imports, notebook_source

pytestmark = pytest.mark.slow

QUALITY = {  # results that must not change between two runs with the same params (timings aside)
    "data": ["classes", "train_images", "val_images", "skipped", "converted"],
    "tune": ["best_lr", "best_val_loss", "best_val_accuracy"],
    "train": ["val_accuracy", "val_loss"],
    "finetune": ["val_accuracy", "val_loss"],
    "evaluate": ["accuracy", "head", "baseline", "macro_f1"],
    "quantize": ["float32", "int8", "agreement"],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One tiny study, run once by `dvc repro`; tests below read it (and the last ones change it)."""
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


def results(repo, stage) -> dict:
    return json.loads((repo.root / "results" / f"{stage}.json").read_text())


def changed_stages(repo) -> set[str]:
    """The stages `dvc status` says are out of date (data.dvc, the frozen import record, aside)."""
    status = json.loads(repo.dvc("status", "--json").stdout)
    return {name.split(":")[-1] for name in status} - {"data.dvc"}


def test_every_stage_ran_and_wrote_its_reports(study):
    for stage in stages_of(study):
        name = notebook_name(stage)
        html = (study.root / "reports" / f"{name}.html").read_text()
        assert "<html" in html.lower() and len(html) > 10_000
        nb = json.loads((study.root / "reports" / f"{name}.ipynb").read_text())
        assert nb["metadata"]["papermill"]["exception"] is None
        assert json.loads((study.root / "results" / "timings" / f"{stage}.json").read_text())["wall_s"] > 0
        # the notebook shows the params it was handed, exactly those dvc.yaml declares
        injected = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        declared = yaml.safe_load((study.root / "dvc.yaml").read_text())["stages"][stage].get("params") or []
        shown = re.search(r"params = (\{.*\})", "".join(injected["source"])).group(1)
        assert set(ast.literal_eval(shown)) == {d.split(".")[0] for d in declared}
    assert not list((study.root / "reports").glob(".tmp-*")), "temporary notebooks left behind"
    source = json.loads((study.root / "notebooks" / "01_data.ipynb").read_text())
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")


def test_data_stage_reports_conversions_and_the_corrupt_file(study):
    m = results(study, "data")
    assert (m["classes"], m["train_images"], m["val_images"]) == (3, 18, 9)
    assert m["converted"] == 6 and m["converted_by_mode"] == {"L": 6} and m["skipped"] == 1
    skipped = pd.read_csv(study.root / "data" / "prepared" / "skipped.csv")
    assert skipped.file.tolist() == ["ant/broken.jpg"] and skipped.reason[0].startswith("truncated")
    html = (study.root / "reports" / "01_data.html").read_text()
    assert "ant/broken.jpg" in html and "Where the images come from" in html


def test_dvc_shows_one_small_headline_file_and_the_plots(study):
    shown = json.loads(study.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert list(files) == ["metrics/study.json"]
    assert all(isinstance(v, (int, float)) for v in files["metrics/study.json"]["data"].values())  # no text
    headline = json.loads((study.root / "metrics" / "study.json").read_text())
    assert tuple(headline) == HEADLINE_KEYS and len(headline) <= 16
    assert headline["acc_lo"] <= headline["acc"] <= headline["acc_hi"]
    assert headline["base_acc"] is None  # evaluate.baseline_weights: none (DVC leaves nulls out)
    ev = results(study, "evaluate")
    assert ev["accuracy"]["value"] == headline["acc"] and "skipped" in ev["baseline_note"]
    study.dvc("plots", "show", "-o", "plots_out")
    page = (study.root / "plots_out" / "index.html").read_text()
    assert "Confusion matrix" in page and "head training, then fine-tuning" in page
    steps = [pd.read_csv(study.root / "dvclive" / s / "plots" / "metrics" / "eval" / "accuracy.tsv", sep="\t").step
             for s in ("train", "finetune")]
    assert [int(x) for s in steps for x in s] == [0, 1]  # fine-tuning continues the head's epochs


def test_editing_any_module_reruns_every_stage_that_imports_it(study):
    """A module's importers, read from the notebooks' imports, must be exactly what DVC reruns."""
    src = study.root / "src" / "workbook"
    importers = {}
    for stage in STAGES:
        nb = study.root / "notebooks" / f"{notebook_name(stage)}.ipynb"
        for module in closure(module_imports(notebook_source(nb))) - PRESENTATION_ONLY:
            importers.setdefault(module, set()).add(stage)
    assert changed_stages(study) == set()
    for module, stages in sorted(importers.items()):
        path = src / f"{module}.py"
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        try:
            assert changed_stages(study) >= stages, f"editing {module}.py"
        finally:
            path.write_text(original)
    assert changed_stages(study) == set()


def test_seed_reaches_neither_data_nor_features(study):
    params = yaml.safe_load((study.root / "params.yaml").read_text())
    original = (study.root / "params.yaml").read_text()
    params["seed"] += 1
    study.write_params(params)
    try:
        changed = changed_stages(study)
        assert {"tune", "train", "finetune"} <= changed and not {"data", "features"} & changed
    finally:
        (study.root / "params.yaml").write_text(original)


def test_notebooks_run_by_hand_write_into_scratch_only(study):
    notebooks = [f"{notebook_name(s)}.ipynb" for s in STAGES]
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                           "--output-dir", str(study.root / "by_hand"), *notebooks],
                          cwd=study.root / "notebooks", capture_output=True, text=True, timeout=900,
                          env={**study.env(), "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert changed_stages(study) == set()
    status = study.dvc("status").stdout
    assert "modified" not in status and "deleted" not in status
    scratch = study.root / "scratch"
    for made in ("models/head.keras", "models/model_int8.tflite", "results/evaluate.json", "metrics/study.json",
                 "data/features/cache.json", "data/prepared/manifest.csv"):
        assert (scratch / made).is_file(), made
    first = json.loads((study.root / "by_hand" / notebooks[3]).read_text())["cells"]
    said = next("".join(o.get("text", "")) for c in first if c["cell_type"] == "code" for o in c["outputs"])
    assert said.startswith("Exploring:") and "scratch/models/head.keras" in said
    assert "scratch/" in (study.root / ".gitignore").read_text() and "scratch/" in (study.root / ".dvcignore").read_text()


def test_nothing_changed_means_nothing_runs(study):
    assert "Running stage" not in study.dvc("repro").stdout


def test_changing_finetune_epochs_reruns_only_what_depends_on_it(study):
    out = study.dvc("exp", "run", "-S", "finetune.epochs=2").stdout
    ran = re.findall(r"Running stage '(\w+)'", out)
    downstream = STAGES[STAGES.index("finetune"):]
    assert ran and set(ran) <= set(downstream) and "finetune" in ran
    steps = pd.read_csv(study.root / "dvclive" / "finetune" / "plots" / "metrics" / "eval" / "loss.tsv", sep="\t").step
    assert steps.tolist() == [1, 2]


def test_same_params_give_the_same_results(study):
    """Reproducibility: every stage run again from scratch gives identical quality numbers."""
    before = {s: results(study, s) for s in QUALITY}
    study.dvc("repro", "--force")
    for stage, values in before.items():
        after = results(study, stage)
        for key in QUALITY[stage]:
            assert after[key] == values[key], f"{stage}.{key}: {values[key]} then {after[key]}"


def test_a_bad_param_stops_the_run_at_once_naming_the_key(study):
    params = yaml.safe_load((study.root / "params.yaml").read_text())
    params["data"]["image_size"] = -5
    study.write_params(params)
    proc = study.dvc("repro", check=False)
    assert proc.returncode != 0
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("error:")]
    assert errors == ["error: params.yaml: data.image_size = -5: must be an integer from 32 to 1024"]
    assert "Running stage 'features'" not in proc.stdout
    assert not list((study.root / "reports").glob(".tmp-*.ipynb"))
    prepared = study.root / "data" / "prepared"
    assert not prepared.exists() or (prepared / "manifest.csv").exists()  # old or absent, never partial
