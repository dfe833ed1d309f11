"""params.yaml is read one way, checked before any work, and errors name the key."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml
from conftest import REPO

from workbook.pipeline.params import (
    BACKBONES,
    ParamError,
    StageParams,
    UndeclaredParam,
    keys,
    load_params,
    subset,
)

BASE_LAYERS = BACKBONES["mobilenet_v2"].layers

# A wrong type and an out-of-range (or not allowed) value for every key.
BAD = {
    "seed": ("x", -1),
    "data.source": (5, "/no/such/folder"),
    "data.checksum": (123, "md5:xyz"),
    "data.image_size": ("big", 16),
    "data.train_per_class": ("some", 0),
    "model.backbone": (2, "resnet50"),
    "model.weights": (3, "weights.bin"),
    "model.alpha": ("wide", 0.6),
    "features.batch_size": (1.5, 0),
    "features.dtype": (16, "int8"),
    "tune.trials": ("ten", 0),
    "tune.lr_min": ("small", -1e-3),
    "tune.lr_max": ([1], 2.0),
    "tune.epochs": (None, 0),
    "tune.holdout": ("some", 1.0),
    "train.epochs": (2.5, 0),
    "train.batch_size": (True, 0),
    "train.dense_units": ("64", 0),
    "train.dropout": ("0.2", 1.0),
    "train.augment": (1, "mirror"),
    "train.rotation": ("x", 0.9),
    "train.distribute": (None, "multiworker"),
    "finetune.fine_tune_at": (1.5, 0),  # (a layer's name is checked once the network is built)
    "finetune.lr_factor": ("x", 0),
    "finetune.epochs": ("3", -1),
    "finetune.ship_margin": ("small", 1.5),
    "control.epochs": (2.5, 0),
    "control.image_size": ("small", 8),
    "control.width": (None, 0),
    "control.batch_size": (True, 0),
    "control.lr": ("fast", 0),
    "evaluate.baseline_weights": (0, "top.bin"),
    "evaluate.mistakes": ("all", -1),
    "quantize.representative_samples": (3.0, 0),
    "quantize.io_dtype": (8, "float16"),
    "quantize.latency_runs": ("many", 0),
    "quantize.max_threads": (2.0, 0),
}


def write(tmp_path, changes: dict | None = None, raw: str | None = None):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["source"] = str(tmp_path)  # an existing folder: no network, no ../shared
    params["model"]["weights"] = "none"
    params["evaluate"]["baseline_weights"] = "none"
    for dotted, value in (changes or {}).items():
        group, _, key = dotted.rpartition(".")
        (params[group] if group else params)[key] = value
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    path = tmp_path / "params.yaml"
    path.write_text(raw if raw is not None else yaml.safe_dump(params))
    return path


def test_every_key_has_bad_values_in_this_test():
    assert sorted(BAD) == sorted(keys())


def test_defaults_load(tmp_path):
    p = load_params(write(tmp_path))
    assert p.data.image_size == 160 and p.finetune.fine_tune_at == 130 and p.train.epochs == 3


@pytest.mark.parametrize("dotted", sorted(BAD))
@pytest.mark.parametrize("which", ["wrong type", "out of range"])
def test_bad_value_is_rejected_naming_the_key(tmp_path, dotted, which):
    value = BAD[dotted][0 if which == "wrong type" else 1]
    with pytest.raises(ParamError) as e:
        load_params(write(tmp_path, {dotted: value}))
    message = str(e.value)
    assert dotted in message and "\n" not in message


def test_unknown_key_suggests_the_closest(tmp_path):
    params = yaml.safe_load(write(tmp_path).read_text())
    params["train"]["epoch"] = params["train"].pop("epochs")
    with pytest.raises(ParamError, match=r"unknown key train\.epoch; did you mean train\.epochs\?"):
        load_params(write(tmp_path, raw=yaml.safe_dump(params)))


def test_missing_key_is_named(tmp_path):
    params = yaml.safe_load(write(tmp_path).read_text())
    del params["tune"]["trials"]
    with pytest.raises(ParamError, match=r"tune\.trials is missing"):
        load_params(write(tmp_path, raw=yaml.safe_dump(params)))


def test_lr_range_must_be_ordered(tmp_path):
    with pytest.raises(ParamError, match=r"tune\.lr_min .* must be below tune\.lr_max"):
        load_params(write(tmp_path, {"tune.lr_min": 0.1, "tune.lr_max": 0.01}))


def test_fine_tune_at_is_checked_against_the_layer_count(tmp_path):
    with pytest.raises(ParamError, match=f"must be below {BASE_LAYERS}, the number of mobilenet_v2's layers"):
        load_params(write(tmp_path, {"finetune.fine_tune_at": BASE_LAYERS}))
    assert load_params(write(tmp_path, {"finetune.fine_tune_at": BASE_LAYERS - 1})).finetune.fine_tune_at == 153
    with pytest.raises(ParamError, match="must be below 157, the number of mobilenet_v3_small's layers"):
        load_params(write(tmp_path, {"model.backbone": "mobilenet_v3_small", "finetune.fine_tune_at": 160}))
    named = load_params(write(tmp_path, {"finetune.fine_tune_at": "block_15_expand"}))
    assert named.finetune.fine_tune_at == "block_15_expand", "a name is resolved where the network is built"


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_fine_tune_at_default_is_the_backbones_own_as_params_yaml_says(tmp_path, backbone):
    own = BACKBONES[backbone]
    p = load_params(write(tmp_path, {"model.backbone": backbone, "data.image_size": max(96, own.min_size)}))
    assert p.finetune.fine_tune_at == own.fine_tune_at
    comments = " ".join(line.strip().lstrip("#").strip() for line in (REPO / "params.yaml").read_text().splitlines())
    assert f"{backbone} {own.fine_tune_at} (" in comments, "params.yaml's comment names each backbone's default"


def test_each_backbone_takes_its_own_widths_and_sizes(tmp_path):
    with pytest.raises(ParamError, match=r"model\.alpha = 0\.5: efficientnet_b0 takes no width multiplier: 1"):
        load_params(write(tmp_path, {"model.backbone": "efficientnet_b0", "model.alpha": 0.5}))
    with pytest.raises(ParamError, match=r"model\.alpha = 0\.5: mobilenet_v3_large takes 0\.75, 1 "):
        load_params(write(tmp_path, {"model.backbone": "mobilenet_v3_large", "model.alpha": 0.5}))
    with pytest.raises(ParamError, match=r"data\.image_size = 64: inception_v3 takes images of at least 75 pixels"):
        load_params(write(tmp_path, {"model.backbone": "inception_v3", "data.image_size": 64}))
    with pytest.raises(ParamError, match=r"model\.backbone = 'resnet50': must be one of mobilenet_v2, "):
        load_params(write(tmp_path, {"model.backbone": "resnet50"}))


def _fake_h5(path, layers):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layers])
    return path


def test_weights_file_must_exist_and_fit(tmp_path):
    with pytest.raises(ParamError, match=r"model\.weights .* no such file"):
        load_params(write(tmp_path, {"model.weights": str(tmp_path / "missing.h5")}))
    top = _fake_h5(tmp_path / "top.h5", ["input_1", "Conv1", "bn_Conv1", "Conv_1", "Logits"])
    no_top = _fake_h5(tmp_path / "no_top.h5", ["input_1", "Conv1", "bn_Conv1", "Conv_1", "out_relu"])
    other = _fake_h5(tmp_path / "other.h5", ["dense", "dense_1"])
    with pytest.raises(ParamError, match=r"model\.weights .* with-top"):
        load_params(write(tmp_path, {"model.weights": str(top)}))
    with pytest.raises(ParamError, match=r"evaluate\.baseline_weights .*no-top"):
        load_params(write(tmp_path, {"evaluate.baseline_weights": str(no_top)}))
    with pytest.raises(ParamError, match=r"model\.weights .* holds weights of none of the backbones"):
        load_params(write(tmp_path, {"model.weights": str(other)}))
    # weights of another backbone, named as Keras 2 saved them ("/" in MobileNetV3's names)
    small = _fake_h5(tmp_path / "small.h5", ["Conv", "expanded_conv_10/project", "Conv_1"])
    with pytest.raises(ParamError, match=r"model\.weights = .*small\.h5 holds mobilenet_v3_small weights, and "
                                         r"model\.backbone is mobilenet_v2"):
        load_params(write(tmp_path, {"model.weights": str(small)}))
    assert load_params(write(tmp_path, {"model.backbone": "mobilenet_v3_small", "model.weights": str(small)}))
    p = load_params(write(tmp_path, {"model.weights": str(no_top), "evaluate.baseline_weights": str(top)}))
    assert p.model.weights == str(no_top)


def test_archive_source_must_be_an_archive(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ParamError, match=r"data\.source .* archive"):
        load_params(write(tmp_path, {"data.source": str(tmp_path / "notes.txt")}))


def test_alpha_takes_the_widths_keras_has_weights_for(tmp_path):
    with pytest.raises(ParamError) as e:
        load_params(write(tmp_path, {"model.alpha": 0.6}))
    assert "model.alpha = 0.6" in str(e.value) and "0.35, 0.5, 0.75, 1, 1.3, 1.4" in str(e.value)
    assert load_params(write(tmp_path, {"model.alpha": 1})).model.alpha == 1.0


def test_values_handed_to_a_stage_apply_and_are_checked(tmp_path):
    path = write(tmp_path)
    assert load_params(path, values={"data": {"image_size": 96}}).data.image_size == 96
    assert load_params(path, values={"seed": 7, "train": {"epochs": 1}}).train.epochs == 1
    with pytest.raises(ParamError, match=r"data\.image_size"):
        load_params(path, values={"data": {"image_size": -5}})
    with pytest.raises(ParamError, match="not a params.yaml key"):
        load_params(path, values={"data": {"imagesize": 96}})


def test_a_stage_sees_only_the_params_it_declares(tmp_path):
    P = load_params(write(tmp_path))
    declared = ["seed", "train", "data.image_size"]
    view = StageParams(P, declared, "train")
    assert view.seed == P.seed and view.train.epochs == P.train.epochs
    assert view.data.image_size == P.data.image_size and view.get("train.dropout") == P.train.dropout
    with pytest.raises(UndeclaredParam, match=r"data\.source is not a param of the train stage.*dvc\.yaml"):
        view.data.source
    with pytest.raises(UndeclaredParam, match=r"finetune is not a param of the train stage"):
        view.finetune
    # what the runner hands the notebook: exactly the declared values, nested as in params.yaml
    handed = subset(P, declared)
    assert handed == {"seed": P.seed, "train": vars(P.train), "data": {"image_size": P.data.image_size}}
    assert load_params(write(tmp_path), values=handed) == P


def test_run_command_prints_one_line_naming_the_key(tmp_path):
    write(tmp_path, {"data.image_size": -5})
    (tmp_path / "dvc.yaml").write_text("stages:\n  data:\n    cmd: python -m workbook run data\n    params: [data]\n")
    proc = subprocess.run([sys.executable, "-m", "workbook", "run", "data"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.image_size = -5" in lines[0]
    assert not (tmp_path / "reports").exists()  # nothing written before the check passed


def test_train_per_class_takes_a_count_or_all(tmp_path):
    assert load_params(write(tmp_path)).data.train_per_class == "all"
    assert load_params(write(tmp_path, {"data.train_per_class": 10})).data.train_per_class == 10
    assert load_params(write(tmp_path, {"data.train_per_class": 2})).data.train_per_class == 2
    for bad in (1, 0, -3, 2.5, True, "ALL", "10", None):  # 1: nothing would be left to fit beside the hold-out
        with pytest.raises(ParamError, match=r"data\.train_per_class = .*: must be an integer of at least 2, or all"):
            load_params(write(tmp_path, {"data.train_per_class": bad}))


def test_the_control_is_not_trained_above_the_prepared_size(tmp_path):
    with pytest.raises(ParamError, match=r"control\.image_size = 200: must be at most data\.image_size \(160\)"):
        load_params(write(tmp_path, {"control.image_size": 200}))
    assert load_params(write(tmp_path, {"control.image_size": 160})).control.image_size == 160


def test_ship_margin_is_a_share_of_the_hold_out(tmp_path):
    assert load_params(write(tmp_path)).finetune.ship_margin == 0.01
    assert load_params(write(tmp_path, {"finetune.ship_margin": 0})).finetune.ship_margin == 0


def test_the_hold_out_leaves_every_class_something_to_train_on(tmp_path):
    assert load_params(write(tmp_path, {"data.train_per_class": 2, "tune.holdout": 0.5})).tune.holdout == 0.5
    with pytest.raises(ParamError, match=r"tune\.holdout = 0\.6: would hold out every one of data\.train_per_class "
                                         r"= 2 images of a class, leaving none to train on: at most 0\.5"):
        load_params(write(tmp_path, {"data.train_per_class": 2, "tune.holdout": 0.6}))
