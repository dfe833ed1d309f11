"""Figures that stay legible with many classes: no per-cell numbers and a page-sized confusion
matrix beyond `plots.MANY` classes, the worst classes only in per-class bars, a sample grid as wide
at 100 classes as at 10."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from workbook.analysis import plots  # noqa: E402


def names(n: int) -> list[str]:
    return [f"class {i}" for i in range(n)]


@pytest.mark.parametrize("n", [10, 100])
def test_the_confusion_matrix_numbers_its_cells_only_while_they_can_be_read(n):
    counts = np.random.default_rng(0).integers(0, 9, (n, n))
    fig = plots.confusion(counts, names(n), "counts", normalised=False)
    width, height = fig.get_size_inches()
    assert width <= 14 and height <= 14
    numbered = len(fig.axes[0].texts)
    assert numbered == (n * n if n <= plots.MANY else 0)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == names(n), "every class named"


def test_per_class_bars_show_the_worst_classes_of_many():
    table = pd.DataFrame({"class": names(100), "f1-score": np.linspace(0.1, 1.0, 100)})
    fig = plots.per_class_f1(table)
    shown = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert shown == names(plots.MANY) and "the 25 worst of 100 classes" in fig.axes[0].get_title()


def test_the_sample_grid_is_as_wide_for_a_hundred_classes(tmp_path):
    from PIL import Image

    rows = []
    for c in range(100):
        for i in range(3):
            f = tmp_path / f"{c}_{i}.png"
            Image.new("RGB", (8, 8), (c, i, 0)).save(f)
            rows.append({"split": "train", "label": f"c{c:03d}", "file": str(f)})
    manifest = pd.DataFrame(rows)
    labels = {f"c{c:03d}": f"class {c}" for c in range(100)}
    few = plots.sample_grid(manifest[manifest.label < "c010"], labels, per_class=8)
    many = plots.sample_grid(manifest, labels, per_class=8)
    assert many.get_size_inches()[0] == few.get_size_inches()[0]
    assert many.get_size_inches()[1] <= 40
