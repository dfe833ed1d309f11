"""Comparing experiments (workbook.analysis.compare): rows as `dvc.api.exp_show` returns them, the params
that differ, seed groups, Pareto fronts, the nothing-to-compare message, and the compare page
written from a real (tiny) git + DVC repository whose one stage fakes metrics/study.json."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import zlib
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from conftest import REPO
from matplotlib.collections import PathCollection

from workbook.analysis import compare
from workbook.pipeline.runner import read_notebook

matplotlib.use("Agg")

PARAMS = ["seed", "data.source", "data.image_size", "model.alpha", "model.weights"]
DEFAULTS = {"seed": 42, "data.source": "https://example.org/imagenette2-160.tgz", "data.image_size": 160,
            "model.alpha": 1.0, "model.weights": "imagenet"}


def headline(acc: float, ms: float = 5.0, mb: float = 2.5, base: float | None = 0.6) -> dict:
    """metrics/study.json of one run; intervals ±0.01 (±0.02 for the baseline), null baseline allowed."""
    m = {"acc": acc, "acc_lo": acc - 0.01, "acc_hi": acc + 0.01,
         "head_acc": acc - 0.05, "head_lo": acc - 0.06, "head_hi": acc - 0.04,
         "base_acc": base, "base_lo": None if base is None else base - 0.02, "base_hi": None if base is None else base + 0.02,
         "int8_acc": acc - 0.002, "int8_lo": acc - 0.012, "int8_hi": acc + 0.008,
         "agreement": 0.99, "int8_mb": mb, "int8_ms": ms, "study_s": 300.0}
    return m


def exp_row(name: str | None, metrics: dict | None, typ: str = "branch_commit", rev: str | None = None,
            state: str | None = None, **params) -> dict:
    """One row as dvc.api.exp_show returns it (checked against the real thing below): fixed keys,
    then the metrics, the params and a hash per dependency; every number a float, a null or absent
    metric absent or None, an unreadable metrics file "!", a null param the text "None"."""
    row = {"Experiment": name, "rev": rev or f"{zlib.crc32(str(name).encode()):07x}"[:7], "typ": typ,
           "Created": "06:24 PM", "parent": None, "State": state, "Executor": None}
    if metrics is None:
        row.update(dict.fromkeys(compare.METRICS, "!" if state != "Queued" else None))
    else:
        row.update({k: float(v) for k, v in metrics.items() if v is not None})
    for k, v in {**DEFAULTS, **{k.replace("__", "."): v for k, v in params.items()}}.items():
        row[k] = "None" if v is None else float(v) if isinstance(v, (int, float)) else v
    row["fake_study.py"] = "a48203d30ab402479fdd4ca4580d6ab6"
    return row


def sweep() -> list[dict]:
    """Three image sizes x three seeds, the committed baseline (seed 42 at 160 px) and the
    workspace holding the last experiment's result."""
    accs = {128: (0.90, 0.91, 0.95), 160: (0.93, 0.94, 0.95), 224: (0.96, 0.965, 0.955)}
    ms = {128: 3.0, 160: 5.0, 224: 9.0}
    rows = [exp_row(None, headline(0.935, 5.1), typ="baseline", rev="main")]
    for size, values in accs.items():
        for seed, acc in zip((1, 2, 3), values):
            rows.append(exp_row(f"exp-{size}-{seed}", headline(acc, ms[size] + seed / 100, mb=2.5),
                                seed=seed, data__image_size=size))
    rows.insert(0, {**rows[-1], "Experiment": None, "rev": "workspace", "typ": "baseline", "Created": None})
    return rows


def test_rows_are_read_into_one_row_per_result_with_typed_params():
    c = compare.from_rows(sweep(), PARAMS)
    df = c.experiments
    assert len(df) == 10 and df.name.is_unique
    assert df.loc[df.kind == "baseline", "name"].tolist() == ["main"]
    assert "workspace" not in df.name.tolist(), "the workspace repeats exp-224-3 and is shown once"
    assert df[list(compare.METRICS)].shape[1] == 19
    # exp_show hands every number as a float: whole ones become integers again
    assert df["data.image_size"].dtype == "Int64" and df["seed"].dtype == "Int64"
    assert df.set_index("name").loc["exp-128-3", "acc"] == pytest.approx(0.95)
    # seed groups sit together: sorted by the swept param, then the seed
    assert df["data.image_size"].is_monotonic_increasing


