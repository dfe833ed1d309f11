"""The features stage: the frozen trunk's outputs computed once per prepared image (the feature
cache, workbook.ml.extraction), so that every later stage starts from stored tensors."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.ml.extraction import write_cache
from workbook.ml.feature_cache import Cache
from workbook.ml.network import Split


@dataclass
class FeaturesResult(Summary):
    """The features stage's result; its plain fields are results/features.json."""

    template = "features.md.j2"
    images: int  # passes of the trunk: every image, plus the mirrored train images with flip
    sets: dict[str, int]  # images per cached set (train, val, train_flip)
    seconds: float
    images_per_s: float
    cache_mb: float  # on disk, MiB
    fine_tune_at: int
    base_layers: int
    dtype: str
    cut: pd.DataFrame  # the cut tensors: layer, index, shape, bytes per image

    @property
    def cut_kib(self) -> float:
        return float(self.cut["bytes per image"].sum()) / 1024

    @property
    def flip_seconds(self) -> float:
        """The share of the time spent on mirrored views (train.augment: flip)."""
        return self.seconds * self.sets.get("train_flip", 0) / max(self.images, 1)


def cut_table(split: Split, dtype: str) -> pd.DataFrame:
    itemsize = np.dtype(dtype).itemsize
    layers = [split.base.get_layer(n) for n in split.cut]
    return pd.DataFrame({"layer": split.cut, "index": [split.base.layers.index(layer) for layer in layers],
                         "shape": [str(s) for s in split.cut_shapes],
                         "bytes per image": [itemsize * int(np.prod(s)) for s in split.cut_shapes]})


def run(P, paths) -> FeaturesResult:
    """The features stage: the trunk once over every prepared image, into data/features."""
    from workbook.ml.network import build_base, split_base
    from workbook.ml.prepared import load_manifest

    base = build_base(P.data.image_size, P.model.weights, paths.root, P.model.alpha)
    split = split_base(base, P.finetune.fine_tune_at)
    manifest, _ = load_manifest(paths.prepared)
    sets = {s: list(manifest[manifest.split == s].file) for s in ("train", "val")}
    start = time.perf_counter()
    meta = write_cache(split, sets, paths.features, P.features.batch_size, P.features.dtype,
                       flip=P.train.augment == "flip")
    seconds = time.perf_counter() - start
    counts = {k: v["count"] for k, v in meta["sets"].items()}
    result = FeaturesResult(images=sum(counts.values()), sets=counts, seconds=round(seconds, 1),
                            images_per_s=round(sum(counts.values()) / seconds, 1),
                            cache_mb=round(Cache.open(paths.features).nbytes / 2**20, 1),
                            fine_tune_at=split.fine_tune_at, base_layers=len(base.layers),
                            dtype=P.features.dtype, cut=cut_table(split, P.features.dtype))
    write_details(paths.details("features"), result)
    return result
