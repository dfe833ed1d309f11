"""The bench's floor: multiply-adds counted from the network's layers and the params."""

from __future__ import annotations

import keras
import pytest
from conftest import REPO

from workbook.pipeline.params import load_params
from workbook.tools import arithmetic

N_TRAIN, N_VAL, N_CLASSES = 900, 300, 10


def test_dense_and_convolutions_count_one_multiply_add_per_weight_use():
    x = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(6, 3, padding="same")(x)  # 64 positions x 6 filters x 3x3x3
    grouped = keras.layers.Conv2D(4, 1, groups=2)(conv)  # 64 x 4 x (6 / 2)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same")(grouped)  # 64 x 4 x 3x3
    dense = keras.layers.Dense(5)(keras.layers.Flatten()(depthwise))  # 256 x 5
    model = keras.Model(x, dense)
    assert arithmetic.forward(model) == 64 * 6 * 27 + 64 * 4 * 3 + 64 * 4 * 9 + 256 * 5


def test_a_weighted_layer_of_another_kind_is_not_silently_counted_as_none():
    x = keras.Input((8, 8, 3))
    model = keras.Model(x, keras.layers.SeparableConv2D(4, 3)(x))
    with pytest.raises(ValueError, match="SeparableConv2D"):
        arithmetic.forward(model)


def test_training_counts_both_gradients_but_no_input_gradient_for_the_first_layer():
    first = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    second = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert arithmetic.forward(first, second) == 12 + 8
    assert arithmetic.training(first, second) == 2 * (12 + 8) + 8


@pytest.mark.parametrize("alpha, published", [(1.0, 300e6), (0.35, 59e6)])
def test_mobilenet_v2_at_224_has_its_published_multiply_adds(alpha, published):
    # Sandler et al. 2018 (MobileNetV2), and the multiply-adds of the published checkpoints
    # (tensorflow/models, research/slim/nets/mobilenet): 300M at width 1.0, 59M at 0.35.
    model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=alpha, weights=None)
    assert arithmetic.forward(model) == pytest.approx(published, rel=0.01)


def stages(**values) -> dict[str, int]:
    return arithmetic.stage_multiply_adds(load_params(REPO / "params.yaml", values), N_TRAIN, N_VAL, N_CLASSES)


@pytest.fixture(scope="module")
def default():
    return stages()


def test_decoding_and_writing_pages_count_no_arithmetic(default):
    assert default["data"] == default["report"] == 0
    assert all(default[s] > 0 for s in ("features", "tune", "train", "finetune", "evaluate", "quantize"))


def test_mirrored_views_cost_the_features_stage_one_more_pass_per_train_image(default):
    plain = stages(train={"augment": "none"})
    base = keras.applications.MobileNetV2(input_shape=(160, 160, 3), include_top=False, weights=None)
    assert default["features"] - plain["features"] == N_TRAIN * arithmetic.forward(base)
    assert plain["finetune"] == default["finetune"]  # a view is drawn per image either way


def test_each_stage_counts_its_own_epochs_and_runs(default):
    more = stages(finetune={"epochs": 6}, quantize={"latency_runs": 400})
    none = stages(finetune={"epochs": 0})  # the hold-out scored for the shipping rule, no epoch
    assert more["finetune"] - none["finetune"] == 2 * (default["finetune"] - none["finetune"]) > 0
    assert more["quantize"] > default["quantize"]
    assert {s: more[s] for s in ("features", "tune", "train", "evaluate")} == \
        {s: default[s] for s in ("features", "tune", "train", "evaluate")}


def test_fine_tuning_fewer_layers_costs_less(default):
    assert stages(finetune={"fine_tune_at": 140})["finetune"] < default["finetune"]


def test_training_from_pixels_costs_a_trunk_pass_per_step(default):
    full = stages(train={"augment": "full"})
    assert full["train"] > 10 * default["train"]
    assert full["finetune"] > default["finetune"]


def test_matmul_rate_is_measured():
    assert arithmetic.matmul_gflops(seconds=0.1, n=256) > 0


def test_the_floor_counts_the_chosen_backbones_multiply_adds(default):
    efficient = stages(model={"backbone": "efficientnet_b0"})
    base = keras.applications.EfficientNetB0(input_shape=(160, 160, 3), include_top=False, weights=None)
    assert efficient["features"] == (2 * N_TRAIN + N_VAL) * arithmetic.forward(base)  # flip: two views per train image
    assert efficient["features"] > default["features"] and efficient["finetune"] != default["finetune"]
