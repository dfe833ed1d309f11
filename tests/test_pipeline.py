"""The real pipeline, end to end: `dvc repro` in a copy of the repository, with random-init
weights, on a tiny folder set holding every awkward case (CMYK, palette, alpha, EXIF-rotated, huge,
tiny, nested, truncated, empty, not an image, hidden files, a class missing from val). Minutes.

The study is killed (SIGKILL) while the feature cache is written and again during quantize, and a
plain `dvc repro` recovers each time. Then the stage contract on the finished study: editing any
module makes `dvc status` list every stage that imports it; `seed` reaches neither the data nor
the features stage; notebooks run by hand write into scratch/ and leave the pipeline's outputs be.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SET_ASIDE, USED, copy_repo, make_messy_set, tiny_params
from test_contract import PRESENTATION_ONLY, closure, module_imports, notebook_source

from workbook.analysis.headline import HEADLINE_KEYS
from workbook.pipeline.contract import notebook_name
from workbook.pipeline.paths import STAGES

pytestmark = pytest.mark.slow

QUALITY = {  # results that must not change between two runs with the same params (timings aside)
    "tune": ["best_lr", "best_val_loss", "best_val_accuracy"],
    "train": ["val_accuracy", "val_loss"],
    "finetune": ["val_accuracy", "val_loss"],
}


def start_repro(repo) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo.root, env=repo.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300, delay: float = 0.0) -> None:
    """SIGKILL the whole run (DVC, papermill, the kernel) `delay` seconds after `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.02)
    time.sleep(delay)
    assert proc.poll() is None, "the run ended before the moment to kill it"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_cache_whole_or_absent(repo) -> None:
    folder = repo.root / "data" / "features"
    if not folder.exists():
        return
    meta = json.loads((folder / "cache.json").read_text())
    for set_name, info in meta["sets"].items():
        for name, shape in meta["shapes"].items():
            assert np.load(folder / f"{set_name}.{name}.npy", mmap_mode="r").shape == (info["count"], *shape)


def assert_tflite_whole_or_absent(repo) -> None:
    from ai_edge_litert.interpreter import Interpreter

    for path in (repo.root / "models").glob("*.tflite"):
        Interpreter(model_path=str(path)).allocate_tensors()  # a truncated file would not load


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The messy study, killed twice on the way and recovered; tests below read it (and the last
    ones change it)."""
    tmp = tmp_path_factory.mktemp("study")
    repo = copy_repo(tmp / "repo")
    repo.write_params(tiny_params(make_messy_set(tmp / "messy")))
    repo.run("git", "commit", "-qam", "messy set")
    kill_when(start_repro(repo), lambda: any((repo.root / "data").glob(".tmp-features-*")))
    assert_cache_whole_or_absent(repo)  # killed mid-write: the old cache or none, never a part
    # 1.5 s after the quantize notebook is under way: killed mid-stage
    kill_when(start_repro(repo), lambda: (repo.root / "reports" / ".tmp-08_quantize.ipynb").exists(), delay=1.5)
    assert_tflite_whole_or_absent(repo)
    repo.dvc("repro")
    return repo


def stages_of(repo) -> list[str]:
    """The notebook stages of the repository's dvc.yaml (not the download stage)."""
    return [s for s in yaml.safe_load((repo.root / "dvc.yaml").read_text())["stages"] if s in STAGES]


def ran_stages(dvc_output: str) -> list[str]:
    """The stages a dvc command ran, in order."""
    return re.findall(r"Running stage '(\w+)'", dvc_output)


def results(repo, stage) -> dict:
    return json.loads((repo.root / "results" / f"{stage}.json").read_text())


def changed_stages(repo) -> set[str]:
    """The stages `dvc status` says are out of date."""
    status = json.loads(repo.dvc("status", "--json").stdout)
    return {name.split(":")[-1] for name in status}


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
    assert study.run("git", "status", "--porcelain", "notebooks").stdout == "", "the source notebooks as they were"


# What TensorFlow, absl and XNNPACK write from C++ at start-up: it stays in the terminal
# (workbook.pipeline.kernel), never in a notebook.
NATIVE = re.compile(r"absl::InitializeLog|oneDNN custom operations|node_def_util|XNNPACK delegate|fully_quantize")


def native_lines(notebook) -> list[str]:
    nb = json.loads(notebook.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    return [line for line in text.splitlines() if NATIVE.search(line)]


def test_after_the_run_dvc_says_everything_is_up_to_date_and_a_changed_folder_reruns_the_data_stage(study):
    assert study.dvc("status").stdout.strip() == "Data and pipelines are up to date."
    folder = Path(yaml.safe_load((study.root / "params.yaml").read_text())["data"]["source"])
    added = folder / "train" / "bee" / "one_more.jpg"
    added.write_bytes((folder / "train" / "bee" / "bee_1.jpg").read_bytes())
    try:
        assert changed_stages(study) == {"data"}
    finally:
        added.unlink()
    assert changed_stages(study) == set()


def test_no_native_start_up_line_reaches_a_report(study):
    for stage in stages_of(study):
        assert native_lines(study.root / "reports" / f"{notebook_name(stage)}.ipynb") == [], stage


def test_killed_runs_left_nothing_half_written_and_were_recovered(study):
    # (the fixture checked the cache and the models right after each kill)
    assert not list(study.root.rglob(".tmp-*")), "leftovers of the killed runs"
    assert ran_stages(study.dvc("repro").stdout) == []  # recovered fully: nothing left to do


def test_every_unusable_file_is_set_aside_with_its_reason_and_every_usable_one_used(study):
    skipped = pd.read_csv(study.root / "data" / "prepared" / "skipped.csv")
    got = {f"{s}/{f}": r for s, f, r in zip(skipped.split, skipped.file, skipped.reason)}
    assert set(got) == set(SET_ASIDE)
    for file, reason in SET_ASIDE.items():
        assert got[file].startswith(reason), (file, got[file])
    manifest = pd.read_csv(study.root / "data" / "prepared" / "manifest.csv")
    assert set(USED) <= {f"{s}/{f}" for s, f in zip(manifest.split, manifest.source)}
    row = manifest.set_index("source").loc
    assert row["ant/phone.jpeg"].rotated and (row["ant/huge.jpg"].width, row["ant/huge.jpg"].height) == (4000, 3000)
    assert {row[f"ant/{f}"]["mode"] for f in ("print.JPG", "palette.png", "alpha.png")} == {"CMYK", "P", "RGBA"}
    data = results(study, "data")
    assert data["classes"] == 4 and data["skipped"] == len(SET_ASIDE)
    assert any("'dog' has no val folder" in w for w in data["warnings"])
    assert any("'emu' has no readable image" in w for w in data["warnings"])
    html = (study.root / "reports" / "01_data.html").read_text()
    assert "Where the images come from" in html
    for file in SET_ASIDE:
        assert file.split("/", 1)[1] in html


def test_dvc_shows_one_small_headline_file_and_the_plots(study):
    shown = json.loads(study.dvc("metrics", "show", "--json").stdout)
    files = next(iter(shown.values()))["data"]
    assert list(files) == ["metrics/study.json"]
    assert all(isinstance(v, (int, float)) for v in files["metrics/study.json"]["data"].values())  # no text
    headline = json.loads((study.root / "metrics" / "study.json").read_text())
    assert tuple(headline) == HEADLINE_KEYS and len(headline) <= 20
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
    assert (study.root / "dvclive" / "evaluate" / "plots" / "sklearn" / "confusion_matrix.json").is_file()


def test_editing_any_module_reruns_every_stage_that_imports_it(study):
    """A module's importers, read from the notebooks' imports, must be exactly what DVC reruns."""
    src = study.root / "src" / "workbook"
    importers = {}
    for stage in STAGES:
        nb = study.root / "notebooks" / f"{notebook_name(stage)}.py"
        for module in closure(module_imports(notebook_source(nb))) - PRESENTATION_ONLY:
            importers.setdefault(module, set()).add(stage)
    assert changed_stages(study) == set()
    for module, stages in sorted(importers.items()):
        path = src / module
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        try:
            assert changed_stages(study) >= stages, f"editing {module}"
        finally:
            path.write_text(original)
    assert changed_stages(study) == set()


def test_the_rule_ships_the_head_where_fine_tuning_lost_on_the_hold_out_and_the_fine_tuned_model_otherwise(study):
    from workbook.ml.network import load_model
    from workbook.ml.predict import head_probs
    from workbook.ml.prepared import read_prepared
    from workbook.ml.selection import FINE_TUNED, HEAD
    from workbook.ml.selection import choose as rule
    from workbook.pipeline.params import load_params
    from workbook.pipeline.paths import Paths
    from workbook.stages import finetune

    P, paths = load_params(study.root / "params.yaml"), Paths(study.root)
    given = finetune.inputs(P, paths)
    model = load_model(paths.finetuned)
    chosen = finetune.choose(P, paths, given)
    assert results(study, "finetune")["finetuned_holdout"] == chosen.finetuned_holdout, "the stage's choice, again"
    selection = lambda head: finetune.Selection(rule(head, 0.5, P.finetune.ship_margin), head, 0.5, 0.0)
    kept = finetune.ship(P, paths, selection(0.0), model)
    assert kept.choice.model == FINE_TUNED and kept.model is model
    # the head scores beyond the margin above the fine-tuned model on the hold-out
    shipped = finetune.ship(P, paths, selection(0.5 + P.finetune.ship_margin + 0.01), model)
    assert shipped.choice.model == HEAD and "margin" in shipped.choice.reason
    # what ships is the head the train stage saved, on the pretrained base: pixels in, the head's
    # probabilities on the cached pooled features out
    pixels = read_prepared(given.data.val_files[:4]).astype("float32")
    head = load_model(paths.head_model)
    expected = head_probs(head, given.data)[:4]
    assert np.allclose(shipped.model.predict(pixels, verbose=0), expected, atol=1e-3)


def test_editing_the_fine_tuning_code_reruns_finetune_not_the_tuner_or_the_head(study):
    path = study.root / "src" / "workbook" / "ml" / "fine_tuning.py"
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    try:
        changed = changed_stages(study)
    finally:
        path.write_text(original)
    assert "finetune" in changed and not {"data", "features", "tune", "train"} & changed, changed


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


# One stage of each kind of output (a data folder, models and curves, the metrics file): all eight
# take as long as the study, and all go through the same Paths.
BY_HAND = ("data", "train", "report")


def test_notebooks_run_by_hand_write_into_scratch_only(study):
    notebooks = [f"{notebook_name(s)}.ipynb" for s in BY_HAND]
    (study.root / "by_hand").mkdir()
    for name in notebooks:  # a text notebook as an .ipynb, as a researcher would run one by hand
        study.run(sys.executable, "-m", "jupytext", "-q", "--to", "ipynb", "-o", f"by_hand/{name}",
                  f"notebooks/{name[:-len('.ipynb')]}.py")
    proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                           *notebooks], cwd=study.root / "by_hand", capture_output=True, text=True, timeout=900,
                          env={**study.env(), "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert [line for name in notebooks for line in native_lines(study.root / "by_hand" / name)] == []
    assert changed_stages(study) == set()
    status = study.dvc("status").stdout
    assert "modified" not in status and "deleted" not in status
    scratch = study.root / "scratch"
    for made in ("data/prepared/manifest.csv", "models/head.keras", "dvclive/train/plots/metrics/eval/loss.tsv",
                 "results/train.json", "metrics/study.json"):
        assert (scratch / made).is_file(), made
    first = json.loads((study.root / "by_hand" / notebooks[1]).read_text())["cells"]
    said = next("".join(o.get("text", "")) for c in first if c["cell_type"] == "code" for o in c["outputs"])
    assert said.startswith("Exploring:") and "scratch/models/head.keras" in said
    assert "scratch/" in (study.root / ".gitignore").read_text() and "scratch/" in (study.root / ".dvcignore").read_text()


def test_nothing_changed_means_nothing_runs(study):
    assert ran_stages(study.dvc("repro").stdout) == []


def test_changing_a_param_reruns_only_the_stages_that_declare_it_and_what_follows(study):
    out = study.dvc("exp", "run", "-S", "evaluate.mistakes=2").stdout
    assert ran_stages(out) == ["evaluate", "report"]


def test_same_params_give_the_same_results(study):
    """Reproducibility: the stages that draw random numbers (the tuner, the head, fine-tuning),
    run again from scratch, give identical numbers."""
    before = {s: results(study, s) for s in ("tune", "train", "finetune")}
    for stage in before:
        study.dvc("repro", "--force", "--single-item", stage)
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
