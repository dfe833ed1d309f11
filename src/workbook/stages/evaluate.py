"""The evaluate stage: the fine-tuned model against the head it started from, the no-training
ImageNet baseline and the from-scratch control, on every val image, and which of them ships.

Predictions come from the feature cache. The no-training baseline is the pretrained ImageNet
classifier (GlobalAveragePooling -> Dense(1000)) with its outputs restricted to the N classes.
When its trunk is the very base the cache was computed with (checked weight by weight), its
logits are the cached pooled features times its Dense weights; otherwise its whole network
runs over the val images.

The evaluate stage's notebook calls the steps one by one: `inputs`, `predict` (each model's
probabilities for every val image), `save` (the scores); `run` composes the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.analysis.scoring import confident_mistakes, confusions, largest_confusions, scores
from workbook.analysis.stats import Accuracy, Paired, paired
from workbook.ml import imagenet_classes as imagenet
from workbook.ml.feature_cache import Data
from workbook.ml.network import build_base, load_model
from workbook.ml.predict import finetuned_probs, head_probs, saved_probs, softmax
from workbook.pipeline.atomic import write_csv


@dataclass
class Baseline:
    probs: np.ndarray | None  # over the N classes; None when the baseline cannot apply
    note: str  # how it was computed, or why it was skipped


def same_trunk(a: keras.Model, b: keras.Model) -> bool:
    """True when every weight of base `a` equals the weight in the same place of model `b` (its
    layers in the same order, a classifier on top: layer names differ between builds)."""
    if len(b.layers) < len(a.layers):
        return False
    for mine, theirs in zip(a.layers, b.layers):
        x, y = mine.get_weights(), theirs.get_weights()
        if len(x) != len(y) or not all(u.shape == v.shape and np.array_equal(u, v) for u, v in zip(x, y)):
            return False
    return True


def _dense_top(full: keras.Model) -> keras.layers.Dense | None:
    """The with-top network's classifier where it is one Dense layer on the pooled features
    (MobileNetV2, EfficientNet, InceptionV3); None where it is more (MobileNetV3's convolutions)."""
    try:
        top = full.get_layer("predictions")
    except ValueError:
        return None
    return top if isinstance(top, keras.layers.Dense) else None


def baseline(weights: str, model_weights: str, image_size: int, classes: list[str], root: Path,
             pooled_val: np.ndarray, val_files: list[str], alpha: float = 1.0,
             backbone: str = "mobilenet_v2") -> Baseline:
    """The pretrained ImageNet classifier restricted to the N classes, with no training at all."""
    if weights == "none":
        return Baseline(None, "skipped: evaluate.baseline_weights is none")
    idx = imagenet.indices(classes)
    if idx is None:
        unknown = [c for c in classes if c not in imagenet.wnid_index()][:3]
        return Baseline(None, f"skipped: the classes are not ImageNet wnids (e.g. {', '.join(unknown)}), "
                              "so the ImageNet classifier has no output for them")
    try:
        full = build_base(image_size, weights, root, alpha, backbone, include_top=True)
    except Exception as e:  # no network for "imagenet", or a file that does not fit
        return Baseline(None, f"skipped: the with-top weights could not be loaded ({e})")
    dense = _dense_top(full)
    restricted = f"outputs restricted to the {len(idx)} classes"
    if dense is not None and same_trunk(build_base(image_size, model_weights, root, alpha, backbone), full):
        kernel, bias = dense.get_weights()
        return Baseline(softmax(pooled_val @ kernel[:, idx] + bias[idx]),
                        "computed from the cached pooled features times the classifier's Dense weights (its trunk "
                        f"is the base the cache was computed with, checked weight by weight); {restricted}")
    from workbook.ml.feeds import ImageBatches, predict
    from workbook.ml.network import preprocessing

    pixels = keras.Input((image_size, image_size, 3))
    scores = predict(keras.Model(pixels, full(preprocessing(backbone)(pixels))),
                     ImageBatches(val_files, np.zeros(len(val_files), int), 128, 0, shuffle=False), "baseline over val")
    probs = scores[:, idx] / scores[:, idx].sum(axis=1, keepdims=True)  # its softmax over the N classes alone
    why = "its trunk differs from model.weights" if dense is not None else "its classifier is more than one layer"
    return Baseline(probs, f"computed from its whole network over every val image ({why}); {restricted}")


# ---------------------------------------------------------------------------------------------
# the evaluate stage



@dataclass
class EvaluateResult(Summary):
    """The evaluate stage's result; its plain fields are results/evaluate.json."""

    template = "evaluate.md.j2"
    accuracy: Accuracy  # the fine-tuned model, with its 95% interval
    head: Accuracy  # the head on the frozen base, before fine-tuning
    control: Accuracy  # the small CNN from scratch (control stage)
    vs_control: Paired  # fine-tuned (a) against the control (b), image by image
    vs_head: Paired  # fine-tuned (a) against the head before it (b)
    shipped: str  # "fine-tuned" or "head": chosen by the finetune stage on a hold-out of the drawn train images
    ship_reason: str
    seconds_per_epoch: dict[str, float]  # training time per epoch: head, fine-tuning, control
    baseline: Accuracy | None  # the no-training ImageNet classifier; None when it cannot apply
    baseline_note: str  # how the baseline was computed, or why it was skipped
    vs_baseline: Paired | None  # fine-tuned (a) against the baseline (b), image by image
    macro_f1: float
    imagenet_val: dict[str, Accuracy]  # each model on the val images from ImageNet's own val split
    val_seen_in_pretraining: int  # val images named as ImageNet train images
    train_images: int
    fine_tune_at: int
    layers_fine_tuned: int
    names: list[str]  # readable class names, in class order
    comparison: pd.DataFrame  # one row per model
    per_class: pd.DataFrame  # precision, recall, F1, support (fine-tuned), the worst classes first
    confusion: np.ndarray  # counts, rows true class (fine-tuned)
    confusion_normalised: np.ndarray
    confused: pd.DataFrame  # the most frequent mistakes: true class, taken for, images, share
    mistakes: pd.DataFrame  # the most confident wrong predictions

    @property
    def val_images(self) -> int:
        return self.accuracy.images


def _comparison(y: np.ndarray, probs: dict[str, np.ndarray], names: list[str], held_out: np.ndarray):
    rows, subset = [], {}
    for name, p in probs.items():
        overall, _ = scores(y, p, names)
        acc = Accuracy.of_predictions(y, p.argmax(axis=1))
        subset[name] = Accuracy.of_predictions(y[held_out], p[held_out].argmax(axis=1))
        rows.append({"model": name, "accuracy": acc.value, "95% CI low": acc.low, "95% CI high": acc.high,
                     "errors": acc.images - acc.right, "macro F1": overall["macro_f1"],
                     f"accuracy on the {int(held_out.sum())} ImageNet-val images": subset[name].value})
    return pd.DataFrame(rows), subset


def log_confusion(folder: Path, y: np.ndarray, predicted: np.ndarray, names: list[str]) -> None:
    """The confusion matrix for `dvc plots` (DVCLive's sklearn plot: one actual/predicted row per image)."""
    from workbook.pipeline.live import live

    with live(folder) as logger:
        logger.log_sklearn_plot("confusion_matrix", [names[i] for i in y], [names[i] for i in predicted],
                              name="confusion_matrix.json")


@dataclass
class Inputs:
    """What the evaluation reads: the cache, the val images' rows, and the two trained models."""

    data: Data  # labels, image references and the feature cache
    val: pd.DataFrame  # the manifest's val rows, in cache order (origin: ImageNet train or val)
    names: list[str]  # readable class names, in class order
    model: keras.Model  # the fine-tuned classifier (models/finetuned.keras)
    head: keras.Model  # the head before fine-tuning (models/head.keras)
    root: Path
    finetune: dict  # results/finetune.json: which model ships and why
    epochs: dict[str, float]  # seconds per epoch of each trained model (results/{train,finetune,control}.json)
    control: Path  # the control's val probabilities (results/control_val.npy)

    def __repr__(self) -> str:
        return (f"{len(self.val):,} val images of {len(self.names)} classes ({', '.join(self.names[:5])}"
                f"{', ...' if len(self.names) > 5 else ''}); models {self.model.name} and {self.head.name}")


def inputs(P, paths) -> Inputs:
    """The feature cache, the val images' manifest rows and the two trained models."""
    d = Data.load(paths)
    manifest = pd.read_csv(paths.manifest)
    val = manifest[manifest.split == "val"].reset_index(drop=True)
    names = list(imagenet.display_names(d.classes).values())
    details = {s: json.loads(paths.details(s).read_text()) for s in ("train", "finetune", "control")}
    epochs = {"head": details["train"]["seconds_per_epoch"], "fine-tuning": details["finetune"]["seconds_per_epoch"],
              "from scratch": details["control"]["seconds_per_epoch"]}
    return Inputs(d, val, names, load_model(paths.finetuned), load_model(paths.head_model), paths.root,
                  details["finetune"], epochs, paths.control_predictions)


@dataclass
class Predictions:
    """Each model's class probabilities for every val image."""

    probs: dict[str, np.ndarray]  # model ("fine-tuned", "head only", "no-training baseline", "from scratch") -> [val images, classes]
    baseline_note: str  # how the baseline was computed, or why it was skipped
    y: np.ndarray  # the true classes
    names: list[str]

    def table(self) -> pd.DataFrame:
        """One row per val image: its class, and each model's top class with its probability."""
        frame = pd.DataFrame({"class": [self.names[i] for i in self.y]})
        for model, p in self.probs.items():
            frame[model] = [f"{self.names[c]} ({q:.2f})" for c, q in zip(p.argmax(axis=1), p.max(axis=1))]
        return frame


def predict(P, given: Inputs) -> Predictions:
    """Every val image through the fine-tuned model and the head (from the cache), and through the
    no-training baseline where it applies; the control's, as the control stage saved them."""
    d, pooled = given.data, given.data.cache.pooled("val")
    probs = {"fine-tuned": finetuned_probs(given.model, d, P.finetune.fine_tune_at),
             "head only": head_probs(given.head, d)}
    found = baseline(P.evaluate.baseline_weights, P.model.weights, P.data.image_size, d.classes,
                     given.root, pooled, d.val_files, P.model.alpha, P.model.backbone)
    if found.probs is not None:
        probs["no-training baseline"] = found.probs
    probs["from scratch"] = saved_probs(given.control, len(d.y_val), "control")
    return Predictions(probs, found.note, d.y_val, given.names)


def save(P, paths, given: Inputs, predictions: Predictions) -> EvaluateResult:
    """Accuracies with intervals, the paired test, per-class scores, confusions and mistakes;
    results/evaluate.json, the per-class table and the confusion matrix for `dvc plots`."""
    d, val, names, probs = given.data, given.val, given.names, predictions.probs
    baseline_probs, control_probs = probs.get("no-training baseline"), probs["from scratch"]
    y, held_out = d.y_val, (val.origin == "ImageNet val").to_numpy()
    comparison, subset = _comparison(y, probs, names, held_out)
    overall, per_class = scores(y, probs["fine-tuned"], names)
    counts, normalised = confusions(y, probs["fine-tuned"], len(names))
    predicted = probs["fine-tuned"].argmax(axis=1)
    result = EvaluateResult(
        accuracy=Accuracy.of_predictions(y, predicted),
        head=Accuracy.of_predictions(y, probs["head only"].argmax(axis=1)),
        control=Accuracy.of_predictions(y, control_probs.argmax(axis=1)),
        vs_control=paired(y, predicted, control_probs.argmax(axis=1)),
        vs_head=paired(y, predicted, probs["head only"].argmax(axis=1)),
        shipped=given.finetune["shipped"], ship_reason=given.finetune["ship_reason"],
        seconds_per_epoch=given.epochs,
        baseline=Accuracy.of_predictions(y, baseline_probs.argmax(axis=1)) if baseline_probs is not None else None,
        baseline_note=predictions.baseline_note,
        vs_baseline=paired(y, predicted, baseline_probs.argmax(axis=1)) if baseline_probs is not None else None,
        macro_f1=overall["macro_f1"], imagenet_val=subset,
        val_seen_in_pretraining=int((val.origin == "ImageNet train").sum()), train_images=given.finetune["train_images"],
        fine_tune_at=given.finetune["fine_tune_at"], layers_fine_tuned=given.finetune["layers_trained"], names=names, comparison=comparison,
        per_class=per_class, confusion=counts, confusion_normalised=normalised,
        confused=largest_confusions(counts, names),
        mistakes=confident_mistakes(y, probs["fine-tuned"], d.val_files, names, P.evaluate.mistakes,
                                    images=d.val_images))
    write_details(paths.details("evaluate"), result)
    write_csv(paths.table("eval_per_class"), per_class)
    log_confusion(paths.live("evaluate"), y, predicted, names)
    return result


def run(P, paths) -> EvaluateResult:
    """The stage's steps in order: every val image through the fine-tuned model, the head and the
    baseline, then scored."""
    given = inputs(P, paths)
    return save(P, paths, given, predict(P, given))
