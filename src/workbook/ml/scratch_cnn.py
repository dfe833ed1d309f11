"""The from-scratch control: a small CNN from random initialisation, trained on the prepared train
images and scored on the same val images as the study's models. What ImageNet pretraining buys is
the gap between them at the same number of training images.

The network (width w = control.width, input control.image_size a side):

    pixels 0..255 -> scaled to [-1, 1]
    conv 3x3, stride 2, w channels   -> BatchNorm -> ReLU -> max-pool 2x2
    conv 3x3, 2w                     -> BatchNorm -> ReLU -> max-pool 2x2
    conv 3x3, 4w                     -> BatchNorm -> ReLU -> max-pool 2x2
    conv 3x3, 8w                     -> BatchNorm -> ReLU
    global average pooling -> Dense(N classes), logits

At 64 px and w = 32: 392,426 weights and 15 million multiply-adds per image (MobileNetV2 at
160 px: 300 million). Trained with Adam from `lr` decaying to 0 along a cosine, each image taken
as it is or mirrored with probability 1/2 (mirrored as a batch is read), batches reshuffled every
epoch from the seed.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from workbook.ml.prepared import read_prepared
from workbook.pipeline.progress import progress

BLOCKS = 4  # conv blocks; the first convolves at stride 2, the first three end in a max-pool
READ_BATCH = 512  # prepared images read and shrunk at a time


def shrink(files: list[str], size: int, folder: str | Path | None = None) -> np.ndarray:
    """Prepared images (references or files: workbook.ml.prepared) as uint8 squares of `size`,
    shrunk by area averaging (each output pixel the mean of the input pixels it covers).

    Written into a memory-mapped array on disk (in `folder`; None: the system's temporary
    folder) whose file is removed at once: the pixels are paged in as batches read them, memory
    holds no more than a chunk of them, and the disk space goes with the array (or the process).
    """
    import tensorflow as tf

    with tempfile.NamedTemporaryFile(dir=folder, prefix=".tmp-shrunk-", suffix=".npy") as f:
        out = np.lib.format.open_memmap(f.name, mode="w+", dtype=np.uint8, shape=(len(files), size, size, 3))
    with progress(total=len(files), desc=f"shrink to {size} px", unit="img") as bar:
        for i in range(0, len(files), READ_BATCH):
            images = read_prepared(files[i:i + READ_BATCH])
            if images.shape[1] != size:
                images = tf.cast(tf.round(tf.image.resize(images, (size, size), method="area")), tf.uint8).numpy()
            out[i:i + len(images)] = images
            bar.update(len(images))
    return out


def build(n_classes: int, image_size: int, width: int, seed: int) -> keras.Model:
    """The control network (the module's docstring draws it): pixels in, logits out."""
    x = pixels = keras.Input((image_size, image_size, 3), name="pixels")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="scale")(x)
    for i in range(BLOCKS):
        x = keras.layers.Conv2D(width * 2 ** i, 3, strides=2 if i == 0 else 1, padding="same", use_bias=False,
                                kernel_initializer=keras.initializers.HeNormal(seed=seed + i), name=f"conv{i + 1}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = keras.layers.ReLU(name=f"relu{i + 1}")(x)
        if i < BLOCKS - 1:
            x = keras.layers.MaxPooling2D(name=f"pool{i + 1}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(n_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=seed + BLOCKS),
                                name="logits")(x)
    return keras.Model(pixels, logits, name="control")


def architecture(model: keras.Model) -> str:
    """The network in one line: "conv 32/2, pool, conv 64, pool, ..., global pool, dense 10"."""
    parts = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            stride = layer.strides[0]
            parts.append(f"conv{layer.kernel_size[0]}x{layer.kernel_size[1]} {layer.filters}"
                         + (f"/{stride}" if stride > 1 else "") + "-BN-ReLU")
        elif isinstance(layer, keras.layers.MaxPooling2D):
            parts.append("max-pool")
        elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
            parts.append("global average pool")
        elif isinstance(layer, keras.layers.Dense):
            parts.append(f"dense {layer.units}")
    return ", ".join(parts)


def batches(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, batch_size: int,
            seed: int, repeats: int = 1, eval_batch: int = 256):
    """(train, val) batch sets: train reshuffled every epoch from `seed`, each image taken
    `repeats` times an epoch, each time mirrored or not with probability 1/2; val in order."""
    from workbook.ml.feeds import CachedBatches, FlippedView

    mirrored = [FlippedView(x_train)]
    rows = np.tile(np.arange(len(y_train)), repeats)
    return (CachedBatches([x_train], y_train[rows], batch_size, seed, mirrored=mirrored, rows=rows),
            CachedBatches([x_val], y_val, eval_batch, seed, shuffle=False))


class EpochTimes(keras.callbacks.Callback):
    """Wall seconds of each epoch, its validation included."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


@dataclass
class ControlFit:
    model: keras.Model
    curves: pd.DataFrame  # workbook.ml.fitting.CURVE_COLUMNS, one row per epoch
    epoch_seconds: list[float]  # wall seconds of each epoch (the first also traces the graph)


def train(model: keras.Model, train_batches, val_batches, epochs: int, lr: float, seed: int,
          live_dir=None) -> ControlFit:
    """Adam from `lr`, decaying to 0 along a cosine over every step, through workbook.ml.fitting's
    fit; learning curves (and to DVCLive in `live_dir`, when given) and each epoch's time."""
    from workbook.ml.fitting import Batches, compile_and_fit, seed_everything

    seed_everything(seed)
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, epochs * len(train_batches)))
    clock = EpochTimes()
    fitted = compile_and_fit(model, Batches(train_batches, val_batches), schedule, epochs, "control",
                             live_dir=live_dir, callbacks=[clock])
    return ControlFit(model, fitted.curves, [round(s, 2) for s in clock.seconds])


def probabilities(model: keras.Model, batches) -> np.ndarray:
    """Class probabilities (softmax of the logits) of every image of unshuffled `batches`, in order."""
    from workbook.ml.feeds import predict
    from workbook.ml.predict import softmax

    return softmax(predict(model, batches, "control over val")).astype(np.float32)
