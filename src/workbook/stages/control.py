"""The control stage: a small CNN from random initialisation (workbook.ml.scratch_cnn), trained on
the same train images the study's models learn from (data.train_per_class of each class) and
scored on the same val images. Its class probabilities of every val image are kept, so that the
evaluate stage can compare it with the fine-tuned model image by image.

An epoch of the control is as long at every data.train_per_class: as many images as the train set
holds, each drawn image repeated to fill it (`Images.repeats`), so that the size curve shows what
pretraining buys, not how few steps a network from scratch got.

Steps, each leaving something to look at: `images` (the pixels, shrunk), `network` (its summary),
`batches`, `fit` (the learning curves), `score` (accuracy and the files written). `run` is all
of them in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.analysis.stats import Accuracy
from workbook.ml import scratch_cnn
from workbook.ml.holdout import draw_per_class
from workbook.ml.prepared import load_manifest
from workbook.pipeline.atomic import atomic_path


@dataclass(repr=False)
class Images:
    """The control's pixels: train (the drawn rows) and val, shrunk to control.image_size (on disk,
    memory-mapped: scratch_cnn.shrink)."""

    classes: list[str]
    x_train: np.ndarray  # uint8, n x size x size x 3
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    repeats: int  # times each drawn image is taken per epoch: an epoch is as long as at `all`
    seconds: float  # reading and shrinking

    def counts(self) -> pd.DataFrame:
        """Images per class, train and val, at what size."""
        n = len(self.classes)
        counts = {"train": np.bincount(self.y_train, minlength=n), "val": np.bincount(self.y_val, minlength=n)}
        return pd.DataFrame(counts, index=pd.Index(self.classes, name=f"class ({self.x_val.shape[1]} px)"))


def images(P, paths) -> Images:
    """The prepared images the control learns from and is scored on, at control.image_size."""
    start = time.perf_counter()
    manifest, classes = load_manifest(paths.prepared)
    train, val = manifest[manifest.split == "train"], manifest[manifest.split == "val"]
    y = train.y.to_numpy()
    drawn = draw_per_class(y, P.data.train_per_class, P.seed, classes)
    size, folder = P.control.image_size, paths.control_model.parent
    folder.mkdir(parents=True, exist_ok=True)
    x_train = scratch_cnn.shrink([train.file.iloc[r] for r in drawn], size, folder)
    x_val = scratch_cnn.shrink(list(val.file), size, folder)
    repeats = -(-len(y) // len(drawn))  # every train image, over those drawn
    return Images(classes, x_train, y[drawn], x_val, val.y.to_numpy(), repeats, time.perf_counter() - start)


def network(P, n_classes: int) -> keras.Model:
    """The control network at control.image_size and control.width, initialised from `seed`."""
    return scratch_cnn.build(n_classes, P.control.image_size, P.control.width, P.seed)


def batches(P, im: Images):
    """(train, val) batch sets of the shrunk pixels (scratch_cnn.batches), each drawn image
    `im.repeats` times an epoch."""
    return scratch_cnn.batches(im.x_train, im.y_train, im.x_val, im.y_val, P.control.batch_size, P.seed,
                               repeats=im.repeats)


def fit(P, model: keras.Model, train, val, live_dir=None) -> scratch_cnn.ControlFit:
    """control.epochs epochs from control.lr, decaying along a cosine; the learning curves."""
    return scratch_cnn.train(model, train, val, P.control.epochs, P.control.lr, P.seed, live_dir=live_dir)


@dataclass
class ControlResult(Summary):
    """The control stage's result; its plain fields are results/control.json."""

    template = "control.md.j2"
    accuracy: Accuracy  # on val, with its 95% Wilson interval
    architecture: str
    weights: int
    image_size: int
    width: int
    epochs: int
    batch_size: int
    lr: float
    train_per_class: int | str  # data.train_per_class
    train_images: int  # what it learned from
    repeats: int  # times each of them was taken per epoch
    seconds_per_epoch: float  # training time over epochs, as the head's and fine-tuning's are counted
    epoch_seconds: list[float]
    seconds: float  # of training, every epoch's validation pass included
    read_seconds: float  # reading and shrinking the images
    curves: pd.DataFrame  # one row per epoch (also in dvclive/control)
    probs: np.ndarray  # class probabilities of each val image, in val order (results/control_val.npy)
    model: keras.Model

    @property
    def val_images(self) -> int:
        return self.accuracy.images

    @property
    def predicted(self) -> np.ndarray:
        """The class each val image is given."""
        return self.probs.argmax(axis=1)


def per_epoch(seconds: list[float]) -> float:
    """Seconds per epoch: the training's time over its epochs (the first one's tracing included),
    as the train and finetune stages count theirs."""
    return round(float(sum(seconds)) / max(len(seconds), 1), 2)


def score(P, paths, im: Images, fitted: scratch_cnn.ControlFit, val) -> ControlResult:
    """The control on every val image; writes models/control.keras, its val probabilities and
    results/control.json."""
    probs = scratch_cnn.probabilities(fitted.model, val)
    with atomic_path(paths.control_model) as tmp:
        fitted.model.save(tmp)
    with atomic_path(paths.control_predictions) as tmp:
        np.save(tmp, probs)
    c = P.control
    result = ControlResult(
        accuracy=Accuracy.of_predictions(im.y_val, probs.argmax(axis=1)),
        architecture=scratch_cnn.architecture(fitted.model), weights=int(fitted.model.count_params()),
        image_size=c.image_size, width=c.width, epochs=c.epochs, batch_size=c.batch_size, lr=c.lr,
        train_per_class=P.data.train_per_class, train_images=len(im.y_train), repeats=im.repeats,
        seconds_per_epoch=per_epoch(fitted.epoch_seconds), epoch_seconds=fitted.epoch_seconds,
        seconds=round(sum(fitted.epoch_seconds), 1), read_seconds=round(im.seconds, 1), curves=fitted.curves,
        probs=probs, model=fitted.model)
    write_details(paths.details("control"), result)
    return result


def run(P, paths) -> ControlResult:
    """The control stage: read and shrink the images, build, train and score the control."""
    im = images(P, paths)
    model = network(P, len(im.classes))
    train, val = batches(P, im)
    fitted = fit(P, model, train, val, live_dir=paths.live("control"))
    return score(P, paths, im, fitted, val)
