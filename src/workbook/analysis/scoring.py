"""Scoring predictions against labels: accuracy and per-class scores, confusion matrices, the
most confident mistakes. Shared by the evaluate and quantize stages; scikit-learn computes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix


def scores(y: np.ndarray, probs: np.ndarray, names: list[str]) -> tuple[dict, pd.DataFrame]:
    """Accuracy and macro F1, and the per-class precision / recall / F1 table, the worst classes
    (lowest F1) first."""
    pred = probs.argmax(axis=1)
    labels = list(range(len(names)))
    report = classification_report(y, pred, labels=labels, target_names=names, output_dict=True,
                                   zero_division=0)
    table = pd.DataFrame({n: report[n] for n in names}).T.rename_axis("class").reset_index()
    table["support"] = table["support"].astype(int)
    table = table.sort_values("f1-score", kind="stable").reset_index(drop=True)
    return {"accuracy": float(accuracy_score(y, pred)), "macro_f1": float(report["macro avg"]["f1-score"])}, table


def largest_confusions(counts: np.ndarray, names: list[str], k: int = 15) -> pd.DataFrame:
    """The `k` most frequent mistakes of a confusion matrix (rows: true class): which class was
    taken for which, how often, and that share of the true class's images."""
    off = counts.copy()
    np.fill_diagonal(off, 0)
    true, predicted = np.unravel_index(np.argsort(-off, axis=None, kind="stable")[:k], off.shape)
    keep = off[true, predicted] > 0
    true, predicted = true[keep], predicted[keep]
    support = counts.sum(axis=1)
    return pd.DataFrame({"true": [names[i] for i in true], "predicted as": [names[j] for j in predicted],
                         "images": off[true, predicted], "share of the class": off[true, predicted] / support[true]})


def confusions(y: np.ndarray, probs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and row-normalised confusion matrices (rows: true class)."""
    labels = list(range(n))
    counts = confusion_matrix(y, probs.argmax(axis=1), labels=labels)
    normalised = confusion_matrix(y, probs.argmax(axis=1), labels=labels, normalize="true")
    return counts, np.nan_to_num(normalised)


def confident_mistakes(y: np.ndarray, probs: np.ndarray, files: list[str], names: list[str], k: int,
                       images: list[str] | None = None) -> pd.DataFrame:
    """The k wrong predictions made with the highest confidence; `images` names each file in the
    table (by default its last three path parts: split/label/name)."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]
    images = images if images is not None else ["/".join(Path(f).parts[-3:]) for f in files]
    return pd.DataFrame({"image": [images[i] for i in order],
                         "true": [names[y[i]] for i in order], "predicted": [names[pred[i]] for i in order],
                         "confidence": probs[order, pred[order]], "file": [files[i] for i in order]})
