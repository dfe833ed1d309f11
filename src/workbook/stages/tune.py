"""Keras Tuner's search of the head's learning rate, on the cached pooled features.

Trials are scored on a stratified hold-out carved from train, so val stays unseen until the
evaluate stage. The objective is the hold-out loss: on a hold-out of a few thousand images,
accuracy moves in steps of one image and ties between good rates are common; the loss ranks
them. Every trial starts from the same initial weights and batch order (the seed), and the
tuner's folder is fresh for every run, so no stale trial is ever reused.

The same search runs distributed by Keras Tuner: with KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP
and KERASTUNER_ORACLE_PORT set, one process (the chief) serves the oracle and the others
(workers) run its trials. Then every process is given the same folder and keeps it: a search
interrupted there resumes from it (Keras Tuner's fault tolerance), so a new search needs a new
folder.

The tune stage's notebook calls the steps one by one: `inputs`, `holdout_batches`, `tuner` (the
search space), `run_trials` (the trial table), `choose`, `save`; `run` composes the same.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.ml.feature_cache import Data
from workbook.ml.feeds import CachedBatches
from workbook.ml.fitting import EVAL_BATCH, StepBar, compile_classifier, seed_everything
from workbook.ml.holdout import training_rows
from workbook.ml.network import build_head
from workbook.pipeline.atomic import write_csv

OBJECTIVE = "val_loss"


def tuner_seed(seed: int) -> int:
    """The seed Keras Tuner draws the rates from, derived from the study's `seed`.

    Keras Tuner draws trial i's rate from its seed + i, so the study's seeds 1 and 2 handed over
    as they are would share 9 of 10 candidate rates. Hashed through NumPy's SeedSequence, each
    seed gets draws of its own (two seeds share a candidate with odds of about trials / 2**30).
    """
    return int(np.random.SeedSequence([seed, 0x74756E65]).generate_state(1)[0] >> 2)


class HeadLR(kt.HyperModel):
    """The head, compiled with a learning rate drawn on a log scale.

    Every trial starts from the same weights, optimizer state, dropout seed and batch order:
    only the rate differs. One compiled head serves every trial of a process, put back to that
    start before each: building a new one per trial spent more time tracing its training
    function than training it. tests/test_tune.py checks the trials come out the same.
    """

    def __init__(self, n_classes: int, units: int, dropout: float, seed: int, lr_min: float, lr_max: float,
                 features: int = 1280):
        super().__init__(name="head_lr")
        self.n_classes, self.units, self.dropout, self.seed = n_classes, units, dropout, seed
        self.features = features
        self.lr_min, self.lr_max = lr_min, lr_max
        self.model: keras.Model | None = None
        self.start: list[np.ndarray] = []

    def _state(self) -> list:
        # model.variables holds the dropout's seed state too; the optimizer's, its moments and step
        return [*self.model.variables, *self.model.optimizer.variables]

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        lr = hp.Float("lr", self.lr_min, self.lr_max, sampling="log")
        if self.model is None:
            seed_everything(self.seed)
            head = build_head(self.n_classes, self.units, self.dropout, self.seed, self.features)
            self.model = compile_classifier(head, lr)
            self.model.optimizer.build(self.model.trainable_variables)
            self.start = [v.numpy() for v in self._state()]
        else:
            for variable, value in zip(self._state(), self.start):
                variable.assign(value)
        self.model.optimizer.learning_rate = lr
        return self.model

    def fit(self, hp, model, train, *args, validation_data=None, epochs=1, callbacks=(), **kwargs):
        from workbook.ml.fitting import feed

        x, held, ordered = feed(train, validation_data)  # each trial from the first epoch's order
        return model.fit(x, *args, validation_data=held, epochs=epochs, shuffle=False,
                         callbacks=[*ordered, *callbacks], **kwargs)


@dataclass
class Search:
    best_lr: float
    trials: pd.DataFrame  # trial, lr, val_accuracy, val_loss, best (one row per trial)


PROJECT = "head_lr"  # the tuner's folder inside `directory`


def role() -> str:
    """This process's part in the search: "alone", or "chief" / "worker" of a distributed one
    (read as Keras Tuner reads its environment variables)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "alone"
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def make_tuner(hypermodel: HeadLR, trials: int, seed: int, directory: Path | None = None,
               overwrite: bool = True) -> kt.RandomSearch:
    """Keras Tuner's random search over `hypermodel`'s space, in `directory` (None: a temporary
    folder, removed with the tuner)."""
    own = directory is None
    directory = Path(tempfile.mkdtemp(prefix="workbook-tuner-")) if own else Path(directory)
    tuner = kt.RandomSearch(hypermodel, objective=kt.Objective(OBJECTIVE, "min"), max_trials=trials,
                            seed=tuner_seed(seed), directory=str(directory), project_name=PROJECT,
                            overwrite=overwrite)
    if own:
        weakref.finalize(tuner, shutil.rmtree, directory, ignore_errors=True)
    return tuner


