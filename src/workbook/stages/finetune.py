"""The finetune stage: the choice of the model that ships, then the base's layers from
`fine_tune_at` on trained further with the head, on every drawn train image.

The choice (`choose`): the train stage's selection head, trained on the drawn images outside the
hold-out, is fine-tuned on the same images; both are scored on the hold-out, and fine-tuning is
chosen unless it scores below the head there by more than finetune.ship_margin
(workbook.ml.selection). Val and the images outside the draw play no part in it. Then, as model
selection with refit does, the recipe is trained on every drawn image: the head the train stage
trained on them is fine-tuned (steps below), and the chosen one of the two ships.

Its notebook calls the steps one by one: `inputs`, `choose`, then workbook.ml.fine_tuning's
`unfreeze`, `batches`, `schedule`, `train` and `deployable`, then `ship` and `save`; `run`
composes the same.
"""

from __future__ import annotations

import time
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
from workbook.ml.network import build_classifier, layer_index, load_model, pretrained
from workbook.ml.predict import accuracy, finetuned_probs, head_probs
from workbook.ml.selection import FINE_TUNED, Choice
from workbook.ml.selection import choose as rule
from workbook.pipeline.atomic import atomic_path
from workbook.pipeline.params import BACKBONES

__all__ = ["inputs", "choose", "unfreeze", "batches", "one_batch", "schedule", "train", "deployable", "ship", "save",
           "run"]


@dataclass
class Inputs:
    """What fine-tuning starts from."""

    head_lr: float  # the rate the tune stage chose for the head
    lr: float  # fine-tuning's starting rate: head_lr x finetune.lr_factor
    data: Data  # the drawn train images (data.train_per_class of each class), val, the feature cache
    fit: Data  # the drawn images outside the hold-out: what the choice trains on
    held: Data  # the hold-out as train: what the choice is scored on
    base: keras.Model  # the pretrained base (model.weights)
    head: keras.Model  # the head the train stage trained on every drawn image

    def __repr__(self) -> str:
        cut = [a.shape[1:] for a in self.data.cache.cut("val")]
        return (f"head {self.head.name} ({self.head.count_params():,} parameters), base {self.base.name} "
                f"({len(self.base.layers)} layers); {len(self.data.y_train):,} drawn train images "
                f"({len(self.fit.y_train):,} to fit the choice, {len(self.held.y_train):,} held out to score it), "
                f"{len(self.data.y_val):,} val, cached at the cut as {cut}; rate {self.lr:.3g} = {self.head_lr:.3g} "
                "x lr_factor")


def inputs(P, paths) -> Inputs:
    """The chosen rate, the pretrained base, the head, and the feature cache split into the drawn
    images and, within them, the fit rows and the hold-out."""
    head_lr = tuned_rate(paths)
    chosen = split(Data.load(paths), P.tune.holdout, P.data.train_per_class, P.seed)
    base = pretrained(P, paths.root)
    return Inputs(head_lr, head_lr * P.finetune.lr_factor, chosen.drawn, chosen.fit, chosen.held, base,
                  load_model(paths.head_model))


@dataclass
class Selection:
    """The choice between the two recipes, made on the hold-out."""

    choice: Choice  # which, and why in words
    head_holdout: float  # the selection head's accuracy on the hold-out
    finetuned_holdout: float  # the same head fine-tuned on the fit rows, on the hold-out
    seconds: float  # fine-tuning the selection head and scoring both

    def __repr__(self) -> str:
        return f"{self.choice.model} chosen: {self.choice.reason}"


def choose(P, paths, given: Inputs) -> Selection:
    """The train stage's selection head (trained on the fit rows) scored on the hold-out, then
    fine-tuned on the fit rows (on a pretrained base of its own) and scored again; the rule
    (workbook.ml.selection) picks between the two."""
    start = time.perf_counter()
    k = P.finetune.fine_tune_at
    head = load_model(paths.selection_head)
    head_score = accuracy(head_probs(head, given.held, "train"), given.held.y_train)
    base = pretrained(P, paths.root)
    fitted = fine_tune(P, given.fit, base, head, given.lr)
    tuned_score = accuracy(finetuned_probs(fitted.model, given.held, k, set_name="train"), given.held.y_train)
    return Selection(rule(head_score, tuned_score, P.finetune.ship_margin), head_score, tuned_score,
                     time.perf_counter() - start)


@dataclass
class Shipped:
    """The model that ships: the chosen recipe, trained on every drawn image."""

    choice: Choice
    model: keras.Model  # the shipped classifier (pixels -> probabilities)

    def __repr__(self) -> str:
        return f"{self.choice.model} ships: {self.choice.reason}"


