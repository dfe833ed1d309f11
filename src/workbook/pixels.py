"""Reading prepared images: the data stage's packed arrays (and plain image files).

The data stage packs each split's prepared images into one array, data/prepared/<split>.npy
(uint8, n x size x size x 3; workbook.prepared): DVC then tracks a few files instead of one per
image. For Imagenette's 13,394 images, checking, copying and linking them one by one took 19 s of
DVC's own time after the data stage and 1.2 s of every no-op `dvc repro`. An image is named by
a reference, "<pack>#<row>", which read_prepared reads as it reads an image file.

Figures read images here too, so this module imports nothing else of the workbook.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
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
