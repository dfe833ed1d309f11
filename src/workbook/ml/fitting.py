"""Training machinery shared by the tuner, the head and fine-tuning: seeding, the distribution
strategy, compiling, the fit with its learning curves (DVCLive), and the batches from the cache
or from pixels."""

from __future__ import annotations

import contextlib
import functools
import os
import random
import time
from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
import pandas as pd

CURVE_COLUMNS = ["epoch", "stage", "loss", "accuracy", "val_loss", "val_accuracy"]
# Batches per compiled call: the head is so small that Python's per-step overhead dominated its
# training (half the time at 32, identical results).
STEPS_PER_EXECUTION = 32


def seed_everything(seed: int) -> None:
    """One seed for Python, NumPy, TensorFlow and Keras; deterministic TF kernels."""
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    keras.utils.set_random_seed(seed)
    with contextlib.suppress(RuntimeError):  # already set in this process
        tf.config.experimental.enable_op_determinism()


def distribution(distribute: str):
    """The tf.distribute strategy for train.distribute: `mirrored` runs one replica on every GPU
    of this machine, `none` is TensorFlow's default strategy (one device).

    MirroredStrategy gets no device list: it takes every logical GPU, and where there is none,
    every logical CPU device (TF 2.21, mirrored_strategy.all_local_devices), which is how the
    tests run two replicas on one CPU.
    """
    import tensorflow as tf

    return _mirrored() if distribute == "mirrored" else tf.distribute.get_strategy()


@functools.cache
def _mirrored():
    # One per process: a second MirroredStrategy's collective ops clash with the first's on the
    # same devices (TF 2.21: "Shape mismatch in the collective instance"), e.g. when the head
    # and the fine-tuning are trained in one process.
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def replica(model: keras.Model, strategy) -> keras.Model:
    """`model` itself under the default strategy; else a copy with its weights whose variables
    `strategy` creates. A strategy trains only variables made in its scope (Keras refuses
    others), and the base and the loaded head are built before the strategy exists."""
    import tensorflow as tf

    if strategy is tf.distribute.get_strategy():
        return model
    weights = model.get_weights()  # read outside the scope: `model` may be another strategy's
    with strategy.scope():
        copy = model.__class__.from_config(model.get_config())  # layers only, not compiled
    copy.set_weights(weights)
    return copy


def compile_classifier(model: keras.Model, lr) -> keras.Model:
    """Adam on sparse labels and logits; `lr` is a rate or a Keras schedule."""
    import tensorflow as tf

    # Under a distribution strategy, one batch per call: Keras 3.15's multi-step loop fails on
    # a distributed iterator (TF 2.21, MirroredStrategy on two devices: "You must feed a value
    # for placeholder tensor 'while/cond/Placeholder'", tests/test_distribute.py).
    steps = 1 if tf.distribute.has_strategy() else STEPS_PER_EXECUTION
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps,
    )
    return model


@dataclass
class Fit:
    model: keras.Model
    curves: pd.DataFrame  # CURVE_COLUMNS, one row per epoch, epochs counted across stages
    replicas: int  # devices that trained it in sync, each on its share of every batch
    seconds: float  # in model.fit

    @property
    def seconds_per_epoch(self) -> float:
        """The fit's time over its epochs (the first one's tracing included)."""
        return round(self.seconds / max(len(self.curves), 1), 2)


class StepBar(keras.callbacks.Callback):
    """A progress bar over training steps, with the time left (workbook.pipeline.progress: in the
    `dvc repro` terminal under the pipeline). Keras Tuner copies every trial's callbacks: the
    copies are this one, so that every trial moves the one bar."""

    def __init__(self, per_epoch: int, epochs: int, desc: str):
        super().__init__()
        self.per_epoch, self.steps, self.desc, self.bar, self.seen = per_epoch, per_epoch * epochs, desc, None, 0

    def __deepcopy__(self, memo) -> "StepBar":
        return self

    def __enter__(self) -> "StepBar":
        from workbook.pipeline.progress import progress

        self.bar = progress(total=self.steps, desc=self.desc, unit="step")
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.seen = 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        # with several steps per call, Keras reports the last step a call would reach
        done = min(batch + 1, self.per_epoch)
        self.bar.update(done - self.seen)
        self.seen = done


def live_logger(folder, initial_epoch: int = 0):
    """DVCLive's Keras callback writing the learning curves into `folder` as they come (what
    `dvc plots` and the VS Code extension read, live); steps continue from `initial_epoch`."""
    from dvclive.keras import DVCLiveCallback

    from workbook.pipeline.live import live

    logger = live(folder)
    logger.step = initial_epoch
    return DVCLiveCallback(live=logger)


