"""Timing a .tflite model per image as an app runs it (LiteRT, one image a call), at 1 to N
threads, with the CPU other processes used meanwhile, so a busy machine's figures say so."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workbook.ml.litert import Classifier

MODELS = ("float32", "int8")  # the quantize stage's two models, as every table and result names them
WARMUP_RUNS = 10  # untimed invocations before the timed ones


def _busy_ticks() -> int | None:
    """CPU time every process on the machine has used so far, in clock ticks (Linux's /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


@contextlib.contextmanager
def background_load():
    """Measure how many cores' worth of CPU *other* processes used while the block ran: timings
    taken on a busy machine are slower, multi-threaded ones most, and the report should say so.
    Yields a dict whose "cores" is set on exit (None where /proc/stat cannot be read)."""
    out: dict = {}
    busy, own, start = _busy_ticks(), os.times(), time.monotonic()
    yield out
    busy_end, own_end, elapsed = _busy_ticks(), os.times(), time.monotonic() - start
    if busy is None or busy_end is None or elapsed <= 0:
        out["cores"] = None
        return
    tick = os.sysconf("SC_CLK_TCK")
    mine = (own_end.user + own_end.system - own.user - own.system) * tick
    out["cores"] = round(max(0.0, (busy_end - busy - mine) / (tick * elapsed)), 3)


def latency(models: dict[str, str | Path], image: np.ndarray, max_threads: int, runs: int) -> dict:
    """Milliseconds per single image (median and 90th percentile of `runs` timed invocations after a
    warm-up) for each model at 1..max_threads threads, with the CPU other processes used meanwhile:
    {model: {"threads": {median_ms, p90_ms, background_cores}}}."""
    table: dict[str, dict] = {}
    for name, path in models.items():
        table[name] = {}
        for threads in range(1, max_threads + 1):
            runner = Classifier(path, num_threads=threads)
            with background_load() as load:
                ms = runner.invoke_ms(image, runs, WARMUP_RUNS)
            table[name][str(threads)] = {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
                                         "background_cores": load["cores"]}
    return table


def max_background(table: dict) -> float | None:
    """The most CPU other processes used while any of the latencies was timed (cores)."""
    loads = [stats["background_cores"] for by_threads in table.values() for stats in by_threads.values()
             if stats.get("background_cores") is not None]
    return max(loads) if loads else None


def latency_frame(table: dict) -> pd.DataFrame:
    """The latency table as rows: model, threads, median_ms, p90_ms, background_cores."""
    return pd.DataFrame([{"model": name, "threads": int(threads), **stats}
                         for name, by_threads in table.items() for threads, stats in by_threads.items()])
