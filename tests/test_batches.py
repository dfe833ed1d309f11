"""The cached batches fed to Keras as a tf.data pipeline are the batches the PyDataset defines."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from workbook.ml.feeds import CachedBatches, EpochOrder  # noqa: E402


def epochs_of(batches: CachedBatches, epochs: int, initial_epoch: int = 0) -> list[list]:
    """What the pipeline gives in each of `epochs` epochs, iterated anew each epoch as Keras does."""
    pipeline, order = batches.dataset(), EpochOrder(batches, initial_epoch)
    given = []
    for epoch in range(initial_epoch, initial_epoch + epochs):
        order.on_epoch_begin(epoch)
        given.append(list(pipeline))
    return given


def test_the_pipeline_gives_the_pydatasets_batches_epoch_by_epoch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(23, 2, 2, 3)).astype(np.float16), rng.normal(size=(23, 4)).astype(np.float16)
    mirrored = [-a, -b]  # told apart from the originals by sign
    y = np.arange(23) % 3
    rows = np.arange(2, 23)  # a subset: 21 samples, batches of 5, the last one short
    batches = CachedBatches([a, b], y[rows], 5, seed=7, mirrored=mirrored, rows=rows)
    given = epochs_of(batches, 2, initial_epoch=3)  # draws 0 and 1 whatever the epoch count
    assert [len(epoch) for epoch in given] == [len(batches)] * 2 == [5, 5]
    from_pipeline = [((xa.numpy(), xb.numpy()), yy.numpy()) for epoch in given for (xa, xb), yy in epoch]
    expected = []
    for _ in range(2):
        expected += [batches[i] for i in range(len(batches))]
        batches.on_epoch_end()
    for ((xa, xb), yy), ((ea, eb), ey) in zip(from_pipeline, expected):
        np.testing.assert_array_equal(xa, ea)
        np.testing.assert_array_equal(xb, eb)
        np.testing.assert_array_equal(yy, ey)
    assert len(expected[len(batches) - 1][1]) == 1, "21 = 4 x 5 + 1"
    taken_mirrored = sum(int(batches._draw(epoch)[1].sum()) for epoch in range(2))
    assert 0 < taken_mirrored < 2 * 21, "both kinds of view were compared"
    assert batches.dataset() is batches.dataset(), "made once, reused by tuner trials"


def test_keras_trains_each_epoch_on_exactly_that_epochs_batches():
    """Through training.fit, as the train and finetune stages call it, with many batches per
    compiled call: no epoch runs into the next one's batches (Keras 3.15 ran the last call of an
    epoch whole when given one pipeline of every epoch with steps_per_epoch: 296 batches an
    epoch came out as 320, 320 and 248)."""
    import keras
    import tensorflow as tf

    from workbook.ml import fitting as training

    n, size = 150, 4  # 38 batches an epoch, the last of 2: 38 = 32 + 6 in calls of 32
    x = np.arange(n, dtype=np.float32)[:, None]  # each sample's feature is its row
    y = np.arange(n) % 2
    train = CachedBatches([x], y, size, seed=3)
    val = CachedBatches([x], y, 50, seed=3, shuffle=False)
    assert len(train) % training.STEPS_PER_EXECUTION != 0
    trained_on = []

    class Recording(keras.Model):
        def train_step(self, data):
            rows = tf.cast(tf.reshape(data[0], [-1]), tf.int64)
            tf.py_function(lambda r: trained_on.append(r.numpy().tolist()) or 0, [rows], tf.int32)
            return super().train_step(data)

    inputs = keras.Input((1,))
    model = training.compile_classifier(Recording(inputs, keras.layers.Dense(2)(inputs)), 1e-3)
    result = training.fit(model, train, val, epochs=3, stage="finetune", initial_epoch=2)
    expected = []
    for epoch in range(3):
        order = train._draw(epoch)[0]
        expected += [train.rows(i, order).tolist() for i in range(len(train))]
    assert trained_on == expected
    assert list(result.curves.epoch) == [3, 4, 5]


def _fit_peak_growth(folder, rows: int) -> int:
    """Bytes of anonymous memory a one-epoch fit over a memory-mapped cache of `rows` rows (16 KiB
    each, float16, with mirrored views) adds to this process at its peak."""
    import keras

    from workbook.ml import fitting
    from workbook.pipeline.memory import PeakMemory, tree_bytes

    shape = (rows, 8, 8, 128)
    arrays = []
    for name in ("x", "x_flip"):
        a = np.lib.format.open_memmap(folder / f"{name}-{rows}.npy", mode="w+", dtype=np.float16, shape=shape)
        a[:] = 1.0
        a.flush()
        arrays.append(np.load(folder / f"{name}-{rows}.npy", mmap_mode="r"))
    y = np.arange(rows) % 2
    train = CachedBatches([arrays[0]], y, 32, seed=0, mirrored=[arrays[1]])
    val = CachedBatches([arrays[0]], y, 32, seed=0, shuffle=False)
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    fitting.compile_classifier(model, 1e-3)
    import psutil

    before = tree_bytes(psutil.Process())
    with PeakMemory(interval=0.02) as peak:
        fitting.fit(model, train, val, epochs=1, stage="test")
    return peak.bytes - before


def test_a_fit_reads_a_few_batches_of_a_memory_mapped_cache_not_the_cache(tmp_path):
    """Memory is bounded by the batch, not by the data: a fit over a 1 GiB memory-mapped cache
    (512 MiB of tensors and their mirrored views) adds far less than the cache to the process
    (copied into memory, the cache alone would add 1 GiB, and twice that as float32: the old
    in-memory pipeline added 2 GiB here). What it does add, tens of MiB and no more over 2 GiB, is
    the model, the pipeline's batches and what the allocator keeps of them."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("resident anonymous memory is read from Linux's /proc")
    _fit_peak_growth(tmp_path, 32)  # the first fit traces and builds what every later one reuses
    cache = 2 * 32768 * 8 * 8 * 128 * 2
    grown = _fit_peak_growth(tmp_path, 32768)
    assert grown < cache / 8, f"a fit over a {cache / 2**30:.0f} GiB cache added {grown / 2**20:.0f} MiB"
