"""The report stage: one self-contained page, reports/index.html, with the study's headline numbers.

Every number on the page is read from the metrics files the stages wrote, never recomputed (the
only sums and differences are the total of the stage times and the gaps the targets are about).
Each sits in an element with data-metric="file.key" and is shown by `format_value`, so a test can
check the rendered page against the JSON. The page loads nothing: no script, no external style
sheet or font, the chart is inline SVG; it renders offline.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import jinja2

from workbook.atomic import write_text
from workbook.paths import STAGES, Paths
from workbook.targets import INT8_MAX_GAP_POINTS, INT8_MIN_AGREEMENT, agrees_enough, within_gap
from workbook.stages import notebook_name, read_timings, stage_number

NA = "n/a"
# The stages this page reports on: all before the report stage, which writes the page.
REPORTED = STAGES[:STAGES.index("report")]

_FORMATS = {
    "percent": lambda v: f"{100 * v:.2f}%",
    "bytes": lambda v: f"{v / 2**20:.2f} MiB",
    "mib": lambda v: f"{v:,.2f} MiB",
    "ms": lambda v: f"{v:.2f} ms",
    "seconds": lambda v: f"{v:,.1f} s",
    "count": lambda v: f"{v:,}",
    "rate": lambda v: f"{v:,.1f} images/s",
    "lr": lambda v: f"{v:.2e}",
    "score": lambda v: f"{v:.4f}",
    "yesno": lambda v: "yes" if v else "no",
    "list": lambda v: "; ".join(map(str, v)) if v else "none",
    "text": str,
}


def format_value(value: Any, kind: str) -> str:
    """How the page shows a metric of this kind: accuracies as percentages with 2 decimals, bytes
    as MiB (as the feature cache reports its size) and ms with 2 decimals, seconds with 1; a
    missing, null or NaN value as "n/a"."""
    if kind not in _FORMATS:
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(_FORMATS)}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    return _FORMATS[kind](value)


@dataclass(frozen=True)
class Metric:
    key: str  # "evaluate.accuracy": key accuracy of metrics/evaluate.json
    label: str
    kind: str  # how format_value shows it
    note_key: str | None = None  # a text metric shown beside it (e.g. why the baseline is n/a)


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
        Metric("train.val_accuracy", "val accuracy", "percent"),
        Metric("train.lr", "learning rate", "lr"),
        Metric("train.epochs", "epochs", "count"),
    )),
    Section("finetune", "Fine-tuning", (
        Metric("finetune.val_accuracy", "val accuracy", "percent"),
        Metric("finetune.lr", "learning rate", "lr"),
        Metric("finetune.epochs", "epochs", "count"),
    )),
    Section("evaluate", "Evaluation on val", (
        Metric("evaluate.accuracy", "fine-tuned accuracy", "percent"),
        Metric("evaluate.head_accuracy", "head-only accuracy", "percent"),
        Metric("evaluate.baseline_accuracy", "no-training baseline accuracy", "percent",
               note_key="evaluate.baseline_note"),
        Metric("evaluate.macro_f1", "fine-tuned macro F1", "score"),
        Metric("evaluate.accuracy_imagenet_val", "fine-tuned accuracy on ImageNet-val images", "percent"),
        Metric("evaluate.imagenet_val_images", "ImageNet-val images in val", "count"),
    )),
    Section("quantize", "int8 TFLite model", (
        Metric("quantize.float_accuracy", "float32 TFLite accuracy", "percent"),
        Metric("quantize.int8_accuracy", "int8 TFLite accuracy", "percent"),
        Metric("quantize.agreement", "same prediction, int8 and float32", "percent"),
        Metric("quantize.float_bytes", "float32 model size", "bytes"),
        Metric("quantize.int8_bytes", "int8 model size", "bytes"),
        Metric("quantize.io_dtype", "int8 model input/output type", "text"),
        Metric("quantize.float_latency_ms_2_threads", "float32 latency, 2 threads (median)", "ms"),
        Metric("quantize.int8_latency_ms_2_threads", "int8 latency, 2 threads (median)", "ms"),
        Metric("quantize.labels_in_metadata", "labels inside the model file", "yesno",
               note_key="quantize.labels_note"),
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


def read_metrics(paths: Paths) -> dict[str, Any]:
    """Every metrics file the page reads, by stage (None where it is missing), plus "timings"."""
    metrics: dict[str, Any] = {}
    for stage in REPORTED:
        f = paths.stage_metrics(stage)
        metrics[stage] = json.loads(f.read_text()) if f.exists() else None
    # a timing of the report stage itself is of an earlier run: leave it out
    metrics["timings"] = {s: t for s, t in read_timings(paths).items() if s in REPORTED}
    return metrics


def source(key: str) -> str:
    """The file a data-metric key is read from."""
    parts = key.split(".")
    if parts[0] == "timings":
        return f"metrics/timings/{parts[1]}.json"
    return f"metrics/{parts[0]}.json"


def lookup(metrics: dict[str, Any], key: str) -> tuple[Any, str]:
    """The value at a dotted key, and why there is none (empty when there is one)."""
    parts = key.split(".")
    depth = 2 if parts[0] == "timings" else 1  # timings.data.wall_s: file timings/data.json
    value: Any = metrics
    for i, part in enumerate(parts):
        if not isinstance(value, dict) or value.get(part) is None:
            if i < depth:
                return None, f"{source(key)} not found: the {parts[depth - 1]} stage has not run"
            if isinstance(value, dict) and part in value:
                return None, f"null in {source(key)}"
            return None, f"no {'.'.join(parts[depth:])} in {source(key)}"
        value = value[part]
    return value, ""


@dataclass(frozen=True)
class Shown:
    """One number as the page shows it."""
    key: str
    label: str
    text: str
    note: str = ""  # why it is n/a, or the text that goes with it


def shown(metrics: dict[str, Any], key: str, label: str, note_key: str | None = None) -> Shown:
    value, why = lookup(metrics, key)
    note = lookup(metrics, note_key)[0] if note_key else None
    return Shown(key, label, format_value(value, kind_of(key)), str(note) if note else why)


@dataclass(frozen=True)
class Verdict:
    target: str
    met: bool | None  # None: the numbers to decide are missing
    text: str

    @property
    def status(self) -> str:
        return {True: "met", False: "falls short", None: "cannot tell"}[self.met]

    @property
    def css(self) -> str:
        return {True: "met", False: "short", None: "unknown"}[self.met]


def _pct(x: float | None) -> str:
    return format_value(x, "percent")


def baseline_verdict(evaluate: dict | None) -> Verdict:
    target = "fine-tuned model beats the no-training baseline"
    evaluate = evaluate or {}
    ft, bl = evaluate.get("accuracy"), evaluate.get("baseline_accuracy")
    if ft is None or bl is None:
        why = evaluate.get("baseline_note") or ("metrics/evaluate.json not found" if not evaluate
                                                else "no accuracy recorded")
        return Verdict(target, None, f"No comparison: the fine-tuned model scores {_pct(ft)}, the "
                                     f"no-training baseline {_pct(bl)} ({why}).")
    gap = 100 * (ft - bl)
    verb = "beats" if ft > bl else "does not beat"
    text = f"The fine-tuned model ({_pct(ft)}) {verb} the no-training ImageNet baseline ({_pct(bl)}): {gap:+.2f} points."
    p = evaluate.get("vs_baseline_p_value")
    if p is not None:
        text += (f" Only the fine-tuned model is right on {evaluate['only_finetuned_right']} val images, only the "
                 f"baseline on {evaluate['only_baseline_right']} (exact McNemar p = {p:.2g}: "
                 f"{'a real difference' if p < 0.05 else 'within chance'}).")
    return Verdict(target, ft > bl, text)


def int8_accuracy_verdict(quantize: dict | None) -> Verdict:
    target = f"int8 accuracy within {INT8_MAX_GAP_POINTS} points of float32"
    quantize = quantize or {}
    fl, q = quantize.get("float_accuracy"), quantize.get("int8_accuracy")
    if fl is None or q is None:
        return Verdict(target, None, f"int8 {_pct(q)} against float32 {_pct(fl)}: no comparison "
                                     "(metrics/quantize.json missing or incomplete).")
    gap = 100 * (q - fl)
    met = within_gap(gap)
    side = "below" if gap < 0 else "above"
    return Verdict(target, met, f"The int8 model ({_pct(q)}) is {abs(gap):.2f} points {side} the "
                                f"float32 model ({_pct(fl)}): {'within' if met else 'outside'} the "
                                f"{INT8_MAX_GAP_POINTS}-point target.")


def agreement_verdict(quantize: dict | None) -> Verdict:
    target = f"int8 and float32 agree on at least {100 * INT8_MIN_AGREEMENT:g}% of val images"
    agreement = (quantize or {}).get("agreement")
    if agreement is None:
        return Verdict(target, None, "No agreement recorded (metrics/quantize.json missing or incomplete).")
    met = agrees_enough(agreement)
    return Verdict(target, met, f"The int8 and float32 models make the same prediction on "
                                f"{_pct(agreement)} of val images: {'meets' if met else 'falls short of'} "
                                f"the {100 * INT8_MIN_AGREEMENT:g}% target.")


def verdicts(metrics: dict[str, Any]) -> list[Verdict]:
    return [baseline_verdict(metrics.get("evaluate")), int8_accuracy_verdict(metrics.get("quantize")),
            agreement_verdict(metrics.get("quantize"))]


@dataclass(frozen=True)
class Bar:
    label: str
    shown: Shown
    fraction: float | None  # of the chart's width; None: no value


@dataclass(frozen=True)
class Chart:
    floor: float  # accuracy at the left edge
    ticks: list[tuple[float, str]]  # (fraction of width, label)
    bars: list[Bar]


ACCURACY_BARS = (
    ("no-training baseline", "evaluate.baseline_accuracy", "evaluate.baseline_note"),
    ("head only", "evaluate.head_accuracy", None),
    ("fine-tuned", "evaluate.accuracy", None),
    ("int8 TFLite", "quantize.int8_accuracy", None),
)


def accuracy_chart(metrics: dict[str, Any]) -> Chart:
    """The accuracies side by side, on an axis that starts low enough to show every bar."""
    values = {key: lookup(metrics, key)[0] for _, key, _ in ACCURACY_BARS}
    known = [v for v in values.values() if v is not None]
    # start 5 points below the lowest bar, on a multiple of 5: gaps of a point stay visible
    floor = max(0.0, math.floor((100 * min(known) - 5) / 5) * 5 / 100) if known else 0.0
    span = 1.0 - floor
    step = 0.02 if span <= 0.1 else (0.05 if span <= 0.25 else 0.1 if span <= 0.5 else 0.2)
    ticks = [(round(i * step, 6) / span, f"{100 * (floor + i * step):.0f}%")
             for i in range(int(round(span / step)) + 1)]
    bars = [Bar(label, shown(metrics, key, label, note),
                None if values[key] is None else max(0.0, min(1.0, (values[key] - floor) / span)))
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
    note: str  # why the whole section is n/a (its metrics file is missing), else empty
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

    def rows(self) -> list[dict]:
        """Every headline number, one row each (for the notebook's table)."""
        return [{"stage": view.section.stage, "number": s.label, "value": s.text, "key": s.key,
                 "note": s.note or view.note} for view in self.sections for s in view.shown]


def report_link(paths: Paths, stage: str) -> str | None:
    name = f"{notebook_name(stage)}.html"
    return name if (paths.reports / name).is_file() else None


def latency_rows(metrics: dict[str, Any]) -> list[tuple[str, list[Shown]]]:
    latency = (metrics.get("quantize") or {}).get("latency") or {}
    threads = sorted({t for per in latency.values() if isinstance(per, dict) for t in per},
                     key=lambda t: (not t.isdigit(), int(t) if t.isdigit() else 0, t))
    return [(t, [shown(metrics, f"quantize.latency.{dtype}.{t}.{stat}", f"{dtype} {stat}")
                 for dtype in ("float32", "int8") for stat in ("median_ms", "p90_ms")])
            for t in threads]


def stage_rows(paths: Paths, metrics: dict[str, Any]) -> list[StageRow]:
    return [StageRow(stage_number(s), s, report_link(paths, s),
                     shown(metrics, f"timings.{s}.wall_s", "wall time"),
                     shown(metrics, f"timings.{s}.notebook_s", "notebook time"))
            for s in REPORTED]


def total(metrics: dict[str, Any], field: str) -> Shown:
    """The sum of one timing over the stages that recorded it, saying which did not."""
    times = {s: lookup(metrics, f"timings.{s}.{field}")[0] for s in REPORTED}
    missing = [s for s, t in times.items() if t is None]
    known = [t for t in times.values() if t is not None]
    note = f"without {', '.join(missing)} (no time recorded)" if missing else ""
    return Shown(f"timings.total.{field}", "total", format_value(sum(known) if known else None, "seconds"),
                 note)


def section_view(paths: Paths, metrics: dict[str, Any], section: Section) -> SectionView:
    rows = [shown(metrics, m.key, m.label, m.note_key) for m in section.metrics]
    if metrics.get(section.stage) is not None:
        return SectionView(section, report_link(paths, section.stage), "", rows)
    # the whole file is missing: say so once, not on every row
    note = lookup(metrics, section.stage)[1]
    return SectionView(section, report_link(paths, section.stage), note,
                       [Shown(s.key, s.label, s.text, "" if s.note == note else s.note) for s in rows])


def build(paths: Paths) -> Page:
    """Everything the page shows, read from the metrics files under paths.root."""
    metrics = read_metrics(paths)
    sections = [section_view(paths, metrics, sec) for sec in SECTIONS]
    key_figures = [(shown(metrics, key, label), shown(metrics, other, other_label))
                   for key, label, other, other_label in (
        ("evaluate.accuracy", "fine-tuned accuracy on val", "evaluate.head_accuracy", "head only"),
        ("quantize.int8_accuracy", "int8 TFLite accuracy on val", "quantize.float_accuracy", "float32"),
        ("quantize.int8_bytes", "int8 model size", "quantize.float_bytes", "float32"),
        ("quantize.int8_latency_ms_2_threads", "int8 latency, 2 threads", "quantize.float_latency_ms_2_threads",
         "float32"),
    )]
    return Page(sections, verdicts(metrics), accuracy_chart(metrics), latency_rows(metrics),
                stage_rows(paths, metrics), total(metrics, "wall_s"), total(metrics, "notebook_s"),
                key_figures)


def render(page: Page) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    return env.from_string(TEMPLATE).render(page=page, number=notebook_name, stage_number=stage_number, na=NA,
                                            first=REPORTED[0], last=REPORTED[-1])


def write_index(paths: Paths) -> Page:
    """Build reports/index.html from the metrics files, atomically; return what it shows."""
    page = build(paths)
    write_text(paths.index, render(page))
    return page


TEMPLATE = """\
{%- macro num(s) -%}
<span class="num{% if s.text == na %} na{% endif %}" data-metric="{{ s.key }}">{{ s.text }}</span>
{%- endmacro -%}
{%- macro stage_title(section, href) -%}
{% if href %}<a href="{{ href }}" data-stage="{{ section.stage }}">{{ section.title }}</a>
{%- else %}{{ section.title }} <span class="missing" data-stage="{{ section.stage }}">report missing</span>{% endif %}
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MobileNetV2 transfer learning: the study at a glance</title>
<style>
  :root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da;
          --good: #1a7f37; --bad: #cf222e; --unknown: #8c959f; }
  * { box-sizing: border-box; }
  body { margin: 0; color: var(--ink); background: #fff;
         font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
  main { max-width: 1040px; margin: 0 auto; padding: 28px 24px 48px; }
  h1 { font-size: 26px; margin: 0 0 4px; }
  h2 { font-size: 19px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
  h3 { font-size: 15px; margin: 0 0 6px; }
  p { margin: 6px 0; }
  a { color: var(--accent); }
  .lede, .aside, .note, figcaption { color: var(--muted); }
  .aside, figcaption { font-size: 13px; }
  .note { display: block; font-size: 12px; overflow-wrap: anywhere; }
  .num { font-variant-numeric: tabular-nums; white-space: nowrap; }
  .na { color: var(--muted); font-style: italic; }
  .missing { color: var(--bad); font-size: 12px; font-weight: 600; }
  .figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(210px, 1fr)); gap: 12px;
             margin-top: 20px; }
  .figure { border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; background: var(--soft); }
  .figure .num { display: block; font-size: 26px; font-weight: 650; }
  .figure .label { display: block; font-size: 13px; }
  .figure .other { display: block; color: var(--muted); font-size: 13px; }
  .figure .other .num { display: inline; font-size: 13px; font-weight: normal; }
  ul.verdicts { list-style: none; padding: 0; margin: 0; }
  ul.verdicts li { display: flex; gap: 12px; align-items: baseline; padding: 8px 0;
                   border-bottom: 1px solid var(--soft); }
  .badge { flex: none; width: 96px; text-align: center; border-radius: 12px; padding: 1px 8px;
           font-size: 12px; font-weight: 600; color: #fff; }
  .badge.met { background: var(--good); } .badge.short { background: var(--bad); }
  .badge.unknown { background: var(--unknown); }
  ul.verdicts li > span:last-child { min-width: 0; overflow-wrap: anywhere; }
  .target { display: block; font-size: 12px; color: var(--muted); }
  figure { margin: 0; }
  svg { display: block; width: 100%; max-width: 760px; height: auto; }
  svg text { font: 13px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--ink); }
  svg .tick { fill: var(--muted); font-size: 11px; }
  svg .grid { stroke: var(--line); }
  svg .bar { fill: #54aeff; } svg .bar.main { fill: var(--accent); }
  svg .nobar { fill: none; stroke: var(--unknown); stroke-dasharray: 4 3; }
  .sections { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 20px 28px;
              align-items: start; }
  @media (min-width: 700px) { .sections .wide { grid-column: span 2; } }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  td.value, th.value { text-align: right; }
  thead th { font-size: 13px; color: var(--muted); font-weight: 600; }
  caption, .caption { text-align: left; font-weight: 600; padding: 0 0 6px; margin: 0; font-size: 15px; }
  tfoot td { font-weight: 650; border-bottom: none; border-top: 2px solid var(--line); }
  footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<main>
<header>
  <h1>MobileNetV2 transfer learning: the study at a glance</h1>
  <p class="lede">The headline numbers of every stage, as the stages wrote them to
    <code>metrics/</code>; each stage's full report is linked below. Numbers shown as
    <span class="na">n/a</span> were not recorded, with the reason beside them.</p>
</header>

<section class="figures" aria-label="key figures">
{% for s, other in page.key_figures %}
  <div class="figure">{{ num(s) }}<span class="label">{{ s.label }}</span>
    <span class="other">{{ other.label }}: {{ num(other) }}</span>
    {% if s.note %}<span class="note">{{ s.note }}</span>{% endif %}</div>
{% endfor %}
</section>

<h2>Targets</h2>
<ul class="verdicts">
{% for v in page.verdicts %}
  <li data-verdict="{{ v.status }}">
    <span class="badge {{ v.css }}">{{ v.status }}</span>
    <span>{{ v.text }}<span class="target">target: {{ v.target }}</span></span>
  </li>
{% endfor %}
</ul>

<h2>Accuracy on val, side by side</h2>
{% set c = page.chart %}
{% set left, width, row = 170, 470, 34 %}
<figure>
<svg viewBox="0 0 {{ left + width + 90 }} {{ 30 + row * c.bars|length }}" role="img"
     aria-label="val accuracy of the baseline, the head, the fine-tuned and the int8 model">
  {% for x, label in c.ticks %}
  <line class="grid" x1="{{ left + x * width }}" x2="{{ left + x * width }}" y1="4"
        y2="{{ 8 + row * c.bars|length }}"/>
  <text class="tick" x="{{ left + x * width }}" y="{{ 24 + row * c.bars|length }}"
        text-anchor="middle">{{ label }}</text>
  {% endfor %}
  {% for b in c.bars %}
  {% set y = 8 + row * loop.index0 %}
  <text x="{{ left - 10 }}" y="{{ y + 19 }}" text-anchor="end">{{ b.label }}</text>
  {% if b.fraction is none %}
  <rect class="nobar" x="{{ left }}" y="{{ y + 4 }}" width="{{ width }}" height="{{ row - 10 }}" rx="3"/>
  <text x="{{ left + 10 }}" y="{{ y + 19 }}" class="tick"><tspan data-metric="{{ b.shown.key }}">{{ b.shown.text }}</tspan>{% if b.shown.note %}: {{ b.shown.note|truncate(70) }}{% endif %}</text>
  {% else %}
  <rect class="bar{% if b.shown.key == 'evaluate.accuracy' %} main{% endif %}" x="{{ left }}" y="{{ y + 4 }}"
        width="{{ [b.fraction * width, 1]|max }}" height="{{ row - 10 }}" rx="3"/>
  <text x="{{ left + b.fraction * width + 6 }}" y="{{ y + 19 }}" data-metric="{{ b.shown.key }}">{{ b.shown.text }}</text>
  {% endif %}
  {% endfor %}
</svg>
<figcaption>Share of val images classified correctly. The axis starts at {{ (100 * c.floor)|round|int }}%,
  not 0, so that gaps of a point are visible. The baseline is the pretrained ImageNet classifier
  restricted to the study's classes, with no training.</figcaption>
</figure>

<h2>Stage by stage</h2>
<div class="sections">
{% for view in page.sections %}
  <table data-section="{{ view.section.stage }}">
    <caption>{{ stage_number(view.section.stage) }} · {{ stage_title(view.section, view.href) }}
      {%- if view.note %}<span class="note">{{ view.note }}</span>{% endif %}</caption>
    <tbody>
    {% for s in view.shown %}
      <tr><td>{{ s.label }}{% if s.note %}<span class="note">{{ s.note }}</span>{% endif %}</td>
          <td class="value">{{ num(s) }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
{% endfor %}
  <div class="wide">
  {% if page.latency %}
  <table class="latency">
    <caption>{{ stage_number("quantize") }} · Latency per image, by thread count<span class="note">TFLite interpreter, on the
      machine that ran the quantize stage</span></caption>
    <thead><tr><th>threads</th><th class="value">float32 median</th><th class="value">float32 p90</th>
      <th class="value">int8 median</th><th class="value">int8 p90</th></tr></thead>
    <tbody>
    {% for threads, cells in page.latency %}
      <tr><td>{{ threads }}</td>{% for s in cells %}<td class="value">{{ num(s) }}</td>{% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  {% else %}
  <p class="caption">{{ stage_number("quantize") }} · Latency per image, by thread count</p>
  <p class="na">No latency recorded: metrics/quantize.json is missing or has no latency.</p>
  {% endif %}
  </div>
</div>

<h2>Stages and their reports</h2>
<table class="stages">
  <thead><tr><th>stage</th><th>report</th><th class="value">wall time</th><th class="value">notebook time</th></tr></thead>
  <tbody>
  {% for r in page.stages %}
    <tr><td>{{ r.number }} · {{ r.stage }}</td>
      <td>{% if r.href %}<a href="{{ r.href }}" data-stage="{{ r.stage }}">{{ r.href }}</a>
          {%- else %}<span class="missing" data-stage="{{ r.stage }}">missing</span>{% endif %}</td>
      <td class="value">{{ num(r.wall) }}{% if r.wall.note %}<span class="note">{{ r.wall.note }}</span>{% endif %}</td>
      <td class="value">{{ num(r.notebook) }}</td></tr>
  {% endfor %}
  </tbody>
  <tfoot><tr><td colspan="2">total, stages {{ stage_number(first) }} to {{ stage_number(last) }}</td>
    <td class="value">{{ num(page.total_wall) }}{% if page.total_wall.note %}<span class="note">{{ page.total_wall.note }}</span>{% endif %}</td>
    <td class="value">{{ num(page.total_notebook) }}</td></tr></tfoot>
</table>
<p class="aside">Wall time: from the parameter check to the published report
  (<code>metrics/timings/STAGE.json</code>); notebook time: the notebook alone, as papermill measured it.
  The report stage's own time is written after this page, so it is not counted here.</p>

<footer>Written by the report stage (notebooks/{{ number("report") }}.ipynb) from the metrics files
  alone; nothing on this page is recomputed. It loads no script, style sheet or font from anywhere.</footer>
</main>
</body>
</html>
"""
