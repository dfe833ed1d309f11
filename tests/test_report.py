"""The report page (reports/index.html), rendered by a real browser: every number on it is the
metrics file's value formatted by the report's own formatter, every stage report is linked or
marked missing, and a null baseline reads "n/a" with its reason.

The browser tests need Chromium (`chromium`, Debian's package; .ci/run installs it) and skip
where there is none. Chromium runs with everything that would reach the network turned off.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from workbook import report
from workbook.paths import STAGES, Paths
from workbook.stages import notebook_name

REPORTED = STAGES[:STAGES.index("report")]
MISSING_REPORT = "finetune"  # the stage whose HTML report the fake study lacks

METRICS = {
    "data": {"classes": 3, "train_images": 1234, "val_images": 567, "skipped": 2, "converted": 5,
             "val_from_imagenet_train": 500, "val_from_imagenet_val": 67,
             "warnings": ['class "bee<i>" has no val images & is trained anyway']},
    "features": {"images": 1801, "seconds": 12.345, "images_per_s": 145.87, "cache_mb": 98.765},
    "tune": {"best_lr": 0.00123456, "trials": 4, "best_val_accuracy": 0.912345},
    "train": {"val_accuracy": 0.876543, "lr": 0.00123456, "epochs": 3},
    "finetune": {"val_accuracy": 0.934567, "lr": 0.000123456, "epochs": 2},
    "evaluate": {"accuracy": 0.934567, "head_accuracy": 0.876543, "baseline_accuracy": None,
                 "baseline_note": "skipped: the with-top weights could not be loaded <offline>",
                 "macro_f1": 0.930121, "accuracy_imagenet_val": 0.955224, "imagenet_val_images": 67},
    "quantize": {"float_accuracy": 0.934567, "int8_accuracy": 0.921111, "agreement": 0.987654,
                 "float_bytes": 9_123_456, "int8_bytes": 2_654_321, "io_dtype": "uint8",
                 "float_latency_ms_2_threads": 7.5, "int8_latency_ms_2_threads": 3.14159,
                 "labels_in_metadata": False, "labels_note": "labels are in models/labels.txt",
                 "latency": {dtype: {str(t): {"median_ms": scale * 10 / t, "p90_ms": scale * 12.345 / t}
                                     for t in (1, 2, 4)}
                             for dtype, scale in (("float32", 1.0), ("int8", 0.4321))}},
}
TIMINGS = {stage: {"stage": stage, "wall_s": 10.25 * (i + 1), "notebook_s": 8.04 * (i + 1)}
           for i, stage in enumerate(REPORTED)}

# What the brief asks the page to show, spelled out here (not taken from report.py).
REQUIRED = [
    "data.classes", "data.train_images", "data.val_images", "data.skipped", "data.converted",
    "data.val_from_imagenet_train", "data.val_from_imagenet_val", "data.warnings",
    "features.images", "features.seconds", "features.images_per_s", "features.cache_mb",
    "tune.best_lr", "tune.trials", "tune.best_val_accuracy",
    "train.val_accuracy", "train.lr", "train.epochs",
    "finetune.val_accuracy", "finetune.lr", "finetune.epochs",
    "evaluate.accuracy", "evaluate.head_accuracy", "evaluate.baseline_accuracy", "evaluate.macro_f1",
    "evaluate.accuracy_imagenet_val", "evaluate.imagenet_val_images",
    "quantize.float_accuracy", "quantize.int8_accuracy", "quantize.agreement", "quantize.float_bytes",
    "quantize.int8_bytes", "quantize.io_dtype", "quantize.int8_latency_ms_2_threads",
    "quantize.float_latency_ms_2_threads", "quantize.labels_in_metadata",
    *[f"quantize.latency.{d}.{t}.{s}" for d in ("float32", "int8") for t in ("1", "2", "4")
      for s in ("median_ms", "p90_ms")],
    *[f"timings.{stage}.{f}" for stage in REPORTED for f in ("wall_s", "notebook_s")],
    "timings.total.wall_s", "timings.total.notebook_s",
]


def write_study(root: Path, metrics: dict = METRICS) -> Paths:
    """A folder laid out like the repository after stages 1-7: metrics, timings, stage reports."""
    paths = Paths(root=root)
    paths.timings.mkdir(parents=True)
    paths.reports.mkdir(parents=True)
    for stage, values in metrics.items():
        paths.stage_metrics(stage).write_text(json.dumps(values))
    for stage, timing in TIMINGS.items():
        paths.stage_timing(stage).write_text(json.dumps(timing))
    # a timing of the report stage from an earlier run: not one of stages 1-7, must not count
    paths.stage_timing("report").write_text(json.dumps({"stage": "report", "wall_s": 9999.0, "notebook_s": 9999.0}))
    for stage in REPORTED:
        if stage != MISSING_REPORT:
            (paths.reports / f"{notebook_name(stage)}.html").write_text(f"<html><body>{stage}</body></html>")
    return paths


def expected(key: str) -> str:
    """The JSON value behind a data-metric key, formatted by the report's formatter."""
    parts = key.split(".")
    if parts[:2] == ["timings", "total"]:
        value = sum(t[parts[2]] for t in TIMINGS.values())
    elif parts[0] == "timings":
        value = TIMINGS[parts[1]][parts[2]]
    else:
        value = METRICS[parts[0]]
        for part in parts[1:]:
            value = value[part]
    return report.format_value(value, report.kind_of(key))


