"""Experiments side by side: the headline numbers of every DVC experiment of the repository.

`read` asks DVC for the experiments (`dvc.api.exp_show`, the table `dvc exp show` prints) and
keeps one row per distinct result that has headline numbers (metrics/study.json):

- every experiment (queued and run, or run with `dvc exp run`) whose metrics were read;
- the baseline commit when it holds metrics (its metrics/study.json is committed): it is a run
  of the committed params like any other, so a `seed` sweep counts it as one more seed;
- the workspace only when it holds a result of its own (e.g. `dvc repro` after editing
  params.yaml, not yet committed). Its numbers are what metrics/study.json holds now:
  `dvc status` tells whether they are up to date with its params.

Rows with the same params and the same metrics are one result, shown once: an experiment is
kept over the baseline commit, the baseline over the workspace (`dvc exp run` leaves its
result in the workspace, and `dvc exp apply` copies one there). Rows left out (queued, running,
failed, no metrics, duplicates) are listed with the reason.

Not a pipeline stage: `python -m workbook compare` (`main`) runs notebooks/compare.py, which
calls the functions here, into reports/compare.html.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from workbook.analysis.formatting import NA, interval, missing, pct
from workbook.analysis.headline import HEADLINE_ACCURACIES, HEADLINE_KEYS
from workbook.pipeline.paths import Paths, find_root

sns.set_theme(style="whitegrid", context="notebook")

# metrics/study.json: the one file dvc.yaml declares as metrics, flat, numbers or null.
INTERVALS = {key: (low, high) for key, (_, low, high) in HEADLINE_ACCURACIES.items()}
METRICS = HEADLINE_KEYS
# The numbers that vary from run to run (an interval's bounds follow its accuracy).
SUMMARISED = (*INTERVALS, "agreement", "int8_mb", "int8_ms", "study_s")
LABELS = {"acc": "fine-tuned", "head_acc": "head only", "base_acc": "no training",
          "control_acc": "from scratch", "int8_acc": "int8", "agreement": "int8 = float32", "int8_mb": "int8 MB",
          "int8_ms": "int8 ms", "study_s": "study s"}
COSTS = {"int8_ms": "int8 latency per image, 2 threads, median (ms)",
         "int8_mb": "int8 model size (MB)"}
SEED = "seed"
PER_CLASS = "data.train_per_class"  # the size curve's x axis: train images per class, or "all"
# The models the size curve draws, in the order of its legend
CURVES = {"control_acc": "from scratch (small CNN)", "head_acc": "head on the frozen base", "acc": "fine-tuned"}
ALL = "all experiments"  # the one group when only the seed differs

# exp_show's row: these keys, then the metrics, the params and one hash per dependency.
ORDER = {"experiment": 0, "baseline": 1, "workspace": 2}  # which of equal rows is kept
UNFINISHED = ("Queued", "Running", "Failed")  # exp_show's State of an experiment without results

SWEEP_HINT = ("Queue a sweep, run it, then compare again:\n"
              "  dvc exp run --queue -S 'seed=1,2,3'\n"
              "  dvc queue start\n"
              "  python -m workbook compare")


class NothingToCompare(RuntimeError):
    """Fewer than two experiments with headline numbers; the message says what to run."""


@dataclass(frozen=True)
class Comparison:
    experiments: pd.DataFrame  # one row per result: name, kind, rev, every param, METRICS
    left_out: pd.DataFrame     # name, kind, rev, reason
    differing: list[str]       # the params whose values are not the same in every row

    @property
    def swept(self) -> list[str]:
        """The differing params other than the seed: what tells a seed group from another."""
        return [p for p in self.differing if p != SEED]

    @property
    def shown(self) -> list[str]:
        """The differing params, the seed last: the order rows are sorted and columns shown in."""
        return self.swept + [p for p in self.differing if p == SEED]


def read(repo: str | Path | None = None, commits: int = 1) -> Comparison:
    """The experiments of `repo` (default: the repository around the working directory) based
    on its last `commits` commits. Raises NothingToCompare when fewer than two have numbers."""
    import dvc.api

    from workbook.pipeline.params import keys

    paths = Paths(find_root(repo))
    rows = dvc.api.exp_show(repo=str(paths.root), num=commits)
    return check(from_rows(rows, keys(), _relative(paths.headline, paths.root),
                           _relative(paths.params, paths.root)), paths.root)


def from_rows(rows: list[dict], params: list[str], metrics_file: str = "metrics/study.json",
              params_file: str = "params.yaml") -> Comparison:
    """The comparison of exp_show's rows: `params` are the dotted names of params.yaml."""
    frame = pd.DataFrame(rows, columns=_union(rows))
    kind = np.select([frame.typ.ne("baseline"), frame.rev.eq("workspace")],
                     ["experiment", "workspace"], "baseline")
    info = pd.DataFrame({"name": frame.Experiment.fillna(frame.rev), "kind": kind, "rev": frame.rev})
    metrics = _columns(frame, METRICS, metrics_file).apply(pd.to_numeric, errors="coerce")  # "!": unreadable
    done = metrics.notna().any(axis=1)
    reasons = frame.State.where(frame.State.isin(UNFINISHED)).str.lower().fillna(f"no numbers in {metrics_file}")
    left_out = info[~done].assign(reason=reasons[~done])

    table = pd.concat([info, _columns(frame, params, params_file), metrics], axis=1)[done]
    table = table.assign(**{p: _param_values(table[p]) for p in params})
    table = table.sort_values("kind", key=lambda k: k.map(ORDER), kind="stable")
    same = [*params, *METRICS]
    first = table.groupby(same, dropna=False, sort=False).name.transform("first")
    duplicate = table.duplicated(same, keep="first")
    left_out = pd.concat([left_out, table.loc[duplicate, ["name", "kind", "rev"]].assign(
        reason="same params and numbers as " + first[duplicate])], ignore_index=True)

    table = table[~duplicate]
    c = Comparison(table, left_out.reset_index(drop=True), [p for p in params if table[p].nunique(dropna=False) > 1])
    if c.shown:  # seed groups next to each other
        table = table.sort_values(c.shown, na_position="last", kind="stable", key=_sort_key)
    return Comparison(table.reset_index(drop=True), c.left_out, c.differing)


