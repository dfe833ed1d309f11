"""The train stage: the head on the frozen base, at the rate the tune stage chose.

Its notebook calls the steps one by one: `inputs`, then workbook.ml.head_training's
`initial_head`, `batches` and `train`, then `save`; `run` composes the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import pandas as pd

from workbook.analysis.results import Summary, tuned_rate, write_details
from workbook.ml.feature_cache import Data
from workbook.ml.fitting import Fit, one_batch
from workbook.ml.head_training import batches, initial_head, train, train_head
from workbook.ml.holdout import split
from workbook.pipeline.atomic import atomic_path

__all__ = ["inputs", "initial_head", "batches", "one_batch", "train", "save", "run"]


@dataclass
class Inputs:
    """What head training starts from."""

    lr: float  # the rate the tune stage chose
    data: Data  # labels, image references and the feature cache
    base: keras.Model | None  # the frozen base, with train.augment full only (the rest reads the cache)

    def __repr__(self) -> str:
        pooled = self.data.cache.pooled("train").shape[1:]
        return (f"rate {self.lr:.3g} (results/tune.json); {len(self.data.y_train):,} train and "
                f"{len(self.data.y_val):,} val images in {len(self.data.classes)} classes, pooled features "
                f"{pooled} cached" + (f"; base {self.base.name} for the pixels" if self.base is not None else ""))


def inputs(P, paths) -> Inputs:
    """The chosen rate and the feature cache; the base too where the head trains from pixels."""
    from workbook.ml.network import build_base

    lr = tuned_rate(paths)
    d, _ = split(Data.load(paths), P.tune.holdout, P.data.train_per_class, P.seed)  # the hold-out stays unseen
    full = P.train.augment == "full"  # through the pixels: the whole base runs every step
    return Inputs(lr, d, build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha) if full else None)


@dataclass
class TrainResult(Summary):
    """The train stage's result; its plain fields are results/train.json."""

    template = "train.md.j2"
    lr: float
    epochs: int
    augment: str
    val_accuracy: float  # after the last epoch
    val_loss: float
    seconds: float  # of training
    seconds_per_epoch: float
    train_images: int  # the images it learned from (data.train_per_class, outside the tuner's hold-out)
    replicas: int  # devices that trained in sync (train.distribute)
    curves: pd.DataFrame  # one row per epoch (also in dvclive/train)


def save(P, paths, given: Inputs, fitted: Fit) -> TrainResult:
    """Save the trained head as models/head.keras and describe the training."""
    with atomic_path(paths.head_model) as tmp:
        fitted.model.save(tmp)
    last = fitted.curves.iloc[-1]
    result = TrainResult(lr=given.lr, epochs=P.train.epochs, augment=P.train.augment,
                         val_accuracy=float(last.val_accuracy), val_loss=float(last.val_loss),
                         seconds=round(fitted.seconds, 1), seconds_per_epoch=fitted.seconds_per_epoch,
                         train_images=len(given.data.y_train), replicas=fitted.replicas, curves=fitted.curves)
    write_details(paths.details("train"), result)
    return result


def run(P, paths) -> TrainResult:
    """The stage's steps in order: train the head, save models/head.keras, describe the training."""
    given = inputs(P, paths)
    return save(P, paths, given, train_head(P, given.data, given.lr, given.base, live_dir=paths.live("train")))
