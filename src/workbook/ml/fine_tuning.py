"""Fine-tuning: the base's layers from fine_tune_at on trained further, with the head.

In steps, which the finetune stage's notebook calls one by one and `fine_tune` composes:
`unfreeze` (seeded first), `batches`, `schedule`, `train`, `deployable`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import pandas as pd

from workbook.ml.feature_cache import Data
from workbook.ml.fitting import (
    Batches,
    Fit,
    batch_sets,
    compile_and_fit,
    distribution,
    pixel_model,
    replica,
    seed_everything,
)


def _size(weight) -> int:
    return math.prod(weight.shape)


@dataclass
class Unfrozen:
    """The model fine-tuning trains and the base and head inside it."""

    model: keras.Model  # cached cut tensors (pixels with train.augment full) -> logits
    base: keras.Model  # the caller's base, or its replica under a distribution strategy
    head: keras.Model
    fine_tune_at: int

    def layers(self) -> pd.DataFrame:
        """The base's layers from fine_tune_at on: kind, parameters, which of them train."""
        return pd.DataFrame([{"index": i, "layer": layer.name, "kind": type(layer).__name__,
                              "trainable": layer.trainable,
                              "trainable parameters": sum(_size(w) for w in layer.trainable_weights),
                              "frozen parameters": sum(_size(w) for w in layer.non_trainable_weights)}
                             for i, layer in enumerate(self.base.layers) if i >= self.fine_tune_at]).set_index("index")

    @property
    def trainable_parameters(self) -> int:
        """What the fit updates: the unfrozen base layers' and the head's weights."""
        return sum(_size(w) for w in self.model.trainable_weights)

    def __repr__(self) -> str:
        trained = sum(1 for layer in self.base.layers[self.fine_tune_at:] if layer.trainable_weights)
        return (f"{self.model.name}: base layers {self.fine_tune_at} to {len(self.base.layers) - 1} unfrozen "
                f"({trained} with weights; BatchNorm keeps its moving statistics) and the head: "
                f"{self.trainable_parameters:,} trainable parameters in {len(self.model.trainable_weights)} tensors")


def unfreeze(P, base, head) -> Unfrozen:
    """Seed everything from P.seed, then unfreeze the base's layers from fine_tune_at on (BatchNorm
    in inference mode) under the head: from the cached cut tensors, or from pixels (augment full)."""
    from workbook.ml.network import build_top_classifier, layer_index, set_fine_tuning, split_base

    seed_everything(P.seed)
    k = layer_index(base, P.finetune.fine_tune_at)
    strategy = distribution(P.train.distribute)
    trained_base, trained_head = replica(base, strategy), replica(head, strategy)
    with strategy.scope():
        set_fine_tuning(trained_base, k)
        if P.train.augment == "full":
            model = pixel_model(P, trained_base, trained_head)
        else:
            model = build_top_classifier(split_base(trained_base, k), trained_head)
    return Unfrozen(model, trained_base, trained_head, k)


def batches(P, d: Data) -> Batches:
    """What fine-tuning trains on: the cached cut tensors (pixels with augment full)."""
    return batch_sets(P, d, "cut")


def schedule(lr: float, epochs: int, train: keras.utils.PyDataset) -> keras.optimizers.schedules.CosineDecay:
    """From `lr` down to zero along a cosine over the fine-tuning steps: at a constant rate the
    fine-tuned model ended below the head it started from."""
    return keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, epochs * len(train)))


def train(P, unfrozen: Unfrozen, batches: Batches, rate, live_dir=None) -> Fit:
    """Fit for finetune.epochs, continuing the head's epoch count (curves to DVCLive in `live_dir`)."""
    return compile_and_fit(unfrozen.model, batches, rate, P.finetune.epochs, "finetune",
                           initial_epoch=P.train.epochs, live_dir=live_dir)


def deployable(P, unfrozen: Unfrozen, base, head) -> keras.Model:
    """The trained weights in the caller's `base` and `head`, frozen again, as one classifier:
    raw pixels (0..255) in, probabilities out."""
    from workbook.ml.network import build_classifier, set_fine_tuning

    for own, trained in ((base, unfrozen.base), (head, unfrozen.head)):
        if trained is not own:  # the replicas' weights back into the caller's models
            own.set_weights(trained.get_weights())
    set_fine_tuning(base, None)
    return build_classifier(base, head, P.data.image_size)


def fine_tune(P, d: Data, base, head, lr: float, live_dir=None) -> Fit:
    """The steps in order; returns the deployable classifier with the fit's curves."""
    unfrozen = unfreeze(P, base, head)
    sets = batches(P, d)
    fitted = train(P, unfrozen, sets, schedule(lr, P.finetune.epochs, sets.train), live_dir=live_dir)
    return Fit(deployable(P, unfrozen, base, head), fitted.curves, fitted.replicas, fitted.seconds)