def size_sweep() -> list[dict]:
    """data.train_per_class 10, 100 and all, seeds 1 and 2; the control gains most from data."""
    rows = []
    for per_class, (acc, head, control) in {10: (0.80, 0.85, 0.20), 100: (0.93, 0.92, 0.45),
                                            "all": (0.975, 0.97, 0.72)}.items():
        for seed in (1, 2):
            m = headline(acc + seed / 1000, base=0.977)
            m.update(head_acc=head, head_lo=head - 0.02, head_hi=head + 0.02, control_acc=control,
                     control_lo=control - 0.03, control_hi=control + 0.03)
            rows.append(exp_row(f"n{per_class}-s{seed}", m, seed=seed, data__train_per_class=per_class))
    return rows


def test_the_size_curve_draws_each_model_against_images_per_class_on_a_log_axis():
    c = compare.from_rows(size_sweep(), [*PARAMS, compare.PER_CLASS])
    assert c.swept == [compare.PER_CLASS]
    assert c.experiments[compare.PER_CLASS].map(compare.short).tolist() == ["10", "10", "100", "100", "all", "all"]
    fig = compare.size_figure(c)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "100", "all"]
    assert list(ax.get_xticks()) == [10, 100, 200], "all sits right of the largest count"
    bars = {b.get_label(): b for b in ax.containers}
    assert list(bars) == list(compare.CURVES.values())
    control = bars[compare.CURVES["control_acc"]]
    points = control.lines[0].get_xydata()
    assert points[:, 1].tolist() == pytest.approx([0.20, 0.20, 0.45, 0.45, 0.72, 0.72])
    low, high = control.lines[2][0].get_segments()[0][:, 1]
    assert (low, high) == (pytest.approx(0.17), pytest.approx(0.23)), "each run's 95% interval as its bar"
    baseline = [line for line in ax.get_lines() if line.get_label().startswith("no training")]
    assert len(baseline) == 1 and baseline[0].get_ydata()[0] == pytest.approx(0.977)
    means = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert [len(line.get_xdata()) for line in means] == [2, 2, 2], "the mean over seeds at 10 and 100, per model"
    to_all = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert [line.get_ydata()[1] for line in to_all] == pytest.approx([0.72, 0.97, 0.9765]), "dotted on to all"
    matplotlib.pyplot.close("all")


def test_without_a_size_sweep_there_is_no_size_curve():
    assert compare.size_figure(compare.from_rows(sweep(), PARAMS)) is None


def test_a_size_sweep_with_another_swept_param_draws_a_panel_each_and_sorts_counts_before_all():
    rows = [r for r in size_sweep() if r["seed"] == 1.0]
    rows += [exp_row(f"{r['Experiment']}-128", {k: r[k] for k in compare.METRICS if k in r}, seed=1,
                     data__train_per_class=r[compare.PER_CLASS], data__image_size=128) for r in rows]
    c = compare.from_rows(rows, [*PARAMS, compare.PER_CLASS])
    assert c.swept == ["data.image_size", compare.PER_CLASS]
    assert c.experiments[compare.PER_CLASS].map(compare.short).tolist() == ["10", "100", "all"] * 2
    fig = compare.size_figure(c)
    assert [ax.get_title() for ax in fig.axes] == ["data.image_size=128", "data.image_size=160"]
    fig = compare.param_figure(c)
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["10", "100", "all"]
    assert "from scratch" in compare.experiments_table(c) and "from scratch %" in compare.groups_table(c)
    matplotlib.pyplot.close("all")


def test_the_headline_reads_the_control_and_stays_within_twenty_columns():
    from workbook.analysis.headline import headline as study

    assert len(compare.METRICS) <= 20, "dvc exp show lists every one"
    numbers = study({"control": {"accuracy": {"right": 7, "images": 10, "value": 0.7, "low": 0.4, "high": 0.9}}})
    assert (numbers["control_acc"], numbers["control_lo"], numbers["control_hi"]) == (0.7, 0.4, 0.9)
    assert study({})["control_acc"] is None


def test_params_that_differ_are_the_swept_ones_and_the_seed():
    c = compare.from_rows(sweep(), PARAMS)
    assert c.differing == ["seed", "data.image_size"]
    assert c.swept == ["data.image_size"]


