"""Messy folders and killed runs: the pipeline keeps working, says what it did, loses nothing.

One pipeline run on a folder set holding every awkward case serves both checks: it is killed
mid-write (SIGKILL) during the features stage and again during quantize, and must recover
with a plain `dvc repro` each time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import copy_repo, draw, tiny_params

pytestmark = pytest.mark.slow

# file (under train/ or val/) -> the start of the reason it must be set aside with
SET_ASIDE = {
    "train/ant/cut.jpg": "truncated image data",
    "train/ant/empty.jpg": "empty file",
    "train/ant/fake.jpg": "not an image Pillow can read",
    "train/ant/notes.txt": "not an image Pillow can read",
    "train/.DS_Store": "hidden file",
    "train/README.md": "not inside a class folder",
    "val/ant/._ant_0.jpg": "hidden file",
}
# files that must be used: awkward but readable
USED = ["train/ant/print.JPG", "train/ant/palette.png", "train/ant/alpha.png", "train/ant/photo.webp",
        "train/ant/photo.bmp", "train/ant/phone.jpeg", "train/ant/huge.jpg", "train/ant/tiny.png",
        "train/ant/sub/nested.jpg"]


def make_messy_set(root: Path) -> Path:
    classes = ("ant", "bee", "cat", "dog")
    for split, n in (("train", 5), ("val", 3)):
        for c, name in enumerate(classes):
            if split == "val" and name == "dog":
                continue  # present in train, absent in val: a warning, not an error
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                draw(c, hash((split, name, i)) % 2**32, mode="L" if i == 0 else "RGB").save(folder / f"{name}_{i}.jpg")
    (root / "train" / "emu").mkdir()  # empty in train, absent in val: left out with a warning
    ant = root / "train" / "ant"
    draw(0, 1).convert("CMYK").save(ant / "print.JPG")
    draw(0, 2).convert("P").save(ant / "palette.png")
    rgba = draw(0, 3).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(ant / "alpha.png")
    draw(0, 4).save(ant / "photo.webp")
    draw(0, 5).save(ant / "photo.bmp")
    exif = Image.Exif()
    exif[0x0112] = 6
    draw(0, 6).save(ant / "phone.jpeg", exif=exif.tobytes())
    Image.fromarray(np.full((3000, 4000, 3), (200, 40, 40), np.uint8)).save(ant / "huge.jpg", quality=70)
    draw(0, 7, size=8).save(ant / "tiny.png")
    (ant / "sub").mkdir()
    draw(0, 8).save(ant / "sub" / "nested.jpg")
    whole = (root / "train" / "ant" / "ant_1.jpg").read_bytes()
    (ant / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    (ant / "empty.jpg").write_bytes(b"")
    (ant / "fake.jpg").write_text("I am text wearing a .jpg name")
    (ant / "notes.txt").write_text("collected on a sunny day")
    (root / "train" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "train" / "README.md").write_text("# my images")
    (root / "val" / "ant" / "._ant_0.jpg").write_bytes(b"\0\5\26\7")
    return root


def start_repro(repo) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(repo.root / "src")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL the whole run (DVC, papermill, the kernel) as soon as `ready()` holds."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_cache_whole_or_absent(repo) -> None:
    folder = repo.root / "data" / "features"
    if not folder.exists():
        return
    meta = json.loads((folder / "cache.json").read_text())
    for set_name, info in meta["sets"].items():
        for name, shape in meta["shapes"].items():
            assert np.load(folder / f"{set_name}.{name}.npy", mmap_mode="r").shape == (info["count"], *shape)


def assert_tflite_whole_or_absent(repo) -> None:
    from ai_edge_litert.interpreter import Interpreter

    for path in (repo.root / "models").glob("*.tflite"):
        Interpreter(model_path=str(path)).allocate_tensors()  # a truncated file would not load


def test_messy_folders_and_killed_runs(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    repo.write_params(tiny_params(make_messy_set(tmp_path / "messy")))
    repo.run("git", "commit", "-qam", "messy set")

    # killed while the feature cache is being written
    run = start_repro(repo)
    kill_when(run, lambda: any((repo.root / "data").glob(".tmp-features-*")))
    assert_cache_whole_or_absent(repo)
    repo.dvc("repro")
    assert_cache_whole_or_absent(repo)

    # killed during quantize
    repo.write_params(tiny_params(tmp_path / "messy", **{"quantize.representative_samples": 5}))
    run = start_repro(repo)
    kill_when(run, lambda: (repo.root / "reports" / ".tmp-07_quantize.ipynb").exists()
              and time.sleep(1.5) is None)
    assert_tflite_whole_or_absent(repo)
    repo.dvc("repro")
    assert_tflite_whole_or_absent(repo)
    assert "Running stage" not in repo.dvc("repro").stdout  # recovered fully: nothing left to do

    # the messy set: every unusable file set aside with its reason, every usable one used
    skipped = pd.read_csv(repo.root / "data" / "prepared" / "skipped.csv")
    got = {f"{s}/{f}": r for s, f, r in zip(skipped.split, skipped.file, skipped.reason)}
    assert set(got) == set(SET_ASIDE)
    for file, reason in SET_ASIDE.items():
        assert got[file].startswith(reason), (file, got[file])
    manifest = pd.read_csv(repo.root / "data" / "prepared" / "manifest.csv")
    sources = {f"{s}/{f}" for s, f in zip(manifest.split, manifest.source)}
    assert set(USED) <= sources
    row = manifest.set_index("source").loc
    assert row["ant/phone.jpeg"].rotated and (row["ant/huge.jpg"].width, row["ant/huge.jpg"].height) == (4000, 3000)
    assert {row[f"ant/{f}"]["mode"] for f in ("print.JPG", "palette.png", "alpha.png")} == {"CMYK", "P", "RGBA"}
    data = json.loads((repo.root / "metrics" / "data.json").read_text())
    assert any("'dog' has no val folder" in w for w in data["warnings"])
    assert any("'emu' has no readable image" in w for w in data["warnings"])
    html = (repo.root / "reports" / "01_data.html").read_text()
    for file in SET_ASIDE:
        assert file.split("/", 1)[1] in html
    assert not list(repo.root.rglob(".tmp-*")), "leftovers of the killed runs"
