"""`python -m workbook bench`: the study timed two ways with the same params.

The workbook's way is the real pipeline: `dvc repro` in a temporary copy of the project, on the
data and weights given. The uncached way pushes every image through the whole network for every
epoch and every tuner trial, as the TF tutorial's recipe does; run in full it takes far longer
than the workbook, so each of its three kinds of pass (frozen-base head step, fine-tuning step, plain
inference) is timed on the same sample of real images and scaled to the image counts, epochs and
trials of the params. Stages that do the same work both ways (data, control, quantize, report) count
their measured time on both sides. The uncached side leaves out every stage's start-up, which
favours it.

The floor is each stage's multiply-adds (workbook.tools.arithmetic) at this CPU's float32
matrix-multiply rate, measured before and after the runs (the machine's speed drifts; the faster
rate gives the lower floor): no implementation of the same study runs faster here. The trunk
pass is what the feature cache's engine (LiteRT) takes for the trunk alone over every image,
reading included: how close real kernels come to that rate.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

# What a fresh clone holds that the pipeline needs; the rest is built by it.
PROJECT_FILES = ["params.yaml", "dvc.yaml", "data.dvc", "jupytext.toml", "notebooks", "src", ".dvc/config", ".dvcignore",
                 ".gitignore"]
SAMPLE = 1024  # images timed for each uncached kind of pass


def copy_project(root: Path, dest: Path) -> Path:
    """A git + DVC repository at `dest` holding the project's own files, as a fresh clone would."""
    dest.mkdir(parents=True)
    for item in PROJECT_FILES:
        src = root / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif src.exists():
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / item)
    (dest / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    for args in (["init", "-q"], ["config", "user.name", "workbook"], ["config", "user.email", "workbook@localhost"],
                 ["add", "-A"], ["commit", "-qm", "copy of the project"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)
    return dest


def set_params(repo: Path, changes: dict) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for dotted, value in changes.items():
        group, _, key = dotted.rpartition(".")
        (params[group] if group else params)[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def self_peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@dataclass
class Run:
    stages: dict[str, float]  # stage -> wall seconds
    peak_mb: dict[str, float]  # stage -> peak resident anonymous memory of its processes, MiB
    total_s: float
    noop_s: float | None  # a second `dvc repro` right after, with nothing changed


def run_workbook(repo: Path, noop: bool = True) -> Run:
    """The real pipeline, start to end (and again with nothing changed, with `noop`); stage times
    and peak memory from results/timings/."""
    from workbook.pipeline.contract import read_timings
    from workbook.pipeline.paths import Paths

    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    def repro() -> float:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=env, text=True,
                              stdout=sys.stderr, stderr=subprocess.STDOUT)
        if proc.returncode:
            raise SystemExit(f"bench: dvc repro failed in {repo} (exit {proc.returncode}); see the output above")
        return time.perf_counter() - start

    total = repro()
    timings = read_timings(Paths(repo))
    return Run({s: t["wall_s"] for s, t in timings.items()},
               {s: t["peak_memory_mb"] for s, t in timings.items() if "peak_memory_mb" in t},
               total, repro() if noop else None)


def _throughput(step, batches) -> float:
    """Images per second of `step` over `batches`, after one warm-up batch (timed again when it
    is the only one)."""
    step(*batches[0])
    start = time.perf_counter()
    n = 0
    for x, y in batches[1:] or batches:
        step(x, y)
        n += len(x)
    return n / (time.perf_counter() - start)


def uncached_rates(P, repo: Path) -> dict[str, float]:
    """Images/s of the three kinds of pass the uncached way makes, timed on real images."""
    import keras
    import tensorflow as tf

    from workbook.ml.feeds import ImageBatches
    from workbook.ml.fitting import compile_classifier, seed_everything
    from workbook.ml.network import (
        augmentation,
        build_classifier,
        build_head,
        pretrained,
        set_fine_tuning,
    )
    from workbook.ml.prepared import load_manifest

    seed_everything(P.seed)
    manifest, classes = load_manifest(repo / "data" / "prepared")
    train = manifest[manifest.split == "train"].sample(frac=1, random_state=P.seed).head(SAMPLE)
    sample = ImageBatches(list(train.file), train.y.to_numpy(), P.train.batch_size, P.seed, shuffle=False)
    batches = [sample[i] for i in range(len(sample))]
    base = pretrained(P, repo)
    head = build_head(len(classes), P.train.dense_units, P.train.dropout, P.seed, int(base.output.shape[-1]))
    augment = augmentation(P.train.rotation, P.seed) if P.train.augment != "none" else None

    def fit_rate(fine_tune_at):
        set_fine_tuning(base, fine_tune_at)
        model = compile_classifier(build_classifier(base, head, P.data.image_size, softmax=False,
                                                    augment=augment, trainable=True), 1e-5)
        return _throughput(lambda x, y: model.train_on_batch(x, y), batches)

    rates = {"head_step": fit_rate(None), "finetune_step": fit_rate(P.finetune.fine_tune_at)}
    set_fine_tuning(base, None)
    plain = build_classifier(base, head, P.data.image_size)
    infer = tf.function(lambda x: plain(x, training=False))
    rates["inference"] = _throughput(lambda x, y: infer(x), batches)
    rates["sample_images"] = len(train)
    keras.backend.clear_session()
    return rates


def uncached_stages(P, counts: dict, rates: dict) -> dict[str, float]:
    """Seconds of work per stage the uncached way, from the measured rates."""
    from workbook.ml.holdout import sizes

    n_train, n_val = counts["train_images"], counts["val_images"]
    n_drawn, n_fit, n_held = sizes(n_train, P.data.train_per_class, counts["classes"], P.tune.holdout)
    head_epoch = lambda n: n / rates["head_step"] + n_val / rates["inference"]
    finetune_epoch = lambda n: n / rates["finetune_step"] + n_val / rates["inference"]
    return {
        "tune": P.tune.trials * P.tune.epochs * (n_fit / rates["head_step"] + n_held / rates["inference"]),
        # the head on every drawn image, and on the fit rows for the choice
        "train": P.train.epochs * (head_epoch(n_drawn) + head_epoch(n_fit)),
        # the choice (fine-tuning on the fit rows; both models over the hold-out), then fine-tuning
        # on every drawn image
        "finetune": P.finetune.epochs * (finetune_epoch(n_fit) + finetune_epoch(n_drawn))
                    + 2 * n_held / rates["inference"],
        # fine-tuned model, head-only model and the no-training baseline: three passes over val
        "evaluate": 3 * n_val / rates["inference"],
    }


def trunk_pass_seconds(P, repo: Path) -> float:
    """One plain forward pass of the trunk (below the cut) over every image, reading included,
    with the engine the feature cache uses (LiteRT): what that engine needs for the trunk alone."""
    from workbook.ml.extraction import Extractor, image_batches
    from workbook.ml.network import pretrained, split_base
    from workbook.ml.prepared import load_manifest

    manifest, _ = load_manifest(repo / "data" / "prepared")
    split = split_base(pretrained(P, repo), P.finetune.fine_tune_at)
    run = Extractor(split, pooled=False)
    start = time.perf_counter()
    for batch in image_batches(list(manifest.file), P.features.batch_size):
        run(batch)
    return time.perf_counter() - start


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def bench(data: str, weights: str, baseline_weights: str | None, workdir: Path | None, keep: bool) -> dict:
    from workbook.pipeline.params import load_params
    from workbook.pipeline.paths import STAGES, find_root
    from workbook.tools.arithmetic import matmul_gflops, stage_multiply_adds

    root = find_root()
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="workbook-bench-")) if own else workdir
    try:
        repo = copy_project(root, workdir / "repo")
        keyword = lambda w: w if w in ("imagenet", "none") else str(Path(w).resolve())
        changes = {"data.source": str(Path(data).resolve()), "model.weights": keyword(weights)}
        if baseline_weights:
            changes["evaluate.baseline_weights"] = keyword(baseline_weights)
        set_params(repo, changes)
        P = load_params(repo / "params.yaml")
        print("bench: this CPU's float32 matrix-multiply rate ...", file=sys.stderr)
        rate_before = matmul_gflops()
        print(f"bench: the workbook's way (dvc repro in {repo}) ...", file=sys.stderr)
        cached = run_workbook(repo)
        counts = json.loads((repo / "results" / "data.json").read_text())
        print(f"bench: the uncached way, timed on up to {SAMPLE} train images per kind of pass ...", file=sys.stderr)
        rates = uncached_rates(P, repo)
        sample = rates.pop("sample_images")
        work = uncached_stages(P, counts, rates)
        print("bench: the trunk once over every image, and the matrix-multiply rate again ...", file=sys.stderr)
        trunk_pass = trunk_pass_seconds(P, repo)
        rate_after = matmul_gflops()
        macs = stage_multiply_adds(P, counts["train_images"], counts["val_images"], counts["classes"])
        rate = max(rate_before, rate_after)
        floor = {s: 2 * m / (rate * 1e9) for s, m in macs.items()}
        uncached = {s: work.get(s, cached.stages.get(s, 0.0)) for s in STAGES if s != "features"}
        result = {
            "stages": {s: {"workbook_s": round(cached.stages.get(s, 0.0), 1),
                           "floor_s": round(floor[s], 1),
                           "gflop": round(2 * macs[s] / 1e9, 1),
                           "uncached_s": round(uncached[s], 1) if s in uncached else 0.0,
                           "uncached_how": ("extrapolated" if s in work else "as measured" if s in uncached else "not needed")}
                       for s in STAGES},
            "total_s": round(cached.total_s, 1),
            "noop_repro_s": round(cached.noop_s, 2),
            "uncached_total_s": round(sum(uncached.values()), 1),
            "speedup": round(sum(uncached.values()) / cached.total_s, 2),
            "floor_s": round(sum(floor.values()), 1),
            "matmul_gflops": {"before": round(rate_before, 1), "after": round(rate_after, 1)},
            "trunk_pass_s": round(trunk_pass, 1),
            "peak_rss_gb": round(max(cached.peak_mb.values(), default=0.0) / 1024, 2),
            "uncached_peak_rss_gb": round(self_peak_rss_gb(), 2),
            "uncached_rates_img_s": {k: round(v, 1) for k, v in rates.items()},
            "images": counts["train_images"] + counts["val_images"],
            "sample_images": sample,
        }
        return result
    finally:
        if own and not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def report(result: dict) -> str:
    stages = result["stages"]
    rows = [(s, f"{v['workbook_s']:.1f}", f"{v['floor_s']:.1f}", f"{v['gflop']:,.0f}", f"{v['uncached_s']:.1f}",
             v["uncached_how"]) for s, v in stages.items()]
    rows.append(("total (wall)", f"{result['total_s']:.1f}", f"{result['floor_s']:.1f}",
                 f"{sum(v['gflop'] for v in stages.values()):,.0f}", f"{result['uncached_total_s']:.1f}", ""))
    rates = ", ".join(f"{k} {v:.0f} img/s" for k, v in result["uncached_rates_img_s"].items())
    matmul = result["matmul_gflops"]
    return "\n".join([
        table(rows, ("stage", "workbook s", "floor s", "GFLOP", "uncached s", "uncached measured how")),
        "",
        f"speedup: {result['speedup']:.1f}x   peak memory: workbook {result['peak_rss_gb']:.2f} GB (resident "
        f"anonymous, the largest stage), uncached {result['uncached_peak_rss_gb']:.2f} GB (resident)",
        f"floor: the study's {sum(v['gflop'] for v in stages.values()) / 1000:.1f} TFLOP of multiply-adds at this "
        f"CPU's float32 matrix-multiply rate, {max(matmul.values()):.1f} GFLOP/s (NumPy, every core; "
        f"{matmul['before']:.1f} before the runs, {matmul['after']:.1f} after): {result['floor_s']:.1f} s, "
        f"and the workbook took {result['total_s'] / result['floor_s']:.1f} times that",
        f"the trunk alone once over all {result['images']:,} images (LiteRT, as the feature cache runs it): "
        f"{result['trunk_pass_s']:.1f} s",
        f"DVC between the stages (hashing and caching outputs, the lock file, starting each command): "
        f"{result['total_s'] - sum(v['workbook_s'] for v in result['stages'].values()):.1f} s of the total",
        f"a second `dvc repro` with nothing changed: {result['noop_repro_s']:.2f} s",
        f"uncached rates, timed on {result['sample_images']} train images each: {rates}; scaled to every "
        "image, epoch and trial of params.yaml (stage start-up not counted: this favours the uncached way).",
    ])