def test_a_path_param_that_differs_counts_and_a_null_param_is_a_value():
    rows = [exp_row("a", headline(0.9), data__source="/data/a.tgz", model__weights=None, model__alpha=0.5),
            exp_row("b", headline(0.9), data__source="/data/b.tgz", model__weights="imagenet")]
    c = compare.from_rows(rows, PARAMS)
    assert c.differing == ["data.source", "model.alpha", "model.weights"]
    assert c.experiments["model.alpha"].tolist() == [0.5, 1.0]
    assert c.experiments["model.weights"].isna().tolist() == [True, False]
    assert compare.short("/data/a.tgz") == "a.tgz" and compare.short(0.5) == "0.5"


def test_a_column_named_file_colon_key_is_read_like_a_plain_one():
    # exp_show prefixes a key with its file when two files hold it
    rows = [exp_row(n, headline(a), seed=s) for n, a, s in (("a", 0.9, 1), ("b", 0.8, 2))]
    for row in rows:
        row["metrics/study.json:acc"] = row.pop("acc")
        row["params.yaml:seed"] = row.pop("seed")
    c = compare.from_rows(rows, PARAMS)
    assert c.experiments.acc.tolist() == [0.9, 0.8] and c.differing == ["seed"]


def test_seed_groups_give_mean_sd_min_max_and_n():
    groups = compare.seed_groups(compare.from_rows(sweep(), PARAMS))
    assert groups.index.tolist() == [128, 160, 224]
    acc = groups.loc[128, "acc"]
    # 0.90, 0.91, 0.95: mean 0.92, squared deviations 0.0004 + 0.0001 + 0.0009 over n - 1 = 2
    assert acc["mean"] == pytest.approx(0.92) and acc["sd"] == pytest.approx(math.sqrt(0.0007))
    assert (acc["min"], acc["max"], acc["n"]) == (pytest.approx(0.90), pytest.approx(0.95), 3)
    # the committed baseline (seed 42, 160 px) is a fourth seed of 160 px
    assert groups.loc[160, ("acc", "n")] == 4
    assert groups.loc[160, ("acc", "mean")] == pytest.approx((0.93 + 0.94 + 0.95 + 0.935) / 4)
    assert groups.loc[224, ("int8_mb", "sd")] == pytest.approx(0)
    table = compare.groups_table(compare.from_rows(sweep(), PARAMS))
    assert table.loc[128, "seeds"] == "1, 2, 3" and table.loc[160, "runs"] == 4
    assert table.loc[128, "fine-tuned %"] == "92.00 ± 2.65 [90.00, 95.00]"


def test_only_seeds_differing_makes_one_group():
    rows = [exp_row(f"s{s}", headline(a), seed=s) for s, a in ((1, 0.8), (2, 0.9))]
    groups = compare.seed_groups(compare.from_rows(rows, PARAMS))
    assert len(groups) == 1 and groups[("acc", "mean")].iloc[0] == pytest.approx(0.85)


def test_a_null_metric_is_left_out_of_its_mean_not_counted_as_zero():
    rows = [exp_row(f"s{s}", headline(0.9, base=b), seed=s) for s, b in ((1, 0.5), (2, None), (3, 0.7))]
    base = compare.seed_groups(compare.from_rows(rows, PARAMS))["base_acc"].iloc[0]
    assert base["n"] == 2 and base["mean"] == pytest.approx(0.6)


def test_pareto_front_keeps_the_points_nothing_beats():
    df = pd.DataFrame({"acc": [0.90, 0.95, 0.93, 0.80, 0.95, 0.97, float("nan")],
                       "int8_ms": [2.0, 5.0, 6.0, 1.0, 4.0, 9.0, 0.5]},
                      index=list("abcdefg"))
    # b is beaten by e (same accuracy, faster), c by e; g has no accuracy
    assert compare.pareto_front(df).pipe(lambda s: s[s].index.tolist()) == ["a", "d", "e", "f"]
    # ties on both numbers: neither beats the other
    tie = pd.DataFrame({"acc": [0.9, 0.9], "size": [1.0, 1.0]})
    assert compare.pareto_front(tie, down="size").tolist() == [True, True]


def test_the_tables_mark_the_front_of_each_cost():
    table = compare.experiments_table(compare.from_rows(sweep(), PARAMS))
    # 128 px is fastest; 160 px is beaten by 128 px seed 3 (0.95 at 3 ms); 224 px is the most accurate
    front = table.index[table["front (int8 ms)"] == "yes"].tolist()
    assert front == ["exp-128-1", "exp-128-2", "exp-128-3", "exp-224-1", "exp-224-2"]
    # every model is 2.5 MB: the most accurate one alone
    assert table.index[table["front (int8 MB)"] == "yes"].tolist() == ["exp-224-2"]
    assert table.loc["exp-128-3", "fine-tuned"] == "95.00% (95% CI 94.00–96.00%)"
    assert table.loc["main", "no training"] == "60.00% (95% CI 58.00–62.00%)"


