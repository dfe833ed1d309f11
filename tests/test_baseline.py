"""The no-training baseline for every kind of classifier top: the backbone's own ImageNet classifier
(from a with-top weights file) restricted to the study's classes. Where that classifier is one Dense
layer on the pooled features and its trunk is the cache's (EfficientNet), it is computed from the
cached pooled features; where it is more (MobileNetV3's convolutions), from the whole network over
the images. Both must give what the whole network gives, renormalised over the classes."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from keras.src.legacy.saving import legacy_h5_format  # noqa: E402
from PIL import Image  # noqa: E402

from workbook.ml import imagenet_classes  # noqa: E402
from workbook.ml import network as model  # noqa: E402
from workbook.stages import evaluate  # noqa: E402

SIZE = 48
IMAGENETTE = ["n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
              "n03425413", "n03445777", "n03888605"]


def saved(m, path) -> str:
    import h5py

    with h5py.File(path, "w") as f:  # as Keras 2 saved the ImageNet weights: by layer, in order
        legacy_h5_format.save_weights_to_hdf5_group(f, m)
    return str(path)


@pytest.mark.parametrize("backbone, how", [("efficientnet_b0", "cached pooled features"),
                                           ("mobilenet_v3_small", "whole network")])
def test_the_baseline_is_the_whole_classifier_restricted_to_the_classes(backbone, how, tmp_path):
    app = model.APPLICATIONS[backbone]
    build = getattr(keras.applications, app.constructor)
    keras.utils.set_random_seed(3)
    with_top = build(input_shape=(SIZE, SIZE, 3), weights=None)
    no_top = build(input_shape=(SIZE, SIZE, 3), include_top=False, weights=None)
    no_top.set_weights(with_top.get_weights()[:len(no_top.get_weights())])  # the same trunk, by position
    top_file, trunk_file = saved(with_top, tmp_path / "top.h5"), saved(no_top, tmp_path / "no_top.h5")
    images = np.random.default_rng(0).integers(0, 256, (6, SIZE, SIZE, 3)).astype(np.uint8)
    files = []
    for i, a in enumerate(images):
        files.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(a).save(files[-1])
    base = model.build_base(SIZE, trunk_file, backbone=backbone)
    pixels = keras.Input((SIZE, SIZE, 3))
    pooled = keras.Model(pixels, keras.layers.GlobalAveragePooling2D()(base(model.preprocessing(backbone)(pixels))))
    found = evaluate.baseline(top_file, trunk_file, SIZE, IMAGENETTE, tmp_path, pooled.predict(images, verbose=0),
                              files, backbone=backbone)
    assert how in found.note and "restricted to the 10 classes" in found.note
    whole = keras.Model(pixels, with_top(model.preprocessing(backbone)(pixels))).predict(images, verbose=0)
    idx = imagenet_classes.indices(IMAGENETTE)
    expected = whole[:, idx] / whole[:, idx].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(found.probs, expected, rtol=1e-3, atol=1e-5)