def check(c: Comparison, root: str | Path = ".") -> Comparison:
    """`c` itself when it holds two results or more; else NothingToCompare saying what to run."""
    n = len(c.experiments)
    if n >= 2:
        return c
    waiting = c.left_out.reason[c.left_out.reason.isin([s.lower() for s in UNFINISHED])].value_counts()
    lines = [f"nothing to compare: {n} experiment{'' if n == 1 else 's'} of {root} "
             f"{'has' if n == 1 else 'have'} headline numbers (metrics/study.json); a comparison needs 2."]
    if len(waiting):
        lines.append(", ".join(f"{k} {v}" for v, k in waiting.items())
                     + ": wait for them (`dvc queue status`; `dvc queue logs NAME` says why one failed).")
    lines.append(SWEEP_HINT)
    raise NothingToCompare("\n".join(lines))


def seed_groups(c: Comparison) -> pd.DataFrame:
    """Every metric of each group of experiments that differ only in the seed: mean, sd (n - 1),
    min, max and n (the runs with a number). One row per group, indexed by the swept params."""
    stats = _groups(c)[list(SUMMARISED)].agg(["mean", "std", "min", "max", "count"])
    return stats.rename(columns={"std": "sd", "count": "n"}, level=1)


def pareto_front(df: pd.DataFrame, up: str = "acc", down: str = "int8_ms") -> pd.Series:
    """True for the rows no other row beats: none as good on both columns and better on one
    (higher `up`, lower `down`). Rows missing either number are not on the front."""
    a, b = df[up].to_numpy(float), df[down].to_numpy(float)
    known = ~(np.isnan(a) | np.isnan(b))
    # [i, j]: row j is at least as good as row i on both, and better on one
    as_good = (a[None, :] >= a[:, None]) & (b[None, :] <= b[:, None])
    better = (a[None, :] > a[:, None]) | (b[None, :] < b[:, None])
    dominated = (as_good & better & known[None, :]).any(axis=1)
    return pd.Series(known & ~dominated, index=df.index)


def config_labels(c: Comparison, params: list[str] | None = None, names: bool = True) -> pd.Series:
    """Each row's values of `params` (default: the swept ones) as "name=value, ...", or the values
    alone (`names=False`, where a legend's title names the params), or ALL."""
    params = c.swept if params is None else params
    df = c.experiments
    if not params:
        return pd.Series(ALL, index=df.index)
    value = lambda p, v: f"{p}={label(v)}" if names else label(v)
    return df[params].apply(lambda row: ", ".join(value(p, v) for p, v in row.items()), axis=1)


