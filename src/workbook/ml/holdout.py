"""The hold-out carved from train: images no training step sees, for choices that must not look
at val (the tuner's trials are scored on it)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def holdout_size(n: int, fraction: float, least: int = 1) -> int:
    """Train images held out to score the trials: `fraction` of `n`, and at least `least` (one
    per class when the hold-out is stratified)."""
    return max(int(round(fraction * n)), least)


def holdout_rows(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of (fit, hold-out); stratified by class where every class has two images."""
    rows = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_held = holdout_size(len(y), fraction, len(np.unique(y)) if stratify is not None else 1)
    fit, held = train_test_split(rows, test_size=n_held, stratify=stratify, random_state=seed)
    return np.sort(fit), np.sort(held)


ALL = "all"  # data.train_per_class: every train image not held out
_DRAW = 0x64726177  # keeps the draw's random stream apart from every other use of the seed


def draw_per_class(y: np.ndarray, per_class: int | str, seed: int, names: list[str] | None = None) -> np.ndarray:
    """Sorted row indices of `per_class` images of every class in `y`, drawn at random from
    `seed`; `all` keeps every row.

    The draws are nested: each class's rows are shuffled once from `seed` and the first
    `per_class` taken, so 10 per class are among the 30 of a larger draw, and the points of a
    size curve differ by the images added, not by a new sample. A `per_class` above the smallest
    class's count is an error rather than clamped: clamped, a class would be short while the
    curve's x axis said otherwise.
    """
    y = np.asarray(y)
    if per_class == ALL:
        return np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    if per_class > counts.min():
        fewest = classes[counts.argmin()]
        raise ValueError(f"{per_class} images per class asked for, but class "
                         f"{names[fewest] if names else fewest} has {counts.min()}: give at most "
                         f"{counts.min()}, or {ALL}")
    rng = np.random.default_rng([seed, _DRAW])
    rows = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes]
    return np.sort(np.concatenate(rows))


def fit_size(n_train: int, n_held: int, per_class: int | str, n_classes: int) -> int:
    """How many train images the models learn from: `per_class` of each class (or all) outside
    the `n_held` held out, as `training_rows` draws them; for counts made without the labels."""
    return n_train - n_held if per_class == ALL else min(per_class * n_classes, n_train - n_held)


def training_rows(y: np.ndarray, holdout: float, per_class: int | str, seed: int,
                  names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of (fit, hold-out) of the train images with labels `y`: the hold-out is
    `holdout_rows`' (the same at every `per_class`), and fit is `per_class` images of each class
    drawn from the rest (`draw_per_class`). What the tuner, the head, fine-tuning and the control
    learn from is fit; the hold-out scores the tuner's trials and the choice of the shipped model."""
    rest, held = holdout_rows(y, holdout, seed)
    try:
        drawn = draw_per_class(np.asarray(y)[rest], per_class, seed, names)
    except ValueError as e:
        raise ValueError(f"data.train_per_class = {per_class}: {e} (train images outside the hold-out of "
                         f"tune.holdout = {holdout:g})") from None
    return rest[drawn], held


def split(d, holdout: float, per_class: int | str, seed: int) -> tuple:
    """(fit, held): `d` (a workbook.ml.feature_cache.Data) with train restricted to the images the
    models learn from and to the hold-out (`training_rows`); the cached tensors indexed alike, val
    unchanged. Not imported here: the features stage reads that module, and no change to the draw
    should recompute the cache."""
    fit, held = training_rows(d.y_train, holdout, per_class, seed, d.classes)
    return d.restricted(fit), d.restricted(held)
