"""The one place that builds the network: the backbone (model.backbone, from keras.applications),
its cut at fine_tune_at, the head.

With the base frozen below `fine_tune_at` and BatchNorm in inference mode, everything below the
cut is a fixed function of the image. `split_base` finds the cut generically: the outputs of
frozen layers that feed trainable ones (for MobileNetV2 at 130: block_13_project_BN, the
residual input, and block_14_depthwise_BN). The trunk maps pixels to those tensors once per
image (the feature cache); the top maps them on to the base's output, as often as needed.

Every model here takes raw pixels (0..255): `preprocessing` scales them as the backbone expects
([-1, 1] for MobileNetV2 and InceptionV3), or passes them on to a backbone that scales them itself
(MobileNetV3 holds its Rescaling; EfficientNet its Rescaling and Normalization, with a correction
before them, EFFICIENTNET).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from workbook.pipeline.params import BACKBONES, ParamError, h5_problem, resolve

# model.weights: none draws the base's weights from this fixed seed, not from params.yaml's `seed`:
# every stage builds the same base (the trunk saved with the model is the one the feature cache
# was computed with), and the cache does not depend on `seed`, which only drives training.
RANDOM_INIT_SEED = 0


@dataclass(frozen=True)
class Application:
    """How keras.applications builds a backbone."""

    constructor: str  # the keras.applications function
    scaling: str  # what `preprocessing` does to raw pixels: "[-1, 1]", "none" (it scales them itself),
    # or "efficientnet" (see EFFICIENTNET)
    takes_alpha: bool  # model.alpha reaches it
    name: str  # as the reports name it
    top_size: int | None = None  # the one input size Keras gives its ImageNet classifier at (None: any it has)
    rebuilt: bool = False  # always built without weights, which are then loaded into it (see EFFICIENTNET)


APPLICATIONS = {
    "mobilenet_v2": Application("MobileNetV2", "[-1, 1]", True, "MobileNetV2"),
    "mobilenet_v3_small": Application("MobileNetV3Small", "none", True, "MobileNetV3-Small", 224),
    "mobilenet_v3_large": Application("MobileNetV3Large", "none", True, "MobileNetV3-Large", 224),
    "efficientnet_b0": Application("EfficientNetB0", "efficientnet", False, "EfficientNet-B0", 224, rebuilt=True),
    "inception_v3": Application("InceptionV3", "[-1, 1]", False, "InceptionV3", 299),
}
# EfficientNet scales raw pixels itself (Rescaling 1/255, Normalization), but Keras divides by the
# ImageNet standard deviation a second time (one more Rescaling layer) only when it builds with
# weights="imagenet" (keras/src/applications/efficientnet.py, tensorflow/tensorflow#49930): with a
# weights file, or none, that layer is missing and the trunk would see other inputs than it was
# trained on. The base is therefore always built without it (the same 237 layers at every weights)
# and the same division done before it, as an affine map of the raw pixels per channel:
# x -> x / sqrt(sd) + 255 mean (1 - 1 / sqrt(sd)) makes (x'/255 - mean) / sqrt(sd) = (x/255 - mean) / sd.
EFFICIENTNET = {"mean": (0.485, 0.456, 0.406), "sd": (0.229, 0.224, 0.225)}


def build_base(image_size: int, weights: str, root: Path | None = None, alpha: float = 1.0,
               backbone: str = "mobilenet_v2", include_top: bool = False) -> keras.Model:
    """The backbone without its classifier (with it, `include_top`: the 1000 ImageNet classes),
    width `alpha` where it takes one; weights: imagenet | none | an .h5 path. Its input is what
    `preprocessing(backbone)` hands it."""
    app = APPLICATIONS[backbone]
    source = None if weights == "none" else weights
    if weights == "none":
        keras.utils.set_random_seed(RANDOM_INIT_SEED)
    dotted = "evaluate.baseline_weights" if include_top else "model.weights"
    if weights not in ("imagenet", "none"):
        path = resolve(weights, root or Path.cwd())
        problem = h5_problem(path, with_top=include_top, backbone=backbone)
        if problem:
            raise ParamError(f"params.yaml: {dotted} = {weights!r}: {problem}")
        source = str(path)
    options = {"alpha": alpha, "input_shape": (image_size, image_size, 3), "include_top": include_top}
    if not app.takes_alpha:
        del options["alpha"]
    build = getattr(keras.applications, app.constructor)
    # Keras builds it with its weights, except: files of a classifier (by order: their layer names are
    # Keras 2's), a classifier at another size than its own, and a backbone always rebuilt
    direct = source is None or not (app.rebuilt or include_top and (
        source != "imagenet" or app.top_size not in (None, image_size)))
    try:
        if direct:
            base = build(weights=source, **options)
        else:
            base = build(weights=None, **options)
            if source == "imagenet":
                size = app.top_size if include_top and app.top_size else image_size
                base.set_weights(build(weights="imagenet", **{**options, "input_shape": (size, size, 3)}).get_weights())
            else:
                base.load_weights(source)
    except Exception as e:  # Keras raises ValueError, KeyError or OSError for files that do not fit
        if weights == "imagenet":
            raise ParamError(f"params.yaml: {dotted} = 'imagenet': Keras could not download the "
                             f"{app.name} weights ({e}); offline, give the path of the .h5 file") from None
        raise ParamError(f"params.yaml: {dotted} = {weights!r}: does not fit {app.name}"
                         f"{' with' if include_top else ' without'} top, alpha {alpha:g}, at {image_size} px "
                         f"({type(e).__name__}: {e})") from None
    expected = BACKBONES[backbone].layers
    if not include_top and len(base.layers) != expected:
        raise AssertionError(f"{app.name} has {len(base.layers)} layers, not {expected}: update BACKBONES in "
                             "workbook/pipeline/params.py")
    return base


def pretrained(P, root: Path | None = None) -> keras.Model:
    """The base params.yaml names (model.*, at data.image_size): what every stage builds."""
    return build_base(P.data.image_size, P.model.weights, root, P.model.alpha, P.model.backbone)


def load_model(path: Path) -> keras.Model:
    """A model an earlier stage saved (.keras); a clear error when that stage has not run."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: not there yet; run the stage that writes it (dvc repro)")
    return keras.models.load_model(path)


