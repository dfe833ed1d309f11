"""Reading the feature cache (data/features): the arrays the features stage wrote, memory-mapped.

Every stage after the features stage starts from here instead of the pixels; none of them runs
the frozen network (workbook.stages.features writes it). `Data` is what the
tuner and both training stages read: labels, image references and the cache; `Data.restricted`,
the same with some train images only (workbook.ml.holdout.split draws them), as row numbers into
the cache: nothing is read into memory until a batch asks for it (workbook.ml.feeds).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbook.ml.prepared import load_manifest

META = "cache.json"
POOLED = "pooled"  # the base's globally pooled output, beside the cut tensors


def fingerprint(files: list[str]) -> str:
    """Identifies the image list (order included) a cache was computed from: by the last three
    parts of each image's reference (data/prepared's split array and row, workbook.ml.prepared).
    What the images hold is dvc.yaml's to check: the features stage depends on the manifest,
    which has each image's md5."""
    return hashlib.md5("\n".join("/".join(Path(f).parts[-3:]) for f in files).encode()).hexdigest()


@dataclass
class Cache:
    """Read access to a cache folder; arrays are memory-mapped."""

    folder: Path
    meta: dict

    @classmethod
    def open(cls, folder: Path) -> "Cache":
        try:
            meta = json.loads((folder / META).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{folder}: no feature cache here; run the features stage "
                                    "(dvc repro features)") from None
        return cls(folder, meta)

    def check(self, set_name: str, files: list[str]) -> None:
        """Fail loudly when the cache was computed from other images than `files`."""
        info = self.meta["sets"].get(set_name)
        if info is None or info["fingerprint"] != fingerprint(files):
            raise ValueError(f"{self.folder}: the cached '{set_name}' set was computed from other images "
                             "than data/prepared holds now; run dvc repro to refresh it")

    def has(self, set_name: str) -> bool:
        return set_name in self.meta["sets"]

    def _load(self, set_name: str, name: str) -> np.ndarray:
        return np.load(self.folder / f"{set_name}.{name}.npy", mmap_mode="r")

    def cut(self, set_name: str) -> list[np.ndarray]:
        return [self._load(set_name, n) for n in self.meta["cut"]]

    def pooled(self, set_name: str) -> np.ndarray:
        return self._load(set_name, POOLED)

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))


@dataclass
class Data:
    """What both training stages read: labels, images (references: workbook.ml.prepared), and the
    feature cache."""

    classes: list[str]
    train_files: list[str]
    val_files: list[str]
    y_train: np.ndarray
    y_val: np.ndarray
    cache: Cache
    val_images: list[str] = field(default_factory=list)  # the val images' names (manifest `path`)
    # the cache's rows of train_files, in order (its train sets and their mirrored views); None: all
    train_rows: np.ndarray | None = None

    @classmethod
    def load(cls, paths) -> "Data":
        manifest, classes = load_manifest(paths.prepared)
        train, val = manifest[manifest.split == "train"], manifest[manifest.split == "val"]
        cache = Cache.open(paths.features)
        cache.check("train", list(train.file))
        cache.check("val", list(val.file))
        return cls(classes, list(train.file), list(val.file), train.y.to_numpy(), val.y.to_numpy(), cache,
                   list(val.path))

    @property
    def features(self) -> int:
        """Length of the cached pooled vectors (the base's output channels: 1280 for MobileNetV2)."""
        return int(self.cache.pooled("train").shape[1])

    def restricted(self, rows: np.ndarray) -> "Data":
        """This Data with train restricted to `rows` (indices into its train images): the same
        cache, read at those rows (`rows_of`); val unchanged."""
        rows = np.asarray(rows, dtype=np.int64)
        inner = rows if self.train_rows is None else self.train_rows[rows]
        return dataclasses.replace(self, train_files=[self.train_files[r] for r in rows], y_train=self.y_train[rows],
                                   train_rows=inner)

    def rows_of(self, set_name: str) -> np.ndarray | None:
        """The cache's rows of a set as this Data holds it (None: every row): train's, for "train"
        and its mirrored views."""
        return self.train_rows if set_name.startswith("train") else None

    def mirrored(self, augment: str, name: str = "train_flip"):
        if augment != "flip":
            return None
        if not self.cache.has(name):
            raise ValueError("train.augment is flip but the cache holds no mirrored views; "
                             "run dvc repro (the features stage computes them)")
        return self.cache
