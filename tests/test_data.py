"""The data stage: sources, checksums, the folder-set rules, and nothing lost or modified."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SET_ASIDE, USED, draw, make_messy_set

from workbook.pipeline.params import read_pin
from workbook.stages import data
from workbook.stages.data import Candidate, DataError


def tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_prepare(tmp_path, source, checksum=None, size=24):
    root = tmp_path / "repo"
    root.mkdir(exist_ok=True)
    return data.prepare(str(source), checksum, size, root, root / "data.dvc", root / "data" / "prepared")


def test_prepare_converts_sets_aside_and_leaves_the_source_alone(tmp_path, folder_set):
    before = tree_digest(folder_set)
    prep = run_prepare(tmp_path, folder_set)
    assert tree_digest(folder_set) == before
    m = prep.manifest
    assert prep.classes == ["ant", "bee", "cat"]
    assert (m.split == "train").sum() == 18 and (m.split == "val").sum() == 9
    assert m.converted.sum() == 6 and set(m[m.converted]["mode"]) == {"L"}
    assert prep.skipped[["split", "label", "file"]].to_dict("records") == [
        {"split": "val", "label": "ant", "file": "ant/broken.jpg"}]
    assert prep.skipped.reason[0].startswith("truncated image data")
    out = tmp_path / "repo" / "data" / "prepared"
    assert pd.read_csv(out / "skipped.csv").file.tolist() == ["ant/broken.jpg"]
    assert (out / "classes.txt").read_text().split() == ["ant", "bee", "cat"]
    for split, n in (("train", 18), ("val", 9)):  # each split's images packed in manifest order
        pack = np.load(out / f"{split}.npy")
        rows = m[m.split == split]
        assert pack.shape == (n, 24, 24, 3) and pack.dtype == np.uint8 and list(rows.row) == list(range(n))
        assert [hashlib.md5(p.tobytes()).hexdigest() for p in pack] == list(rows.md5)
    assert sorted(p.name for p in out.iterdir()) == ["classes.txt", "manifest.csv", "skipped.csv", "train.npy", "val.npy"]


def test_archive_sources_are_extracted_and_checked(tmp_path, folder_set):
    archive = tmp_path / "set.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(folder_set, arcname="wrapped")
    good = "md5:" + hashlib.md5(archive.read_bytes()).hexdigest()
    assert len(run_prepare(tmp_path, archive, good).manifest) == 27
    with pytest.raises(DataError, match="expected"):
        run_prepare(tmp_path, archive, "md5:" + "0" * 32)


def test_a_broken_archive_is_never_extracted(tmp_path, folder_set):
    archive = tmp_path / "set.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(folder_set, arcname="wrapped")
    blob = archive.read_bytes()
    archive.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="not a readable archive"):
        run_prepare(tmp_path, archive)
    leftovers = [p for p in (tmp_path / "repo" / "data").iterdir()]
    assert leftovers == []  # no extraction folder, no prepared folder


def test_scan_sets_aside_hidden_and_stray_files_and_walks_nested_folders(tmp_path, folder_set):
    (folder_set / "train" / ".DS_Store").write_bytes(b"\0")
    (folder_set / "train" / "README.txt").write_text("about")
    (folder_set / "train" / "ant" / "._ant_0.jpg").write_bytes(b"\0")
    (folder_set / "train" / "__MACOSX").mkdir()
    (folder_set / "train" / "__MACOSX" / "junk").write_bytes(b"\0")
    nested = folder_set / "train" / "bee" / "more"
    nested.mkdir()
    draw(1, 7).save(nested / "deep.jpg")
    found = data.scan(folder_set)
    reasons = {(s["split"], s["file"]): s["reason"] for s in found.skipped}
    assert reasons == {("train", ".DS_Store"): "hidden file", ("train", "README.txt"): "not inside a class folder",
                       ("train", "ant/._ant_0.jpg"): "hidden file", ("train", "__MACOSX/junk"): "inside a hidden folder"}
    assert any(c.rel == "bee/more/deep.jpg" for c in found.candidates)


def test_output_names_flatten_nested_paths_and_keep_colliding_names_apart(tmp_path):
    cands = [Candidate("train", "a", tmp_path / x, f"a/{x}") for x in ("x.jpg", "x.PNG", "sub/y.jpeg")]
    assert data.output_names(cands) == ["train/a/x_jpg", "train/a/x_png", "train/a/sub__y"]


def manifest(rows):
    return pd.DataFrame(rows, columns=["split", "label"])


def test_class_rules():
    folders = {"train": ["a", "b", "c"], "val": ["a", "b"]}
    rows = [("train", "a"), ("train", "b"), ("train", "c"), ("val", "a"), ("val", "b")]
    classes, warnings = data.check_classes(manifest(rows), folders)
    assert classes == ["a", "b", "c"] and warnings == ["class 'c' has no val folder: it is trained but cannot be evaluated"]
    with pytest.raises(DataError, match="class 'd' has 1 val images but no readable train image"):
        data.check_classes(manifest(rows + [("val", "d")]), {"train": ["a", "b", "c"], "val": ["a", "b", "d"]})
    with pytest.raises(DataError, match="a classifier needs at least 2"):
        data.check_classes(manifest([("train", "a"), ("val", "a")]), {"train": ["a"], "val": ["a"]})
    with pytest.raises(DataError, match="val holds no readable image"):
        data.check_classes(manifest([("train", "a"), ("train", "b")]), {"train": ["a", "b"], "val": []})
    classes, warnings = data.check_classes(manifest(rows), {"train": ["a", "b", "c", "e"], "val": ["a", "b"]})
    assert "e" not in classes and any("'e' has no readable image in train: left out" in w for w in warnings)


def test_missing_split_folders_are_a_clear_error(tmp_path):
    (tmp_path / "set" / "training").mkdir(parents=True)
    with pytest.raises(DataError, match="no folder with train/ and val/"):
        run_prepare(tmp_path, tmp_path / "set")


def test_origin_of_imagenet_file_names():
    assert data.origin("ILSVRC2012_val_00000293.JPEG") == "ImageNet val"
    assert data.origin("n01440764_123.JPEG") == "ImageNet train"
    assert data.origin("holiday.jpg") == "other"


def test_pin_is_read_from_data_dvc(tmp_path):
    pin = read_pin(Path(__file__).resolve().parents[1] / "data.dvc")
    assert pin.url.endswith("imagenette2-160.tgz") and pin.checksum == "md5:e793b78cc4c9e9a4ccc0c1155377a412"
    assert data.expected_checksum(pin.path, None, pin, tmp_path) == pin.checksum
    assert data.expected_checksum(str(tmp_path / pin.path), None, pin, tmp_path) == pin.checksum
    assert data.expected_checksum("other.tgz", None, pin, tmp_path) is None
    assert data.expected_checksum(pin.path, "sha256:" + "a" * 64, pin, tmp_path) == "sha256:" + "a" * 64


def test_messy_folder_set_end_to_end(tmp_path):
    """Every awkward case at once: each unusable file set aside with its reason, every readable one used."""
    prep = run_prepare(tmp_path, make_messy_set(tmp_path / "messy"))
    got = {f"{s}/{f}": r for s, f, r in zip(prep.skipped.split, prep.skipped.file, prep.skipped.reason)}
    assert set(got) == set(SET_ASIDE) and all(got[f].startswith(r) for f, r in SET_ASIDE.items())
    assert set(USED) <= {f"{s}/{f}" for s, f in zip(prep.manifest.split, prep.manifest.source)}
    assert prep.classes == ["ant", "bee", "cat", "dog"]
    assert any("'dog' has no val folder" in w for w in prep.warnings)