# ---------------------------------------------------------------------------------------------
# `python -m workbook bench --scale K`: the study on K times the images, beside the 1x study


def folder_set(data: str | Path, dest: Path) -> Path:
    """The folder holding train/ and val/ of `data` (a folder set, or an archive extracted into `dest`)."""
    data = Path(data).resolve()
    if not data.is_dir():
        shutil.unpack_archive(data, dest)
        data = dest
    found = [p.parent for p in sorted(data.rglob("train")) if (p.parent / "val").is_dir()]
    if not found:
        raise SystemExit(f"bench: no folder with train/ and val/ in {data}")
    return found[0]


def scaled_folder_set(source: Path, dest: Path, k: int) -> int:
    """train/ and val/ of `source` with every image K times under new names (`<stem>_x<i><suffix>`),
    as hard links (symbolic links where the two folders are on different file systems): no image
    is copied. Returns the number of images."""
    n = 0
    for split in ("train", "val"):
        for folder in sorted(p for p in (source / split).iterdir() if p.is_dir()):
            out = dest / split / folder.name
            out.mkdir(parents=True)
            for f in sorted(p for p in folder.iterdir() if p.is_file()):
                for i in range(k):
                    target = out / f"{f.stem}_x{i}{f.suffix}"
                    try:
                        os.link(f, target)
                    except OSError:
                        target.symlink_to(f)
                    n += 1
    return n


