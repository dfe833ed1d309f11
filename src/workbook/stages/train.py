"""The train stage: the head on the frozen base, at the rate the tune stage chose, on the drawn
train images (data.train_per_class of each class); and the same head on the drawn images outside
the hold-out only, which the finetune stage scores on the hold-out to choose the model that ships.

Its notebook calls the steps one by one: `inputs`, then workbook.ml.head_training's
`initial_head`, `batches` and `train`, then `selection_head` and `save`; `run` composes the same.
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

__all__ = ["inputs", "initial_head", "batches", "one_batch", "train", "selection_head", "save", "run"]


@dataclass
class Inputs:
    """What head training starts from."""

    lr: float  # the rate the tune stage chose
    data: Data  # the drawn train images, val and the feature cache
    fit: Data  # the drawn train images outside the hold-out
    held_out: int  # the drawn train images held out to score the choices
    base: keras.Model | None  # the frozen base, with train.augment full only (the rest reads the cache)

    def __repr__(self) -> str:
        pooled = self.data.cache.pooled("train").shape[1:]
        return (f"rate {self.lr:.3g} (results/tune.json); {len(self.data.y_train):,} drawn train images "
                f"({len(self.fit.y_train):,} outside the hold-out of {self.held_out:,}) and {len(self.data.y_val):,} "
                f"val images in {len(self.data.classes)} classes, pooled features {pooled} cached"
                + (f"; base {self.base.name} for the pixels" if self.base is not None else ""))


def inputs(P, paths) -> Inputs:
    """The chosen rate, the feature cache split into the drawn train images and, within them, the
    fit rows and the hold-out; the base too where the head trains from pixels."""
    from workbook.ml.network import pretrained

    lr = tuned_rate(paths)
    chosen = split(Data.load(paths), P.tune.holdout, P.data.train_per_class, P.seed)
    full = P.train.augment == "full"  # through the pixels: the whole base runs every step
    base = pretrained(P, paths.root) if full else None
    return Inputs(lr, chosen.drawn, chosen.fit, len(chosen.held.y_train), base)


def selection_head(P, paths, given: Inputs) -> Fit:
    """The same head, trained the same way on the fit rows only (the hold-out left out), saved as
    models/selection_head.keras: the finetune stage fine-tunes it on the same rows and scores both
    on the hold-out to choose the model that ships, which is then trained on every drawn image."""
    fitted = train_head(P, given.fit, given.lr, given.base)
    with atomic_path(paths.selection_head) as tmp:
        fitted.model.save(tmp)
    return fitted


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
    train_images: int  # the images it learned from: the drawn ones (data.train_per_class of each class)
    fit_images: int  # the selection head's: the drawn images outside the hold-out
    selection_val_accuracy: float  # the selection head's, after its last epoch
    selection_seconds: float  # of training the selection head
    replicas: int  # devices that trained in sync (train.distribute)
    curves: pd.DataFrame  # one row per epoch (also in dvclive/train)


def save(P, paths, given: Inputs, fitted: Fit, selection: Fit) -> TrainResult:
    """Save the trained head as models/head.keras and describe both trainings."""
    with atomic_path(paths.head_model) as tmp:
        fitted.model.save(tmp)
    last = fitted.curves.iloc[-1]
    result = TrainResult(lr=given.lr, epochs=P.train.epochs, augment=P.train.augment,
                         val_accuracy=float(last.val_accuracy), val_loss=float(last.val_loss),
                         seconds=round(fitted.seconds, 1), seconds_per_epoch=fitted.seconds_per_epoch,
                         train_images=len(given.data.y_train), fit_images=len(given.fit.y_train),
                         selection_val_accuracy=float(selection.curves.iloc[-1].val_accuracy),
                         selection_seconds=round(selection.seconds, 1), replicas=fitted.replicas,
                         curves=fitted.curves)
    write_details(paths.details("train"), result)
    return result


def run(P, paths) -> TrainResult:
    """The stage's steps in order: train the head on the drawn images and on the fit rows, save
    both, describe the training."""
    given = inputs(P, paths)
    fitted = train_head(P, given.data, given.lr, given.base, live_dir=paths.live("train"))
    return save(P, paths, given, fitted, selection_head(P, paths, given))
