"""Class probabilities of the trained models from the feature cache: the head from the pooled
vectors, a classifier (fine-tuned or not) from the cut tensors, with no pixel run again."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from workbook.ml.network import build_top_classifier, split_base


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def parts(classifier: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The base and the head inside a saved classifier (see workbook.ml.network.build_classifier)."""
    head = classifier.get_layer("head")
    base = next(layer for layer in classifier.layers if isinstance(layer, keras.Model) and layer is not head)
    return base, head


def finetuned_probs(classifier: keras.Model, d, fine_tune_at: int, batch: int = 256,
                    set_name: str = "val") -> np.ndarray:
    """A classifier's class probabilities on the cut tensors of a cached set of `d` (a
    workbook.ml.feature_cache.Data: val, or its train rows), read batch by batch."""
    from workbook.ml.feeds import predict

    base, head = parts(classifier)
    top = build_top_classifier(split_base(base, fine_tune_at), head)
    batches = _in_order(d.cache.cut(set_name), d.rows_of(set_name), batch)
    return softmax(predict(top, batches, f"fine-tuned over {set_name}"))


def head_probs(head: keras.Model, d, set_name: str = "val", batch: int = 1024) -> np.ndarray:
    """The head's class probabilities on the pooled features of a cached set of `d`, read batch
    by batch."""
    from workbook.ml.feeds import predict

    batches = _in_order([d.cache.pooled(set_name)], d.rows_of(set_name), batch)
    return softmax(predict(head, batches, f"head over {set_name}"))


def _in_order(arrays: list[np.ndarray], rows: np.ndarray | None, batch: int):
    from workbook.ml.feeds import CachedBatches

    n = len(arrays[0]) if rows is None else len(rows)
    return CachedBatches(arrays, np.zeros(n, int), batch, 0, shuffle=False, rows=rows)


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """The share of rows whose top class is `y`'s."""
    return float((probs.argmax(axis=1) == y).mean()) if len(y) else float("nan")


def saved_probs(path: str | Path, val_images: int, stage: str) -> np.ndarray:
    """Class probabilities of every val image that another stage saved (images x classes),
    checked against the number of val images they should cover."""
    f = Path(path)
    if not f.is_file():
        raise FileNotFoundError(f"{f}: not there yet; run the {stage} stage (dvc repro {stage})")
    probs = np.load(f)
    if len(probs) != val_images:
        raise ValueError(f"{f} holds {len(probs)} predictions for {val_images} val images; "
                         "run dvc repro to bring it up to date")
    return probs