def test_workspace_and_baseline_are_kept_when_they_hold_results_of_their_own():
    rows = [exp_row(None, headline(0.91), typ="baseline", rev="workspace", seed=7),
            exp_row(None, headline(0.92), typ="baseline", rev="main"),
            exp_row("e1", headline(0.93), seed=1)]
    c = compare.from_rows(rows, PARAMS)
    assert c.experiments.set_index("name").kind.to_dict() == {"e1": "experiment", "main": "baseline",
                                                              "workspace": "workspace"}


def test_an_experiment_is_kept_over_the_baseline_it_repeats():
    rows = [exp_row(None, headline(0.92), typ="baseline", rev="main"), exp_row("again", headline(0.92)),
            exp_row("other", headline(0.9), seed=1)]
    c = compare.from_rows(rows, PARAMS)
    assert c.experiments.name.tolist() == ["other", "again"]
    assert c.left_out.set_index("name").reason["main"] == "same params and numbers as again"


def test_nothing_to_compare_says_what_to_run():
    rows = [exp_row(None, None, typ="baseline", rev="main"), exp_row("done", headline(0.9)),
            exp_row("waiting", None, state="Queued", seed=2), exp_row("broken", None, state="Failed", seed=3)]
    c = compare.from_rows(rows, PARAMS)
    assert c.left_out.set_index("name").reason.to_dict() == {
        "main": "no numbers in metrics/study.json", "waiting": "queued", "broken": "failed"}
    with pytest.raises(compare.NothingToCompare) as e:
        compare.check(c)
    message = str(e.value)
    assert "1 experiment of" in message and "needs 2" in message
    assert "1 queued, 1 failed" in message
    assert "dvc exp run --queue -S 'seed=1,2,3'" in message and "dvc queue start" in message
    with pytest.raises(compare.NothingToCompare, match="0 experiments"):
        compare.check(compare.from_rows([], PARAMS))


def test_the_figures_mark_the_front_and_plot_each_swept_value():
    c = compare.from_rows(sweep(), PARAMS)
    fig = compare.tradeoff_figure(c)
    latency, size = fig.axes[:2]
    front = compare.experiments_table(c).pipe(lambda t: t.index[t["front (int8 ms)"] == "yes"]).tolist()
    rings = [col for col in latency.collections if isinstance(col, PathCollection)]
    assert len(rings) == 1 and len(rings[0].get_offsets()) == len(front), "every point of the front ringed"
    named = [t.get_text() for t in latency.texts]
    # only points of the front are named; one whose name would overlap an earlier one's is not
    assert named[0] == "exp-128-1" and set(named) <= set(front) and "exp-224-2" not in named
    assert [t.get_text() for t in size.texts] == ["exp-224-2"]
    fig = compare.param_figure(c)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["128", "160", "224"]
    assert fig.axes[0].get_xlabel() == "data.image_size"
    matplotlib.pyplot.close("all")


# A real repository: what exp_show returns, and the page written from it

def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@localhost", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


FAKE_STUDY = """\
# Writes metrics/study.json from params.yaml: a stand-in for the study, in milliseconds.
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
acc = 0.5 + p["data"]["image_size"] / 1000 + p["seed"] / 100
pathlib.Path("metrics").mkdir(exist_ok=True)
study = {"acc": acc, "acc_lo": acc - 0.02, "acc_hi": acc + 0.02, "head_acc": acc - 0.1, "head_lo": acc - 0.12,
         "head_hi": acc - 0.08, "base_acc": None, "base_lo": None, "base_hi": None, "int8_acc": acc - 0.01,
         "int8_lo": acc - 0.03, "int8_hi": acc + 0.01, "agreement": 0.99, "int8_mb": 2.5,
         "int8_ms": p["data"]["image_size"] / 40, "study_s": 1.0}
pathlib.Path("metrics/study.json").write_text(json.dumps(study))
"""


