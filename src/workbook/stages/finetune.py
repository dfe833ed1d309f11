"""The finetune stage: the base's layers from `fine_tune_at` on, trained further with the head,
and the choice of the model that ships.

Fine-tuning and the head before it learn from the train images outside the tuner's hold-out
(data.train_per_class of each class); both are scored on the hold-out, and the fine-tuned model
ships unless it scores below the head there by more than finetune.ship_margin
(workbook.ml.selection). Val plays no part in the choice.

Its notebook calls the steps one by one: `inputs`, then workbook.ml.fine_tuning's `unfreeze`,
`batches`, `schedule`, `train` and `deployable`, then `ship` and `save`; `run` composes the same.
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
from workbook.ml.holdout import split
from workbook.ml.network import build_base, build_classifier, load_model
from workbook.ml.predict import accuracy, finetuned_probs, head_probs
from workbook.ml.selection import FINE_TUNED, Choice, choose
from workbook.pipeline.atomic import atomic_path

__all__ = ["inputs", "unfreeze", "batches", "one_batch", "schedule", "train", "deployable", "ship", "save", "run"]


@dataclass
class Inputs:
    """What fine-tuning starts from."""

    head_lr: float  # the rate the tune stage chose for the head
    lr: float  # fine-tuning's starting rate: head_lr x finetune.lr_factor
    data: Data  # the train images the models learn from, val, and the feature cache
    held: Data  # the tuner's hold-out as train: what the choice of the shipped model is scored on
    base: keras.Model  # the pretrained base (model.weights)
    head: keras.Model  # the head the train stage saved
    head_holdout: float  # its accuracy on the hold-out, before fine-tuning trains it further

    def __repr__(self) -> str:
        cut = [a.shape[1:] for a in self.data.cache.cut("val")]
        return (f"head {self.head.name} ({self.head.count_params():,} parameters), base {self.base.name} "
                f"({len(self.base.layers)} layers); {len(self.data.y_train):,} train images to learn from, "
                f"{len(self.held.y_train):,} held out, {len(self.data.y_val):,} val, cached at the cut as {cut}; "
                f"rate {self.lr:.3g} = {self.head_lr:.3g} x lr_factor; the head scores {self.head_holdout:.4f} "
                "on the hold-out")


def inputs(P, paths) -> Inputs:
    """The head (scored on the hold-out), the chosen rate, the base, the feature cache split into
    the images to learn from and the hold-out."""
    head_lr = tuned_rate(paths)
    data, held = split(Data.load(paths), P.tune.holdout, P.data.train_per_class, P.seed)
    base = build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha)
    head = load_model(paths.head_model)
    head_holdout = accuracy(head_probs(head, held, "train"), held.y_train)
    return Inputs(head_lr, head_lr * P.finetune.lr_factor, data, held, base, head, head_holdout)


@dataclass
class Shipped:
    """The model that ships, chosen on the hold-out."""

    choice: Choice  # which, and why in words
    finetuned_holdout: float  # the fine-tuned model's accuracy on the hold-out
    model: keras.Model  # the shipped classifier (pixels -> probabilities)

    def __repr__(self) -> str:
        return f"{self.choice.model} ships: {self.choice.reason}"


def ship(P, paths, given: Inputs, model: keras.Model) -> Shipped:
    """The fine-tuned `model` scored on the hold-out against the head before it; the head on a
    fresh pretrained base ships instead where fine-tuning lost more than finetune.ship_margin."""
    probs = finetuned_probs(model, given.held, P.finetune.fine_tune_at, set_name="train")
    scored = accuracy(probs, given.held.y_train)
    choice = choose(given.head_holdout, scored, P.finetune.ship_margin)
    if choice.model == FINE_TUNED:
        return Shipped(choice, scored, model)
    pretrained = build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha)  # fine-tuning changed `base`
    return Shipped(choice, scored, build_classifier(pretrained, load_model(paths.head_model), P.data.image_size))


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
    seconds_per_epoch: float
    replicas: int
    train_images: int  # the images it learned from (data.train_per_class, outside the hold-out)
    holdout_images: int
    head_holdout: float  # accuracy on the hold-out, the head before fine-tuning
    finetuned_holdout: float
    shipped: str  # "fine-tuned" or "head": the model in models/model.keras
    ship_reason: str
    curves: pd.DataFrame  # head training, then fine-tuning, one row per epoch


def save(P, paths, given: Inputs, model: keras.Model, fitted: Fit, shipped: Shipped) -> FinetuneResult:
    """Save the fine-tuned classifier as models/finetuned.keras and the shipped one as
    models/model.keras, and describe the fine-tuning and the choice."""
    for path, classifier in ((paths.finetuned, model), (paths.model, shipped.model)):
        with atomic_path(path) as tmp:
            classifier.save(tmp)
    head_curves = read_curves(paths.live("train"), "train")
    curves = pd.concat([head_curves, fitted.curves], ignore_index=True)
    before, last = head_curves.iloc[-1], curves.iloc[-1]
    k, base = P.finetune.fine_tune_at, given.base
    result = FinetuneResult(
        head_lr=given.head_lr, lr_factor=P.finetune.lr_factor, lr=given.lr, epochs=P.finetune.epochs, fine_tune_at=k,
        layers_trained=len(base.layers) - k, layers_with_weights=sum(1 for layer in base.layers[k:] if layer.weights),
        head_val_accuracy=float(before.val_accuracy), val_accuracy=float(last.val_accuracy),
        val_loss=float(last.val_loss), val_accuracy_change=float(last.val_accuracy - before.val_accuracy),
        seconds=round(fitted.seconds, 1), seconds_per_epoch=fitted.seconds_per_epoch,
        replicas=fitted.replicas, train_images=len(given.data.y_train), holdout_images=len(given.held.y_train),
        head_holdout=given.head_holdout, finetuned_holdout=shipped.finetuned_holdout, shipped=shipped.choice.model,
        ship_reason=shipped.choice.reason, curves=curves)
    write_details(paths.details("finetune"), result)
    return result


def run(P, paths) -> FinetuneResult:
    """The stage's steps in order: fine-tune, choose the model that ships, save both, describe them."""
    given = inputs(P, paths)
    fitted = fine_tune(P, given.data, given.base, given.head, given.lr, live_dir=paths.live("finetune"))
    return save(P, paths, given, fitted.model, fitted, ship(P, paths, given, fitted.model))
