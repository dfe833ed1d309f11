"""Keras Tuner's search of the head's learning rate, on the cached pooled features.

Trials are scored on a stratified hold-out carved from train, so val stays unseen until the
evaluate stage. The objective is the hold-out loss: on a hold-out of a few thousand images,
accuracy moves in steps of one image and ties between good rates are common; the loss ranks
them. Every trial starts from the same initial weights and batch order (the seed), and the
tuner's folder is fresh for every run, so no stale trial is ever reused.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from workbook.model import build_head
from workbook.training import compile_classifier, seed_everything

OBJECTIVE = "val_loss"


def holdout_rows(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of (fit, hold-out); stratified by class where every class has two images."""
    rows = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_held = max(int(round(fraction * len(y))), len(np.unique(y)) if stratify is not None else 1)
    fit, held = train_test_split(rows, test_size=n_held, stratify=stratify, random_state=seed)
    return np.sort(fit), np.sort(held)


class HeadLR(kt.HyperModel):
    """The head, compiled with a learning rate drawn on a log scale."""

    def __init__(self, n_classes: int, units: int, dropout: float, seed: int, lr_min: float, lr_max: float):
        super().__init__(name="head_lr")
        self.n_classes, self.units, self.dropout, self.seed = n_classes, units, dropout, seed
        self.lr_min, self.lr_max = lr_min, lr_max

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        lr = hp.Float("lr", self.lr_min, self.lr_max, sampling="log")
        seed_everything(self.seed)  # the same start for every trial: only the rate differs
        return compile_classifier(build_head(self.n_classes, self.units, self.dropout, self.seed), lr)

    def fit(self, hp, model, train, *args, **kwargs):
        train.epoch = 0  # the same batch order for every trial
        train._order()
        return model.fit(train, *args, **kwargs)


@dataclass
class Search:
    best_lr: float
    trials: pd.DataFrame  # trial, lr, val_accuracy, val_loss, best (one row per trial)


def make_tuner(hypermodel: HeadLR, trials: int, seed: int, directory: Path) -> kt.RandomSearch:
    return kt.RandomSearch(hypermodel, objective=kt.Objective(OBJECTIVE, "min"), max_trials=trials,
                           seed=seed, directory=str(directory), project_name="head_lr", overwrite=True)


def trial_table(tuner: kt.Tuner) -> pd.DataFrame:
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        rows.append({"trial": trial.trial_id, "lr": trial.hyperparameters.get("lr"),
                     "val_accuracy": trial.metrics.get_best_value("val_accuracy"),
                     "val_loss": trial.metrics.get_best_value("val_loss")})
    table = pd.DataFrame(rows, columns=["trial", "lr", "val_accuracy", "val_loss"]).sort_values("lr")
    best = tuner.oracle.get_best_trials(1)[0].trial_id
    return table.assign(best=table.trial == best).reset_index(drop=True)


def search(train, held, n_classes: int, units: int, dropout: float, seed: int, lr_min: float,
           lr_max: float, trials: int, epochs: int, directory: Path | None = None) -> Search:
    """Run the search; `train` and `held` are batch sets of pooled features with labels."""
    own = directory is None
    directory = Path(tempfile.mkdtemp(prefix="workbook-tuner-")) if own else directory
    try:
        tuner = make_tuner(HeadLR(n_classes, units, dropout, seed, lr_min, lr_max), trials, seed, directory)
        tuner.search(train, validation_data=held, epochs=epochs, verbose=0)
        best_lr = float(tuner.get_best_hyperparameters(1)[0].get("lr"))
        return Search(best_lr, trial_table(tuner))
    finally:
        if own:
            shutil.rmtree(directory, ignore_errors=True)
