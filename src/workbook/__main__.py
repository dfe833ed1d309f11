"""Command line: `python -m workbook <command>` (or the `workbook` console script).

  check STAGE          check params.yaml before a stage runs (one line naming the bad key)
  publish NOTEBOOK     render an executed notebook to HTML and move both into reports/
  classify MODEL PATH  top-k labels of images (files or folders) with a .tflite model
  inspect MODEL        the ops of a .tflite model with their tensor sizes
  bench                the study timed two ways: cached (the workbook) and uncached
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbook", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="check params.yaml (fast: no TensorFlow)")
    p.add_argument("stage", help="the stage about to run (its start time is recorded)")

    p = sub.add_parser("publish", help="render an executed notebook and move it into reports/")
    p.add_argument("stage", help="stage name, e.g. data")

    commands = {"check": _check, "publish": _publish}
    args = parser.parse_args(argv)
    return commands[args.command](args) or 0


def _check(args) -> int:
    from workbook.params import ParamError, load_params
    from workbook.stages import mark_start

    try:
        load_params()
    except ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mark_start(args.stage)
    return 0


def _publish(args) -> int:
    from workbook.stages import publish

    publish(args.stage)
    return 0


if __name__ == "__main__":
    sys.exit(main())
