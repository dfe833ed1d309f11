"""Batches for Keras: from the feature cache (fast) or from the prepared images (uncached path)."""

from __future__ import annotations

import math

import keras
import numpy as np

from workbook.ml.prepared import read_prepared


class _Shuffled(keras.utils.PyDataset):
    """Batches of `n` samples, reshuffled every epoch from (seed, epoch): the order is reproducible."""

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool):
        super().__init__(workers=1, use_multiprocessing=False)
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch = 0
        self._order()

    def _draw(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(order, mirror) of an epoch: the samples' order, and which are taken mirrored (used by
        subclasses that hold mirrored views)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        return order, rng.random(self.n) < 0.5

    def _order(self) -> None:
        self.order, self.mirror = self._draw(self.epoch)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order()

    def rows(self, i: int, order: np.ndarray | None = None) -> np.ndarray:
        """Batch i of this epoch's order (or of `order`), sorted: memory-mapped reads run forward
        through the file."""
        order = self.order if order is None else order
        return np.sort(order[i * self.batch_size:(i + 1) * self.batch_size])


def _plain_options():
    """tf.data options for the cached pipelines: no graph rewrites, no autotuning.

    With tf.data's default optimizations on, the first iterator of a pipeline serializes its
    graph for the rewrite, the captured arrays included: seconds for the cut tensors, against
    next to nothing without. The pipeline is a fixed gather with a fixed prefetch,
    which no rewrite speeds up; the batches are the same either way.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return options


class CachedBatches(_Shuffled):
    """Cached arrays (one per model input) with labels.

    With `mirrored` (the same arrays for the mirrored images), each epoch takes every image once,
    mirrored or not with probability 1/2: a random horizontal flip, read from the cache.
    """

    def __init__(self, inputs: list[np.ndarray], y: np.ndarray, batch_size: int, seed: int,
                 shuffle: bool = True, mirrored: list[np.ndarray] | None = None,
                 rows: np.ndarray | None = None):
        self.inputs, self.mirrored, self.y = inputs, mirrored, np.asarray(y)
        self.subset = np.arange(len(self.y)) if rows is None else np.asarray(rows)
        self._datasets: dict = {}  # epochs -> the tf.data pipeline of `dataset`, made once
        self._in_memory: list | None = None  # the arrays as tensors, made once
        self.order_epoch = None  # tf.Variable: which epoch's draw the pipeline gives
        super().__init__(len(self.subset), batch_size, seed, shuffle)

    def __getitem__(self, i: int):
        picks = self.rows(i)
        rows = self.subset[picks]
        if self.mirrored is None:
            xs = [np.asarray(a[rows], dtype=np.float32) for a in self.inputs]
        else:
            flip = self.mirror[picks]
            xs = []
            for a, m in zip(self.inputs, self.mirrored):
                x = np.empty((len(rows), *a.shape[1:]), dtype=np.float32)
                x[~flip] = a[rows[~flip]]
                x[flip] = m[rows[flip]]
                xs.append(x)
        return (tuple(xs) if len(xs) > 1 else xs[0]), self.y[rows]

    def dataset(self, epochs: int = 1):
        """One epoch of these batches as a tf.data pipeline that gathers them from the arrays in
        memory: the batches of epoch `order_epoch` (a variable, 0 at first) in the order indexing
        this PyDataset gives for that epoch. Keras iterates the pipeline anew every epoch;
        `EpochOrder` points it at each epoch's draw, for `epochs` epochs.

        Keras feeds a PyDataset through tf.data's from_generator, which calls back into Python for
        every batch while TensorFlow's threads compute: gathered in the graph instead, a step
        costs about a third. Which rows and views make each batch is still decided here, in
        NumPy, from (seed, epoch): only the copying moves into TensorFlow.

        One pipeline per epoch, not one for all epochs with steps_per_epoch: Keras 3.15 runs the
        last multi-step call of an epoch whole on such a pipeline, so epochs would not train on
        their own batches (tests/test_batches.py checks what each epoch trains on). Every epoch's
        rows lie in one flat tensor with the offsets of its batches: Keras makes a new iterator
        for every epoch and every validation, and ragged tensors make that several times slower.
        The stages call it outside any strategy's scope; inside MirroredStrategy's, its epoch
        variable becomes a mirrored one and the pipeline gives the same batches (checked by hand).
        """
        import tensorflow as tf

        if epochs in self._datasets:  # a tuner trial after another: the same batches again
            return self._datasets[epochs]
        if self.order_epoch is None:
            self.order_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="order_epoch")
        rows, flips = [], []  # every epoch's batches, one after another: their rows, and which are mirrored
        for epoch in range(epochs):
            order, mirror = self._draw(epoch)
            for i in range(len(self)):
                picks = self.rows(i, order)
                rows.append(self.subset[picks])
                flips.append(mirror[picks])
        # batch k = epoch x batches + i lies between starts[k] and starts[k + 1] in them
        starts = tf.constant(np.cumsum([0] + [len(r) for r in rows]))
        rows, flips = tf.constant(np.concatenate(rows).astype(np.int64)), tf.constant(np.concatenate(flips))
        epoch, per_epoch = self.order_epoch, len(self)
        inputs = self._tensors()
        y = tf.constant(self.y)

        def gather(i):
            k = epoch * per_epoch + i
            picked, flipped = rows[starts[k]:starts[k + 1]], flips[starts[k]:starts[k + 1]]
            xs = []
            for array, mirrored in inputs:
                x = tf.gather(array, picked)
                if mirrored is not None:
                    shape = tf.concat([[-1], tf.ones(tf.rank(x) - 1, tf.int32)], 0)
                    x = tf.where(tf.reshape(flipped, shape), tf.gather(mirrored, picked), x)
                xs.append(tf.cast(x, tf.float32))
            return (tuple(xs) if len(xs) > 1 else xs[0]), tf.gather(y, picked)

        pipeline = tf.data.Dataset.range(len(self)).map(gather, num_parallel_calls=1, deterministic=True)
        pipeline = pipeline.prefetch(2)
        self._datasets[epochs] = pipeline.with_options(_plain_options())
        return self._datasets[epochs]

    def _tensors(self) -> list:
        """Each input array (and its mirrored views) as a tensor in memory, made once."""
        import tensorflow as tf

        if self._in_memory is None:
            mirrored = self.mirrored or [None] * len(self.inputs)
            self._in_memory = [(tf.constant(np.asarray(a)), None if m is None else tf.constant(np.asarray(m)))
                               for a, m in zip(self.inputs, mirrored)]
        return self._in_memory


class EpochOrder(keras.callbacks.Callback):
    """Points `batches`' pipeline (CachedBatches.dataset) at the draw of each epoch as Keras
    begins it, counted from the fit's first epoch: the fine-tuning, which continues the head's
    epoch count, takes the draws 0, 1, 2, as every fit does."""

    def __init__(self, batches: CachedBatches, initial_epoch: int = 0):
        super().__init__()
        self.batches, self.initial_epoch = batches, initial_epoch

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.batches.order_epoch.assign(epoch - self.initial_epoch)


class ImageBatches(_Shuffled):
    """Prepared images as float32 pixels (0..255), for the uncached path and for TFLite runs."""

    def __init__(self, files: list[str], y: np.ndarray, batch_size: int, seed: int, shuffle: bool = True):
        self.files, self.y = list(files), np.asarray(y)
        super().__init__(len(self.files), batch_size, seed, shuffle)

    def __getitem__(self, i: int):
        rows = self.rows(i)
        return read_prepared([self.files[r] for r in rows]).astype(np.float32), self.y[rows]


def predict(model: keras.Model, batches: keras.utils.PyDataset) -> np.ndarray:
    """Model outputs for every sample of an unshuffled PyDataset, in order."""
    import tensorflow as tf

    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    out = []
    for i in range(len(batches)):
        x, _ = batches[i]
        out.append(run(x).numpy())
    return np.concatenate(out)
