"""The cached batches fed to Keras as a tf.data pipeline are the batches the PyDataset defines."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from workbook.batches import CachedBatches  # noqa: E402


def test_the_pipeline_gives_the_pydatasets_batches_epoch_by_epoch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(23, 2, 2, 3)).astype(np.float16), rng.normal(size=(23, 4)).astype(np.float16)
    mirrored = [-a, -b]  # told apart from the originals by sign
    y = np.arange(23) % 3
    rows = np.arange(2, 23)  # a subset: 21 samples, batches of 5, the last one short
    batches = CachedBatches([a, b], y, 5, seed=7, mirrored=mirrored, rows=rows)
    from_pipeline = [((xa.numpy(), xb.numpy()), yy.numpy()) for (xa, xb), yy in batches.dataset(epochs=2)]
    assert len(from_pipeline) == 2 * len(batches) == 10
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
    assert batches.dataset(epochs=2) is batches.dataset(epochs=2), "made once, reused by tuner trials"
