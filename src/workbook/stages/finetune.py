"""The finetune stage: the base's layers from `fine_tune_at` on, trained further with the head.

Its notebook calls the steps one by one: `inputs`, then workbook.ml.fine_tuning's `unfreeze`,
`batches`, `schedule`, `train` and `deployable`, then `save`; `run` composes the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import pandas as pd

from workbook.analysis.results import Summary, tuned_rate, write_details
from workbook.ml.feature_cache import Data
from workbook.ml.fine_tuning import (
    batches,
    deployable,
    fine_tune,
    schedule,
    train,
    unfreeze,
)
from workbook.ml.fitting import Fit, one_batch, read_curves
from workbook.pipeline.atomic import atomic_path

__all__ = ["inputs", "unfreeze", "batches", "one_batch", "schedule", "train", "deployable", "save", "run"]


@dataclass
class Inputs:
    """What fine-tuning starts from."""

    head_lr: float  # the rate the tune stage chose for the head
    lr: float  # fine-tuning's starting rate: head_lr x finetune.lr_factor
    data: Data  # labels, image references and the feature cache
    base: keras.Model  # the pretrained base (model.weights)
    head: keras.Model  # the head the train stage saved

    def __repr__(self) -> str:
        cut = [a.shape[1:] for a in self.data.cache.cut("train")]
        return (f"head {self.head.name} ({self.head.count_params():,} parameters), base {self.base.name} "
                f"({len(self.base.layers)} layers); {len(self.data.y_train):,} train and {len(self.data.y_val):,} "
                f"val images, cached at the cut as {cut}; rate {self.lr:.3g} = {self.head_lr:.3g} x lr_factor")


def inputs(P, paths) -> Inputs:
    """The head, the chosen rate, the base and the feature cache."""
    from workbook.ml.network import build_base, load_model

    head_lr = tuned_rate(paths)
    d = Data.load(paths)
    base = build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha)
    return Inputs(head_lr, head_lr * P.finetune.lr_factor, d, base, load_model(paths.head_model))


@dataclass
class FinetuneResult(Summary):
    """The finetune stage's result; its plain fields are results/finetune.json."""

    template = "finetune.md.j2"
    head_lr: float
    lr_factor: float
    lr: float  # the starting rate: head_lr x lr_factor, decaying to 0 along a cosine
    epochs: int
    fine_tune_at: int
    layers_trained: int  # base layers from fine_tune_at on
    layers_with_weights: int  # of those, the ones holding weights
    head_val_accuracy: float  # after head training
    val_accuracy: float  # after fine-tuning
    val_loss: float
    val_accuracy_change: float
    seconds: float
    replicas: int
    curves: pd.DataFrame  # head training, then fine-tuning, one row per epoch


def save(P, paths, given: Inputs, model: keras.Model, fitted: Fit) -> FinetuneResult:
    """Save the deployable classifier as models/model.keras and describe the fine-tuning."""
    with atomic_path(paths.model) as tmp:
        model.save(tmp)
    head_curves = read_curves(paths.live("train"), "train")
    curves = pd.concat([head_curves, fitted.curves], ignore_index=True)
    before, last = head_curves.iloc[-1], curves.iloc[-1]
    k, base = P.finetune.fine_tune_at, given.base
    result = FinetuneResult(
        head_lr=given.head_lr, lr_factor=P.finetune.lr_factor, lr=given.lr, epochs=P.finetune.epochs, fine_tune_at=k,
        layers_trained=len(base.layers) - k, layers_with_weights=sum(1 for layer in base.layers[k:] if layer.weights),
        head_val_accuracy=float(before.val_accuracy), val_accuracy=float(last.val_accuracy),
        val_loss=float(last.val_loss), val_accuracy_change=float(last.val_accuracy - before.val_accuracy),
        seconds=round(fitted.seconds, 1), replicas=fitted.replicas, curves=curves)
    write_details(paths.details("finetune"), result)
    return result


def run(P, paths) -> FinetuneResult:
    """The stage's steps in order: fine-tune, save models/model.keras, describe it."""
    given = inputs(P, paths)
    fitted = fine_tune(P, given.data, given.base, given.head, given.lr, live_dir=paths.live("finetune"))
    return save(P, paths, given, fitted.model, fitted)