def ship(P, paths, selection: Selection, model: keras.Model) -> Shipped:
    """The fine-tuned `model` where fine-tuning was chosen; else the head (trained on every drawn
    image) on a fresh pretrained base."""
    if selection.choice.model == FINE_TUNED:
        return Shipped(selection.choice, model)
    fresh = pretrained(P, paths.root)  # fine-tuning changed `base`
    return Shipped(selection.choice, build_classifier(fresh, load_model(paths.head_model), P.data.image_size))


@dataclass
class FinetuneResult(Summary):
    """The finetune stage's result; its plain fields are results/finetune.json."""

    template = "finetune.md.j2"
    head_lr: float
    lr_factor: float
    lr: float  # the starting rate: head_lr x lr_factor, decaying to 0 along a cosine
    epochs: int
    backbone: str  # model.backbone
    fine_tune_at: int  # the first base layer trained, by index
    fine_tune_from: str  # that layer's name
    why: str  # why there: the backbone's default, or finetune.fine_tune_at as set
    base_layers: int
    layers_trained: int  # base layers from fine_tune_at on
    layers_with_weights: int  # of those, the ones holding weights
    head_val_accuracy: float  # after head training
    val_accuracy: float  # after fine-tuning
    val_loss: float
    val_accuracy_change: float
    seconds: float
    seconds_per_epoch: float
    replicas: int
    train_images: int  # the images it learned from: the drawn ones (data.train_per_class of each class)
    fit_images: int  # the drawn images outside the hold-out: what the choice trained on
    holdout_images: int  # the drawn images held out: what the choice was scored on
    head_holdout: float  # accuracy on the hold-out, the selection head
    finetuned_holdout: float  # the same head fine-tuned on the fit rows
    selection_seconds: float  # fine-tuning for the choice, and scoring both
    shipped: str  # "fine-tuned" or "head": the model in models/model.keras
    ship_reason: str
    curves: pd.DataFrame  # head training, then fine-tuning, one row per epoch


def save(P, paths, given: Inputs, model: keras.Model, fitted: Fit, selection: Selection,
         shipped: Shipped) -> FinetuneResult:
    """Save the fine-tuned classifier as models/finetuned.keras and the shipped one as
    models/model.keras, and describe the fine-tuning and the choice."""
    for path, classifier in ((paths.finetuned, model), (paths.model, shipped.model)):
        with atomic_path(path) as tmp:
            classifier.save(tmp)
    head_curves = read_curves(paths.live("train"), "train")
    curves = pd.concat([head_curves, fitted.curves], ignore_index=True)
    before, last = head_curves.iloc[-1], curves.iloc[-1]
    base = given.base
    k = layer_index(base, P.finetune.fine_tune_at)
    own = BACKBONES[P.model.backbone]
    why = (f"{P.model.backbone}'s default, {own.why}" if k == own.fine_tune_at else
           f"finetune.fine_tune_at = {P.finetune.fine_tune_at!r} (the default would be {own.fine_tune_at}: {own.why})")
    result = FinetuneResult(
        head_lr=given.head_lr, lr_factor=P.finetune.lr_factor, lr=given.lr, epochs=P.finetune.epochs,
        backbone=P.model.backbone, fine_tune_at=k, fine_tune_from=base.layers[k].name, why=why,
        base_layers=len(base.layers), layers_trained=len(base.layers) - k,
        layers_with_weights=sum(1 for layer in base.layers[k:] if layer.weights),
        head_val_accuracy=float(before.val_accuracy), val_accuracy=float(last.val_accuracy),
        val_loss=float(last.val_loss), val_accuracy_change=float(last.val_accuracy - before.val_accuracy),
        seconds=round(fitted.seconds, 1), seconds_per_epoch=fitted.seconds_per_epoch,
        replicas=fitted.replicas, train_images=len(given.data.y_train), fit_images=len(given.fit.y_train),
        holdout_images=len(given.held.y_train), head_holdout=selection.head_holdout,
        finetuned_holdout=selection.finetuned_holdout, selection_seconds=round(selection.seconds, 1),
        shipped=shipped.choice.model, ship_reason=shipped.choice.reason, curves=curves)
    write_details(paths.details("finetune"), result)
    return result


def run(P, paths) -> FinetuneResult:
    """The stage's steps in order: the choice on the hold-out, fine-tuning on every drawn image,
    the model that ships, both saved and described."""
    given = inputs(P, paths)
    selection = choose(P, paths, given)
    fitted = fine_tune(P, given.data, given.base, given.head, given.lr, live_dir=paths.live("finetune"))
    return save(P, paths, given, fitted.model, fitted, selection, ship(P, paths, selection, fitted.model))
