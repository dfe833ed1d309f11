"""Reading prepared images: rows of a packed split by reference, or image files."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from workbook.ml.prepared import read_prepared, ref


def test_references_read_their_rows_and_files_read_as_before(tmp_path):
    pack = np.random.default_rng(0).integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "val.npy", pack)
    Image.fromarray(pack[1]).save(tmp_path / "one.png")
    got = read_prepared([ref(tmp_path / "val.npy", 3), tmp_path / "one.png", ref(tmp_path / "val.npy", 0)])
    assert got.dtype == np.uint8 and np.array_equal(got, pack[[3, 1, 0]])


def test_a_pack_renamed_into_place_is_read_anew(tmp_path):
    """As the data stage replaces data/prepared: new files renamed over the old ones."""
    np.save(tmp_path / "train.npy", np.zeros((2, 4, 4, 3), np.uint8))
    assert read_prepared([ref(tmp_path / "train.npy", 1)]).max() == 0
    np.save(tmp_path / "new.npy", np.full((3, 4, 4, 3), 7, np.uint8))
    os.replace(tmp_path / "new.npy", tmp_path / "train.npy")
    assert read_prepared([ref(tmp_path / "train.npy", 2)]).max() == 7


def test_a_missing_pack_or_row_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"val\.npy.*dvc repro"):
        read_prepared([ref(tmp_path / "val.npy", 0)])
    np.save(tmp_path / "val.npy", np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(IndexError, match=r"holds 2 images.*dvc repro -f data"):
        read_prepared([ref(tmp_path / "val.npy", 2)])