def read_curves(folder, stage: str) -> pd.DataFrame:
    """Curves as DVCLive wrote them (plots/metrics/{train,eval}/*.tsv), as CURVE_COLUMNS rows."""
    from pathlib import Path

    columns = {}
    for split, prefix in (("train", ""), ("eval", "val_")):
        for metric in ("loss", "accuracy"):
            table = pd.read_csv(Path(folder) / "plots" / "metrics" / split / f"{metric}.tsv", sep="\t")
            columns[prefix + metric] = table.set_index("step")[metric]
    curves = pd.DataFrame(columns).rename_axis("step").reset_index()
    curves.insert(0, "stage", stage)
    curves.insert(0, "epoch", curves.pop("step") + 1)
    return curves[CURVE_COLUMNS]


def feed(train, val, initial_epoch: int = 0) -> tuple:
    """(x, validation_data, callbacks) for model.fit: cached batches as tf.data pipelines
    (workbook.ml.feeds says why) with the callback that gives each epoch the batches train's
    PyDataset gives for it; pixel batches as they are."""
    from workbook.ml.feeds import CachedBatches, EpochOrder

    if not isinstance(train, CachedBatches):
        return train, val, []
    return train.dataset(), val.dataset(), [EpochOrder(train, initial_epoch)]


def fit(model: keras.Model, train, val, epochs: int, stage: str, initial_epoch: int = 0,
        live_dir=None, callbacks=()) -> Fit:
    """Train for `epochs` more epochs after `initial_epoch`; curves continue the epoch count
    (and go to DVCLive in `live_dir`, when given); `callbacks`: more Keras callbacks.

    A model built in a strategy's scope trains under it: Keras splits every global batch of
    `train` across the replicas and sums their gradients.
    """
    x, validation_data, fed = feed(train, val, initial_epoch)
    bar = StepBar(len(train), epochs, stage)
    callbacks = [*fed, *callbacks, bar] + ([live_logger(live_dir, initial_epoch)] if live_dir is not None else [])
    # shuffle=False: the batch sets reshuffle themselves from (seed, epoch). Keras's own shuffle
    # of the batch order draws from Python's global random state, and from the same seed it drew
    # a different order under MirroredStrategy than on one device (Keras 3.15).
    start = time.perf_counter()
    with bar:
        history = model.fit(x, validation_data=validation_data, epochs=initial_epoch + epochs,
                            initial_epoch=initial_epoch, verbose=2, shuffle=False, callbacks=callbacks)
    seconds = time.perf_counter() - start
    curves = pd.DataFrame(history.history)
    curves.insert(0, "stage", stage)
    curves.insert(0, "epoch", np.arange(initial_epoch + 1, initial_epoch + len(curves) + 1))
    return Fit(model, curves[CURVE_COLUMNS], model.distribute_strategy.num_replicas_in_sync, seconds)


def compile_and_fit(model: keras.Model, batches: Batches, rate, epochs: int, stage: str, initial_epoch: int = 0,
                    live_dir=None, callbacks=()) -> Fit:
    """`model` compiled at `rate` (a rate or a schedule) under the strategy it was built in, then fit."""
    with model.distribute_strategy.scope():  # the optimizer's variables belong to it too
        compile_classifier(model, rate)
    return fit(model, batches.train, batches.val, epochs, stage, initial_epoch=initial_epoch, live_dir=live_dir,
               callbacks=callbacks)


EVAL_BATCH = 256


class Batches(NamedTuple):
    train: keras.utils.PyDataset  # shuffled anew every epoch, from (seed, epoch)
    val: keras.utils.PyDataset


def batch_sets(P, d, level: str) -> Batches:
    """Train and val batches: pixels for augment=full, else cached `pooled` or `cut` tensors."""
    from workbook.ml.feeds import CachedBatches, ImageBatches

    if P.train.augment == "full":
        return Batches(ImageBatches(d.train_files, d.y_train, P.train.batch_size, P.seed),
                       ImageBatches(d.val_files, d.y_val, EVAL_BATCH, P.seed, shuffle=False))
    arrays = (lambda name: [d.cache.pooled(name)]) if level == "pooled" else d.cache.cut
    flips = d.mirrored(P.train.augment)
    return Batches(CachedBatches(arrays("train"), d.y_train, P.train.batch_size, P.seed,
                                 mirrored=arrays("train_flip") if flips else None, rows=d.rows_of("train")),
                   CachedBatches(arrays("val"), d.y_val, EVAL_BATCH, P.seed, shuffle=False))


def one_batch(batches: keras.utils.PyDataset, i: int = 0) -> pd.DataFrame:
    """Batch `i` of the first epoch as the model takes it: each input's shape and range, and the labels."""
    x, y = batches[i]
    rows = [{"input": f"x[{j}]" if isinstance(x, tuple) else "x", "shape": a.shape, "dtype": str(a.dtype),
             "min": float(a.min()), "max": float(a.max())} for j, a in enumerate(x if isinstance(x, tuple) else [x])]
    return pd.DataFrame([*rows, {"input": "y (labels)", "shape": y.shape, "dtype": str(y.dtype),
                                 "min": int(y.min()), "max": int(y.max())}]).set_index("input")


def pixel_model(P, base, head):
    from workbook.ml.network import augmentation, build_classifier

    return build_classifier(base, head, P.data.image_size, softmax=False,
                            augment=augmentation(P.train.rotation, P.seed), trainable=True)