def layer_index(base: keras.Model, at: int | str) -> int:
    """finetune.fine_tune_at as an index into the base's layers: an index, or a layer's name."""
    if isinstance(at, str):
        names = [layer.name for layer in base.layers]
        if at not in names:
            close = difflib.get_close_matches(at, names, n=3)
            raise ParamError(f"params.yaml: finetune.fine_tune_at = {at!r}: no layer of {base.name} is named so"
                             + (f"; did you mean {', '.join(close)}?" if close else ""))
        at = names.index(at)
    if not 0 < at < len(base.layers):
        raise ParamError(f"params.yaml: finetune.fine_tune_at = {at}: must be from 1 to "
                         f"{len(base.layers) - 1} (the base has {len(base.layers)} layers)")
    return at


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


def split_base(base: keras.Model, fine_tune_at: int | str) -> Split:
    """Cut the base in two at `fine_tune_at` (an index or a layer's name); the halves share the
    base's layers and weights."""
    fine_tune_at = layer_index(base, fine_tune_at)
    names = cut_layer_names(base, fine_tune_at)
    tensors = [base.get_layer(n).output for n in names]
    trunk = keras.Model(base.input, tensors, name="trunk")
    top = keras.Model(tensors, base.output, name="top")  # Keras clones the graph from these tensors
    return Split(base, fine_tune_at, names, trunk, top)


def set_fine_tuning(base: keras.Model, fine_tune_at: int | str | None) -> None:
    """Freeze the whole base (None) or only the layers below `fine_tune_at`."""
    fine_tune_at = None if fine_tune_at is None else layer_index(base, fine_tune_at)
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
    """Dense(units, relu) -> Dropout -> Dense(n_classes) logits, on the base's `features` pooled
    values (1280 for MobileNetV2 up to alpha 1)."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(units, activation="relu", kernel_initializer=init, name="dense"),
        keras.layers.Dropout(dropout, seed=seed, name="dropout"),
        keras.layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 1),
                           name="logits"),
    ], name="head")


def preprocessing(backbone: str = "mobilenet_v2") -> keras.layers.Layer:
    """Raw pixels in [0, 255] to what the backbone takes, inside the model: [-1, 1], the pixels as
    they are for a backbone that scales them itself, or EfficientNet's (see EFFICIENTNET)."""
    scaling = APPLICATIONS[backbone].scaling
    if scaling == "none":
        return keras.layers.Identity(name="preprocess")
    if scaling == "efficientnet":
        scale = [1 / math.sqrt(sd) for sd in EFFICIENTNET["sd"]]
        offset = [255 * mean * (1 - k) for mean, k in zip(EFFICIENTNET["mean"], scale)]
        return keras.layers.Rescaling(scale, offset=offset, name="preprocess")
    return keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")


def backbone_name(base: keras.Model) -> str:
    """Which backbone a built base is (model.backbone's value), from its Keras name: its constructor's
    ("mobilenetv2_1.00_224", "MobileNetV3Small", "inception_v3")."""
    keras_name = base.name.lower().replace("_", "")
    for name, app in APPLICATIONS.items():
        if keras_name.startswith(app.constructor.lower()):
            return name
    raise ValueError(f"{base.name}: not one of the backbones ({', '.join(APPLICATIONS)})")


def build_classifier(base: keras.Model, head: keras.Model, image_size: int, softmax: bool = True,
                     augment: keras.layers.Layer | None = None, trainable: bool = False) -> keras.Model:
    """Raw RGB pixels (0..255) -> class probabilities (or logits).

    `trainable=True` builds the graph to train from pixels, with the base wrapped in
    InferenceMode; the default builds the deployable model (plain layers, saved as .keras).
    """
    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    x = augment(pixels) if augment is not None else pixels
    x = preprocessing(backbone_name(base))(x)
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
