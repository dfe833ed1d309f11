"""The network and its cut: the feature cache changes nothing but the speed."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from workbook.ml import extraction  # noqa: E402
from workbook.ml import network as model  # noqa: E402
from workbook.ml.feature_cache import Cache  # noqa: E402
from workbook.ml.feeds import CachedBatches, predict  # noqa: E402
from workbook.ml.fitting import compile_classifier, seed_everything  # noqa: E402
from workbook.pipeline.params import BACKBONES, ParamError  # noqa: E402

BASE_LAYERS = BACKBONES["mobilenet_v2"].layers


@pytest.fixture(scope="module")
def base():
    seed_everything(0)
    return model.build_base(64, "none")


def random_bn_statistics(base, seed=0):
    """Random-init BatchNorm has mean 0, variance 1: give it real-looking statistics so that a
    cut that skipped or repeated a BatchNorm would show."""
    rng = np.random.default_rng(seed)
    draw = {"gamma": lambda s: rng.uniform(0.5, 1.5, s), "beta": lambda s: rng.normal(0, 0.1, s),
            "moving_mean": lambda s: rng.normal(0, 0.2, s), "moving_variance": lambda s: rng.uniform(0.5, 2.0, s)}
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # InceptionV3's have no gamma (scale=False)
            for w in layer.weights:
                w.assign(draw[w.name.split("/")[-1]](w.shape))


def cache_against_pixels(base, split, head, size: int, folder, seed: int = 0, dtype: str = "float32"):
    """Logits of 12 random images two ways: from the cut tensors as the cache holds them (through
    LiteRT, as the features stage computes them), and from the pixels through the whole network."""
    from PIL import Image

    images = np.random.default_rng(seed).integers(0, 256, (12, size, size, 3)).astype(np.uint8)
    files = []
    for i, a in enumerate(images):
        files.append(str(folder / f"{i}.png"))
        Image.fromarray(a).save(files[-1])
    extraction.write_cache(split, {"val": files}, folder / "cache", 5, dtype, flip=False)
    cache = Cache.open(folder / "cache")
    top = model.build_top_classifier(split, head)
    cached = predict(top, CachedBatches(cache.cut("val"), np.zeros(12, int), 5, 0, shuffle=False))
    return cached, model.logits_from_pixels(base, head, images), cache


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_every_backbone_is_as_the_params_say_and_its_cache_is_exact(backbone, tmp_path):
    """Random weights (with real-looking BatchNorm statistics), at its smallest input: its layer
    count, where fine-tuning starts by default and the cut there; then logits from the cached cut
    tensors equal logits from the pixels."""
    own = BACKBONES[backbone]
    size = max(32, own.min_size)
    base = model.build_base(size, "none", backbone=backbone)
    assert len(base.layers) == own.layers
    first = base.layers[own.fine_tune_at].name
    named = base.layers[own.fine_tune_at - 1].name if backbone == "inception_v3" else first
    assert named in own.why, f"{own.why!r} names {named}"  # inception_v3: after mixed8
    random_bn_statistics(base)
    split = model.split_base(base, own.fine_tune_at)
    if backbone != "mobilenet_v2":  # whose 130 is inside block 14: two tensors cross it
        assert len(split.cut) == 1, "the default starts at a block boundary: one tensor crosses it"
    head = model.build_head(4, 8, 0.0, seed=1, features=int(base.output.shape[-1]))
    cached, direct, _ = cache_against_pixels(base, split, head, size, tmp_path)
    np.testing.assert_allclose(cached, direct, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(direct).max())))


def test_cut_at_130_is_the_residual_input_and_the_depthwise_output(base):
    assert model.cut_layer_names(base, 130) == ["block_13_project_BN", "block_14_depthwise_BN"]


@pytest.mark.parametrize("fine_tune_at", [130, 100])
def test_logits_from_cached_tensors_equal_logits_from_pixels(base, fine_tune_at, tmp_path):
    """The exactness proof: cache the cut tensors (float32), run the rest, compare with pixels."""
    random_bn_statistics(base)
    head = model.build_head(5, 16, 0.2, seed=1)
    cached, direct, cache = cache_against_pixels(base, model.split_base(base, fine_tune_at), head, 64, tmp_path,
                                                 seed=fine_tune_at)
    np.testing.assert_allclose(cached, direct, rtol=1e-4, atol=1e-4)
    pooled = head(np.asarray(cache.pooled("val"))).numpy()
    np.testing.assert_allclose(pooled, direct, rtol=1e-4, atol=1e-4)


def test_a_float16_cache_stays_close(base, tmp_path):
    random_bn_statistics(base, seed=3)
    head = model.build_head(5, 16, 0.0, seed=1)
    split = model.split_base(base, 130)
    images = np.random.default_rng(5).integers(0, 256, (6, 64, 64, 3)).astype(np.uint8)
    from PIL import Image
    files = [str(tmp_path / f"{i}.png") for i in range(6)]
    for f, a in zip(files, images):
        Image.fromarray(a).save(f)
    extraction.write_cache(split, {"val": files}, tmp_path / "c16", 4, "float16", flip=False)
    top = model.build_top_classifier(split, head)
    cached = predict(top, CachedBatches(Cache.open(tmp_path / "c16").cut("val"), np.zeros(6, int), 4, 0,
                                        shuffle=False))
    direct = model.logits_from_pixels(base, head, images)
    assert np.abs(cached - direct).max() < 2e-2 * max(1.0, np.abs(direct).max())


def test_mirrored_views_are_the_trunk_of_mirrored_images(base, tmp_path):
    split = model.split_base(base, 130)
    images = np.random.default_rng(2).integers(0, 256, (4, 64, 64, 3)).astype(np.uint8)
    from PIL import Image
    files = [str(tmp_path / f"{i}.png") for i in range(4)]
    for f, a in zip(files, images):
        Image.fromarray(a).save(f)
    extraction.write_cache(split, {"train": files, "val": files}, tmp_path / "c", 3, "float32", flip=True)
    cache = Cache.open(tmp_path / "c")
    run = extraction.Extractor(split)
    expected = run(images[:, :, ::-1, :].astype(np.float32))
    for got, want in zip(cache.cut("train_flip") + [cache.pooled("train_flip")], expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="computed from other images"):
        cache.check("train", files[::-1])


def test_fine_tuning_keeps_batchnorm_statistics_and_trains_its_scale(base):
    """BatchNorm in inference mode on both paths: moving statistics fixed, gamma learning."""
    seed_everything(0)
    head = model.build_head(3, 8, 0.0, seed=0)
    model.set_fine_tuning(base, 130)
    bn = base.get_layer("block_15_expand_BN")
    split = model.split_base(base, 130)
    x = [np.random.default_rng(0).normal(size=(8, *s)).astype("float32") for s in split.cut_shapes]
    y = np.arange(8) % 3
    for build, inputs in ((lambda: model.build_top_classifier(split, head), x),
                          (lambda: model.build_classifier(base, head, 64, softmax=False, trainable=True),
                           np.random.default_rng(1).uniform(0, 255, (8, 64, 64, 3)).astype("float32"))):
        mean, gamma = bn.moving_mean.numpy().copy(), bn.gamma.numpy().copy()
        m = compile_classifier(build(), 1e-2)
        m.fit(inputs, y, epochs=1, batch_size=4, verbose=0)
        assert np.array_equal(mean, bn.moving_mean.numpy())
        assert not np.array_equal(gamma, bn.gamma.numpy())
    model.set_fine_tuning(base, None)


def test_fine_tune_at_out_of_range_is_a_param_error(base):
    with pytest.raises(ParamError, match="finetune.fine_tune_at"):
        model.split_base(base, len(base.layers))


def test_fine_tune_at_by_name_is_that_layer_and_a_misspelt_one_a_param_error_with_the_nearest(base):
    assert model.layer_index(base, "block_14_depthwise_relu") == 130
    with pytest.raises(ParamError, match="finetune.fine_tune_at = 'block_14_depthwise_rel': no layer .* "
                                         "did you mean block_14_depthwise_relu"):
        model.layer_index(base, "block_14_depthwise_rel")


def test_weights_that_do_not_fit_are_a_param_error(tmp_path):
    import h5py
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"Conv1", b"Conv_1"])
    with pytest.raises(ParamError, match="model.weights"):
        model.build_base(64, str(path))


def test_a_narrower_base_trains_with_random_weights():
    """model.alpha 0.5: the same 154 layers and cut, fewer channels; the head trains on its pooled output."""
    from workbook.ml.network import build_head, build_top_classifier, split_base

    base = model.build_base(32, "none", alpha=0.5)
    assert len(base.layers) == BASE_LAYERS and base.output.shape[-1] == 1280  # pooled width: 1280 up to alpha 1
    split = split_base(base, 130)
    assert split.cut == ["block_13_project_BN", "block_14_depthwise_BN"]
    assert split.cut_shapes[0][-1] == 80  # 160 channels at alpha 1.0
    seed_everything(0)
    top = build_top_classifier(split, build_head(3, 8, 0.0, seed=0, features=int(base.output.shape[-1])))
    model.set_fine_tuning(base, 130)
    compile_classifier(top, 1e-3)
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(16, *s)).astype("float32") for s in split.cut_shapes]
    history = top.fit(x, np.arange(16) % 3, epochs=2, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]


def test_efficientnet_sees_its_pixels_as_keras_imagenet_build_does_whatever_the_weights():
    """Keras divides EfficientNet's normalised input by the standard deviation once more only when
    it builds with weights="imagenet"; the workbook builds it without that layer and divides before
    it: raw pixels through preprocessing then the base's own Rescaling and Normalization (whose mean
    and variance its weights hold: ImageNet's mean and standard deviation) give (x/255 - mean) / sd."""
    base = model.build_base(32, "none", backbone="efficientnet_b0")
    rescale, normalise = base.layers[1], base.layers[2]
    assert isinstance(rescale, keras.layers.Rescaling) and isinstance(normalise, keras.layers.Normalization)
    mean, sd = np.array(model.EFFICIENTNET["mean"]), np.array(model.EFFICIENTNET["sd"])
    reference = keras.layers.Normalization(mean=mean, variance=sd)  # as the ImageNet weights set it
    x = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    seen = reference(rescale(model.preprocessing("efficientnet_b0")(x))).numpy()
    np.testing.assert_allclose(seen, (x / 255 - mean) / sd, rtol=1e-4, atol=1e-4)


def test_a_backbone_loads_a_weights_file_of_its_own_into_the_layers_it_always_has(tmp_path):
    """An .h5 of EfficientNet weights (as Keras 2 saved them, by layer order) loads into the same
    237 layers as no weights do; the baseline's classifier comes at the study's size from a file."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    def saved(m, path):
        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, m)
        return str(path)

    no_top = saved(keras.applications.EfficientNetB0(input_shape=(64, 64, 3), include_top=False, weights=None),
                   tmp_path / "no_top.h5")
    top_model = keras.applications.EfficientNetB0(input_shape=(64, 64, 3), weights=None)
    top = saved(top_model, tmp_path / "top.h5")
    base = model.build_base(48, no_top, backbone="efficientnet_b0")
    assert len(base.layers) == BACKBONES["efficientnet_b0"].layers
    full = model.build_base(48, top, backbone="efficientnet_b0", include_top=True)
    assert full.input_shape[1:] == (48, 48, 3) and full.output_shape[-1] == 1000
    for mine, theirs in zip(full.get_weights(), top_model.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