# Tables for display: numbers as text, as the page shows them

def experiments_table(c: Comparison) -> pd.DataFrame:
    """One row per experiment: its kind, the params that differ, every number (accuracies in %
    with their 95% interval), and whether it is on each Pareto front."""
    df = c.experiments
    shown = {p: df[p].map(short) for p in c.shown}
    for acc, (lo, hi) in INTERVALS.items():
        shown[LABELS[acc]] = [interval(*v) for v in zip(df[acc], df[lo], df[hi])]
    shown[LABELS["agreement"]] = df.agreement.map(pct)
    for m, digits in (("int8_mb", 2), ("int8_ms", 2), ("study_s", 0)):
        shown[LABELS[m]] = df[m].map(lambda v: _number(v, digits))
    for cost in COSTS:
        shown[f"front ({LABELS[cost]})"] = pareto_front(df, "acc", cost).map({True: "yes", False: ""})
    return pd.DataFrame({"kind": df.kind, **shown}).set_axis(df.name.rename("experiment"))


def groups_table(c: Comparison) -> pd.DataFrame:
    """`seed_groups` as text: runs, their seeds, and each number as "mean ± sd [min, max]"."""
    stats = seed_groups(c)
    groups = _groups(c)
    shown = {"runs": groups.size()}
    if SEED in c.experiments:
        shown["seeds"] = groups[SEED].agg(lambda s: ", ".join(map(short, s)))
    for m in SUMMARISED:
        percent = m in INTERVALS or m == "agreement"
        scale, digits = (100, 2) if percent else (1, 0 if m == "study_s" else 2)
        shown[LABELS[m] + (" %" if percent else "")] = [
            _spread(*(v * scale for v in row[:4]), row[4], digits)
            for row in stats[m][["mean", "sd", "min", "max", "n"]].itertuples(index=False)]
    return pd.DataFrame(shown, index=stats.index)


BACKBONE = "model.backbone"


def details(repo: str | Path, rev: str, path: str) -> dict | None:
    """A results file of the experiment at `rev` (a stage output, read from DVC's cache), or of the
    workspace; None where it cannot be read."""
    import json

    import dvc.api

    try:
        if rev == "workspace":
            return json.loads((Path(repo) / path).read_text())
        return json.loads(dvc.api.read(path, repo=str(repo), rev=rev))
    except Exception:  # noqa: BLE001  not in the cache (pulled elsewhere), or no such stage yet
        return None


def backbone_table(c: Comparison, repo: str | Path | None = None) -> pd.DataFrame | None:
    """Where the experiments differ in model.backbone, one row per experiment in the form the seed
    studies compare backbones in: the backbone, its weights, parameters and multiply-adds of the
    model that ships, float32 and int8 file sizes, latency per image at 1 to N threads both ways,
    fine-tuned accuracy with its 95% interval, and how often int8 agrees with float32. Read from
    each experiment's results/quantize.json. None when no backbone was swept."""
    if BACKBONE not in c.differing:
        return None
    repo, rows = find_root(repo), []
    for _, r in c.experiments.iterrows():
        q = details(repo, r.rev, "results/quantize.json") or {}
        row = {"experiment": r["name"], "backbone": r[BACKBONE], "weights": short(r.get("model.weights")),
               "parameters": _number(q.get("parameters"), 0), "multiply-adds (M)": _number(
                   q["multiply_adds"] / 1e6 if q.get("multiply_adds") is not None else None, 0),
               "float32 MB": _number(q["float_bytes"] / 1e6 if "float_bytes" in q else None, 2),
               "int8 MB": _number(q["int8_bytes"] / 1e6 if "int8_bytes" in q else None, 2)}
        for kind in ("float32", "int8"):
            for threads, t in sorted((q.get("latency") or {}).get(kind, {}).items(), key=lambda kv: int(kv[0])):
                row[f"{kind} ms, {threads} thread{'s' * (int(threads) > 1)}"] = _number(t["median_ms"], 2)
        row["fine-tuned accuracy"] = interval(r.acc, r.acc_lo, r.acc_hi)
        row[LABELS["agreement"]] = pct(r.agreement)
        rows.append(row)
    return pd.DataFrame(rows).set_index("experiment")


# Figures (each returns a Figure and saves nothing)

