"""The one place that builds the network: MobileNetV2 base, its cut at fine_tune_at, the head.

With the base frozen below `fine_tune_at` and BatchNorm in inference mode, everything below the
cut is a fixed function of the image. `split_base` finds the cut generically: the outputs of
frozen layers that feed trainable ones (for MobileNetV2 at 130: block_13_project_BN, the
residual input, and block_14_depthwise_BN). The trunk maps pixels to those tensors once per
image (the feature cache); the top maps them on to the base's output, as often as needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from workbook.pipeline.params import BASE_LAYERS, ParamError, h5_problem, resolve

# model.weights: none draws the base's weights from this fixed seed, not from params.yaml's `seed`:
# every stage builds the same base (the trunk saved with the model is the one the feature cache
# was computed with), and the cache does not depend on `seed`, which only drives training.
RANDOM_INIT_SEED = 0


def build_base(image_size: int, weights: str, root: Path | None = None, alpha: float = 1.0) -> keras.Model:
    """MobileNetV2 (no top, width `alpha`) taking [-1, 1] inputs; weights: imagenet | none | .h5 path."""
    source = None if weights == "none" else weights
    if weights == "none":
        keras.utils.set_random_seed(RANDOM_INIT_SEED)
    if weights not in ("imagenet", "none"):
        path = resolve(weights, root or Path.cwd())
        problem = h5_problem(path, with_top=False)
        if problem:
            raise ParamError(f"params.yaml: model.weights = {weights!r}: {problem}")
        source = str(path)
    try:
        base = keras.applications.MobileNetV2(
            input_shape=(image_size, image_size, 3), alpha=alpha, include_top=False, weights=source)
    except Exception as e:  # Keras raises ValueError, KeyError or OSError for files that do not fit
        if weights == "imagenet":
            raise ParamError("params.yaml: model.weights = 'imagenet': Keras could not download the "
                             f"weights ({e}); offline, give the path of the no-top .h5 file") from None
        raise ParamError(f"params.yaml: model.weights = {weights!r}: does not fit MobileNetV2 "
                         f"without top, alpha {alpha:g}, at {image_size} px ({type(e).__name__}: {e})") from None
    if len(base.layers) != BASE_LAYERS:
        raise AssertionError(f"MobileNetV2 has {len(base.layers)} layers, not {BASE_LAYERS}: "
                             "update BASE_LAYERS in workbook/pipeline/params.py")
    return base


def load_model(path: Path) -> keras.Model:
    """A model an earlier stage saved (.keras); a clear error when that stage has not run."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: not there yet; run the stage that writes it (dvc repro)")
    return keras.models.load_model(path)


def cut_layer_names(base: keras.Model, fine_tune_at: int) -> list[str]:
    """Names of the layers below `fine_tune_at` whose outputs feed layers at or above it."""
    index = {layer.name: i for i, layer in enumerate(base.layers)}
    cut = set()
    for layer in base.layers[fine_tune_at:]:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                # Nodes of earlier splits (their cloned inputs) are not the base's own graph.
                if producer.name in index and index[producer.name] < fine_tune_at:
                    cut.add(producer.name)
    return sorted(cut, key=index.__getitem__)


@dataclass
class Split:
    base: keras.Model
    fine_tune_at: int
    cut: list[str]  # names of the cut tensors, in the order the models take them
    trunk: keras.Model  # pixels in [-1, 1] -> cut tensors (frozen: computed once, cached)
    top: keras.Model  # cut tensors -> base output (fine-tuned)

    @property
    def cut_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(t.shape[1:]) for t in self.top.inputs]


def split_base(base: keras.Model, fine_tune_at: int) -> Split:
    """Cut the base in two at `fine_tune_at`; the halves share the base's layers and weights."""
    if not 0 < fine_tune_at < len(base.layers):
        raise ParamError(f"params.yaml: finetune.fine_tune_at = {fine_tune_at}: must be from 1 to "
                         f"{len(base.layers) - 1} (the base has {len(base.layers)} layers)")
    names = cut_layer_names(base, fine_tune_at)
    tensors = [base.get_layer(n).output for n in names]
    trunk = keras.Model(base.input, tensors, name="trunk")
    top = keras.Model(tensors, base.output, name="top")  # Keras clones the graph from these tensors
    return Split(base, fine_tune_at, names, trunk, top)


def set_fine_tuning(base: keras.Model, fine_tune_at: int | None) -> None:
    """Freeze the whole base (None) or only the layers below `fine_tune_at`."""
    base.trainable = True
    for i, layer in enumerate(base.layers):
        layer.trainable = fine_tune_at is not None and i >= fine_tune_at


class InferenceMode(keras.layers.Layer):
    """Runs a sub-model with training=False whatever the caller asks: BatchNorm keeps its moving
    statistics while its scale and offset still learn. (Keras 3 passes the outer `training` on to
    a sub-model built from intermediate tensors, so `top(x, training=False)` is not enough.)"""

    def __init__(self, inner: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs):
        return self.inner(inputs, training=False)


def build_head(n_classes: int, units: int, dropout: float, seed: int, features: int = 1280) -> keras.Model:
    """Dense(units, relu) -> Dropout -> Dense(n_classes) logits, on the pooled 1280 features."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(units, activation="relu", kernel_initializer=init, name="dense"),
        keras.layers.Dropout(dropout, seed=seed, name="dropout"),
        keras.layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
                           name="logits"),
    ], name="head")


def preprocessing() -> keras.layers.Layer:
    """Raw pixels in [0, 255] to MobileNetV2's [-1, 1], inside the model."""
    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")


def build_classifier(base: keras.Model, head: keras.Model, image_size: int, softmax: bool = True,
                     augment: keras.layers.Layer | None = None, trainable: bool = False) -> keras.Model:
    """Raw RGB pixels (0..255) -> class probabilities (or logits).

    `trainable=True` builds the graph to train from pixels, with the base wrapped in
    InferenceMode; the default builds the deployable model (plain layers, saved as .keras).
    """
    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    x = augment(pixels) if augment is not None else pixels
    x = preprocessing()(x)
    x = InferenceMode(base, name="base_inference")(x) if trainable else base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = head(x)
    if softmax:
        x = keras.layers.Softmax(name="probabilities")(x)
    return keras.Model(pixels, x, name="classifier")


def build_top_classifier(split: Split, head: keras.Model) -> keras.Model:
    """Cached cut tensors -> logits: what fine-tuning trains, without touching a pixel."""
    inputs = [keras.Input(shape, name=f"cut_{i}") for i, shape in enumerate(split.cut_shapes)]
    x = InferenceMode(split.top, name="top_inference")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, head(x), name="top_classifier")


def augmentation(rotation: float, seed: int) -> keras.Sequential:
    """Random flip and rotation on pixels (the uncached `full` path)."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(rotation, seed=seed + 1),
    ], name="augment")


def logits_from_pixels(base, head, images: np.ndarray) -> np.ndarray:
    """Reference path for tests: raw pixels through the whole network."""
    model = build_classifier(base, head, images.shape[1], softmax=False)
    return model(images.astype("float32"), training=False).numpy()
