"""Scaling out through existing engines, each run here on one CPU: MirroredStrategy over two
logical CPU devices, Keras Tuner's chief and workers on 127.0.0.1, DVC's experiment queue."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_repo, make_folder_set, tiny_params

# Logical devices must be set before TensorFlow initialises its own, so this runs in a fresh
# process: the CPU split in two, then the head and the fine-tuning trained once on one device
# and once mirrored on both, from the same seed and the same cached (random) features.
MIRRORED_RUN = textwrap.dedent('''
    import dataclasses, json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import numpy as np
    from workbook.ml.network import build_base, build_head, split_base
    from workbook.pipeline.params import load_params
    from workbook.ml.feature_cache import Data
    from workbook.ml.fine_tuning import fine_tune
    from workbook.ml.head_training import train_head

    P = load_params(sys.argv[1])
    P = dataclasses.replace(P, train=dataclasses.replace(P.train, augment="none", dropout=0.0))
    rng = np.random.default_rng(0)
    cut_shapes = split_base(build_base(32, "none"), P.finetune.fine_tune_at).cut_shapes
    arrays = {s: ([rng.normal(size=(n, *c)).astype("float32") for c in cut_shapes],
                  rng.normal(size=(n, 1280)).astype("float32")) for s, n in (("train", 48), ("val", 24))}

    class RandomCache:  # what the training stages read from cache.Cache
        def has(self, name): return name in arrays
        def cut(self, name): return arrays[name][0]
        def pooled(self, name): return arrays[name][1]

    d = Data(["a", "b", "c"], [], [], rng.integers(0, 3, 48), rng.integers(0, 3, 24), RandomCache())
    start_head = build_head(3, P.train.dense_units, 0.0, P.seed).get_weights()

    def largest_difference(a, b):
        return max(float(np.abs(u - v).max()) for u, v in zip(a, b))

    out, weights = {}, {}
    for mode in ("none", "mirrored"):
        Pm = dataclasses.replace(P, train=dataclasses.replace(P.train, distribute=mode))
        head = train_head(Pm, d, 1e-2)
        head_weights = head.model.get_weights()
        base = build_base(32, "none")
        start_base = base.get_weights()
        tuned = fine_tune(Pm, d, base, head.model, 1e-3)
        weights[mode] = head_weights + tuned.model.get_weights()
        out[mode] = {"replicas": [head.replicas, tuned.replicas],
                     "losses": head.curves.loss.tolist() + tuned.curves.loss.tolist(),
                     "head_change": largest_difference(head_weights, start_head),
                     "base_change": largest_difference(base.get_weights(), start_base)}
    out["mirrored_vs_none"] = largest_difference(weights["none"], weights["mirrored"])
    print("RESULT " + json.dumps(out))
''')


def test_mirrored_trains_with_two_replicas(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_params(tmp_path)))
    proc = subprocess.run([sys.executable, "-c", MIRRORED_RUN, str(params)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert out["none"]["replicas"] == [1, 1]
    assert out["mirrored"]["replicas"] == [2, 2]
    for mode in ("none", "mirrored"):
        assert np.isfinite(out[mode]["losses"]).all()
        assert out[mode]["head_change"] > 1e-3, "head training left the head as it was"
        assert out[mode]["base_change"] > 1e-6, "fine-tuning left the base as it was"
    # Each replica takes half of every global batch of 8; their summed gradients are those of
    # the whole batch, so both runs end at the same weights (up to float rounding).
    assert out["mirrored_vs_none"] < 1e-4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_cached_study(root: Path, params: dict, n_train: int = 60, n_val: int = 15) -> None:
    """What the data and features stages leave for the tune stage, with random pooled features."""
    from workbook.ml.feature_cache import META, POOLED, fingerprint
    from workbook.ml.prepared import image_refs

    classes = ["ant", "bee", "cat"]
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    prepared, cache = root / "data" / "prepared", root / "data" / "features"
    prepared.mkdir(parents=True)
    cache.mkdir(parents=True)
    (prepared / "classes.txt").write_text("\n".join(classes) + "\n")
    rows, sets = [], {}
    for split, n in (("train", n_train), ("val", n_val)):
        labels = [classes[i % 3] for i in range(n)]
        split_rows = pd.DataFrame({"path": [f"{split}/{label}/{i}" for i, label in enumerate(labels)],
                                   "row": range(n), "label": labels, "split": split})
        rows += split_rows.to_dict("records")
        np.save(cache / f"{split}.{POOLED}.npy", rng.normal(size=(n, 1280)).astype("float32"))
        sets[split] = {"count": n, "fingerprint": fingerprint(image_refs(prepared, split_rows))}
    pd.DataFrame(rows).to_csv(prepared / "manifest.csv", index=False)
    (cache / META).write_text(json.dumps({"cut": [], "sets": sets}))


def tune_worker(root: Path, directory: Path, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbook", "tune-worker", "--directory", str(directory)],
                            cwd=root, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env})


def test_distributed_tuner_runs_every_trial_once(tmp_path):
    """A chief and two workers (python -m workbook tune-worker) share one oracle over gRPC; the
    same search run alone beside them must come out the same."""
    trials = 4
    root, shared = tmp_path / "study", tmp_path / "tuner"
    params = tiny_params(tmp_path, **{"train.augment": "none", "tune.trials": trials, "tune.epochs": 1})
    write_cached_study(root, params)
    oracle_at = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(free_port())}
    procs = {tuner_id: tune_worker(root, shared, **oracle_at, KERASTUNER_TUNER_ID=tuner_id)
             for tuner_id in ("chief", "tuner0", "tuner1")}
    procs["alone"] = tune_worker(root, tmp_path / "alone")
    outputs = {}
    try:
        # The chief polls every 20 s for workers still busy before it exits (keras-tuner 1.4.8).
        deadline = time.monotonic() + 240
        for name, proc in procs.items():
            outputs[name] = proc.communicate(timeout=max(1, deadline - time.monotonic()))[0]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}:\n{outputs.get(name, '')[-4000:]}"
    assert "chosen lr" in outputs["chief"] and "chosen lr" in outputs["alone"]
    assert all("no trial left" in outputs[w] for w in ("tuner0", "tuner1"))

    project = shared / "head_lr"
    oracle = json.loads((project / "oracle.json").read_text())
    ran = [json.loads((d / "trial.json").read_text()) for d in sorted(project.glob("trial_*"))]
    ids = [t["trial_id"] for t in ran]
    assert len(ids) == len(set(ids)) == trials and sorted(oracle["end_order"]) == sorted(ids)
    assert all(oracle["run_times"][i] == 1 for i in ids)
    assert all(t["status"] == "COMPLETED" for t in ran)
    # Only workers train (and checkpoint); the chief serves the oracle.
    assert all((project / f"trial_{i}" / "checkpoint.weights.h5").exists() for i in ids)
    lrs = {t["trial_id"]: t["hyperparameters"]["values"]["lr"] for t in ran}
    assert len(set(lrs.values())) == trials

    best = min(ran, key=lambda t: t["score"])  # the objective, val_loss, is minimised
    table = pd.read_csv(shared / "trials.csv", dtype={"trial": str})
    assert sorted(table.trial) == sorted(ids)
    assert table[table.best].lr.item() == pytest.approx(lrs[best["trial_id"]])

    # The same search as in one process: the same rates drawn, the same scores.
    single = pd.read_csv(tmp_path / "alone" / "trials.csv", dtype={"trial": str})
    pd.testing.assert_frame_equal(single, table, rtol=1e-5)


@pytest.mark.slow
def test_a_queued_sweep_reuses_unchanged_stages_and_is_compared(tmp_path):
    """A seed sweep queued and run at once by two DVC queue workers, each in a temporary copy of
    the repository under .dvc/tmp/exps (so data.source is absolute: a relative path would point
    into that copy). DVC's run-cache restores the stages whose inputs it has seen (here the data
    and features stages the workspace ran): another seed recomputes neither. Then `python -m
    workbook compare` puts them side by side, as one seed group."""
    repo = copy_repo(tmp_path / "repo")
    repo.write_params(tiny_params(make_folder_set(tmp_path / "images")))
    repo.run("git", "commit", "-qam", "tiny params")
    repo.dvc("repro", "features")
    assert "workbook compare" in repo.run(sys.executable, "-m", "workbook", "compare", check=False).stderr
    repo.dvc("exp", "run", "--queue", "-S", "seed=1,2")
    # The workers outlive `dvc queue start`: given its output pipes, they would hold the call
    # open until they exit, so they write to a file instead.
    log = tmp_path / "queue-workers.log"
    repo.run("sh", "-c", f"{shlex.quote(sys.executable)} -m dvc queue start -j 2 > {shlex.quote(str(log))} 2>&1")
    most_running = 0
    try:
        deadline = time.monotonic() + 900
        while True:
            status = repo.dvc("queue", "status").stdout
            most_running = max(most_running, status.count(" Running"))
            if "Queued" not in status and "Running" not in status:
                break
            assert time.monotonic() < deadline, f"queue still busy after 15 minutes:\n{status}"
            time.sleep(5)
    finally:
        repo.dvc("queue", "stop", "--kill", check=False)
    assert status.count(" Success") == 2, status
    assert most_running == 2, "the two experiments never ran at the same time"

    shown = json.loads(repo.dvc("exp", "show", "--json").stdout)
    runs = {e["name"]: e["revs"][0]["data"] for row in shown for e in row.get("experiments") or []}
    assert len(runs) == 2
    assert sorted(run["params"]["params.yaml"]["data"]["seed"] for run in runs.values()) == [1, 2]
    for name, run in runs.items():
        headline = run["metrics"]["metrics/study.json"]["data"]  # in the experiment's git commit
        assert 0 <= headline["acc_lo"] <= headline["acc"] <= headline["acc_hi"] <= 1, (name, headline)
        ran = set(re.findall(r"Running stage '(\w+)'", repo.dvc("queue", "logs", name).stdout))
        assert not ran & {"data", "features"} and {"tune", "train", "finetune"} <= ran, (name, sorted(ran))

    proc = repo.run(sys.executable, "-m", "workbook", "compare")
    page = (repo.root / "reports" / "compare.html").read_text()
    assert "reports/compare.html" in proc.stdout and all(name in page for name in runs)
    assert "± " in page  # the two seeds grouped as mean ± sd
