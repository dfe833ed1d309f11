"""Reading the feature cache (data/features): the arrays the features stage wrote, memory-mapped.

Every stage after the features stage starts from here instead of the pixels; none of them runs
the frozen network (workbook.features writes the cache).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

META = "cache.json"
POOLED = "pooled"  # the base's globally pooled output (1280 values at alpha <= 1), beside the cut tensors


def fingerprint(files: list[str]) -> str:
    """Identifies the image list (order included) a cache was computed from: by the last three
    parts of each image's reference (data/prepared's split array and row, workbook.prepared).
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
        return np.asarray(self._load(set_name, POOLED))

    @property
    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("*.npy"))
