"""`python -m workbook classify MODEL PATH...`: top-k labels of image files with a .tflite
classifier, each image read, converted and resized exactly as the data stage prepares images.
LiteRT only: no TensorFlow, so it starts in a second.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from workbook.ml.decode import UnreadableImage, load_rgb, to_array
from workbook.ml.litert import Classifier, ModelError
from workbook.ml.tflite_metadata import MetadataError
from workbook.ml.tflite_metadata import read as read_metadata
from workbook.pipeline.paths import LABELS_FILE


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]  # (label, probability), best first


@dataclass(frozen=True)
class Unread:
    path: Path
    reason: str


def image_files(paths: list[str | Path]) -> tuple[list[Path], list[Unread]]:
    """The files named, and every non-hidden file under the folders named (recursively, sorted)."""
    files, missing = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            files.append(p)
        else:
            missing.append(Unread(p, "no such file or folder"))
    return files, missing


def read_labels(path: Path, classes: int) -> list[str]:
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) != classes:
        raise ModelError(f"{path} holds {len(names)} labels but the model has {classes} outputs")
    return names


def class_names(clf: Classifier, labels: str | Path | None = None) -> tuple[list[str], str | None]:
    """The class names and where they come from: the labels file given, else the names inside the
    model (its TFLite metadata), else labels.txt beside it, else class numbers (source None)."""
    if labels:
        if not Path(labels).is_file():
            raise ModelError(f"{labels}: no such labels file")
        return read_labels(Path(labels), clf.classes), str(labels)
    embedded = read_metadata(clf.path)
    if embedded and embedded.labels:
        if len(embedded.labels) != clf.classes:
            raise ModelError(f"{clf.path}: its metadata names {len(embedded.labels)} classes but it has "
                             f"{clf.classes} outputs")
        return embedded.labels, "the model's metadata"
    beside = clf.path.with_name(LABELS_FILE)
    if beside.is_file():
        return read_labels(beside, clf.classes), str(beside)
    return [f"class {i}" for i in range(clf.classes)], None


def classify_files(clf: Classifier, files: list[Path], labels: list[str], top_k: int,
                   chunk: int = 32) -> tuple[list[Prediction], list[Unread]]:
    """Top-k labels of every readable file, prepared exactly as the data stage prepares images."""
    predictions, unread = [], []
    for start in range(0, len(files), chunk):
        read, images = [], []
        for f in files[start:start + chunk]:
            try:
                images.append(load_rgb(f, clf.image_size).image)
                read.append(f)
            except UnreadableImage as e:
                unread.append(Unread(f, str(e)))
        if not read:
            continue
        probs = clf.probabilities(to_array(images))
        for f, p in zip(read, probs):
            best = np.argsort(-p, kind="stable")[:top_k]
            predictions.append(Prediction(f, [(labels[i], float(p[i])) for i in best]))
    return predictions, unread


def run_classify(model: str | Path, paths: list[str | Path], top_k: int = 3, labels: str | Path | None = None,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `classify` command. Exit status: 0 if any image was classified, 1 if none, 2 for a
    model (or labels file) that cannot be used."""
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: tests and callers swap them
    try:
        clf = Classifier(model)
        names, source = class_names(clf, labels)
    except (ModelError, MetadataError) as e:
        print(f"error: {e}", file=err)
        return 2
    if source is None:
        print(f"note: {model} carries no class names and there is no {LABELS_FILE} beside it: "
              "showing class numbers", file=err)
    files, unread = image_files(paths)
    predictions, unreadable = classify_files(clf, files, names, max(1, min(top_k, clf.classes)))
    unread += unreadable
    for p in predictions:
        print(p.path, file=out)
        for label, score in p.top:
            print(f"  {score:6.3f}  {label}", file=out)
    if unread:
        print(f"could not read {len(unread)} file(s):", file=err)
        for u in unread:
            print(f"  {u.path}: {u.reason}", file=err)
    print(f"classified {len(predictions)} image(s) with {Path(model).name}; {len(unread)} not read",
          file=err)
    return 0 if predictions else 1
