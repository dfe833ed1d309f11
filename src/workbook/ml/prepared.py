"""The data stage's output (data/prepared), as every later stage reads it: the manifest of
prepared images, the class names, and the images themselves.

data/prepared holds each split's images packed in one array, `<split>.npy` (uint8, one
size x size x 3 RGB square per row, in manifest order; DVC then tracks a few files instead of
one per image), with manifest.csv (one row per image: its name, its `row` in its split's array,
where it came from, the md5 of its pixels), classes.txt and skipped.csv. An image is named by a
reference, "<pack>#<row>", which read_prepared reads as it reads an image file. None of the
readers runs the data stage's code (workbook.stages.data writes the folder); figures read images
here too, so this module imports nothing else of the workbook.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

REF = "#"


def ref(pack: str | Path, row: int) -> str:
    """The reference of row `row` of a packed split (what the manifest's `file` column holds)."""
    return f"{pack}{REF}{int(row)}"


@functools.lru_cache(maxsize=4)  # the two splits, and a version being replaced
def _pack(path: str, version: tuple[int, int, int]) -> np.ndarray:
    """A pack, memory-mapped once per version of the file (inode, size, mtime): the data stage
    renames a new file into place, so a re-run is read anew."""
    return np.load(path, mmap_mode="r")


def _pack_row(reference: str | Path) -> tuple[str, int] | None:
    pack, sep, row = str(reference).rpartition(REF)
    return (pack, int(row)) if sep and row.isdigit() and pack.endswith(".npy") else None


def read_prepared(images: list[str | Path]) -> np.ndarray:
    """Prepared images (RGB squares) as one uint8 array: references into a packed split (`ref`),
    read from its memory-mapped array, or image files, decoded."""
    out = []
    for image in images:
        packed = _pack_row(image)
        if packed is None:
            with Image.open(image) as im:
                out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            continue
        pack, row = packed
        try:
            st = Path(pack).stat()
            array = _pack(pack, (st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError as e:
            raise FileNotFoundError(f"{pack}: cannot read the prepared images ({e}); run the data stage "
                                    "(dvc repro)") from None
        if row >= len(array):
            raise IndexError(f"{image}: {pack} holds {len(array)} images; the manifest does not match it "
                             "(run the data stage again: dvc repro -f data)")
        out.append(np.asarray(array[row]))
    return np.stack(out)



def pack_path(prepared_dir: Path, split: str) -> Path:
    """The array holding a split's prepared images."""
    return Path(prepared_dir) / f"{split}.npy"


def image_refs(prepared_dir: Path, manifest: pd.DataFrame) -> list[str]:
    """Each manifest row's image as a reference workbook.ml.prepared.read_prepared reads."""
    return [ref(pack_path(prepared_dir, split), row) for split, row in zip(manifest.split, manifest.row)]


def load_manifest(prepared_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The prepared images (manifest rows; `file`: each image's reference) and the class names,
    in label order."""
    manifest = pd.read_csv(prepared_dir / "manifest.csv")
    classes = (prepared_dir / "classes.txt").read_text().split()
    manifest["file"] = image_refs(prepared_dir, manifest)
    manifest["y"] = manifest.label.map({c: i for i, c in enumerate(classes)})
    return manifest, classes
