"""The from-scratch control: trained on the drawn train images, scored on every val image, the
same results from the same seed, its predictions kept for the paired test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import make_folder_set, tiny_params

keras = pytest.importorskip("keras")

from workbook.analysis.stats import Accuracy  # noqa: E402
from workbook.ml import scratch_cnn  # noqa: E402
from workbook.ml.predict import saved_probs  # noqa: E402
from workbook.pipeline.params import load_params  # noqa: E402
from workbook.pipeline.paths import Paths  # noqa: E402
from workbook.stages import control  # noqa: E402
from workbook.stages import data as data_stage  # noqa: E402

CLASSES = ("ant", "bee", "cat")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A repository root holding prepared images (32 px): 16 train and 6 val per class."""
    root = tmp_path_factory.mktemp("control")
    source = make_folder_set(root / "images", CLASSES, train=16, val=6, corrupt=False)
    data = root / "data"
    data_stage.prepare(str(source), None, 32, root, root / "data.dvc", data / "prepared")
    (root / "dvc.yaml").write_text("stages: {}\n")
    return root


def params(root, **changes):
    values = tiny_params(root / "images", **{"control.width": 8, **changes})
    (root / "params.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return load_params(root / "params.yaml")


def test_the_control_trains_on_the_drawn_images_and_is_scored_on_every_val_image(prepared):
    P = params(prepared, **{"data.train_per_class": 5, "control.epochs": 2})
    paths = Paths(prepared)
    result = control.run(P, paths)
    assert result.train_images == 15, "5 of each class"
    assert result.repeats == 4, "48 train images: each of the 15 four times an epoch (60)"
    assert result.val_images == 18 and len(result.predicted) == 18
    assert result.accuracy == Accuracy.of_predictions(np.repeat([0, 1, 2], 6), result.predicted)
    assert result.accuracy.low <= result.accuracy.value <= result.accuracy.high
    assert len(result.epoch_seconds) == 2 and result.seconds_per_epoch == round(sum(result.epoch_seconds) / 2, 2)
    assert result.curves.epoch.tolist() == [1, 2] and result.curves.stage.eq("control").all()
    written = json.loads(paths.details("control").read_text())
    assert written["accuracy"] == vars(result.accuracy) and written["train_per_class"] == 5
    assert "curves" not in written and "probs" not in written and "model" not in written
    probs = saved_probs(paths.control_predictions, 18, "control")
    assert probs.shape == (18, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(probs, result.probs) and np.array_equal(probs.argmax(axis=1), result.predicted)
    reloaded = keras.models.load_model(paths.control_model)
    assert reloaded.count_params() == result.weights
    assert (paths.live("control") / "plots" / "metrics" / "eval" / "accuracy.tsv").is_file()
    words = result._repr_markdown_()
    assert "random initialisation" in words and "5 of each class" in words and "each image 4 times an epoch" in words


def test_the_same_seed_gives_the_same_control_and_another_seed_another(prepared):
    paths = Paths(prepared)
    runs = []
    for seed in (3, 3, 4):
        result = control.run(params(prepared, seed=seed, **{"control.epochs": 1}), paths)
        runs.append((result.curves[["loss", "val_loss"]].to_numpy(), result.model.get_weights()[0]))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])


def test_the_control_learns_what_tells_the_classes_apart(prepared):
    """The drawn classes differ by a coloured bar: a few epochs on every train image beat chance
    (a third), beyond the 95% interval of its accuracy on the 18 val images."""
    result = control.run(params(prepared, **{"control.epochs": 6, "control.lr": 0.01}), Paths(prepared))
    assert result.train_images == 48
    assert result.accuracy.low > 1 / 3, result.curves


def test_an_epoch_takes_each_drawn_image_as_often_as_fills_a_full_one():
    x, y = np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 0, 1, 1])
    train, _ = scratch_cnn.batches(x, y, x, y, batch_size=3, seed=0, repeats=3)
    assert train.n == 12 and len(train) == 4
    taken = np.concatenate([train.subset[train.rows(i)] for i in range(len(train))])
    assert np.bincount(taken).tolist() == [3, 3, 3, 3]


def test_the_network_is_the_one_its_docstring_draws():
    model = scratch_cnn.build(10, 64, 32, seed=0)
    assert model.count_params() == 392_426
    assert model.output_shape == (None, 10)
    assert scratch_cnn.architecture(model) == (
        "conv3x3 32/2-BN-ReLU, max-pool, conv3x3 64-BN-ReLU, max-pool, conv3x3 128-BN-ReLU, max-pool, "
        "conv3x3 256-BN-ReLU, global average pool, dense 10")


def test_shrinking_averages_the_pixels_each_output_pixel_covers(tmp_path):
    from PIL import Image

    a = np.zeros((4, 4, 3), np.uint8)
    a[:2, :2] = 200
    a[2:, 2:] = (10, 20, 30)
    Image.fromarray(a).save(tmp_path / "a.png")
    small = scratch_cnn.shrink([str(tmp_path / "a.png")], 2)
    assert small.shape == (1, 2, 2, 3) and small.dtype == np.uint8
    assert small[0, 0, 0].tolist() == [200] * 3 and small[0, 1, 1].tolist() == [10, 20, 30]
    assert small[0, 0, 1].tolist() == [0, 0, 0]
    assert np.array_equal(scratch_cnn.shrink([str(tmp_path / "a.png")], 4)[0], a), "at its own size, as it is"


def test_missing_or_stale_predictions_say_what_to_run(tmp_path):
    paths = Paths(tmp_path)
    with pytest.raises(FileNotFoundError, match="run the control stage"):
        saved_probs(paths.control_predictions, 5, "control")
    paths.control_predictions.parent.mkdir(parents=True)
    np.save(paths.control_predictions, np.full((4, 3), 1 / 3, np.float32))
    with pytest.raises(ValueError, match="4 predictions for 5 val images; run dvc repro"):
        saved_probs(paths.control_predictions, 5, "control")
