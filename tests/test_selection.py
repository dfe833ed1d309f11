"""The shipped model is chosen by a rule on the hold-out, and the training images are drawn per
class: stratified, seeded, nested, `all` keeping everything."""

from __future__ import annotations

import numpy as np
import pytest

from workbook.ml import holdout
from workbook.ml.selection import FINE_TUNED, HEAD, choose


def test_the_head_ships_when_fine_tuning_loses_more_than_the_margin():
    c = choose(head_score=1.000, finetuned_score=0.925, margin=0.01)
    assert c.model == HEAD
    assert "0.9250" in c.reason and "1.0000" in c.reason and "more than the margin of 0.01" in c.reason


def test_the_fine_tuned_model_ships_when_it_loses_no_more_than_the_margin():
    assert choose(0.950, 0.945, 0.01).model == FINE_TUNED
    assert "within the margin" in choose(0.950, 0.945, 0.01).reason
    assert choose(0.950, 0.940, 0.01).model == FINE_TUNED, "a loss of exactly the margin is within it"
    assert choose(0.950, 0.939, 0.01).model == HEAD


def test_the_fine_tuned_model_ships_when_it_scores_as_well_or_better():
    for head, tuned in ((0.90, 0.95), (0.93, 0.93)):
        c = choose(head, tuned, 0.0)
        assert c.model == FINE_TUNED and "lost nothing" in c.reason


def labels(counts):
    return np.repeat(np.arange(len(counts)), counts)


def test_the_draw_is_stratified_seeded_and_nested():
    y = np.random.default_rng(0).permutation(labels([30, 40, 50]))
    ten = holdout.draw_per_class(y, 10, seed=3)
    assert np.bincount(y[ten]).tolist() == [10, 10, 10]
    assert np.array_equal(ten, np.sort(ten)) and len(set(ten)) == 30
    assert np.array_equal(ten, holdout.draw_per_class(y, 10, seed=3)), "the same seed, the same images"
    assert not np.array_equal(ten, holdout.draw_per_class(y, 10, seed=4)), "another seed, other images"
    assert set(ten) <= set(holdout.draw_per_class(y, 25, seed=3)), "10 per class are among the 25"


def test_all_keeps_every_image():
    y = labels([3, 5])
    assert holdout.draw_per_class(y, "all", seed=1).tolist() == list(range(8))


def test_more_per_class_than_the_smallest_class_holds_is_an_error_naming_it():
    y = labels([6, 4, 9])
    assert len(holdout.draw_per_class(y, 4, 0)) == 12
    with pytest.raises(ValueError, match=r"5 images per class asked for, but class bee has 4: give at most 4, or all"):
        holdout.draw_per_class(y, 5, 0, names=["ant", "bee", "cat"])


def test_the_hold_out_is_carved_from_the_drawn_images_only():
    y = np.random.default_rng(1).permutation(labels([50, 50, 50, 50]))
    for per_class in (2, 5, 40, "all"):
        rows = holdout.training_rows(y, 0.2, per_class, 7)
        n = 50 if per_class == "all" else per_class
        assert np.bincount(y[rows.drawn], minlength=4).tolist() == [n] * 4
        assert np.array_equal(np.sort(np.concatenate([rows.fit, rows.held])), rows.drawn), "fit and held split drawn"
        assert not set(rows.fit) & set(rows.held)
        held = np.bincount(y[rows.held], minlength=4)
        assert (held >= 1).all() and held.sum() == holdout.holdout_size(4 * n, 0.2, 4)
        assert holdout.sizes(len(y), per_class, 4, 0.2) == (len(rows.drawn), len(rows.fit), len(rows.held))
    everything = holdout.training_rows(y, 0.2, "all", 7)
    _, held = holdout.holdout_rows(y, 0.2, 7)
    assert np.array_equal(everything.held, held), "at all, the hold-out of every train image"
    with pytest.raises(ValueError, match=r"data\.train_per_class = 51: .*give at most 50, or all"):
        holdout.training_rows(y, 0.2, 51, 7)


class FakeCache:
    """Row i of every train array holds i; val rows hold -1."""

    def __init__(self, n_train, n_val):
        self.n_train, self.n_val = n_train, n_val

    def pooled(self, name):
        n = self.n_val if name == "val" else self.n_train
        return (np.arange(n) if name != "val" else -np.ones(n))[:, None].repeat(3, axis=1)

    def cut(self, name):
        return [self.pooled(name)[:, :2], self.pooled(name)[:, :1]]

    def has(self, name):
        return True


def read(d, name: str) -> list[int]:
    """The first column of the pooled rows `d` holds of a set, as a batch set reads them."""
    rows = d.rows_of(name)
    pooled = d.cache.pooled(name)
    return pooled[rows if rows is not None else slice(None), 0].tolist()


def test_a_split_data_indexes_train_files_labels_and_cached_views_alike():
    from workbook.ml.feature_cache import Data

    y = labels([10, 10, 10])
    d = Data(["a", "b", "c"], [f"t{i}" for i in range(30)], ["v0", "v1"], y, np.array([0, 1]), FakeCache(30, 2))
    drawn, fit, held = holdout.split(d, 0.2, 3, seed=0)
    chosen = holdout.training_rows(y, 0.2, 3, 0)
    rows, held_rows = chosen.fit, chosen.held
    assert fit.train_files == [f"t{i}" for i in rows] and np.array_equal(fit.y_train, y[rows])
    for name in ("train", "train_flip"):
        assert read(fit, name) == rows.tolist()
        assert read(drawn, name) == chosen.drawn.tolist()
    assert read(held, "train") == held_rows.tolist()
    assert read(fit, "val") == [-1, -1] and fit.val_files == d.val_files and fit.cache is d.cache
    assert fit.features == 3
    again = fit.restricted([0, 2])  # a restriction of a restriction indexes the rows it holds
    assert read(again, "train") == rows[[0, 2]].tolist() and again.y_train.tolist() == y[rows[[0, 2]]].tolist()
