"""The report stage: reports/index.html, the study on one page, and metrics/study.json, its
headline numbers (the one metrics file DVC shows in `dvc exp show`).

Every number is read from the stages' results files (results/STAGE.json), never recomputed:
the only sums are the study's wall time and the gaps the targets are about, and the verdicts
come from workbook.analysis.verdicts, as in the stage notebooks. Each number on the page sits in an element
with data-metric="stage.key" and is shown by `format_value`, so a test can check the rendered
page against the files. The page (templates/index.html.j2) loads nothing: no script, no external
style sheet or font, the chart is inline SVG; it renders offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbook.analysis.formatting import NA, interval, missing, pct
from workbook.analysis.headline import (
    REPORTED,
    headline,
    lookup,
    read_results,
    total_seconds,
)
from workbook.analysis.summaries import environment
from workbook.analysis.verdicts import Verdict, all_verdicts
from workbook.pipeline.atomic import write_json, write_text
from workbook.pipeline.contract import notebook_name, stage_number
from workbook.pipeline.paths import Paths

_FORMATS = {
    "accuracy": interval,  # a value with its 95% interval: {"value", "low", "high", ...}
    "percent": pct,
    "bytes": lambda v: f"{v / 2**20:.2f} MiB",
    "mib": lambda v: f"{v:,.2f} MiB",
    "ms": lambda v: f"{v:.2f} ms",
    "seconds": lambda v: f"{v:,.1f} s",
    "count": lambda v: f"{v:,}",
    "rate": lambda v: f"{v:,.1f} images/s",
    "lr": lambda v: f"{v:.2e}",
    "score": lambda v: f"{v:.4f}",
    "pvalue": lambda v: f"{v:.2g}",
    "ratio": lambda v: f"{v:.2f}x",
    "list": lambda v: _listed(v),
    "text": str,
}


LISTED = 12  # items of a list the page names; the rest are counted


def _listed(items: list) -> str:
    """A list in one line: every item up to LISTED of them, else the first ones and how many more."""
    if not items:
        return "none"
    shown = "; ".join(map(str, items[:LISTED]))
    return shown if len(items) <= LISTED else f"{shown}; … and {len(items) - LISTED:,} more ({len(items):,} in all)"


def format_value(value: Any, kind: str) -> str:
    """How the page shows a value of this kind: accuracies as percentages with 2 decimals and
    their interval, bytes as MiB, ms with 2 decimals, seconds with 1; a missing, null or NaN
    value as "n/a"."""
    if kind not in _FORMATS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(_FORMATS)}")
    if missing(value):
        return NA
    return _FORMATS[kind](value)


@dataclass(frozen=True)
class Metric:
    key: str  # "evaluate.accuracy": key accuracy of results/evaluate.json
    label: str
    kind: str  # how format_value shows it
    note_key: str | None = None  # a text shown beside it (e.g. why the baseline is n/a)


@dataclass(frozen=True)
class Section:
    stage: str
    title: str
    metrics: tuple[Metric, ...]


SECTIONS = (
    Section("data", "Data", (
        Metric("data.classes", "classes", "count"),
        Metric("data.train_images", "train images", "count"),
        Metric("data.val_images", "val images", "count"),
        Metric("data.val_from_imagenet_train", "val images from ImageNet's train split", "count"),
        Metric("data.val_from_imagenet_val", "val images from ImageNet's val split", "count"),
        Metric("data.converted", "images converted to RGB", "count"),
        Metric("data.skipped", "files set aside (unreadable)", "count"),
        Metric("data.warnings", "warnings", "list"),
    )),
    Section("features", "Feature cache", (
        Metric("features.images", "images through the frozen base", "count"),
        Metric("features.seconds", "time", "seconds"),
        Metric("features.images_per_s", "throughput", "rate"),
        Metric("features.cache_mb", "cache on disk", "mib"),
    )),
    Section("tune", "Learning-rate search", (
        Metric("tune.trials", "trials", "count"),
        Metric("tune.best_lr", "chosen learning rate", "lr"),
        Metric("tune.best_val_accuracy", "its hold-out accuracy", "percent"),
    )),
    Section("train", "Head on the frozen base", (
        Metric("train.val_accuracy", "val accuracy after the last epoch", "percent"),
        Metric("train.lr", "learning rate", "lr"),
        Metric("train.epochs", "epochs", "count"),
        Metric("train.seconds_per_epoch", "seconds per epoch", "seconds"),
    )),
    Section("finetune", "Fine-tuning", (
        Metric("finetune.val_accuracy", "val accuracy after the last epoch", "percent"),
        Metric("finetune.lr", "starting learning rate", "lr"),
        Metric("finetune.epochs", "epochs", "count"),
        Metric("finetune.seconds_per_epoch", "seconds per epoch", "seconds"),
        Metric("finetune.layers_trained", "base layers trained", "count"),
        Metric("finetune.train_images", "train images learned from", "count"),
        Metric("finetune.holdout_images", "of them held out for the choice", "count"),
        Metric("finetune.head_holdout", "head accuracy on the hold-out", "percent"),
        Metric("finetune.finetuned_holdout", "fine-tuned accuracy on the hold-out", "percent"),
    )),
    Section("control", "Control: a CNN from scratch", (
        Metric("control.accuracy", "val accuracy", "accuracy"),
        Metric("control.train_images", "train images learned from", "count"),
        Metric("control.epochs", "epochs", "count"),
        Metric("control.seconds_per_epoch", "seconds per epoch", "seconds"),
        Metric("control.weights", "weights, all trained", "count"),
    )),
    Section("evaluate", "Evaluation on val (95% intervals)", (
        Metric("evaluate.accuracy", "fine-tuned accuracy", "accuracy"),
        Metric("evaluate.head", "head-only accuracy", "accuracy"),
        Metric("evaluate.baseline", "no-training baseline accuracy", "accuracy", note_key="evaluate.baseline_note"),
        Metric("evaluate.control", "from-scratch control accuracy", "accuracy"),
        Metric("evaluate.vs_control.p_value", "fine-tuned against the control, exact McNemar p", "pvalue"),
        Metric("evaluate.shipped", "the model that ships (chosen on the train hold-out)", "text",
               note_key="evaluate.ship_reason"),
        Metric("evaluate.macro_f1", "fine-tuned macro F1", "score"),
        Metric("evaluate.imagenet_val.fine-tuned", "fine-tuned accuracy on ImageNet-val images", "accuracy"),
    )),
    Section("quantize", "int8 TFLite model (95% intervals)", (
        Metric("quantize.float32", "float32 TFLite accuracy", "accuracy"),
        Metric("quantize.int8", "int8 TFLite accuracy", "accuracy"),
        Metric("quantize.agreement", "same prediction, int8 and float32", "percent"),
        Metric("quantize.float_bytes", "float32 model size", "bytes"),
        Metric("quantize.int8_bytes", "int8 model size", "bytes"),
        Metric("quantize.io_dtype", "int8 model input/output type", "text"),
        Metric("quantize.float_ms_2_threads", "float32 latency, 2 threads (median)", "ms"),
        Metric("quantize.int8_ms_2_threads", "int8 latency, 2 threads (median)", "ms"),
        Metric("quantize.metadata.name", "TFLite metadata inside the models", "text"),
        Metric("quantize.metadata.labels", "class names embedded in both models (label file)", "list"),
    )),
)
_METRICS = {m.key: m for s in SECTIONS for m in s.metrics}


def kind_of(key: str) -> str:
    """The format kind of a data-metric key of the page."""
    if key in _METRICS:
        return _METRICS[key].kind
    if key.startswith("quantize.latency."):
        return "ms"
    if key.startswith("timings."):
        return "seconds"
    raise KeyError(f"{key} is not shown on the page")


@dataclass(frozen=True)
class Shown:
    """One number as the page shows it."""
    key: str
    label: str
    text: str
    note: str = ""  # why it is n/a, or the text that goes with it


def shown(results: dict[str, Any], key: str, label: str, note_key: str | None = None) -> Shown:
    value, why = lookup(results, key)
    note = lookup(results, note_key)[0] if note_key else None
    return Shown(key, label, format_value(value, kind_of(key)), str(note) if note else why)


@dataclass(frozen=True)
class Bar:
    label: str
    shown: Shown
    fraction: float | None  # of the chart's width; None: no value
    low: float | None = None  # the interval, as fractions of the width
    high: float | None = None


@dataclass(frozen=True)
class Chart:
    floor: float  # accuracy at the left edge
    ticks: list[tuple[float, str]]  # (fraction of width, label)
    bars: list[Bar]


ACCURACY_BARS = (
    ("from scratch", "evaluate.control", None),
    ("no-training baseline", "evaluate.baseline", "evaluate.baseline_note"),
    ("head only", "evaluate.head", None),
    ("fine-tuned", "evaluate.accuracy", None),
    ("int8 TFLite", "quantize.int8", None),
)


def accuracy_chart(results: dict[str, Any]) -> Chart:
    """The accuracies side by side with their intervals, on an axis that starts low enough to
    show every bar and whisker."""
    values = {key: lookup(results, key)[0] for _, key, _ in ACCURACY_BARS}
    values = {k: v if v and v.get("value") is not None else None for k, v in values.items()}
    known = [v["low"] for v in values.values() if v is not None]
    # start 5 points below the lowest whisker, on a multiple of 5: gaps of a point stay visible
    floor = max(0.0, math.floor((100 * min(known) - 5) / 5) * 5 / 100) if known else 0.0
    span = 1.0 - floor
    step = 0.02 if span <= 0.1 else (0.05 if span <= 0.25 else 0.1 if span <= 0.5 else 0.2)
    ticks = [(round(i * step, 6) / span, f"{100 * (floor + i * step):.0f}%")
             for i in range(int(round(span / step)) + 1)]

    def at(x: float) -> float:
        return max(0.0, min(1.0, (x - floor) / span))

    bars = [Bar(label, shown(results, key, label, note), *(
        (None, None, None) if values[key] is None else
        (at(values[key]["value"]), at(values[key]["low"]), at(values[key]["high"]))))
        for label, key, note in ACCURACY_BARS]
    return Chart(floor, ticks, bars)


@dataclass(frozen=True)
class StageRow:
    number: str
    stage: str
    href: str | None  # the stage's HTML report, relative to reports/; None: not written
    wall: Shown
    notebook: Shown


@dataclass(frozen=True)
class SectionView:
    section: Section
    href: str | None  # the stage's report
    note: str  # why the whole section is n/a (its results file is missing), else empty
    shown: list[Shown]


@dataclass(frozen=True)
class Page:
    sections: list[SectionView]
    verdicts: list[Verdict]
    chart: Chart
    latency: list[tuple[str, list[Shown]]]  # threads, then float32 median/p90, int8 median/p90
    stages: list[StageRow]
    total_wall: Shown
    total_notebook: Shown
    key_figures: list[tuple[Shown, Shown]]  # a headline number and the one to compare it with
    compare: str | None  # reports/compare.html when it exists
    headline: dict[str, float | None]  # metrics/study.json
    backbone: str | None  # the network the shipped model transfers (quantize), where known

    def rows(self) -> list[dict]:
        """Every headline number, one row each (for the notebook's table)."""
        return [{"stage": view.section.stage, "number": s.label, "value": s.text, "key": s.key,
                 "note": s.note or view.note} for view in self.sections for s in view.shown]


def report_link(paths: Paths, name: str) -> str | None:
    html = f"{name}.html"
    return html if (paths.reports / html).is_file() else None


def latency_rows(results: dict[str, Any]) -> list[tuple[str, list[Shown]]]:
    latency = (results.get("quantize") or {}).get("latency") or {}
    threads = sorted({t for per in latency.values() if isinstance(per, dict) for t in per},
                     key=lambda t: (not t.isdigit(), int(t) if t.isdigit() else 0, t))
    return [(t, [shown(results, f"quantize.latency.{dtype}.{t}.{stat}", f"{dtype} {stat}")
                 for dtype in ("float32", "int8") for stat in ("median_ms", "p90_ms")])
            for t in threads]


def stage_rows(paths: Paths, results: dict[str, Any]) -> list[StageRow]:
    return [StageRow(stage_number(s), s, report_link(paths, notebook_name(s)),
                     shown(results, f"timings.{s}.wall_s", "wall time"),
                     shown(results, f"timings.{s}.notebook_s", "notebook time"))
            for s in REPORTED]


def total(results: dict[str, Any], field: str) -> Shown:
    seconds, absent = total_seconds(results, field)
    note = f"without {', '.join(absent)} (no time recorded)" if absent else ""
    return Shown(f"timings.total.{field}", "total", format_value(seconds, "seconds"), note)


def section_view(paths: Paths, results: dict[str, Any], section: Section) -> SectionView:
    rows = [shown(results, m.key, m.label, m.note_key) for m in section.metrics]
    href = report_link(paths, notebook_name(section.stage))
    if results.get(section.stage) is not None:
        return SectionView(section, href, "", rows)
    # the whole file is missing: say so once, not on every row
    note = lookup(results, section.stage)[1]
    return SectionView(section, href, note, [Shown(s.key, s.label, s.text, "" if s.note == note else s.note)
                                             for s in rows])


def build(paths: Paths) -> Page:
    """Everything the page shows, read from the results files under paths.root."""
    results = read_results(paths)
    key_figures = [(shown(results, key, label), shown(results, other, other_label))
                   for key, label, other, other_label in (
        ("evaluate.accuracy", "fine-tuned accuracy on val", "evaluate.baseline", "no-training baseline"),
        ("quantize.int8", "int8 TFLite accuracy on val", "quantize.float32", "float32"),
        ("quantize.int8_bytes", "int8 model size", "quantize.float_bytes", "float32"),
        ("quantize.int8_ms_2_threads", "int8 latency, 2 threads", "quantize.float_ms_2_threads", "float32"),
    )]
    return Page([section_view(paths, results, s) for s in SECTIONS],
                all_verdicts(results.get("evaluate"), results.get("quantize")), accuracy_chart(results),
                latency_rows(results), stage_rows(paths, results), total(results, "wall_s"),
                total(results, "notebook_s"), key_figures, report_link(paths, "compare"), headline(results),
                lookup(results, "quantize.backbone")[0])


def render(page: Page) -> str:
    env = environment().overlay(autoescape=True)
    return env.get_template("index.html.j2").render(
        page=page, number=notebook_name, stage_number=stage_number, na=NA, first=REPORTED[0], last=REPORTED[-1])


def numbers(page: Page):
    """Every number of the page, one row each, by stage (a pandas DataFrame)."""
    import pandas as pd

    return pd.DataFrame(page.rows()).set_index(["stage", "number"])


def headline_table(page: Page):
    """The headline numbers as metrics/study.json holds them (what `dvc exp show` lists)."""
    import pandas as pd

    return pd.Series(page.headline, name="metrics/study.json").to_frame()


def stage_table(page: Page):
    """Each stage's report and time, and the total."""
    import pandas as pd

    rows = [{"stage": f"{r.number} {r.stage}", "report": r.href or "missing", "wall time": r.wall.text,
             "notebook time": r.notebook.text} for r in page.stages]
    rows.append({"stage": "total", "report": "", "wall time": page.total_wall.text,
                 "notebook time": page.total_notebook.text})
    return pd.DataFrame(rows).set_index("stage")


def write(paths: Paths, page: Page) -> Path:
    """reports/index.html and metrics/study.json; the page's path."""
    write_text(paths.index, render(page))
    write_json(paths.headline, page.headline)
    return paths.index


def run(paths: Paths) -> Page:
    """The report stage: reports/index.html and metrics/study.json from the results files."""
    page = build(paths)
    write(paths, page)
    return page
