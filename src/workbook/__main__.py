"""Command line: `python -m workbook <command>` (or the `workbook` console script).

  download             the default images data.dvc records, fetched where data.source names them and
                       they are missing (one line on stderr, saying what to run offline, when the URL
                       cannot be reached)
  run STAGE            run one stage of dvc.yaml: check params.yaml (one line naming a bad key),
                       execute its notebook with its declared params, render it into reports/
  compare              reports/compare.html: every experiment of `dvc exp show` side by side
  classify MODEL PATH  top-k labels of images (files or folders) with a .tflite model
  inspect MODEL        the ops of a .tflite model with their tensor sizes
  demo [MODEL...]      the models on a local web page (extra `demo`): top-3, input, latency
  bench                the study timed two ways: the workbook's (cached) and the uncached one;
                       --scale K: on K times the images, time per image and peak memory per stage
  tune-worker --directory DIR
                       one process (chief or worker) of a distributed tuner search on the cache
"""

from __future__ import annotations

import argparse
import sys

from workbook.pipeline.paths import STAGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one stage (what dvc.yaml's cmd of every stage calls)")
    p.add_argument("stage", choices=STAGES, help="the stage, as named in dvc.yaml")

    p = sub.add_parser("download", help="fetch the default images data.dvc records, where data.source names "
                       "them and they are missing (dvc.yaml's download stage, which passes data.dvc's values)")
    p.add_argument("--url", required=True, help="the archive's URL")
    p.add_argument("--md5", required=True, help="its md5")
    p.add_argument("--path", required=True, help="where it is kept, relative to the repository (in data/download/)")

    p = sub.add_parser("compare", help="compare the experiments of `dvc exp show` in reports/compare.html")
    p.add_argument("-n", "--num", type=int, default=1, metavar="N",
                   help="experiments based on the last N commits, as `dvc exp show -n N` (default 1)")

    p = sub.add_parser("classify", help="top-k labels of images (files or folders) with a .tflite model")
    p.add_argument("model", help="a .tflite image classifier, e.g. models/model_int8.tflite")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--top-k", type=int, default=3, help="labels shown per image (default 3)")
    p.add_argument("--labels", help="one label per line in class order (default: labels.txt beside the model)")

    p = sub.add_parser("inspect", help="the ops of a .tflite model with their output sizes")
    p.add_argument("model", help="a .tflite model")

    p = sub.add_parser("demo", help="try the models on a local web page (127.0.0.1) as an app runs them "
                       "(needs the extra `demo`)")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="more .tflite models to offer beside the study's float32 and int8 (models/)")
    p.add_argument("--port", type=int, help="the port (default: the first free from 7860)")

    p = sub.add_parser("bench", help="time the study two ways: the workbook's and the uncached one; with "
                       "--scale K, on K times the images beside the 1x study")
    p.add_argument("--data", required=True, help="the raw archive or folder set (data.source)")
    p.add_argument("--weights", required=True, help="the backbone's no-top .h5 (model.weights)")
    p.add_argument("--baseline-weights", help="the with-top .h5 (evaluate.baseline_weights)")
    p.add_argument("--json", help="also write the table to this JSON file")
    p.add_argument("--workdir", help="run in this folder (default: a temporary one, removed after)")
    p.add_argument("--scale", type=int, metavar="K", help="instead: the study on the images of --data and on K "
                   "times as many (each image linked K times under new names), each stage's time per image and "
                   "peak memory side by side, and the disk each takes")
    p.add_argument("--against", metavar="REV", help="with --scale: first the 1x study with the code of this git "
                   "revision (e.g. main), its time and results beside this code's")

    p = sub.add_parser("tune-worker", help="one process of Keras Tuner's distributed search of the "
                       "head's rate on the feature cache: the chief or a worker, as KERASTUNER_TUNER_ID says")
    p.add_argument("--directory", required=True,
                   help="the tuner folder, the same for every process (a new one for a new search)")

    commands = {"download": _download, "run": _run, "compare": _compare, "classify": _classify, "inspect": _inspect,
                "demo": _demo, "bench": _bench, "tune-worker": _tune_worker}
    args = parser.parse_args(argv)
    return commands[args.command](args) or 0


def _params():
    """params.yaml, checked; None (after one line on stderr) when a value is bad."""
    from workbook.pipeline.params import ParamError, load_params

    try:
        return load_params()
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def _download(args) -> int:
    from workbook.pipeline.params import Pin
    from workbook.pipeline.paths import Paths
    from workbook.pipeline.source import main as download

    paths = Paths.here()
    return download(paths.root, paths.download, Pin(args.url, args.path, f"md5:{args.md5}"))


def _run(args) -> int:
    from workbook.pipeline.params import ParamError
    from workbook.pipeline.runner import NotebookFailed, run_stage

    try:
        run_stage(args.stage)
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NotebookFailed as e:
        print(f"error: stage {args.stage}: {e}", file=sys.stderr)
        return 1
    return 0


def _compare(args) -> int:
    from workbook.analysis.compare import main as compare
    from workbook.pipeline.paths import find_root

    if args.num < 1:
        print(f"error: --num {args.num}: must be 1 or more (the number of commits)", file=sys.stderr)
        return 2
    return compare(find_root(), args.num)


def _classify(args) -> int:
    from workbook.ml.classify import run_classify  # LiteRT only: no TensorFlow

    return run_classify(args.model, args.paths, args.top_k, args.labels)


def _inspect(args) -> int:
    from workbook.ml.inspection import run_inspect

    return run_inspect(args.model)


def _demo(args) -> int:
    from workbook.tools.demo import run_demo  # no Gradio import yet

    return run_demo(args.models, args.port)


def _bench(args) -> int:
    from pathlib import Path

    from workbook.pipeline.atomic import write_json
    from workbook.tools.bench import bench, report, scale_bench, scale_report

    workdir = Path(args.workdir) if args.workdir else None
    if args.against and not args.scale:
        print("error: --against REV goes with --scale K", file=sys.stderr)
        return 2
    if args.scale is not None and args.scale < 2:
        print(f"error: --scale {args.scale}: must be 2 or more (the 1x study runs beside it anyway)", file=sys.stderr)
        return 2
    if args.scale:
        result = scale_bench(args.data, args.weights, args.baseline_weights, args.scale, args.against, workdir,
                             keep=bool(args.workdir))
        print(scale_report(result))
    else:
        result = bench(args.data, args.weights, args.baseline_weights, workdir, keep=bool(args.workdir))
        print(report(result))
    if args.json:
        write_json(args.json, result)
    return 0


def _tune_worker(args) -> int:
    import os
    from pathlib import Path

    from workbook.pipeline.atomic import write_csv
    from workbook.pipeline.paths import Paths

    P = _params()
    if P is None:
        return 2
    from workbook.stages.tune import (  # TensorFlow: only once params.yaml is good
        role,
        search_cache,
    )

    directory = Path(args.directory).resolve()
    result = search_cache(P, Paths.here(), directory)
    if result is None:
        print(f"worker {os.environ['KERASTUNER_TUNER_ID']}: no trial left")
        return 0
    write_csv(directory / "trials.csv", result.trials)
    print(result.trials.to_string(index=False))
    print(f"chosen lr: {result.best_lr:.6g} (the {role()} of {len(result.trials)} trials; "
          f"table in {directory / 'trials.csv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
