"""The evaluate stage's scoring: accuracy, confusions, mistakes and the paired test, on hand-made predictions."""

from __future__ import annotations

import numpy as np
import pytest

from workbook import evaluate


def one_hot(pred, n=3, confidence=0.8):
    p = np.full((len(pred), n), (1 - confidence) / (n - 1))
    p[np.arange(len(pred)), pred] = confidence
    return p


def test_scores_and_confusions_count_every_image():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = one_hot([0, 1, 1, 1, 2, 0])
    overall, table = evaluate.scores(y, probs, ["a", "b", "c"])
    assert overall["accuracy"] == pytest.approx(4 / 6)
    assert list(table["support"]) == [2, 2, 2]
    assert table.set_index("class").loc["b", "precision"] == pytest.approx(2 / 3)
    counts, normalised = evaluate.confusions(y, probs, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert normalised.sum(axis=1) == pytest.approx([1, 1, 1])


def test_a_class_never_seen_has_a_zero_row_not_nan():
    counts, normalised = evaluate.confusions(np.array([0, 1]), one_hot([0, 1]), 3)
    assert counts[2].sum() == 0 and not np.isnan(normalised).any()


def test_confident_mistakes_come_most_confident_first():
    y = np.array([0, 1, 2, 0])
    probs = np.array([[0.1, 0.9, 0.0], [0.0, 1.0, 0.0], [0.6, 0.0, 0.4], [0.2, 0.0, 0.8]])
    m = evaluate.confident_mistakes(y, probs, ["f0", "f1", "f2", "f3"], ["a", "b", "c"], 2)
    assert list(m.file) == ["f0", "f3"] and list(m.predicted) == ["b", "c"]


def test_paired_counts_discordant_images_and_tests_them():
    y = np.zeros(40, int)
    a = one_hot([0] * 40)                     # always right
    b = one_hot([0] * 30 + [1] * 10)          # wrong on 10 that a gets right
    p = evaluate.paired(y, a, b)
    assert (p.only_a, p.only_b) == (10, 0) and p.p_value == pytest.approx(2 * 0.5 ** 10)
    even = evaluate.paired(y, one_hot([0] * 5 + [1] * 35), one_hot([1] * 5 + [0] * 5 + [1] * 30))
    assert (even.only_a, even.only_b) == (5, 5) and even.p_value == pytest.approx(1.0)
    assert evaluate.paired(y, a, a).p_value == 1.0  # no disagreement at all