def space(tuner: kt.Tuner) -> pd.DataFrame:
    """The search space: each hyperparameter with its range and how it is drawn."""
    return pd.DataFrame([{"name": hp.name, "kind": type(hp).__name__, "min": getattr(hp, "min_value", None),
                          "max": getattr(hp, "max_value", None), "sampling": getattr(hp, "sampling", None)}
                         for hp in tuner.oracle.get_space().space]).set_index("name")


def trial_table(tuner: kt.Tuner) -> pd.DataFrame:
    """Every completed trial: its rate and its best hold-out accuracy and loss, by rate."""
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        rows.append({"trial": trial.trial_id, "lr": trial.hyperparameters.get("lr"),
                     "val_accuracy": trial.metrics.get_best_value("val_accuracy"),
                     "val_loss": trial.metrics.get_best_value("val_loss")})
    return pd.DataFrame(rows, columns=["trial", "lr", "val_accuracy", "val_loss"]).sort_values("lr").reset_index(drop=True)


def choose(tuner: kt.Tuner, trials: pd.DataFrame) -> Search:
    """The tuner's best trial (the lowest hold-out loss), marked in `trials`."""
    best = tuner.oracle.get_best_trials(1)[0].trial_id
    return Search(float(tuner.get_best_hyperparameters(1)[0].get("lr")), trials.assign(best=trials.trial == best))