def make_repo(root: Path) -> Path:
    """git + DVC, the project's params.yaml, one stage writing a fake metrics/study.json; one commit."""
    root.mkdir()
    (root / "params.yaml").write_text((REPO / "params.yaml").read_text())
    (root / "fake_study.py").write_text(FAKE_STUDY)
    (root / "dvc.yaml").write_text(
        "stages:\n  study:\n    cmd: python fake_study.py\n    deps: [fake_study.py]\n"
        "    params: [seed, data.image_size]\n    metrics:\n      - metrics/study.json:\n          cache: false\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "compare.py").write_text((REPO / "notebooks" / "compare.py").read_text())
    (root / ".gitignore").write_text("/reports/\n")
    _run("git", "init", "-q", cwd=root)
    _run(sys.executable, "-m", "dvc", "init", "-q", cwd=root)
    _run("git", "add", "-A", cwd=root)
    _run("git", "commit", "-qm", "tiny study", cwd=root)
    return root


@pytest.fixture(scope="module")
def swept_repo(tmp_path_factory) -> Path:
    """The tiny repository with three experiments: seeds 1 and 2 at 160 px, seed 1 at 128 px."""
    root = make_repo(tmp_path_factory.mktemp("compare") / "repo")
    for sets in (["seed=1"], ["seed=2"], ["seed=1", "data.image_size=128"]):
        _run(sys.executable, "-m", "dvc", "exp", "run", "-q", *[a for s in sets for a in ("-S", s)], cwd=root)
    return root


def test_exp_show_rows_have_the_shape_the_synthetic_ones_copy(swept_repo):
    import dvc.api

    rows = dvc.api.exp_show(repo=str(swept_repo))
    synthetic = set(exp_row("x", headline(0.9, base=None)))  # null metrics absent, as here
    for row in rows:
        assert synthetic <= set(row), "every key the synthetic rows have (the real ones hold every param)"
        assert not {"base_acc", "base_lo", "base_hi"} & set(row), "a metric null in every row is no column"
    by_rev = {r["rev"]: r for r in rows}
    assert by_rev["workspace"]["typ"] == "baseline" and by_rev["workspace"]["Experiment"] is None
    baseline = next(r for r in rows if r["typ"] == "baseline" and r["rev"] != "workspace")
    assert baseline["acc"] == "!", "the commit has no metrics/study.json"
    experiments = [r for r in rows if r["typ"] != "baseline"]
    assert len(experiments) == 3 and all(isinstance(r["seed"], float) and r["Experiment"] for r in experiments)
    assert {r["typ"] for r in experiments} == {"branch_commit", "branch_base"}
    assert all(isinstance(r["acc"], float) and "base_acc" not in r for r in experiments)


def test_read_compares_the_experiments_of_a_real_repository(swept_repo):
    c = compare.read(swept_repo)
    assert len(c.experiments) == 3 and set(c.experiments.kind) == {"experiment"}
    assert c.differing == ["seed", "data.image_size"]
    reasons = c.left_out.set_index("kind").reason
    assert reasons["baseline"] == "no numbers in metrics/study.json"
    assert reasons["workspace"].startswith("same params and numbers as ")
    groups = compare.seed_groups(c)
    assert groups.loc[160, ("acc", "n")] == 2 and groups.loc[160, ("acc", "mean")] == pytest.approx(0.675)


def test_compare_command_writes_the_page(swept_repo, capsys):
    assert compare.main(swept_repo) == 0
    page = swept_repo / "reports" / "compare.html"
    assert str(page.relative_to(swept_repo)) in capsys.readouterr().out
    html = page.read_text()
    nb = json.loads((swept_repo / "reports" / "compare.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    assert images == 2, "the trade-off figure and the by-param figure"
    for name in compare.read(swept_repo).experiments.name:
        assert name in html


def test_compare_command_without_experiments_says_what_to_run(tmp_path, capsys):
    root = make_repo(tmp_path / "repo")
    assert compare.main(root) == 1
    err = capsys.readouterr().err
    assert "nothing to compare" in err and "dvc queue start" in err
    assert not (root / "reports" / "compare.html").exists()


def test_the_source_notebook_is_thin_and_takes_its_parameters_first():
    code = [c for c in read_notebook(REPO / "notebooks" / "compare.py").cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    lines = [line for c in code for line in c.source.splitlines() if line.strip()]
    assert len(lines) <= 40
    assert not any('f"' in line or "f'" in line for line in lines), "prose is markdown, numbers are in tables"


def test_compare_reaches_experiments_of_earlier_commits_with_num(tmp_path, monkeypatch, capsys):
    from workbook.__main__ import main as workbook

    root = make_repo(tmp_path / "repo")
    _run(sys.executable, "-m", "dvc", "exp", "run", "-q", "-S", "seed=1", cwd=root)
    _run("git", "commit", "-qm", "a later commit", "--allow-empty", cwd=root)
    _run(sys.executable, "-m", "dvc", "exp", "run", "-q", "-S", "seed=2", cwd=root)
    with pytest.raises(compare.NothingToCompare):
        compare.read(root)  # as `dvc exp show`: the last commit's one experiment only
    assert sorted(compare.read(root, 2).experiments.seed) == [1, 2]
    monkeypatch.chdir(root)
    assert workbook(["compare", "--num", "0"]) == 2
    assert "--num 0: must be 1 or more" in capsys.readouterr().err
    assert workbook(["compare", "-n", "2"]) == 0
    assert (root / "reports" / "compare.html").exists()


def test_a_backbone_sweep_gets_a_table_of_sizes_latencies_and_accuracies(monkeypatch):
    params = PARAMS + ["model.backbone"]
    rows = [exp_row(f"exp-{b}", headline(acc, ms), model__backbone=b, model__weights=w)
            for b, acc, ms, w in (("mobilenet_v2", 0.97, 2.0, "/w/no_top.h5"), ("efficientnet_b0", 0.3, 4.0, "none"))]
    c = compare.from_rows(rows, params)
    quantized = {"mobilenet_v2": {"parameters": 2_340_000, "multiply_adds": 310_000_000, "float_bytes": 9_300_000,
                                  "int8_bytes": 2_800_000,
                                  "latency": {"float32": {"1": {"median_ms": 9.0}, "2": {"median_ms": 5.5}},
                                              "int8": {"1": {"median_ms": 3.3}, "2": {"median_ms": 2.1}}}}}
    revs = dict(zip(c.experiments.rev, c.experiments["model.backbone"]))
    monkeypatch.setattr(compare, "details", lambda repo, rev, path: quantized.get(revs[rev]))
    table = compare.backbone_table(c, REPO)
    assert sorted(table.index) == ["exp-efficientnet_b0", "exp-mobilenet_v2"]
    mobile = table.loc["exp-mobilenet_v2"]
    assert (mobile.backbone, mobile.weights, mobile.parameters, mobile["multiply-adds (M)"]) == \
        ("mobilenet_v2", "no_top.h5", "2,340,000", "310")
    assert (mobile["float32 MB"], mobile["int8 MB"], mobile["int8 ms, 2 threads"]) == ("9.30", "2.80", "2.10")
    assert mobile["fine-tuned accuracy"] == "97.00% (95% CI 96.00–98.00%)" and mobile["int8 = float32"] == "99.00%"
    # an experiment whose results file cannot be read keeps its row, its numbers n/a
    assert table.loc["exp-efficientnet_b0", "parameters"] == "n/a"
    assert compare.backbone_table(compare.from_rows(sweep(), PARAMS), REPO) is None, "no backbone swept: no table"


def test_a_backbone_sweep_figure_colours_only_what_varies_apart_and_keeps_long_names_short():
    params = PARAMS + ["model.backbone"]
    weights = "/shared/weights/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
    rows = [exp_row(f"exp-{b}", headline(acc), model__backbone=b, model__weights=w)
            for b, acc, w in (("mobilenet_v2", 0.97, weights), ("efficientnet_b0", 0.1, "none"),
                              ("inception_v3", 0.2, "none"))]
    c = compare.from_rows(rows, params)
    assert compare.label(weights) == "mobilenet_v2…4_no_top.h5" and compare.label("none") == "none"
    fig = compare.param_figure(c)
    panels = {ax.get_xlabel(): ax for ax in fig.axes}
    by_backbone, by_weights = panels["model.backbone"], panels["model.weights"]
    # the weights follow from the backbone: one colour, no legend; along the weights, the backbones
    assert by_backbone.get_legend() is None
    assert [t.get_text() for t in by_weights.get_xticklabels()] == ["mobilenet_v2…4_no_top.h5", "none"]
    legend = by_weights.get_legend()
    assert legend.get_title().get_text() == "model.backbone"
    assert sorted(t.get_text() for t in legend.get_texts()) == ["efficientnet_b0", "inception_v3", "mobilenet_v2"]
    fig = compare.tradeoff_figure(c)
    assert "mobilenet_v2…4_no_top.h5, mobilenet_v2" in [t.get_text() for t in fig.legends[0].get_texts()]
    matplotlib.pyplot.close("all")
