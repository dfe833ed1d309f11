"""The train stage: the head on the frozen base, at the rate the tune stage chose."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.ml.feature_cache import Data
from workbook.ml.head_training import train_head
from workbook.pipeline.atomic import atomic_path


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
    replicas: int  # devices that trained in sync (train.distribute)
    curves: pd.DataFrame  # one row per epoch (also in dvclive/train)


def run(P, paths) -> TrainResult:
    """Train the head, save models/head.keras, and describe the training."""
    from workbook.ml.network import build_base

    lr = json.loads(paths.details("tune").read_text())["best_lr"]
    d = Data.load(paths)
    full = P.train.augment == "full"  # through the pixels: the whole base runs every step
    base = build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha) if full else None
    start = time.perf_counter()
    fitted = train_head(P, d, lr, base, live_dir=paths.live("train"))
    seconds = time.perf_counter() - start
    with atomic_path(paths.head_model) as tmp:
        fitted.model.save(tmp)
    last = fitted.curves.iloc[-1]
    result = TrainResult(lr=lr, epochs=P.train.epochs, augment=P.train.augment,
                         val_accuracy=float(last.val_accuracy), val_loss=float(last.val_loss),
                         seconds=round(seconds, 1), replicas=fitted.replicas, curves=fitted.curves)
    write_details(paths.details("train"), result)
    return result