def disk_bytes(*paths: Path) -> int:
    """Bytes on disk of the files and folders `paths`, each file counted once however many links
    it has (as `du`)."""
    seen, total = set(), 0
    files = [Path(p) for p in paths if Path(p).is_file()]
    files += [Path(folder) / name for p in paths if Path(p).is_dir() for folder, _, names in os.walk(p) for name in names]
    for f in files:
        st = f.lstat()
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def outputs_bytes(repo: Path) -> int:
    """Bytes on disk of every output dvc.yaml declares (the study's own files)."""
    from workbook.pipeline.contract import declared_outputs

    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]  # that study's own (an older one's too)
    return disk_bytes(*{repo / o for s in stages for o in declared_outputs(s, repo)})


def study_at(code: Path, dest: Path, source: Path, weights: str, baseline_weights: str | None) -> dict:
    """One study: a copy of the project at `code` run with data.source = `source`: each stage's
    wall time and peak memory, the images, the disk it takes, its headline and per-stage results."""
    repo = copy_project(code, dest)
    keyword = lambda w: w if w in ("imagenet", "none") else str(Path(w).resolve())
    changes = {"data.source": str(source), "model.weights": keyword(weights)}
    if baseline_weights:
        changes["evaluate.baseline_weights"] = keyword(baseline_weights)
    set_params(repo, changes)
    print(f"bench: the study in {repo} on {source} ...", file=sys.stderr)
    run = run_workbook(repo, noop=False)
    data = json.loads((repo / "results" / "data.json").read_text())
    results = {s: json.loads(f.read_text()) for s in ("evaluate", "quantize", "finetune", "tune", "control")
               if (f := repo / "results" / f"{s}.json").exists()}
    return {"stages": run.stages, "peak_mb": run.peak_mb, "total_s": round(run.total_s, 1),
            "images": data["train_images"] + data["val_images"], "classes": data["classes"],
            "disk_bytes": disk_bytes(repo), "outputs_bytes": outputs_bytes(repo),
            "metrics": json.loads((repo / "metrics" / "study.json").read_text()), "results": results}


