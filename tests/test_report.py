"""The report page (reports/index.html), rendered by a real browser: every number on it is the
metrics file's value formatted by the report's own formatter, every stage report is linked or
marked missing, and a null baseline reads "n/a" with its reason.

The browser tests need Chromium (`chromium`, Debian's package; .ci/run installs it) and skip
where there is none; the layout tests also need Playwright for Python (the `dev` extra), which
drives that same Chromium. Chromium runs with everything that would reach the network turned off.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from workbook.analysis.headline import HEADLINE_KEYS
from workbook.analysis.stats import Accuracy
from workbook.pipeline.contract import notebook_name
from workbook.pipeline.paths import STAGES, Paths
from workbook.stages import report

REPORTED = STAGES[:STAGES.index("report")]
MISSING_REPORT = "finetune"  # the stage whose HTML report the fake study lacks

def acc(right: int, images: int) -> dict:
    """An accuracy as the stages write it (stats.Accuracy): value and 95% interval."""
    return dataclasses.asdict(Accuracy.of(right, images))


# What the evaluate stage writes when Keras cannot fetch the with-top weights: long, with an
# unbreakable URL in it (the layout tests), and markup that must come back as text.
BASELINE_NOTE = ("skipped: the with-top weights could not be loaded <offline>: Exception: URL fetch failure on "
                 "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5: None -- [Errno -3] "
                 "Temporary failure in name resolution")

RESULTS = {
    "data": {"classes": 3, "train_images": 1234, "val_images": 567, "skipped": 2, "converted": 5,
             "val_from_imagenet_train": 500, "val_from_imagenet_val": 67,
             "warnings": ['class "bee<i>" has no val images & is trained anyway']},
    "features": {"images": 1801, "seconds": 12.345, "images_per_s": 145.87, "cache_mb": 98.765},
    "tune": {"best_lr": 0.00123456, "trials": 4, "best_val_accuracy": 0.912345},
    "train": {"val_accuracy": 0.876543, "lr": 0.00123456, "epochs": 3, "seconds_per_epoch": 0.98},
    "finetune": {"val_accuracy": 0.934567, "lr": 0.000123456, "epochs": 2, "layers_trained": 24,
                 "seconds_per_epoch": 27.5,
                 "train_images": 987, "holdout_images": 197, "head_holdout": 0.901234, "finetuned_holdout": 0.912345},
    "control": {"accuracy": acc(301, 567), "train_images": 987, "epochs": 5, "seconds_per_epoch": 9.87,
                "weights": 392_426},
    "evaluate": {"accuracy": acc(530, 567), "head": acc(497, 567), "baseline": None, "vs_baseline": None,
                 "baseline_note": BASELINE_NOTE, "control": acc(301, 567),
                 "vs_control": {"only_a": 240, "only_b": 11, "p_value": 1.2345e-55}, "shipped": "fine-tuned",
                 "ship_reason": ("on the hold-out the fine-tuned model scores 0.9123, the head 0.9012: fine-tuning "
                                 "lost nothing, so the fine-tuned model ships"),
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
    "finetune.train_images", "finetune.holdout_images", "finetune.head_holdout", "finetune.finetuned_holdout",
    "train.seconds_per_epoch", "finetune.seconds_per_epoch",
    "control.accuracy", "control.train_images", "control.epochs", "control.seconds_per_epoch",
    "evaluate.accuracy", "evaluate.head", "evaluate.baseline", "evaluate.macro_f1",
    "evaluate.control", "evaluate.vs_control.p_value", "evaluate.shipped",
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
    """A folder laid out like the repository after stages 1-8: results, timings, stage reports."""
    paths = Paths(root=root)
    paths.timing("data").parent.mkdir(parents=True)
    paths.reports.mkdir(parents=True)
    for stage, values in results.items():
        paths.details(stage).write_text(json.dumps(values))
    for stage, timing in TIMINGS.items():
        paths.timing(stage).write_text(json.dumps(timing))
    # a timing of the report stage from an earlier run: not one of stages 1-8, must not count
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
    assert dom.metrics["timings.total.wall_s"] == ["369.0 s"]  # 10.25 x (1+...+8); the stale report time left out


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
    many = [f"c{i}" for i in range(100)]
    assert f(many, "list") == "; ".join(many[:12]) + "; … and 88 more (100 in all)"
    assert f(many[:12], "list") == "; ".join(many[:12])
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
    assert written == page.headline and tuple(written) == HEADLINE_KEYS and len(written) <= 20
    assert all(v is None or isinstance(v, (int, float)) for v in written.values())
    ft, q = RESULTS["evaluate"]["accuracy"], RESULTS["quantize"]["int8"]
    assert (written["acc"], written["acc_lo"], written["acc_hi"]) == (ft["value"], ft["low"], ft["high"])
    assert (written["int8_acc"], written["int8_lo"]) == (q["value"], q["low"])
    assert written["base_acc"] is None and written["int8_mb"] == 2.6543 and written["int8_ms"] == 3.14159
    assert written["study_s"] == 369.0  # the stages' wall times; the stale report time left out


def test_the_page_links_the_comparison_when_there_is_one(tmp_path):
    paths = write_study(tmp_path / "repo")
    report.run(paths)
    assert "python -m workbook compare" in paths.index.read_text() and 'data-page="compare"' not in paths.index.read_text()
    (paths.reports / "compare.html").write_text("<html></html>")
    report.run(paths)
    assert [a["href"] for tag, a in Dom(paths.index.read_text()).tags if a.get("data-page") == "compare"] == ["compare.html"]


# The layout, measured in Chromium at the widths the page is read at. A second fake study has a
# measured baseline and the ten Imagenette classes, so every accuracy on the page carries its
# interval and the lists are long.
IMAGENETTE = ["tench", "English springer", "cassette player", "chain saw", "church", "French horn",
              "garbage truck", "gas pump", "golf ball", "parachute"]
MEASURED = copy.deepcopy(RESULTS)
MEASURED["data"].update(classes=10, train_images=9_469, val_images=3_925, skipped=0, converted=12,
                        val_from_imagenet_train=3_425, val_from_imagenet_val=500,
                        warnings=['class "chain saw" has 12 grayscale images, converted to RGB',
                                  'class "gas pump" has 3 train images larger than 4,000 x 3,000 pixels'])
MEASURED["evaluate"].update(accuracy=acc(3_828, 3_925), head=acc(3_790, 3_925), baseline=acc(3_104, 3_925),
                            vs_baseline={"only_a": 741, "only_b": 17, "p_value": 1.2e-190}, baseline_note=None,
                            imagenet_val={"fine-tuned": acc(493, 500), "head only": acc(488, 500)})
MEASURED["quantize"].update(float32=acc(3_828, 3_925), int8=acc(3_821, 3_925), agreement=0.995669,
                            disagreements=17, metadata={"name": "Image classifier (10 classes, int8)",
                                                        "labels": IMAGENETTE})
WIDTHS = (1024, 1280, 1440)
# A third: a hundred classes with long names, and a warning for many of them.
HUNDRED = copy.deepcopy(MEASURED)
HUNDRED["data"].update(classes=100, warnings=[f'class "Long-tailed species {i:03d}" has no val images: it is trained '
                                              "but cannot be evaluated" for i in range(30)])
HUNDRED["quantize"]["metadata"] = {"name": "Image classifier (100 classes, int8)",
                                   "labels": [f"Long-tailed species {i:03d} (Tachyglossus aculeatus)" for i in range(100)]}

# Run in the page: every way a layout can fail its reader, as one line each: a page wider than the
# window; a box whose content is wider than the box (elements that scroll on purpose, overflow-x
# auto or scroll, excepted: the wide tables) or cut by it; text past the window or cut; two lines of
# text, or two blocks (tables, sections, cards, paragraphs), drawn over each other; a chart label
# outside its chart; a table cell whose text wraps in less than 9 em (a note one word wide).
LAYOUT_PROBLEMS = r"""() => {
  const TOL = 1, problems = [], root = document.documentElement, vw = root.clientWidth;
  const name = el => {
    let s = el.tagName.toLowerCase() + [...el.classList].map(c => "." + c).join("");
    for (const a of ["data-metric", "data-section", "data-stage"])
      if (el.hasAttribute(a)) s += `[${a}=${el.getAttribute(a)}]`;
    const text = (el.textContent || "").trim().replace(/\s+/g, " ");
    return text ? `${s} "${text.slice(0, 60)}"` : s;
  };
  const box = r => `${Math.round(r.left)}..${Math.round(r.right)} x ${Math.round(r.top)}..${Math.round(r.bottom)}`;
  const scrolls = el => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const clips = el => getComputedStyle(el).overflowX !== "visible" || getComputedStyle(el).overflowY !== "visible";
  const ancestors = el => { const up = []; for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) up.push(a); return up; };
  const scrolled = el => ancestors(el).some(scrolls);  // inside a box that scrolls on purpose
  const meet = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > TOL &&
                         Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > TOL;
  const within = (r, c) => r.left >= c.left - TOL && r.right <= c.right + TOL && r.top >= c.top - TOL && r.bottom <= c.bottom + TOL;

  if (root.scrollWidth > vw + TOL) problems.push(`the page is ${root.scrollWidth} px wide in a ${vw} px window`);

  // boxes: content wider (or, where clipped, taller) than the box; a box past the window's edge
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg") && el.tagName.toLowerCase() !== "svg") continue;
    const st = getComputedStyle(el);
    if (st.display === "none") continue;
    const r = el.getBoundingClientRect();
    if (!scrolled(el) && (r.left < -TOL || r.right > vw + TOL)) problems.push(`past the window's edge: ${name(el)} at ${box(r)}`);
    if (scrolls(el) || el.clientWidth === 0) continue;
    if (el.scrollWidth > el.clientWidth + TOL)
      problems.push(`content wider than its box: ${name(el)} (${el.scrollWidth} px in ${el.clientWidth} px)`);
    if (clips(el) && el.scrollHeight > el.clientHeight + TOL)
      problems.push(`content cut at the bottom: ${name(el)} (${el.scrollHeight} px in ${el.clientHeight} px)`);
  }

  // text: every line inside the window and inside every box that clips it; no two lines on each other
  const lines = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walk.nextNode(); node; node = walk.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest("svg")) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const clippers = [el, ...ancestors(el)].filter(clips);
    for (const r of range.getClientRects()) {
      if (r.width < 1 || r.height < 1) continue;
      const what = `"${node.textContent.trim().replace(/\s+/g, " ").slice(0, 60)}" in ${name(el).split(" ")[0]}`;
      if (!clippers.some(scrolls) && (r.left < -TOL || r.right > vw + TOL)) problems.push(`text past the window's edge: ${what} at ${box(r)}`);
      for (const c of clippers)
        if (!scrolls(c) && !within(r, c.getBoundingClientRect())) problems.push(`text cut by ${name(c).split(" ")[0]}: ${what}`);
      lines.push([r, what, node]);
    }
  }
  // the chart's texts: inside the chart, not on each other or on the page's other texts
  for (const svg of document.querySelectorAll("svg")) {
    const s = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      const r = text.getBoundingClientRect(), what = `"${text.textContent.trim().slice(0, 60)}" in svg`;
      if (!within(r, s)) problems.push(`text outside the chart: ${what} at ${box(r)} (chart ${box(s)})`);
      lines.push([r, what, text]);
    }
  }
  for (let i = 0; i < lines.length; i++)
    for (let j = i + 1; j < lines.length; j++)
      if (lines[i][2] !== lines[j][2] && meet(lines[i][0], lines[j][0]))
        problems.push(`texts drawn over each other: ${lines[i][1]} and ${lines[j][1]}`);

  // a table cell whose text wraps must leave it a reading width, not a word or two a line
  for (const cell of document.querySelectorAll("td, th")) {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].filter(r => r.width >= 1).map(r => Math.round(r.bottom)));
    const em = parseFloat(getComputedStyle(cell).fontSize);
    if (tops.size > 1 && cell.clientWidth < 9 * em)
      problems.push(`squeezed: ${name(cell)} wraps to ${tops.size} lines in ${cell.clientWidth} px`);
  }

  // blocks: no two tables, sections, cards, figures or paragraphs on each other
  const blocks = [...document.querySelectorAll(
    "header, footer, section, figure, table, h1, h2, p, ul, ul.verdicts > li, .figure, .sections > *")];
  for (let i = 0; i < blocks.length; i++)
    for (let j = i + 1; j < blocks.length; j++) {
      const a = blocks[i], b = blocks[j];
      if (a.contains(b) || b.contains(a)) continue;
      const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
      if (meet(ra, rb)) problems.push(`drawn over each other: ${name(a)} at ${box(ra)} and ${name(b)} at ${box(rb)}`);
    }
  return [...new Set(problems)];
}"""


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright (pinned in the `dev` extra), offline."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                   "(pip install -e '.[dev]'); the layout tests need it")
    executable = chromium()
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def pages(rendered, tmp_path_factory) -> dict[str, Path]:
    """The fake studies' index pages: the one the other tests read (no baseline, a long note
    instead), one with every accuracy measured, and that one before its quantize stage ran."""
    measured = write_study(tmp_path_factory.mktemp("measured") / "repo", MEASURED)
    report.run(measured)
    # the quantize stage has not run yet: no results, no time, no report; n/a with reasons everywhere
    unquantized = write_study(tmp_path_factory.mktemp("unquantized") / "repo",
                              {k: v for k, v in MEASURED.items() if k != "quantize"})
    unquantized.timing("quantize").unlink()
    (unquantized.reports / f"{notebook_name('quantize')}.html").unlink()
    report.run(unquantized)
    hundred = write_study(tmp_path_factory.mktemp("hundred") / "repo", HUNDRED)
    report.run(hundred)
    return {"no baseline": rendered[0].index, "measured": measured.index, "not quantized": unquantized.index,
            "100 classes": hundred.index}


def layout_problems(browser, page: Path, width: int) -> list[str]:
    tab = browser.new_page(viewport={"width": width, "height": 900})
    try:
        tab.goto(page.as_uri())
        return tab.evaluate(LAYOUT_PROBLEMS)
    finally:
        tab.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("study", ["no baseline", "measured", "not quantized", "100 classes"])
def test_the_page_fits_the_window(browser, pages, study, width):
    problems = layout_problems(browser, pages[study], width)
    assert not problems, f"{len(problems)} layout problems at {width} px:\n" + "\n".join(problems[:40])


def test_the_layout_check_sees_a_broken_layout(browser, pages, tmp_path):
    # the check itself: a table forced wider than its column, text cut by its box, a card drawn over a table
    html = pages["measured"].read_text().replace(
        "</style>", ".sections table { width: 600px; } .figure .label { display: block; overflow: hidden; "
        "white-space: nowrap; width: 40px; } .figures { margin-bottom: -400px; }</style>")
    broken = tmp_path / "index.html"
    broken.write_text(html)
    problems = "\n".join(layout_problems(browser, broken, 1024))
    assert "content wider than its box: div.sections" in problems
    assert "content wider than its box: span.label" in problems and "text cut by span.label" in problems
    assert "drawn over each other: section.figures" in problems


def test_progress_bars_stay_out_of_the_stage_reports(monkeypatch, capsys):
    # Under the pipeline a bar goes to the kernel's real standard error, the terminal of `dvc repro`,
    # which the runner's kernel does not copy into cells; what a cell prints (sys.stdout, sys.stderr)
    # is what the executed notebook and its HTML page hold.
    import io

    from workbook.pipeline import contract
    from workbook.pipeline.progress import RUN_ENV, progress

    assert RUN_ENV == contract.RUN_ENV  # what the runner sets is what the bars look for

    terminal = io.StringIO()
    monkeypatch.setattr("sys.__stderr__", terminal)
    monkeypatch.setenv(RUN_ENV, "features")
    for _ in progress(range(5), desc="feature cache", mininterval=0):
        pass
    assert capsys.readouterr() == ("", "")
    assert "feature cache: 100%" in terminal.getvalue() and "5/5" in terminal.getvalue()
    monkeypatch.delenv(RUN_ENV)  # run by hand (JupyterLab): the cell shows it, as plain lines
    for _ in progress(range(5), desc="feature cache", mininterval=0):
        pass
    assert "feature cache: 100%" in capsys.readouterr().out
