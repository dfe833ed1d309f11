"""The learning-rate search: reproducible, every trial from the same start, the best one chosen."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras_tuner")

from workbook.ml import holdout  # noqa: E402
from workbook.ml.feeds import CachedBatches  # noqa: E402
from workbook.stages import tune  # noqa: E402


def pooled_data(seed=0, n=120, features=16, classes=3):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.normal(size=(n, features)).astype(np.float32) + 1.5 * np.eye(classes, features, dtype=np.float32)[y]
    return x, y


def run(trials=4, epochs=2, seed=7):
    x, y = pooled_data()
    fit, held = holdout.holdout_rows(y, 0.25, seed)
    return tune.search(CachedBatches([x], y[fit], 16, seed, rows=fit), CachedBatches([x], y[held], 64, seed, shuffle=False, rows=held),
                       3, 8, 0.2, seed, 1e-4, 1e-1, trials, epochs)


def test_holdout_is_stratified_and_disjoint():
    y = np.arange(100) % 4
    fit, held = holdout.holdout_rows(y, 0.2, 0)
    assert len(held) == 20 and not set(fit) & set(held) and len(fit) + len(held) == 100
    assert np.bincount(y[held]).tolist() == [5, 5, 5, 5]


def test_search_is_reproducible_and_picks_the_lowest_loss():
    first, second = run(), run()
    assert first.trials.equals(second.trials) and first.best_lr == second.best_lr
    t = first.trials
    assert len(t) == 4 and t.lr.between(1e-4, 1e-1).all()
    assert t.loc[t.val_loss.idxmin(), "lr"] == first.best_lr and t.best.sum() == 1


def test_a_reused_head_gives_the_trials_a_fresh_one_would():
    """Trials share one compiled head (put back to its start): the same as building it anew."""
    x, y = pooled_data(1)
    fit, held = holdout.holdout_rows(y, 0.25, 3)
    train = CachedBatches([x], y[fit], 16, 3, rows=fit)
    heldout = CachedBatches([x], y[held], 64, 3, shuffle=False, rows=held)
    shared = tune.HeadLR(3, 8, 0.5, 3, 1e-3, 1e-1, features=16)
    losses = {}
    for lr in (0.05, 0.002, 0.05):
        for name, hypermodel in (("shared", shared), ("fresh", tune.HeadLR(3, 8, 0.5, 3, 1e-3, 1e-1, features=16))):
            hp = tune.kt.HyperParameters()
            hp.Fixed("lr", lr)
            model = hypermodel.build(hp)
            history = hypermodel.fit(hp, model, train, validation_data=heldout, epochs=2, verbose=0)
            losses.setdefault(lr, {}).setdefault(name, []).append(history.history["val_loss"])
    for lr, by in losses.items():
        for shared_run in by["shared"]:
            np.testing.assert_allclose(shared_run, by["fresh"][0], rtol=1e-6)


def test_consecutive_seeds_draw_different_candidate_rates():
    """Keras Tuner draws trial i's rate from its seed + i: the study's seeds are hashed first, so
    seeds 1, 2, 3 do not share 9 of 10 candidates as they would handed over as they are."""
    trials = 10
    seeds = {s: tune.tuner_seed(s) for s in range(1, 21)}
    assert seeds[1] == tune.tuner_seed(1) and len(set(seeds.values())) == len(seeds)
    for a in seeds:
        for b in seeds:
            if a < b:
                assert abs(seeds[a] - seeds[b]) >= trials, (a, b)
    rates = {}
    for s in (1, 2):
        oracle = tune.make_tuner(tune.HeadLR(3, 8, 0.2, s, 1e-5, 1e-2), trials, s, tune.Path(tune.tempfile.mkdtemp())).oracle
        rates[s] = {oracle.populate_space(str(i))["values"]["lr"] for i in range(trials)}
    assert not rates[1] & rates[2]


def test_trials_run_with_the_objects_of_before_out_of_the_collectors_way(monkeypatch):
    """Keras Tuner collects garbage before every trial; the search freezes what existed before
    it (tune._gc_frozen) and gives it back to the collector after, also when the search fails."""
    import gc

    before, seen = gc.get_freeze_count(), []
    fit = tune.HeadLR.fit

    def recording(self, *args, **kwargs):
        seen.append(gc.get_freeze_count())
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(tune.HeadLR, "fit", recording)
    run(trials=2, epochs=1)
    assert len(seen) == 2 and min(seen) > before and gc.get_freeze_count() == before

    with pytest.raises(ValueError), tune._gc_frozen():
        raise ValueError("a search that fails")
    assert gc.get_freeze_count() == before