# What "the same results to the image" compares: each model's right answers on val and the rest
# of what decides them (the rate the tuner chose, the model that ships).
SAME = {"fine-tuned right": ("evaluate", "accuracy", "right"), "head right": ("evaluate", "head", "right"),
        "baseline right": ("evaluate", "baseline", "right"), "control right": ("evaluate", "control", "right"),
        "int8 right": ("quantize", "int8", "right"), "int8 disagreements": ("quantize", "disagreements"),
        "tuned rate": ("tune", "best_lr"), "shipped": ("finetune", "shipped")}


def outcome(study: dict) -> dict:
    """The results `SAME` names, read from a study's results (None where a study has none)."""
    out = {}
    for name, keys in SAME.items():
        value = study["results"]
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        out[name] = value
    return out


def code_at(root: Path, rev: str, dest: Path) -> Path:
    """The project's files as they were at git revision `rev`, in `dest`."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=root, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def scale_bench(data: str, weights: str, baseline_weights: str | None, k: int, against: str | None,
                workdir: Path | None, keep: bool) -> dict:
    """The study on the images of `data` (1x) and on K times as many (linked under new names), with
    this code; with `against`, first the 1x study with the code of that git revision."""
    from workbook.pipeline.paths import find_root

    root = find_root()
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="workbook-bench-", dir=root.parent)) if own else workdir
    try:
        one = folder_set(data, workdir / "images-1x")
        scaled = workdir / f"images-{k}x"
        n = scaled_folder_set(one, scaled, k)
        print(f"bench: {n:,} images in {scaled} ({k} links to each image of {one})", file=sys.stderr)
        runs = {}
        if against:
            old = code_at(root, against, workdir / f"code-{against}")
            runs[f"1x at {against}"] = study_at(old, workdir / f"repo-{against}-1x", one, weights, baseline_weights)
        runs["1x"] = study_at(root, workdir / "repo-1x", one, weights, baseline_weights)
        free = shutil.disk_usage(workdir).free
        need = k * runs["1x"]["disk_bytes"]
        if need > free:
            raise SystemExit(f"bench: the {k}x study needs about {need / 2**30:.0f} GiB on disk ({k} x the 1x "
                             f"study's {runs['1x']['disk_bytes'] / 2**30:.1f} GiB); {free / 2**30:.0f} GiB are free "
                             f"under {workdir}")
        runs[f"{k}x"] = study_at(root, workdir / f"repo-{k}x", scaled, weights, baseline_weights)
        return {"k": k, "against": against, "runs": runs, "cpu": cpu_name()}
    finally:
        if own and not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def cpu_name() -> str:
    """The CPU's model name as Linux gives it (platform's guess elsewhere)."""
    import platform

    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def scale_report(result: dict) -> str:
    from workbook.pipeline.paths import STAGES

    k, runs = result["k"], result["runs"]
    one, big = runs["1x"], runs[f"{k}x"]
    old = runs.get(f"1x at {result['against']}")
    ms = lambda run, s: 1000 * run["stages"].get(s, 0.0) / run["images"]
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
    rows = []
    for s in STAGES:
        row = [s, f"{ms(one, s):.2f}", f"{ms(big, s):.2f}", ratio(ms(big, s), ms(one, s)),
               f"{one['peak_mb'].get(s, 0) / 1024:.2f}", f"{big['peak_mb'].get(s, 0) / 1024:.2f}",
               ratio(big["peak_mb"].get(s), one["peak_mb"].get(s))]
        if old:
            row += [f"{old['stages'].get(s, 0.0):.1f}", f"{one['stages'].get(s, 0.0):.1f}",
                    ratio(one["stages"].get(s), old["stages"].get(s))]
        rows.append(tuple(row))
    total = lambda run: sum(run["stages"].values())
    last = ["total", f"{1000 * total(one) / one['images']:.2f}", f"{1000 * total(big) / big['images']:.2f}",
            ratio(total(big) / big["images"], total(one) / one["images"]),
            f"{max(one['peak_mb'].values(), default=0) / 1024:.2f}",
            f"{max(big['peak_mb'].values(), default=0) / 1024:.2f}",
            ratio(max(big["peak_mb"].values(), default=0), max(one["peak_mb"].values(), default=0))]
    header = ["stage", "1x ms/img", f"{k}x ms/img", "ratio", "1x peak GB", f"{k}x peak GB", "ratio"]
    if old:
        last += [f"{total(old):.1f}", f"{total(one):.1f}", ratio(total(one), total(old))]
        header += [f"{result['against']} 1x s", "1x s", "ratio"]
    rows.append(tuple(last))
    gib = lambda b: f"{b / 2**30:.2f} GiB"
    lines = [f"bench --scale {k} on {result['cpu']}: {one['images']:,} images (1x) and {big['images']:,} "
             f"({k}x), {one['classes']} classes; time per image is each stage's wall time over all the images, "
             "peak memory the resident anonymous memory of the stage's processes",
             "", table(rows, tuple(header)), ""]
    for name, run in (("1x", one), (f"{k}x", big)):
        lines.append(f"disk, {name}: outputs {gib(run['outputs_bytes'])}; workspace with .dvc/cache "
                     f"{gib(run['disk_bytes'])} ({run['disk_bytes'] / run['outputs_bytes']:.2f} x the outputs)")
    if old:
        a, b = outcome(old), outcome(one)
        differ = [f"{name}: {a[name]} -> {b[name]}" for name in SAME if a[name] != b[name]]
        lines.append(f"1x results against {result['against']}: "
                     + ("the same to the image (" + ", ".join(f"{n} {b[n]}" for n in SAME) + ")" if not differ
                        else "different: " + "; ".join(differ)))
    return "\n".join(lines)