@contextlib.contextmanager
def _gc_frozen():
    """Python's garbage collector skips every object that exists now, until the block ends.

    Keras Tuner clears Keras's session and runs a full collection before every trial; over the
    hundreds of thousands of objects TensorFlow and Keras hold once imported, those collections
    are a large share of a short search. Objects made during the search are still collected.
    Leaving the block unfreezes every frozen object; the workbook's only other freeze
    (workbook.pipeline.kernel.before_exit) comes after the notebook's last cell.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class Holdout(NamedTuple):
    train: CachedBatches  # the train rows each trial trains on
    held: CachedBatches  # the train rows held out to score it


def run_trials(tuner: kt.Tuner, batches: Holdout, epochs: int) -> pd.DataFrame | None:
    """Every trial, each trained for `epochs` and scored on the hold-out: the trial table (None in
    a distributed search's worker: the chief holds it)."""
    with _gc_frozen(), StepBar(len(batches.train), tuner.oracle.max_trials * epochs, "tune") as bar:
        tuner.search(batches.train, validation_data=batches.held, epochs=epochs, verbose=0, callbacks=[bar])
    return None if role() == "worker" else trial_table(tuner)


def search(train, held, n_classes: int, units: int, dropout: float, seed: int, lr_min: float,
           lr_max: float, trials: int, epochs: int, directory: Path | None = None) -> Search | None:
    """Run the search; `train` and `held` are batch sets of pooled features with labels.

    Alone: in `directory` overwritten, or in a temporary folder. Distributed (see the module's
    docstring): in `directory`, required and kept; the chief returns once every worker has
    finished, a worker returns None (the chief holds the result).
    """
    part = role()
    if part != "alone" and directory is None:
        raise ValueError(f"a distributed search ({part} {os.environ.get('KERASTUNER_TUNER_ID')}) "
                         "needs a tuner folder that every process shares")
    # Distributed, nobody overwrites: a process starting late would delete its peers' trials.
    hypermodel = HeadLR(n_classes, units, dropout, seed, lr_min, lr_max, features=train.inputs[0].shape[1])
    found = make_tuner(hypermodel, trials, seed, directory, overwrite=part == "alone")
    table = run_trials(found, Holdout(train, held), epochs)
    return None if table is None else choose(found, table)


def inputs(P, paths) -> Data:
    """The feature cache, its labels and image references."""
    return Data.load(paths)


def holdout_batches(P, d: Data) -> Holdout:
    """The cached pooled features of the drawn train images (data.train_per_class of each class),
    split into the rows the trials train on and the rows that score them (stratified, from
    `seed`): mirrored views drawn in with train.augment flip, val left out."""
    rows = training_rows(d.y_train, P.tune.holdout, P.data.train_per_class, P.seed, d.classes)
    fit_rows, held_rows = rows.fit, rows.held
    pooled = d.cache.pooled("train")
    mirrored = [d.cache.pooled("train_flip")] if P.train.augment == "flip" else None
    return Holdout(CachedBatches([pooled], d.y_train[fit_rows], P.train.batch_size, P.seed, mirrored=mirrored,
                                 rows=fit_rows),
                   CachedBatches([pooled], d.y_train[held_rows], EVAL_BATCH, P.seed, shuffle=False, rows=held_rows))


def tuner(P, d: Data, batches: Holdout) -> kt.RandomSearch:
    """The search with params.yaml's values, in a temporary folder: its space is drawn up (which
    builds the head once, seeded from `seed`) and no trial has run."""
    if role() != "alone":
        raise ValueError("the tune stage searches alone; a distributed search runs through "
                         "`python -m workbook tune-worker` (README, \"Scaling out\")")
    hypermodel = HeadLR(len(d.classes), P.train.dense_units, P.train.dropout, P.seed, P.tune.lr_min,
                        P.tune.lr_max, features=batches.train.inputs[0].shape[1])
    return make_tuner(hypermodel, P.tune.trials, P.seed)


def search_with(P, n_classes: int, train, held, directory: Path | None = None) -> Search | None:
    """`search` with params.yaml's values for the head, the seed and the search."""
    return search(train, held, n_classes, P.train.dense_units, P.train.dropout, P.seed,
                  P.tune.lr_min, P.tune.lr_max, P.tune.trials, P.tune.epochs, directory)


def search_cache(P, paths, directory: Path | None) -> Search | None:
    """The tune stage's search on the feature cache, with params.yaml's values, in `directory`."""
    d = Data.load(paths)
    return search_with(P, len(d.classes), *holdout_batches(P, d), directory)


@dataclass
class TuneResult(Summary):
    """The tune stage's result; its plain fields are results/tune.json (best_lr feeds training)."""

    template = "tune.md.j2"
    best_lr: float
    best_val_loss: float
    best_val_accuracy: float
    trials: int
    objective: str
    train_per_class: int | str  # data.train_per_class: the drawn train images, all the choices look at
    fit_images: int  # of those, the images each trial trains on per epoch
    held_images: int  # of those, the images held out to score the trials
    mirrored: bool
    table: pd.DataFrame  # trial, lr, val_accuracy, val_loss, best


def save(P, paths, found: Search, batches: Holdout) -> TuneResult:
    """results/tune.json (the chosen rate, which the train stage reads) and the trial table."""
    best = found.trials[found.trials.best].iloc[0]
    result = TuneResult(best_lr=found.best_lr, best_val_loss=float(best.val_loss),
                        best_val_accuracy=float(best.val_accuracy), trials=len(found.trials),
                        objective=OBJECTIVE, train_per_class=P.data.train_per_class, fit_images=batches.train.n,
                        held_images=batches.held.n,
                        mirrored=batches.train.mirrored is not None, table=found.trials)
    write_details(paths.details("tune"), result)
    write_csv(paths.table("tune_trials"), found.trials)
    return result


def run(P, paths) -> TuneResult:
    """The stage's steps in order: the search on the cached pooled features, the choice, saved."""
    d = inputs(P, paths)
    batches = holdout_batches(P, d)
    random_search = tuner(P, d, batches)
    return save(P, paths, choose(random_search, run_trials(random_search, batches, P.tune.epochs)), batches)