def tradeoff_figure(c: Comparison) -> plt.Figure:
    """Fine-tuned accuracy (95% interval as the error bar) against the int8 model's latency and
    its size, one colour per swept configuration, the Pareto front drawn and its points named."""
    df, labels = c.experiments, config_labels(c, names=False)
    colours = dict(zip(labels.unique(), sns.color_palette(n_colors=labels.nunique())))
    fig, axes = plt.subplots(1, len(COSTS), figsize=(12, 5), sharey=True, layout="constrained")
    for ax, (cost, title) in zip(axes, COSTS.items()):
        known = df[["acc", cost]].notna().all(axis=1)
        for label, g in df[known].groupby(labels[known], sort=False):
            ax.errorbar(g[cost], g.acc, yerr=_yerr(g, "acc"), fmt="o", capsize=3, color=colours[label],
                        label=label)
        front = df[pareto_front(df, "acc", cost)].sort_values(cost)
        if len(front):
            # what the front attains: everything right of and below the steps is beaten
            ax.step(front[cost], front.acc, where="post", ls="--", lw=1, color="0.35", zorder=0)
            ax.scatter(front[cost], front.acc, s=180, facecolors="none", edgecolors="0.2", zorder=3)
            for _, r in _apart(front, cost, "acc", ax).iterrows():
                ax.annotate(r["name"], (r[cost], r.acc), xytext=(7, -12), textcoords="offset points", fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {LABELS[cost]} in these experiments", transform=ax.transAxes, ha="center")
        ax.set(xlabel=title, title=f"Accuracy against {title.split(' (')[0]}")
    axes[0].set_ylabel("fine-tuned val accuracy")
    axes[0].yaxis.set_major_formatter(PercentFormatter(1.0))
    handles, names = axes[0].get_legend_handles_labels()
    handles += [Line2D([], [], ls="--", marker="o", mfc="none", ms=12, color="0.35")]
    names += ["Pareto front (named where there is room)"]
    fig.legend(handles, names, loc="outside lower center", ncol=min(3, len(names)), frameon=False,
               title=", ".join(c.swept) or None)
    return fig


def param_figure(c: Comparison) -> plt.Figure:
    """Fine-tuned accuracy against each swept param (every differing param when only the seed
    differs). A run is a dot with its 95% interval; a seed group adds a diamond at its mean with
    a bar from its min to its max. Other swept params are colours."""
    df = c.experiments
    params = c.swept or c.differing or ["name"]
    cols = min(3, len(params))
    rows = math.ceil(len(params) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols + 1, 4.4 * rows + 0.4), sharey=True, squeeze=False,
                             layout="constrained")
    for ax in axes.flat[len(params):]:
        ax.set_visible(False)
    grouped = False
    for ax, p in zip(axes.flat, params):
        order = list(dict.fromkeys(df[p].sort_values(na_position="last", key=_sort_key).map(label)))
        rest = [q for q in c.swept if q != p]
        others = config_labels(c, rest, names=False)
        # colours only where the other swept params vary apart from p (not where they follow from
        # it, as the weights follow from the backbone in a backbone sweep)
        if others.groupby(df[p].map(label)).nunique().max() == 1:
            others = pd.Series(ALL, index=df.index)
        colours = dict(zip(others.unique(), sns.color_palette(n_colors=others.nunique())))
        dodge = {h: 0.5 * (i + 0.5) / len(colours) - 0.25 for i, h in enumerate(colours)}
        # seed groups share every value of a swept param; along anything else each run is alone
        groups = df.groupby(c.swept, dropna=False, sort=False) if p in c.swept else df.groupby(df.index)
        for _, g in groups:
            hue = others[g.index[0]]
            x = order.index(label(g[p].iloc[0])) + dodge[hue]
            # a group's runs side by side left of its mean, so that no dot hides behind the diamond
            runs = x - 0.02 - np.linspace(0.08, 0, len(g)) if len(g) > 1 else np.full(1, x)
            ax.errorbar(runs, g.acc, yerr=_yerr(g, "acc"), fmt="o", ms=4, alpha=0.6, capsize=2,
                        color=colours[hue])
            if len(g) > 1:
                grouped = True
                mean = g.acc.mean()
                ax.errorbar([x + 0.05], [mean], yerr=[[mean - g.acc.min()], [g.acc.max() - mean]], fmt="D",
                            ms=8, capsize=6, elinewidth=2.5, color=colours[hue], mec="black")
        ax.set_xticks(range(len(order)), order, rotation=30 if max(map(len, order)) > 8 else 0)
        ax.set(xlabel=p, xlim=(-0.6, len(order) - 0.4), title=f"Accuracy by {p}")
        if len(colours) > 1:
            ax.legend([Line2D([], [], marker="o", ls="", color=v) for v in colours.values()], list(colours),
                      title=", ".join(rest), fontsize=8, title_fontsize=8, loc="best")
    axes[0, 0].set_ylabel("fine-tuned val accuracy")
    axes[0, 0].yaxis.set_major_formatter(PercentFormatter(1.0))
    keys = [(Line2D([], [], marker="o", color="0.4", ms=4), "a run, 95% interval")]
    if grouped:
        keys.append((Line2D([], [], marker="D", color="0.4", mec="black", ms=8, lw=2.5),
                     "runs differing only in seed: mean, min to max"))
    fig.legend(*zip(*keys), loc="outside lower center", ncol=len(keys) if cols > 1 else 1, frameon=False)
    return fig


