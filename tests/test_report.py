"""The report page (reports/index.html), rendered by a real browser: every number on it is the
metrics file's value formatted by the report's own formatter, every stage report is linked or
marked missing, and a null baseline reads "n/a" with its reason.

The browser tests need Chromium (`chromium`, Debian's package; .ci/run installs it) and skip
where there is none. Chromium runs with everything that would reach the network turned off.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from workbook.analysis.stats import Accuracy
from workbook.pipeline.contract import notebook_name
from workbook.pipeline.paths import STAGES, Paths
from workbook.analysis.headline import HEADLINE_KEYS
from workbook.stages import report

REPORTED = STAGES[:STAGES.index("report")]
MISSING_REPORT = "finetune"  # the stage whose HTML report the fake study lacks

def acc(right: int, images: int) -> dict:
    """An accuracy as the stages write it (stats.Accuracy): value and 95% interval."""
    return dataclasses.asdict(Accuracy.of(right, images))


RESULTS = {
    "data": {"classes": 3, "train_images": 1234, "val_images": 567, "skipped": 2, "converted": 5,
             "val_from_imagenet_train": 500, "val_from_imagenet_val": 67,
             "warnings": ['class "bee<i>" has no val images & is trained anyway']},
    "features": {"images": 1801, "seconds": 12.345, "images_per_s": 145.87, "cache_mb": 98.765},
    "tune": {"best_lr": 0.00123456, "trials": 4, "best_val_accuracy": 0.912345},
    "train": {"val_accuracy": 0.876543, "lr": 0.00123456, "epochs": 3},
    "finetune": {"val_accuracy": 0.934567, "lr": 0.000123456, "epochs": 2, "layers_trained": 24},
    "evaluate": {"accuracy": acc(530, 567), "head": acc(497, 567), "baseline": None, "vs_baseline": None,
                 "baseline_note": "skipped: the with-top weights could not be loaded <offline>",
                 "macro_f1": 0.930121, "imagenet_val": {"fine-tuned": acc(64, 67), "head only": acc(61, 67)}},
    "quantize": {"float32": acc(530, 567), "int8": acc(522, 567), "agreement": 0.987654, "disagreements": 7,
                 "float_bytes": 9_123_456, "int8_bytes": 2_654_321, "io_dtype": "uint8",
                 "float_ms_2_threads": 7.5, "int8_ms_2_threads": 3.14159,
                 "metadata": {"name": "Image classifier (3 classes, int8)", "labels": ["a", "b", "c"]},
                 "latency": {dtype: {str(t): {"median_ms": scale * 10 / t, "p90_ms": scale * 12.345 / t}
                                     for t in (1, 2, 4)}
                             for dtype, scale in (("float32", 1.0), ("int8", 0.4321))}},
}
TIMINGS = {stage: {"wall_s": 10.25 * (i + 1), "notebook_s": 8.04 * (i + 1)} for i, stage in enumerate(REPORTED)}

# What the page must show, spelled out here (not taken from report.py).
REQUIRED = [
    "data.classes", "data.train_images", "data.val_images", "data.skipped", "data.converted",
    "data.val_from_imagenet_train", "data.val_from_imagenet_val", "data.warnings",
    "features.images", "features.seconds", "features.images_per_s", "features.cache_mb",
    "tune.best_lr", "tune.trials", "tune.best_val_accuracy",
    "train.val_accuracy", "train.lr", "train.epochs",
    "finetune.val_accuracy", "finetune.lr", "finetune.epochs",
    "evaluate.accuracy", "evaluate.head", "evaluate.baseline", "evaluate.macro_f1",
    "evaluate.imagenet_val.fine-tuned",
    "quantize.float32", "quantize.int8", "quantize.agreement", "quantize.float_bytes",
    "quantize.int8_bytes", "quantize.io_dtype", "quantize.int8_ms_2_threads",
    "quantize.float_ms_2_threads", "quantize.metadata.name", "quantize.metadata.labels",
    *[f"quantize.latency.{d}.{t}.{s}" for d in ("float32", "int8") for t in ("1", "2", "4")
      for s in ("median_ms", "p90_ms")],
    *[f"timings.{stage}.{f}" for stage in REPORTED for f in ("wall_s", "notebook_s")],
    "timings.total.wall_s", "timings.total.notebook_s",
]


def write_study(root: Path, results: dict = RESULTS) -> Paths:
    """A folder laid out like the repository after stages 1-7: results, timings, stage reports."""
    paths = Paths(root=root)
    paths.timing("data").parent.mkdir(parents=True)
    paths.reports.mkdir(parents=True)
    for stage, values in results.items():
        paths.details(stage).write_text(json.dumps(values))
    for stage, timing in TIMINGS.items():
        paths.timing(stage).write_text(json.dumps(timing))
    # a timing of the report stage from an earlier run: not one of stages 1-7, must not count
    paths.timing("report").write_text(json.dumps({"wall_s": 9999.0, "notebook_s": 9999.0}))
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
        value = RESULTS[parts[0]]
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
    report.run(paths)
    dom = Dom(run_chromium(paths.index, tmp / "profile", "--dump-dom").stdout)
    return paths, dom


def test_every_number_in_the_browser_is_the_results_value_formatted(rendered):
    _, dom = rendered
    assert dom.metrics, "no data-metric element in the rendered page"
    missing = [k for k in REQUIRED if k not in dom.metrics]
    assert not missing, f"not on the page: {missing}"
    for key, texts in dom.metrics.items():
        for text in texts:
            assert text == expected(key), f"{key}: page shows {text!r}, results say {expected(key)!r}"
    # spot checks of the formatter's output as a reader sees it
    assert dom.metrics["evaluate.accuracy"][0] == "93.47% (95% CI 91.13–95.23%)"
    assert dom.metrics["quantize.int8_bytes"][0] == "2.53 MiB"
    assert dom.metrics["timings.total.wall_s"] == ["287.0 s"]  # 10.25 x (1+...+7); the stale report time left out


def test_null_baseline_reads_na_with_its_reason(rendered):
    _, dom = rendered
    assert set(dom.metrics["evaluate.baseline"]) == {"n/a"}
    assert RESULTS["evaluate"]["baseline_note"] in "".join(dom.text)  # escaped markup comes back as text


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
    # baseline null: cannot tell; int8 1.41 points below float: short; agreement 98.77%: short;
    # int8 3.14 ms against float32 7.5 ms: 2.39x, met
    assert dom.verdicts == ["cannot tell", "falls short", "falls short", "met"]
    text = " ".join("".join(dom.text).split())
    assert "1.41 points below" in text and "98.77%" in text


def test_screenshot_is_a_real_picture(tmp_path):
    paths = write_study(tmp_path / "repo")
    report.run(paths)
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


def test_missing_results_file_shows_na_and_says_why(tmp_path):
    results = {k: v for k, v in RESULTS.items() if k != "quantize"}
    paths = write_study(tmp_path / "repo", results)
    page = report.run(paths)
    dom = Dom(paths.index.read_text())
    assert {t for k, texts in dom.metrics.items() if k.startswith("quantize.") for t in texts} == {"n/a"}
    assert "results/quantize.json not found: the quantize stage has not run" in "".join(dom.text)
    assert [v.met for v in page.verdicts] == [None, None, None, None]
    assert page.headline["int8_acc"] is None and page.headline["acc"] == pytest.approx(530 / 567)


def test_format_value():
    f = report.format_value
    assert f(0.97554, "percent") == "97.55%" and f(1, "percent") == "100.00%"
    assert f(2_654_321, "bytes") == "2.53 MiB" and f(98.765, "mib") == "98.77 MiB"
    assert f(3.14159, "ms") == "3.14 ms" and f(12.345, "seconds") == "12.3 s"
    assert f(1234, "count") == "1,234" and f(0.00123456, "lr") == "1.23e-03"
    assert f(145.87, "rate") == "145.9 images/s" and f(0.930121, "score") == "0.9301"
    assert f([], "list") == "none" and f(["a", "b"], "list") == "a; b" and f(1.5, "ratio") == "1.50x"
    assert f({"value": 0.9, "low": 0.85, "high": 0.93}, "accuracy") == "90.00% (95% CI 85.00–93.00%)"
    assert f(None, "percent") == f(math.nan, "ms") == f(None, "text") == "n/a"
    with pytest.raises(ValueError):
        f(1, "furlongs")
    with pytest.raises(KeyError):
        report.kind_of("evaluate.nothing")


def test_headline_is_flat_numeric_and_read_from_the_results(tmp_path):
    paths = write_study(tmp_path / "repo")
    page = report.run(paths)
    written = json.loads(paths.headline.read_text())
    assert written == page.headline and tuple(written) == HEADLINE_KEYS and len(written) <= 16
    assert all(v is None or isinstance(v, (int, float)) for v in written.values())
    ft, q = RESULTS["evaluate"]["accuracy"], RESULTS["quantize"]["int8"]
    assert (written["acc"], written["acc_lo"], written["acc_hi"]) == (ft["value"], ft["low"], ft["high"])
    assert (written["int8_acc"], written["int8_lo"]) == (q["value"], q["low"])
    assert written["base_acc"] is None and written["int8_mb"] == 2.6543 and written["int8_ms"] == 3.14159
    assert written["study_s"] == 287.0  # the stages' wall times; the stale report time left out


def test_the_page_links_the_comparison_when_there_is_one(tmp_path):
    paths = write_study(tmp_path / "repo")
    report.run(paths)
    assert "python -m workbook compare" in paths.index.read_text() and 'data-page="compare"' not in paths.index.read_text()
    (paths.reports / "compare.html").write_text("<html></html>")
    report.run(paths)
    assert [a["href"] for tag, a in Dom(paths.index.read_text()).tags if a.get("data-page") == "compare"] == ["compare.html"]
