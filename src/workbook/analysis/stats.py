"""Uncertainty of the study's numbers: intervals for accuracies, the paired test between two
models on the same images, and the spread of a metric over seeds. SciPy computes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
INTERVAL = "Wilson score"  # how every accuracy interval in the study is computed (named in reports)


@dataclass(frozen=True)
class Accuracy:
    """A share of images classified correctly, with its 95% Wilson score interval.

    The Wilson interval treats each image as an independent trial; it stays inside [0, 1] and
    keeps its coverage near 0 and 1, where accuracies of a few thousand images sit.
    """
    right: int
    images: int
    value: float | None  # None: no image to score
    low: float | None
    high: float | None

    @classmethod
    def of(cls, right: int, images: int) -> "Accuracy":
        from scipy.stats import binomtest

        if images == 0:
            return cls(0, 0, None, None, None)
        ci = binomtest(int(right), int(images)).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
        return cls(int(right), int(images), right / images, float(ci.low), float(ci.high))

    @classmethod
    def of_predictions(cls, y: np.ndarray, predicted: np.ndarray) -> "Accuracy":
        return cls.of(int((np.asarray(predicted) == np.asarray(y)).sum()), len(y))


@dataclass(frozen=True)
class Paired:
    """Two models on the same images: where exactly one of them is right, and whether that split
    is beyond chance (exact McNemar test: a two-sided binomial test on the discordant images)."""
    only_a: int  # images model a gets right and model b wrong
    only_b: int
    p_value: float


def paired(y: np.ndarray, predicted_a: np.ndarray, predicted_b: np.ndarray) -> Paired:
    from scipy.stats import binomtest

    right_a, right_b = np.asarray(predicted_a) == y, np.asarray(predicted_b) == y
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Paired(only_a, only_b, float(p))