def size_figure(c: Comparison) -> plt.Figure | None:
    """Val accuracy against train images per class (data.train_per_class, log axis) for the control
    from scratch, the head on the frozen base and the fine-tuned model: each run a point with its
    95% interval, the mean over a size's runs joined by a line; the no-training baseline, which no
    size changes, a horizontal line (its mean over the runs) in the band of its interval. `all`
    sits right of the largest count. One panel per setting of the other swept params; None when
    the experiments do not differ in data.train_per_class."""
    if PER_CLASS not in c.differing:
        return None
    df = c.experiments
    x = _size_positions(df[PER_CLASS])
    panels = config_labels(c, [p for p in c.swept if p != PER_CLASS])
    names = list(dict.fromkeys(panels))
    fig, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4.8), sharey=True, squeeze=False,
                             layout="constrained")
    colours = dict(zip(CURVES, sns.color_palette(n_colors=len(CURVES))))
    nudge = dict(zip(CURVES, (0.94, 1.0, 1.06)))  # side by side at each size, on the log axis
    for ax, name in zip(axes[0], names):
        g = df[panels == name]
        for acc, label in CURVES.items():
            known = g[acc].notna()
            if not known.any():
                continue
            at = x[g.index[known]] * nudge[acc]
            ax.errorbar(at, g[acc][known], yerr=_yerr(g[known], acc), fmt="o", ms=4, capsize=2, alpha=0.7,
                        color=colours[acc], label=label)
            means = g[known].groupby(x[g.index[known]])[acc].mean()
            drawn = pd.to_numeric(g[known].groupby(x[g.index[known]])[PER_CLASS].first(), errors="coerce").notna()
            ax.plot(means.index[drawn] * nudge[acc], means[drawn].to_numpy(), "-", color=colours[acc], lw=1.5)
            if not drawn.all() and drawn.any():  # on to `all`, whose place on the axis is not its count: dotted
                ends = means[drawn].iloc[[-1]].index.append(means[~drawn].index)
                ax.plot(ends * nudge[acc], means[ends].to_numpy(), ":", color=colours[acc], lw=1.5)
        base = g[["base_acc", "base_lo", "base_hi"]].mean()
        if not base.isna().base_acc:
            ax.axhline(base.base_acc, color="0.3", ls="--", lw=1.2, label="no training (ImageNet classifier)")
            if not base.isna().any():
                ax.axhspan(base.base_lo, base.base_hi, color="0.3", alpha=0.12, lw=0)
        ticks = g.groupby(x[g.index])[PER_CLASS].first()
        ax.set_xscale("log")
        ax.set_xticks(ticks.index, [short(v) for v in ticks], minor=False)
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set(xlabel="train images per class (data.train_per_class)",
               title=name if name != ALL else "Accuracy against training-set size")
    axes[0, 0].set_ylabel("val accuracy")
    axes[0, 0].yaxis.set_major_formatter(PercentFormatter(1.0))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(2 * len(names), len(labels)), frameon=False,
               title="bars: 95% Wilson intervals of each run; lines: the mean over runs at each size")
    return fig


