"""Scoring and its uncertainty on hand-made predictions: accuracy with its Wilson interval (against
published values), confusions, mistakes, and the paired test between two models."""

from __future__ import annotations

import numpy as np
import pytest

from workbook.analysis import scoring
from workbook.analysis.stats import Accuracy, paired


def one_hot(pred, n=3, confidence=0.8):
    p = np.full((len(pred), n), (1 - confidence) / (n - 1))
    p[np.arange(len(pred)), pred] = confidence
    return p


def test_scores_and_confusions_count_every_image():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = one_hot([0, 1, 1, 1, 2, 0])
    overall, table = scoring.scores(y, probs, ["a", "b", "c"])
    assert overall["accuracy"] == pytest.approx(4 / 6)
    assert list(table["support"]) == [2, 2, 2]
    assert table.set_index("class").loc["b", "precision"] == pytest.approx(2 / 3)
    counts, normalised = scoring.confusions(y, probs, 3)
    assert counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert normalised.sum(axis=1) == pytest.approx([1, 1, 1])


def test_the_per_class_table_puts_the_worst_classes_first():
    y = np.array([0, 0, 1, 1, 2, 2])
    _, table = scoring.scores(y, one_hot([0, 0, 2, 1, 2, 1]), ["a", "b", "c"])
    assert list(table["class"]) == ["b", "c", "a"]  # F1 0.5, 0.5 (in class order), then 1.0
    assert list(table["f1-score"]) == sorted(table["f1-score"])


def test_the_largest_confusions_are_counted_and_ordered():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    counts, _ = scoring.confusions(y, one_hot([2, 2, 1, 0, 1, 0, 2, 2]), 3)
    confused = scoring.largest_confusions(counts, ["a", "b", "c"], k=5)
    assert confused.values.tolist() == [["a", "c", 2, 0.5], ["a", "b", 1, 0.25], ["b", "a", 1, 0.5]]
    assert scoring.largest_confusions(counts, ["a", "b", "c"], k=1)["images"].tolist() == [2]


def test_a_class_never_seen_has_a_zero_row_not_nan():
    counts, normalised = scoring.confusions(np.array([0, 1]), one_hot([0, 1]), 3)
    assert counts[2].sum() == 0 and not np.isnan(normalised).any()


def test_confident_mistakes_come_most_confident_first():
    y = np.array([0, 1, 2, 0])
    probs = np.array([[0.1, 0.9, 0.0], [0.0, 1.0, 0.0], [0.6, 0.0, 0.4], [0.2, 0.0, 0.8]])
    m = scoring.confident_mistakes(y, probs, ["val/a/f0", "val/a/f1", "val/c/f2", "val/a/f3"], ["a", "b", "c"], 2)
    assert list(m.file) == ["val/a/f0", "val/a/f3"] and list(m.predicted) == ["b", "c"]


def test_paired_counts_discordant_images_and_tests_them():
    y = np.zeros(40, int)
    a = one_hot([0] * 40)                     # always right
    b = one_hot([0] * 30 + [1] * 10)          # wrong on 10 that a gets right
    p = paired(y, a.argmax(1), b.argmax(1))
    assert (p.only_a, p.only_b) == (10, 0) and p.p_value == pytest.approx(2 * 0.5 ** 10)
    even = paired(y, np.array([0] * 5 + [1] * 35), np.array([1] * 5 + [0] * 5 + [1] * 30))
    assert (even.only_a, even.only_b) == (5, 5) and even.p_value == pytest.approx(1.0)
    assert paired(y, a.argmax(1), a.argmax(1)).p_value == 1.0  # no disagreement at all


@pytest.mark.parametrize("right, n, low, high", [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I:
    # Wilson score intervals without continuity correction
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_interval_matches_published_values(right, n, low, high):
    a = Accuracy.of(right, n)
    assert a.value == pytest.approx(right / n)
    assert (a.low, a.high) == (pytest.approx(low, abs=5e-5), pytest.approx(high, abs=5e-5))


def test_accuracy_of_predictions_and_of_no_image():
    a = Accuracy.of_predictions(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]))
    assert (a.right, a.images, a.value) == (3, 4, 0.75) and a.low < 0.75 < a.high
    assert Accuracy.of(0, 0).value is None  # nothing to score: no number, not NaN
