"""The study's numbers as the report stage and the compare page read them: every results file by
stage, a value by its dotted key ("evaluate.accuracy"), and the headline numbers of
metrics/study.json (what `dvc exp show` lists)."""

from __future__ import annotations

import json
from typing import Any

from workbook.pipeline.contract import read_timings
from workbook.pipeline.paths import STAGES, Paths

# The stages the index page reports on: all before the report stage, which writes the page.
REPORTED = STAGES[:STAGES.index("report")]


def read_results(paths: Paths) -> dict[str, Any]:
    """Every results file the page reads, by stage (None where it is missing), plus "timings"."""
    results: dict[str, Any] = {}
    for stage in REPORTED:
        f = paths.details(stage)
        results[stage] = json.loads(f.read_text()) if f.exists() else None
    # a timing of the report stage itself is of an earlier run: leave it out
    results["timings"] = {s: t for s, t in read_timings(paths).items() if s in REPORTED}
    return results


def source(key: str) -> str:
    """The file a data-metric key is read from."""
    parts = key.split(".")
    if parts[0] == "timings":
        return f"results/timings/{parts[1]}.json"
    return f"results/{parts[0]}.json"


def lookup(results: dict[str, Any], key: str) -> tuple[Any, str]:
    """The value at a dotted key, and why there is none (empty when there is one)."""
    parts = key.split(".")
    depth = 2 if parts[0] == "timings" else 1  # timings.data.wall_s: file timings/data.json
    value: Any = results
    for i, part in enumerate(parts):
        if not isinstance(value, dict) or value.get(part) is None:
            if i < depth:
                return None, f"{source(key)} not found: the {parts[depth - 1]} stage has not run"
            if isinstance(value, dict) and part in value:
                return None, f"null in {source(key)}"
            return None, f"no {'.'.join(parts[depth:])} in {source(key)}"
        value = value[part]
    return value, ""


def total_seconds(results: dict[str, Any], field: str = "wall_s") -> tuple[float | None, list[str]]:
    """The sum of one timing over the stages that recorded it, and the stages that did not."""
    times = {s: lookup(results, f"timings.{s}.{field}")[0] for s in REPORTED}
    known = [t for t in times.values() if t is not None]
    return (sum(known) if known else None), [s for s, t in times.items() if t is None]


# Each headline accuracy (key: where it is read) with its 95% interval as two more keys. With the
# four numbers below, 19 columns in `dvc exp show`: keep it at 20 at most.
HEADLINE_ACCURACIES = {
    "acc": ("evaluate.accuracy", "acc_lo", "acc_hi"),  # the fine-tuned model
    "head_acc": ("evaluate.head", "head_lo", "head_hi"),
    "base_acc": ("evaluate.baseline", "base_lo", "base_hi"),
    "control_acc": ("control.accuracy", "control_lo", "control_hi"),  # the small CNN from scratch
    "int8_acc": ("quantize.int8", "int8_lo", "int8_hi"),
}


def headline(results: dict[str, Any]) -> dict[str, float | None]:
    """The study's headline numbers, flat and numeric: what `dvc exp show` and the comparison page
    read. Short keys, so that the table fits a terminal."""
    out: dict[str, float | None] = {}
    for key, (where, low, high) in HEADLINE_ACCURACIES.items():
        a = lookup(results, where)[0] or {}
        out[key], out[low], out[high] = a.get("value"), a.get("low"), a.get("high")
    size, wall = lookup(results, "quantize.int8_bytes")[0], total_seconds(results)[0]
    out["agreement"] = lookup(results, "quantize.agreement")[0]  # int8 and float32 top-1, share of val
    out["int8_mb"] = round(size / 1e6, 4) if size is not None else None  # 10^6 bytes
    out["int8_ms"] = lookup(results, "quantize.int8_ms_2_threads")[0]  # per image, 2 threads, median
    out["study_s"] = round(wall, 1) if wall is not None else None  # the stages' wall times, summed
    return out


HEADLINE_KEYS = tuple(headline({}))
