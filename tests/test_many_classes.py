"""A study of a hundred classes, end to end: `dvc repro` on a tiny folder set of 100 classes (random
weights), and reports a reader can still read: per-class tables with the worst classes first, the
largest confusions listed beside a matrix too big to number, the index page within the window."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import copy_repo, make_folder_set, tiny_params
from test_report import WIDTHS, browser, layout_problems  # noqa: F401  (browser: a fixture)

from workbook.pipeline.paths import STAGES

pytestmark = pytest.mark.slow

CLASSES = 100


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hundred")
    repo = copy_repo(tmp / "repo")
    names = tuple(f"species_{i:03d}" for i in range(CLASSES))
    images = make_folder_set(tmp / "images", classes=names, train=4, val=2, grayscale=0, corrupt=False)
    repo.write_params(tiny_params(images))
    repo.run("git", "commit", "-qam", "a hundred classes")
    repo.dvc("repro")
    return repo


def test_every_stage_ran_on_a_hundred_classes(study):
    data = json.loads((study.root / "results" / "data.json").read_text())
    assert (data["classes"], data["train_images"], data["val_images"]) == (CLASSES, 4 * CLASSES, 2 * CLASSES)
    for stage in STAGES:
        assert (study.root / "results" / "timings" / f"{stage}.json").is_file(), stage
    labels = (study.root / "models" / "labels.txt").read_text().splitlines()
    assert len(labels) == CLASSES


def test_per_class_tables_put_the_worst_classes_first(study):
    evaluate = pd.read_csv(study.root / "results" / "eval_per_class.csv")
    assert len(evaluate) == CLASSES and evaluate["f1-score"].is_monotonic_increasing
    quantize = pd.read_csv(study.root / "results" / "quantize_per_class.csv")
    assert len(quantize) == CLASSES and quantize["change"].is_monotonic_increasing


def test_the_evaluate_report_lists_the_largest_confusions(study):
    html = (study.root / "reports" / "07_evaluate.html").read_text()
    assert "predicted as" in html and "share of the class" in html


@pytest.mark.parametrize("width", WIDTHS)
def test_the_index_page_of_a_hundred_classes_fits_the_window(browser, study, width):  # noqa: F811
    problems = layout_problems(browser, study.root / "reports" / "index.html", width)
    assert not problems, f"{len(problems)} layout problems at {width} px:\n" + "\n".join(problems[:40])
