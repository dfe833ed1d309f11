"""Reading the data stage's output (data/prepared): the manifest of prepared images and the
class names. Every later stage finds the images through here (and reads them with
workbook.pixels); none of them runs the data stage's code (workbook.data writes the folder).

data/prepared holds each split's images packed in one array, `<split>.npy` (uint8, one
size x size x 3 RGB square per row, in manifest order), with manifest.csv (one row per image:
its name, its `row` in its split's array, where it came from, the md5 of its pixels),
classes.txt and skipped.csv.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbook.pixels import ref


def pack_path(prepared_dir: Path, split: str) -> Path:
    """The array holding a split's prepared images."""
    return Path(prepared_dir) / f"{split}.npy"


def image_refs(prepared_dir: Path, manifest: pd.DataFrame) -> list[str]:
    """Each manifest row's image as a reference workbook.pixels.read_prepared reads."""
    return [ref(pack_path(prepared_dir, split), row) for split, row in zip(manifest.split, manifest.row)]


def load_manifest(prepared_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The prepared images (manifest rows; `file`: each image's reference) and the class names,
    in label order."""
    manifest = pd.read_csv(prepared_dir / "manifest.csv")
    classes = (prepared_dir / "classes.txt").read_text().split()
    manifest["file"] = image_refs(prepared_dir, manifest)
    manifest["y"] = manifest.label.map({c: i for i, c in enumerate(classes)})
    return manifest, classes
