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
