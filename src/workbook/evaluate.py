"""The evaluate stage: the fine-tuned model against two baselines, on every val image.

Predictions come from the feature cache. The no-training baseline is the pretrained ImageNet
classifier (GlobalAveragePooling -> Dense(1000)) with its outputs restricted to the N classes.
When its trunk is the very base the cache was computed with (checked weight by weight), its
logits are the cached pooled features times its Dense weights; otherwise its whole network
runs over the val images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

from workbook import imagenet
from workbook.model import build_base, build_top_classifier, split_base


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def parts(classifier: keras.Model) -> tuple[keras.Model, keras.Model]:
    """The base and the head inside a saved classifier (see model.build_classifier)."""
    base = next(layer for layer in classifier.layers if layer.name.startswith("mobilenetv2"))
    return base, classifier.get_layer("head")


def finetuned_probs(classifier: keras.Model, cache, fine_tune_at: int, batch: int = 256) -> np.ndarray:
    """The fine-tuned model's class probabilities on the cached val tensors."""
    from workbook.batches import CachedBatches, predict

    base, head = parts(classifier)
    top = build_top_classifier(split_base(base, fine_tune_at), head)
    cut = cache.cut("val")
    return softmax(predict(top, CachedBatches(cut, np.zeros(len(cut[0]), int), batch, 0, shuffle=False)))


def head_probs(head: keras.Model, pooled: np.ndarray) -> np.ndarray:
    return softmax(head.predict(pooled, batch_size=1024, verbose=0))


@dataclass
class Baseline:
    probs: np.ndarray | None  # over the N classes; None when the baseline cannot apply
    note: str  # how it was computed, or why it was skipped


def _with_top(weights: str, image_size: int, root: Path) -> keras.Model:
    from workbook.params import resolve

    if weights == "imagenet":
        return keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), weights="imagenet")
    model = keras.applications.MobileNetV2(input_shape=(image_size, image_size, 3), weights=None)
    model.load_weights(str(resolve(weights, root)))  # by order: the file's names are Keras 2's
    return model


def same_trunk(a: keras.Model, b: keras.Model) -> bool:
    """True when every weight of base `a` equals the corresponding weight of model `b`."""
    for layer in a.layers:
        mine = layer.get_weights()
        if not mine:
            continue
        try:
            theirs = b.get_layer(layer.name).get_weights()
        except ValueError:
            return False
        if len(mine) != len(theirs) or not all(np.array_equal(x, y) for x, y in zip(mine, theirs)):
            return False
    return True


def baseline(weights: str, model_weights: str, image_size: int, classes: list[str], root: Path,
             pooled_val: np.ndarray, val_files: list[str], seed: int = 0) -> Baseline:
    """The pretrained ImageNet classifier restricted to the N classes, with no training at all."""
    if weights == "none":
        return Baseline(None, "skipped: evaluate.baseline_weights is none")
    idx = imagenet.indices(classes)
    if idx is None:
        unknown = [c for c in classes if c not in imagenet.wnid_index()][:3]
        return Baseline(None, f"skipped: the classes are not ImageNet wnids (e.g. {', '.join(unknown)}), "
                              "so the ImageNet classifier has no output for them")
    try:
        full = _with_top(weights, image_size, root)
    except Exception as e:  # no network for "imagenet", or a file that does not fit
        return Baseline(None, f"skipped: the with-top weights could not be loaded ({e})")
    kernel, bias = full.get_layer("predictions").get_weights()
    pretrained = build_base(image_size, model_weights, root, seed)
    if same_trunk(pretrained, full):
        pooled = pooled_val
        how = ("the cached pooled features times the classifier's Dense weights (its trunk is "
               "the base the cache was computed with, checked weight by weight)")
    else:
        from workbook.batches import ImageBatches, predict
        from workbook.model import preprocessing

        pixels = keras.Input((image_size, image_size, 3))
        trunk = keras.Model(full.input, full.layers[-2].output)  # up to the global pooling
        model = keras.Model(pixels, trunk(preprocessing()(pixels)))
        pooled = predict(model, ImageBatches(val_files, np.zeros(len(val_files), int), 128, 0, shuffle=False))
        how = "its whole network over every val image (its trunk differs from model.weights)"
    logits = pooled @ kernel[:, idx] + bias[idx]
    return Baseline(softmax(logits), f"computed from {how}; outputs restricted to the {len(idx)} classes")


def scores(y: np.ndarray, probs: np.ndarray, names: list[str]) -> tuple[dict, pd.DataFrame]:
    """Accuracy and macro F1, and the per-class precision / recall / F1 table."""
    pred = probs.argmax(axis=1)
    labels = list(range(len(names)))
    report = classification_report(y, pred, labels=labels, target_names=names, output_dict=True,
                                   zero_division=0)
    table = pd.DataFrame({n: report[n] for n in names}).T.rename_axis("class").reset_index()
    table["support"] = table["support"].astype(int)
    return {"accuracy": float(accuracy_score(y, pred)), "macro_f1": float(report["macro avg"]["f1-score"])}, table


@dataclass
class Paired:
    """Two models on the same images: where exactly one of them is right, and whether that split
    is beyond chance (exact McNemar test: a two-sided binomial test on the discordant images)."""
    only_a: int  # images model a gets right and model b wrong
    only_b: int
    p_value: float


def paired(y: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray) -> Paired:
    from scipy.stats import binomtest

    right_a, right_b = probs_a.argmax(axis=1) == y, probs_b.argmax(axis=1) == y
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return Paired(only_a, only_b, float(p))


def confusions(y: np.ndarray, probs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and row-normalised confusion matrices (rows: true class)."""
    labels = list(range(n))
    counts = confusion_matrix(y, probs.argmax(axis=1), labels=labels)
    normalised = confusion_matrix(y, probs.argmax(axis=1), labels=labels, normalize="true")
    return counts, np.nan_to_num(normalised)


def confident_mistakes(y: np.ndarray, probs: np.ndarray, files: list[str], names: list[str], k: int) -> pd.DataFrame:
    """The k wrong predictions made with the highest confidence."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]
    return pd.DataFrame({"file": [files[i] for i in order], "true": [names[y[i]] for i in order],
                         "predicted": [names[pred[i]] for i in order],
                         "confidence": probs[order, pred[order]]})
