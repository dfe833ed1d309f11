"""Shared fixtures: tiny folder sets built on the fly and throwaway copies of the repository.

Nothing here needs the network or ../shared: images are drawn, weights are random.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from workbook.tools.bench import copy_project

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_collection_modifyitems(items) -> None:
    """The scopes that run a tiny study (marked slow) first: pytest-xdist hands each module or class
    to a worker in this order (pyproject turns its reordering off), so that no study starts last
    while the other worker idles."""
    scope = lambda item: item.nodeid.rsplit("::", 1)[0]  # xdist's loadscope unit
    slow = {scope(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: scope(item) not in slow)


def draw(label: int, seed: int, size: int = 40, mode: str = "RGB") -> Image.Image:
    """A picture a small network can tell apart by class: a class-coloured bar on noise."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    colour = np.array([(255, 40, 40), (40, 220, 40), (40, 40, 255), (230, 230, 40)][label % 4], np.uint8)
    w = max(2, size // 4)
    if label % 2:
        a[:, (label * w) % (size - w):(label * w) % (size - w) + w] = colour
    else:
        a[(label * w) % (size - w):(label * w) % (size - w) + w, :] = colour
    return Image.fromarray(a).convert(mode)


def make_folder_set(root: Path, classes=("ant", "bee", "cat"), train: int = 6, val: int = 3,
                    grayscale: int = 1, corrupt: bool = True) -> Path:
    """train/<class>/ and val/<class>/ of drawn JPEGs; some grayscale; one corrupt file in val."""
    for split, n in (("train", train), ("val", val)):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                mode = "L" if i < grayscale else "RGB"
                draw(c, zlib.crc32(f"{split}/{name}/{i}".encode()), mode=mode).save(folder / f"{name}_{i}.jpg")
    if corrupt:
        (root / "val" / classes[0] / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


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
                draw(c, zlib.crc32(f"{split}/{name}/{i}".encode()), mode="L" if i == 0 else "RGB").save(folder / f"{name}_{i}.jpg")
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


@pytest.fixture
def folder_set(tmp_path) -> Path:
    return make_folder_set(tmp_path / "images")


def tiny_params(source: Path, **changes) -> dict:
    """params.yaml for a run of seconds: random weights, 32 px, few trials and epochs."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(source=str(source), checksum=None, image_size=32)
    params["model"]["weights"] = "none"
    params["features"]["batch_size"] = 16
    params["tune"].update(trials=2, epochs=1, holdout=0.25)
    params["train"].update(epochs=1, batch_size=8)
    params["finetune"]["epochs"] = 1
    params["control"].update(epochs=1, image_size=32, width=4, batch_size=8)
    params["evaluate"]["baseline_weights"] = "none"
    params["quantize"].update(representative_samples=4, latency_runs=3, max_threads=2)
    for dotted, value in changes.items():
        group, _, key = dotted.rpartition(".")
        (params[group] if group else params)[key] = value
    return params


class Repo:
    """A throwaway copy of the repository, as a fresh clone would have it, to run DVC in."""

    def __init__(self, root: Path):
        self.root = root

    def write_params(self, params: dict) -> None:
        (self.root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def env(self) -> dict:
        """The environment commands run in: this copy's src/ first, this Python's tools on PATH."""
        env = {**os.environ, "PYTHONPATH": str(self.root / "src")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        return env

    def run(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(args, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return proc

    def dvc(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(sys.executable, "-m", "dvc", *args, **kwargs)


def copy_repo(dest: Path) -> Repo:
    """A fresh-clone-like copy of the repository (git + DVC initialised, one commit)."""
    return Repo(copy_project(REPO, dest))


@pytest.fixture
def repo_copy(tmp_path) -> Repo:
    return copy_repo(tmp_path / "repo")
