"""Training the head on the frozen base: the train stage's method.

In steps, which the train stage's notebook calls one by one and `train_head` composes:
`initial_head` (seeded first), `batches`, `train`.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

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


@dataclass
class Head:
    """The head with its initial weights, and the model the fit trains it in."""

    model: keras.Model  # the head itself on pooled features; pixels -> logits with train.augment full
    head: keras.Model

    def __repr__(self) -> str:
        layers = " -> ".join(f"{type(layer).__name__}({layer.name})" for layer in self.head.layers)
        source = "pixels through the frozen base" if self.model is not self.head else "the cached pooled features"
        return f"head: {layers}; {self.head.count_params():,} parameters, trained on {source}"


def initial_head(P, d: Data, base=None) -> Head:
    """Seed everything from P.seed, then the head with its initial weights; with augment full, in
    a classifier from pixels around the frozen `base`."""
    from workbook.ml.network import build_head, set_fine_tuning

    seed_everything(P.seed)
    t = P.train
    strategy = distribution(t.distribute)
    if t.augment == "full":
        base = replica(base, strategy)
    with strategy.scope():
        head = build_head(len(d.classes), t.dense_units, t.dropout, P.seed, d.features)
        if t.augment == "full":
            set_fine_tuning(base, None)
        return Head(pixel_model(P, base, head) if t.augment == "full" else head, head)


def batches(P, d: Data) -> Batches:
    """What the head trains on: the cached pooled features (pixels with augment full)."""
    return batch_sets(P, d, "pooled")


def train(P, initial: Head, batches: Batches, lr: float, live_dir=None) -> Fit:
    """Fit for train.epochs at `lr` (curves to DVCLive in `live_dir`); returns the trained head."""
    fitted = compile_and_fit(initial.model, batches, lr, P.train.epochs, "train", live_dir=live_dir)
    return Fit(initial.head, fitted.curves, fitted.replicas, fitted.seconds)


def train_head(P, d: Data, lr: float, base=None, live_dir=None) -> Fit:
    """The steps in order: the head on the frozen base, from cached pooled features or pixels."""
    return train(P, initial_head(P, d, base), batches(P, d), lr, live_dir=live_dir)
