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

    The pipeline is a fixed read with a fixed prefetch, which no rewrite speeds up; without the
    rewrites its first iterator starts at once; the batches are the same either way.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.apply_default_optimizations = False
    options.autotune.enabled = False
    return options


class FlippedView:
    """An array of images (n, height, width, channels) seen mirrored left to right, without a copy
    of it: indexing it reads the rows asked for and flips them."""

    def __init__(self, images: np.ndarray):
        self.images = images
        self.shape, self.dtype = images.shape, images.dtype

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, rows) -> np.ndarray:
        return np.asarray(self.images[rows])[:, :, ::-1]


class CachedBatches(_Shuffled):
    """Cached arrays (one per model input, memory-mapped or not) with labels, read batch by batch.

    With `mirrored` (the same arrays for the mirrored images), each epoch takes every image once,
    mirrored or not with probability 1/2: a random horizontal flip, read from the cache.
    `rows`: the rows of the arrays that make up the set (the same row may come more than once;
    default: every row), and `y` their labels, in that order. Nothing is read before a batch asks
    for it: memory holds a few batches, whatever the arrays' size.
    """

    def __init__(self, inputs: list[np.ndarray], y: np.ndarray, batch_size: int, seed: int,
                 shuffle: bool = True, mirrored: list[np.ndarray] | None = None,
                 rows: np.ndarray | None = None):
        self.inputs, self.mirrored, self.y = inputs, mirrored, np.asarray(y)
        self.subset = np.arange(len(self.y)) if rows is None else np.asarray(rows)
        if len(self.subset) != len(self.y):
            raise ValueError(f"{len(self.y)} labels for {len(self.subset)} rows")
        self._dataset = None  # the tf.data pipeline of `dataset`, made once
        self._draws: dict = {}  # epoch -> its (order, mirror), drawn once
        self.order_epoch = None  # tf.Variable: which epoch's draw the pipeline gives
        super().__init__(len(self.subset), batch_size, seed, shuffle)

    def read(self, i: int, epoch: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
        """Batch i of `epoch`'s draw (None: this PyDataset's current epoch) as stored (float16
        tensors stay float16), and its labels; each batch's picks sorted, so that where the set's
        rows are in order (every set but the control's repeated ones) they are read in file order."""
        if epoch is None:
            order, mirror = self.order, self.mirror
        else:
            if epoch not in self._draws:
                self._draws[epoch] = self._draw(epoch)
            order, mirror = self._draws[epoch]
        picks = self.rows(i, order)
        rows = self.subset[picks]
        if self.mirrored is None:
            return [np.asarray(a[rows]) for a in self.inputs], self.y[picks]
        flip = mirror[picks]
        xs = []
        for a, m in zip(self.inputs, self.mirrored):
            x = np.empty((len(rows), *a.shape[1:]), dtype=a.dtype)
            x[~flip] = a[rows[~flip]]
            x[flip] = m[rows[flip]]
            xs.append(x)
        return xs, self.y[picks]

    def __getitem__(self, i: int):
        xs, y = self.read(i)
        xs = [x.astype(np.float32) for x in xs]
        return (tuple(xs) if len(xs) > 1 else xs[0]), y

    def dataset(self):
        """One epoch of these batches as a tf.data pipeline: the batches of epoch `order_epoch` (a
        variable, 0 at first) in the order indexing this PyDataset gives for that epoch, read from
        the arrays (`read`) up to two batches ahead of the step that takes them. Keras iterates the pipeline
        anew every epoch; `EpochOrder` points it at each epoch's draw.

        Which rows and views make each batch is decided here, in NumPy, from (seed, epoch); the
        rows are copied out of the (memory-mapped) arrays by a NumPy call inside the pipeline,
        on tf.data's thread while TensorFlow's threads compute, and cast to float32 there.

        One pipeline per epoch, not one for all epochs with steps_per_epoch: Keras 3.15 runs the
        last multi-step call of an epoch whole on such a pipeline, so epochs would not train on
        their own batches (tests/test_batches.py checks what each epoch trains on).
        The stages call it outside any strategy's scope; inside MirroredStrategy's, its epoch
        variable becomes a mirrored one and the pipeline gives the same batches (checked by hand).
        """
        import tensorflow as tf

        if self._dataset is not None:  # a tuner trial after another: the same batches again
            return self._dataset
        if self.order_epoch is None:
            self.order_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="order_epoch")
        epoch = self.order_epoch
        dtypes = [tf.as_dtype(a.dtype) for a in self.inputs] + [tf.as_dtype(self.y.dtype)]

        def read(e, i):
            xs, y = self.read(int(i), int(e))
            return (*xs, y)

        def batch(i):
            *xs, y = tf.numpy_function(read, [epoch.read_value(), i], dtypes, stateful=False)
            xs = [tf.ensure_shape(tf.cast(x, tf.float32), (None, *a.shape[1:])) for x, a in zip(xs, self.inputs)]
            return (tuple(xs) if len(xs) > 1 else xs[0]), tf.ensure_shape(y, (None,))

        pipeline = tf.data.Dataset.range(len(self)).map(batch, num_parallel_calls=1, deterministic=True)
        self._dataset = pipeline.prefetch(2).with_options(_plain_options())
        return self._dataset


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


def predict(model: keras.Model, batches: keras.utils.PyDataset, desc: str = "predict") -> np.ndarray:
    """Model outputs for every sample of an unshuffled PyDataset, in order (a progress bar: `desc`)."""
    import tensorflow as tf

    from workbook.pipeline.progress import progress

    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    out = []
    for i in progress(range(len(batches)), desc=desc, unit="batch"):
        x, _ = batches[i]
        out.append(run(x).numpy())
    return np.concatenate(out) if out else np.zeros((0, *model.output.shape[1:]), np.float32)
