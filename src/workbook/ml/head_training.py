"""Training the head on the frozen base: the train stage's method."""

from __future__ import annotations

from workbook.ml.feature_cache import Data
from workbook.ml.fitting import (
    Fit,
    batch_sets,
    compile_classifier,
    distribution,
    fit,
    pixel_model,
    replica,
    seed_everything,
)


def train_head(P, d: Data, lr: float, base=None, live_dir=None) -> Fit:
    """The head on the frozen base: from cached pooled features, or (augment=full) from pixels."""
    from workbook.ml.network import build_head, set_fine_tuning

    seed_everything(P.seed)
    t = P.train
    strategy = distribution(t.distribute)
    if t.augment == "full":
        base = replica(base, strategy)
    with strategy.scope():
        head = build_head(len(d.classes), t.dense_units, t.dropout, P.seed, d.features)
        if t.augment == "full":
            set_fine_tuning(base, None)
        model = pixel_model(P, base, head) if t.augment == "full" else head
        compile_classifier(model, lr)  # the optimizer's variables too belong to the scope
    result = fit(model, *batch_sets(P, d, "pooled"), t.epochs, "train", live_dir=live_dir)
    return Fit(head, result.curves, result.replicas)