class Dom(HTMLParser):
    """What the tests read from a page: data-metric texts, stage links and markers, verdicts."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.metrics: dict[str, list[str]] = {}
        self.stages: dict[str, list[tuple[str, str | None, str]]] = {}  # stage: (tag, href, text)
        self.tags: list[tuple[str, dict]] = []
        self.verdicts: list[str] = []
        self.text: list[str] = []
        self._open: list[list] = []  # [tag, depth, chunks, on_close]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        for item in self._open:
            item[1] += item[0] == tag
        if "data-verdict" in a:
            self.verdicts.append(a["data-verdict"])
        if "data-metric" in a:
            self._open.append([tag, 0, [], lambda text, k=a["data-metric"]: self.metrics.setdefault(k, []).append(text)])
        if "data-stage" in a:
            self._open.append([tag, 0, [], lambda text, s=a["data-stage"], t=tag, h=a.get("href"):
                               self.stages.setdefault(s, []).append((t, h, text))])

    def handle_endtag(self, tag):
        for item in list(self._open):
            if item[0] == tag:
                if item[1] == 0:
                    self._open.remove(item)
                    item[3]("".join(item[2]).strip())
                else:
                    item[1] -= 1

    def handle_data(self, data):
        self.text.append(data)
        for item in self._open:
            item[2].append(data)


def chromium() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found is None:
        pytest.skip("no Chromium binary (chromium, chromium-browser or google-chrome) on PATH; "
                    "install Debian's chromium package to run the browser tests")
    return found


def run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    # Every flag that stops Chromium from reaching the network: this machine (and CI) is offline.
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", *args, page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Paths, Dom]:
    """The fake study's page as Chromium sees it (rendered once for the tests that read it)."""
    tmp = tmp_path_factory.mktemp("rendered")
    paths = write_study(tmp / "repo")
    report.write_index(paths)
    dom = Dom(run_chromium(paths.index, tmp / "profile", "--dump-dom").stdout)
    return paths, dom


def test_every_number_in_the_browser_is_the_metrics_value_formatted(rendered):
    _, dom = rendered
    assert dom.metrics, "no data-metric element in the rendered page"
    missing = [k for k in REQUIRED if k not in dom.metrics]
    assert not missing, f"not on the page: {missing}"
    for key, texts in dom.metrics.items():
        for text in texts:
            assert text == expected(key), f"{key}: page shows {text!r}, metrics say {expected(key)!r}"
    # spot checks of the formatter's output as a reader sees it
    assert dom.metrics["evaluate.accuracy"][0] == "93.46%"
    assert dom.metrics["quantize.int8_bytes"][0] == "2.53 MiB"
    assert dom.metrics["timings.total.wall_s"] == ["287.0 s"]  # 10.25 x (1+...+7); the stale report time left out


def test_null_baseline_reads_na_with_its_reason(rendered):
    _, dom = rendered
    assert set(dom.metrics["evaluate.baseline_accuracy"]) == {"n/a"}
    assert METRICS["evaluate"]["baseline_note"] in "".join(dom.text)  # escaped markup comes back as text


def test_every_stage_report_is_linked_or_marked_missing(rendered):
    paths, dom = rendered
    for stage in REPORTED:
        marks = dom.stages.get(stage)
        assert marks, f"{stage} is not on the page"
        if stage == MISSING_REPORT:
            assert all(tag != "a" for tag, _, _ in marks), f"{stage}: a link to a missing report"
            assert any("missing" in text for _, _, text in marks)
        else:
            assert ("a", f"{notebook_name(stage)}.html") in [(t, h) for t, h, _ in marks]
    links = [a["href"] for tag, a in dom.tags if tag == "a"]
    assert links and all((paths.reports / href).is_file() for href in links), links


