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


@dataclass(repr=False)
class Cut:
    """The base, cut at fine_tune_at, and the images the trunk below the cut will run over."""

    split: Split  # the base, its trunk (frozen: run here, once) and its top (fine-tuned later)
    sets: dict[str, list[str]]  # the prepared images of each split
    dtype: str  # how the cut tensors are stored

    def tensors(self) -> pd.DataFrame:
        """The tensors that cross the cut: the layer writing each, its shape, its bytes per image."""
        return cut_table(self.split, self.dtype)

    def __repr__(self) -> str:
        base = self.split.base
        return (f"{base.name}: {len(base.layers)} layers, frozen below {self.split.fine_tune_at}; "
                f"{len(self.split.cut)} tensors cross the cut ({self.tensors()['bytes per image'].sum() / 1024:.1f} KiB "
                f"per image as {self.dtype}); " + ", ".join(f"{len(f):,} {s} images" for s, f in self.sets.items()))


def cut(P, paths) -> Cut:
    """Step 1: the pretrained base (model.weights) cut at finetune.fine_tune_at, and the images."""
    from workbook.ml.network import pretrained, split_base
    from workbook.ml.prepared import load_manifest

    base = pretrained(P, paths.root)
    manifest, _ = load_manifest(paths.prepared)
    return Cut(split_base(base, P.finetune.fine_tune_at), {s: list(manifest[manifest.split == s].file)
                                                            for s in ("train", "val")}, P.features.dtype)


@dataclass
class Computed:
    cache: Cache  # what was written, memory-mapped
    seconds: float


def compute(P, paths, c: Cut) -> Computed:
    """Step 2: the trunk once over every image (and every train image mirrored, with
    train.augment flip), into data/features, written whole or not at all."""
    start = time.perf_counter()
    write_cache(c.split, c.sets, paths.features, P.features.batch_size, c.dtype, flip=P.train.augment == "flip")
    return Computed(Cache.open(paths.features), time.perf_counter() - start)


def arrays(cache: Cache) -> pd.DataFrame:
    """Every array of the cache: its set, what it holds, its shape and type, its size on disk."""
    rows = []
    for f in sorted(cache.folder.glob("*.npy")):
        a = np.load(f, mmap_mode="r")
        set_name, name = f.stem.split(".", 1)
        rows.append({"file": f.name, "set": set_name, "tensor": name, "shape": str(a.shape), "dtype": str(a.dtype),
                     "MiB": round(f.stat().st_size / 2**20, 1)})
    return pd.DataFrame(rows).set_index("file")


def save(P, paths, c: Cut, computed: Computed) -> FeaturesResult:
    """Step 3: what was computed and what it costs, results/features.json."""
    counts = {k: v["count"] for k, v in computed.cache.meta["sets"].items()}
    result = FeaturesResult(images=sum(counts.values()), sets=counts, seconds=round(computed.seconds, 1),
                            images_per_s=round(sum(counts.values()) / computed.seconds, 1),
                            cache_mb=round(computed.cache.nbytes / 2**20, 1), fine_tune_at=c.split.fine_tune_at,
                            base_layers=len(c.split.base.layers), dtype=c.dtype, cut=c.tensors())
    write_details(paths.details("features"), result)
    return result


def run(P, paths) -> FeaturesResult:
    """The features stage's steps in order: the cut, the trunk once over every prepared image into
    data/features, described."""
    c = cut(P, paths)
    return save(P, paths, c, compute(P, paths, c))
