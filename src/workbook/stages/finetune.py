"""The finetune stage: the base's layers from `fine_tune_at` on, trained further with the head."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.ml.feature_cache import Data
from workbook.ml.fine_tuning import fine_tune
from workbook.ml.fitting import read_curves
from workbook.pipeline.atomic import atomic_path


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


def run(P, paths) -> FinetuneResult:
    """Fine-tune, save models/model.keras (pixels in, probabilities out), describe it."""
    from workbook.ml.network import build_base, load_model

    head_lr = json.loads(paths.details("tune").read_text())["best_lr"]
    lr = head_lr * P.finetune.lr_factor
    d = Data.load(paths)
    base = build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha)
    head = load_model(paths.head_model)
    start = time.perf_counter()
    fitted = fine_tune(P, d, base, head, lr, live_dir=paths.live("finetune"))
    seconds = time.perf_counter() - start
    with atomic_path(paths.model) as tmp:
        fitted.model.save(tmp)
    head_curves = read_curves(paths.live("train"), "train")
    curves = pd.concat([head_curves, fitted.curves], ignore_index=True)
    before, last = head_curves.iloc[-1], curves.iloc[-1]
    k = P.finetune.fine_tune_at
    result = FinetuneResult(
        head_lr=head_lr, lr_factor=P.finetune.lr_factor, lr=lr, epochs=P.finetune.epochs, fine_tune_at=k,
        layers_trained=len(base.layers) - k, layers_with_weights=sum(1 for layer in base.layers[k:] if layer.weights),
        head_val_accuracy=float(before.val_accuracy), val_accuracy=float(last.val_accuracy),
        val_loss=float(last.val_loss), val_accuracy_change=float(last.val_accuracy - before.val_accuracy),
        seconds=round(seconds, 1), replicas=fitted.replicas, curves=curves)
    write_details(paths.details("finetune"), result)
    return result
