"""Which train images a study uses: `data.train_per_class` of each class, drawn from the seed, and
within them the hold-out that scores the choices (the tuner's trials, the model that ships), so
that no choice looks at val or at an image outside the draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sklearn.model_selection import train_test_split


def holdout_size(n: int, fraction: float, least: int = 1) -> int:
    """Train images held out to score the trials: `fraction` of `n`, and at least `least` (one
    per class when the hold-out is stratified)."""
    return max(int(round(fraction * n)), least)


def holdout_rows(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of (fit, hold-out) of the images labelled `y`, stratified by class where every
    class has two images; at least as many held out as there are classes."""
    rows = np.arange(len(y))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    n_held = holdout_size(len(y), fraction, len(np.unique(y)) if stratify is not None else 1)
    fit, held = train_test_split(rows, test_size=n_held, stratify=stratify, random_state=seed)
    return np.sort(fit), np.sort(held)


ALL = "all"  # data.train_per_class: every train image
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


@dataclass(frozen=True)
class Rows:
    """Row indices of the train images a study uses.

    `drawn`: `data.train_per_class` images of each class (`draw_per_class`), everything the models
    learn from in the end. `fit` and `held` split them (`holdout_rows`): the choices (the tuner's
    rate, the model that ships) train on fit and are scored on held, and the chosen recipe is then
    refit on all of drawn, as model selection with refit does. No image outside drawn plays any
    part, so a point of the size curve is made with what a user with that many images has.
    """

    drawn: np.ndarray
    fit: np.ndarray
    held: np.ndarray


def training_rows(y: np.ndarray, holdout: float, per_class: int | str, seed: int,
                  names: list[str] | None = None) -> Rows:
    """The drawn train images of labels `y` and their split into fit and hold-out (`Rows`)."""
    try:
        drawn = draw_per_class(y, per_class, seed, names)
    except ValueError as e:
        raise ValueError(f"data.train_per_class = {per_class}: {e}") from None
    fit, held = holdout_rows(np.asarray(y)[drawn], holdout, seed)
    return Rows(drawn, drawn[fit], drawn[held])


def sizes(n_train: int, per_class: int | str, n_classes: int, holdout: float) -> tuple[int, int, int]:
    """(drawn, fit, held): how many train images `training_rows` gives each, for counts made
    without the labels (the bench, the arithmetic)."""
    drawn = n_train if per_class == ALL else per_class * n_classes
    held = holdout_size(drawn, holdout, n_classes)
    return drawn, drawn - held, held


class DrawnSets(NamedTuple):
    drawn: object  # a workbook.ml.feature_cache.Data: the drawn train images, val as it is
    fit: object  # the same with train the fit rows
    held: object  # the same with train the hold-out


def split(d, holdout: float, per_class: int | str, seed: int) -> DrawnSets:
    """`d` (a workbook.ml.feature_cache.Data) with train restricted to the drawn images, to the
    fit rows and to the hold-out (`training_rows`); the cached tensors indexed alike, val
    unchanged. Not imported here: the features stage reads that module, and no change to the draw
    should recompute the cache."""
    rows = training_rows(d.y_train, holdout, per_class, seed, d.classes)
    return DrawnSets(d.restricted(rows.drawn), d.restricted(rows.fit), d.restricted(rows.held))
