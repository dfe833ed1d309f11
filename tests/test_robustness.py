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

from conftest import SET_ASIDE, USED, copy_repo, make_messy_set, tiny_params

pytestmark = pytest.mark.slow

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
    data = json.loads((repo.root / "results" / "data.json").read_text())
    assert any("'dog' has no val folder" in w for w in data["warnings"])
    assert any("'emu' has no readable image" in w for w in data["warnings"])
    html = (repo.root / "reports" / "01_data.html").read_text()
    for file in SET_ASIDE:
        assert file.split("/", 1)[1] in html
    assert not list(repo.root.rglob(".tmp-*")), "leftovers of the killed runs"