def test_page_loads_nothing_from_anywhere(rendered):
    _, dom = rendered
    assert not [tag for tag, _ in dom.tags if tag in ("script", "link", "img", "iframe", "object")]
    for _, attrs in dom.tags:
        for name in ("href", "src"):
            assert not str(attrs.get(name, "")).startswith(("http:", "https:", "//")), attrs


def test_targets_are_judged_on_the_page(rendered):
    _, dom = rendered
    # baseline null: cannot tell; int8 1.35 points below float: short; agreement 98.77%: short
    assert dom.verdicts == ["cannot tell", "falls short", "falls short"]
    text = " ".join("".join(dom.text).split())
    assert "1.35 points below" in text and "98.77%" in text


def test_screenshot_is_a_real_picture(tmp_path):
    paths = write_study(tmp_path / "repo")
    report.write_index(paths)
    shot = tmp_path / "index.png"
    run_chromium(paths.index, tmp_path / "profile", "--hide-scrollbars", "--window-size=1100,1600",
                 f"--screenshot={shot}")
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1100, 1600)
        rgb = im.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 50, "a near-blank page"
        inked = sum(1 for p in rgb.resize((110, 160)).getdata() if sum(p) < 600)
        assert inked > 0.02 * 110 * 160, "almost nothing drawn"


def test_missing_metrics_file_shows_na_and_says_why(tmp_path):
    metrics = {k: v for k, v in METRICS.items() if k != "quantize"}
    paths = write_study(tmp_path / "repo", metrics)
    page = report.write_index(paths)
    dom = Dom(paths.index.read_text())
    assert {t for k, texts in dom.metrics.items() if k.startswith("quantize.") for t in texts} == {"n/a"}
    assert "metrics/quantize.json not found: the quantize stage has not run" in "".join(dom.text)
    assert [v.met for v in page.verdicts] == [None, None, None]


def test_format_value():
    f = report.format_value
    assert f(0.97554, "percent") == "97.55%" and f(1, "percent") == "100.00%"
    assert f(2_654_321, "bytes") == "2.53 MiB" and f(98.765, "mib") == "98.77 MiB"
    assert f(3.14159, "ms") == "3.14 ms" and f(12.345, "seconds") == "12.3 s"
    assert f(1234, "count") == "1,234" and f(0.00123456, "lr") == "1.23e-03"
    assert f(145.87, "rate") == "145.9 images/s" and f(0.930121, "score") == "0.9301"
    assert f(True, "yesno") == "yes" and f([], "list") == "none" and f(["a", "b"], "list") == "a; b"
    assert f(None, "percent") == f(math.nan, "ms") == f(None, "text") == "n/a"
    with pytest.raises(ValueError):
        f(1, "furlongs")
    with pytest.raises(KeyError):
        report.kind_of("evaluate.nothing")


def test_baseline_verdict():
    v = report.baseline_verdict({"accuracy": 0.9, "baseline_accuracy": 0.8})
    assert v.met is True and "beats" in v.text and "+10.00 points" in v.text
    v = report.baseline_verdict({"accuracy": 0.9, "baseline_accuracy": 0.8, "only_finetuned_right": 12,
                                 "only_baseline_right": 10, "vs_baseline_p_value": 0.83})
    assert "right on 12" in v.text and "baseline on 10" in v.text and "p = 0.83: within chance" in v.text
    v = report.baseline_verdict({"accuracy": 0.8, "baseline_accuracy": 0.8})
    assert v.met is False and "does not beat" in v.text
    v = report.baseline_verdict({"accuracy": 0.9, "baseline_accuracy": None, "baseline_note": "skipped: offline"})
    assert v.met is None and "n/a" in v.text and "skipped: offline" in v.text
    assert report.baseline_verdict(None).met is None


def test_int8_verdicts():
    q = copy.deepcopy(METRICS["quantize"])
    assert report.int8_accuracy_verdict({**q, "float_accuracy": 0.9, "int8_accuracy": 0.895}).met is True  # 0.50
    v = report.int8_accuracy_verdict({**q, "float_accuracy": 0.9, "int8_accuracy": 0.894})
    assert v.met is False and "0.60 points below" in v.text and "outside" in v.text
    v = report.int8_accuracy_verdict({**q, "float_accuracy": 0.9, "int8_accuracy": 0.903})
    assert v.met is True and "0.30 points above" in v.text
    assert report.agreement_verdict({"agreement": 0.99}).met is True
    v = report.agreement_verdict({"agreement": 0.9899})
    assert v.met is False and "98.99%" in v.text and "falls short" in v.text
    assert report.int8_accuracy_verdict(None).met is None and report.agreement_verdict({}).met is None
