"""Every backbone other than the default through every stage: a tiny study each (`dvc repro`, random
weights, no network, at the backbone's smallest input), the cut where params.yaml says, the report
naming it, and the int8 model read with its class names by MediaPipe's ImageClassifier, as an app
reads it. (The default, mobilenet_v2, is tests/test_pipeline.py's study.)

One test class per backbone, so that pytest-xdist spreads them over the workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import copy_repo, draw, make_folder_set, tiny_params

from workbook.ml.network import APPLICATIONS
from workbook.pipeline.params import BACKBONES
from workbook.pipeline.paths import STAGES

pytestmark = pytest.mark.slow
CLASSES = ("ant", "bee", "cat")


def tiny_study(tmp_path_factory, backbone: str):
    tmp = tmp_path_factory.mktemp(backbone)
    repo = copy_repo(tmp / "repo")
    images = make_folder_set(tmp / "images", CLASSES, train=6, val=3, grayscale=0, corrupt=False)
    size = max(32, BACKBONES[backbone].min_size)
    repo.write_params(tiny_params(images, **{"model.backbone": backbone, "data.image_size": size}))
    repo.run("git", "commit", "-qam", f"a tiny study of {backbone}")
    repo.dvc("repro", timeout=1800)
    return repo


def results(repo, stage: str) -> dict:
    return json.loads((repo.root / "results" / f"{stage}.json").read_text())


def check_the_study(repo, backbone: str, tmp_path) -> None:
    own = BACKBONES[backbone]
    for stage in STAGES:
        assert (repo.root / "results" / "timings" / f"{stage}.json").is_file(), stage
    tuned = results(repo, "finetune")
    assert (tuned["backbone"], tuned["fine_tune_at"], tuned["base_layers"]) == (backbone, own.fine_tune_at, own.layers)
    assert tuned["why"].startswith(f"{backbone}'s default") and tuned["fine_tune_from"]
    assert results(repo, "features")["fine_tune_at"] == own.fine_tune_at
    quantized = results(repo, "quantize")
    assert quantized["backbone"] == APPLICATIONS[backbone].name
    assert quantized["parameters"] > 0 and quantized["multiply_adds"] > 0
    assert quantized["metadata"]["labels"] == list(CLASSES)
    assert APPLICATIONS[backbone].name in quantized["metadata"]["description"]
    assert results(repo, "evaluate")["baseline_note"] == "skipped: evaluate.baseline_weights is none"
    html = (repo.root / "reports" / "05_finetune.html").read_text()
    assert f"Fine-tuned {backbone}&#39;s last" in html or f"Fine-tuned {backbone}'s last" in html
    categories_named_by_mediapipe(repo.root / "models" / "model_int8.tflite", tmp_path)


def categories_named_by_mediapipe(model, tmp_path) -> None:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

    options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(model)))
    with ImageClassifier.create_from_options(options) as classifier:
        pixels = np.asarray(draw(1, 7, size=64).convert("RGB"))
        (head,) = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)).classifications
    assert sorted(c.category_name for c in head.categories) == sorted(CLASSES)


class Backbone:
    """A tiny study of `backbone` (set by each subclass), and what must hold of it."""

    backbone = ""

    @pytest.fixture(scope="class")
    def repo(self, tmp_path_factory):
        return tiny_study(tmp_path_factory, self.backbone)

    def test_every_stage_runs_and_apps_read_the_class_names(self, repo, tmp_path):
        check_the_study(repo, self.backbone, tmp_path)


class TestMobileNetV3Small(Backbone):
    backbone = "mobilenet_v3_small"


class TestMobileNetV3Large(Backbone):
    backbone = "mobilenet_v3_large"


class TestEfficientNetB0(Backbone):
    backbone = "efficientnet_b0"


class TestInceptionV3(Backbone):
    backbone = "inception_v3"