def main(root: Path, commits: int = 1) -> int:
    """`python -m workbook compare`: reports/compare.html from notebooks/compare.py, over the
    experiments based on the last `commits` commits; 1 (after saying what to run, on stderr) when
    there is nothing to compare or the notebook fails."""
    from workbook.pipeline.runner import NotebookFailed, execute

    paths = Paths(find_root(root))
    try:
        read(paths.root, commits)
    except NothingToCompare as e:
        print(e, file=sys.stderr)
        return 1
    paths.compare.parent.mkdir(parents=True, exist_ok=True)
    try:
        execute(paths.root / "notebooks" / "compare.py", paths.compare, {"repo": str(paths.root), "commits": commits},
                paths.root, "Compare experiments")
    except NotebookFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {_relative(paths.compare.with_suffix('.html'), Path.cwd())}: open it in a browser")
    return 0


# Helpers

def short(v) -> str:
    """A param value as a label: a number without trailing zeros, a path or URL by its last part."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "n/a"
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    v = str(v)
    return (PurePosixPath(v.rstrip("/")).name or v) if "/" in v else v


def label(v, width: int = 24) -> str:
    """`short(v)` for a figure, at most `width` characters: a longer one keeps its start and end
    (a weights file's name), so that ticks and legends leave the axes room."""
    text = short(v)
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep - keep // 2] + "…" + text[-(keep // 2):]


def _apart(points: pd.DataFrame, x: str, y: str, ax: plt.Axes, room: float = 0.06) -> pd.DataFrame:
    """The points (in order) whose labels would not sit on an earlier one's: at least `room` of
    the axes' width or height away from every point kept before."""
    span = np.array([np.ptp(ax.get_xlim()), np.ptp(ax.get_ylim())])
    scaled = points[[x, y]].to_numpy(float) / np.where(span > 0, span, 1)
    keep: list[int] = []
    for i, xy in enumerate(scaled):
        if all(np.abs(xy - scaled[j]).max() >= room for j in keep):
            keep.append(i)
    return points.iloc[keep]


def _groups(c: Comparison):
    df = c.experiments
    return df.groupby(c.swept or pd.Series(ALL, index=df.index, name="group"), dropna=False, sort=True)


def _union(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row)) or ["Experiment", "rev", "typ", "State"]


def _columns(frame: pd.DataFrame, names, file: str) -> pd.DataFrame:
    # exp_show names a column by its key alone, or "file:key" where two files hold the key
    cols = [f"{file}:{n}" if f"{file}:{n}" in frame else n for n in names]
    return frame.reindex(columns=cols).set_axis(list(names), axis=1)


def _param_values(col: pd.Series) -> pd.Series:
    # exp_show hands every number as a float and a null param as the text "None"
    col = col.where(col.ne("None") & col.notna(), None)
    numbers = pd.to_numeric(col, errors="coerce")
    if col.isna().all() or numbers.notna().sum() < col.notna().sum():
        return col
    return numbers.astype("Int64") if (numbers.dropna() % 1 == 0).all() else numbers


def _sort_key(col: pd.Series) -> pd.Series:
    """A param's values in sort order: as they are, or where numbers and words mix
    (data.train_per_class: 10, 30, all), the numbers in order and the words after them."""
    numbers = pd.to_numeric(col, errors="coerce")
    words = col.notna() & numbers.isna()
    if not words.any() or numbers.isna().all():
        return col
    return numbers.where(~words, numbers.max() + col[words].astype(str).rank(method="dense"))


def _size_positions(col: pd.Series) -> pd.Series:
    """Where each data.train_per_class value sits on the size curve's log axis: a count at itself,
    `all` at twice the largest count (it holds every train image, more than any
    count drawn; how many is not among exp_show's numbers)."""
    numbers = pd.to_numeric(col, errors="coerce").astype(float)
    largest = numbers.max() if numbers.notna().any() else 1.0
    return numbers.fillna(2 * largest)


def _yerr(g: pd.DataFrame, acc: str) -> np.ndarray:
    lo, hi = INTERVALS[acc]
    return np.array([(g[acc] - g[lo]).clip(lower=0).fillna(0), (g[hi] - g[acc]).clip(lower=0).fillna(0)])


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _number(v, digits: int) -> str:
    return NA if missing(v) else f"{v:,.{digits}f}"


def _spread(mean, sd, lo, hi, n, digits: int) -> str:
    if not n:
        return "n/a"
    if n == 1:
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {sd:,.{digits}f} [{lo:,.{digits}f}, {hi:,.{digits}f}]"
