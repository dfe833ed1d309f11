"""Every figure of the reports. Each function returns a matplotlib Figure and saves nothing."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbook.ml.prepared import read_prepared

sns.set_theme(style="whitegrid", context="notebook")
# Which images a figure picks is a matter of display, not of the study: a fixed draw keeps the
# reports alike from run to run without making `seed` a param of every stage.
DISPLAY_SEED = 0


# Above this many classes a figure drops per-cell numbers and shrinks its labels to stay legible.
MANY = 25


def _row_height(n: int) -> float:
    """Inches per row of a figure with a row per class: less when there are many."""
    return 0.35 if n <= MANY else 0.16


def class_counts(manifest: pd.DataFrame, names: dict[str, str]) -> plt.Figure:
    counts = manifest.groupby(["label", "split"]).size().rename("images").reset_index()
    counts["class"] = counts.label.map(names)
    n = counts.label.nunique()
    fig, ax = plt.subplots(figsize=(9, _row_height(n) * n + 1.5))
    sns.barplot(counts, y="class", x="images", hue="split", ax=ax)
    ax.set(title="Images per class and split", xlabel="images", ylabel="")
    if n > MANY:
        ax.tick_params(axis="y", labelsize=6)
    return fig


def image_grid(files: list[str], titles: list[str], columns: int, title: str = "",
               cell: float = 1.6) -> plt.Figure:
    rows = max(1, int(np.ceil(len(files) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, cell * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, f, t in zip(axes.flat, files, titles):
        ax.imshow(read_prepared([f])[0])
        ax.set_title(t, fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def sample_grid(manifest: pd.DataFrame, names: dict[str, str], per_class: int) -> plt.Figure:
    """Random train images of every class in rows of `per_class` images: `per_class` of each class
    (one row per class) up to MANY classes, fewer with more (4 classes a row up to 4 x MANY, then
    8), so that the grid stays as wide and grows by a row per few classes."""
    train = manifest[manifest.split == "train"]
    n = train.label.nunique()
    each = per_class if n <= MANY else max(1, per_class // 4) if n <= 4 * MANY else max(1, per_class // 8)
    files, titles = [], []
    for label, group in train.groupby("label", sort=True):
        group = group.sample(min(each, len(group)), random_state=DISPLAY_SEED)
        files += list(group.file) + [None] * (each - len(group))
        titles += [names[label]] + [""] * (each - 1)
    rows = "one row per class" if each == per_class else f"{each} of each class, {per_class // each} classes a row"
    keep = [i for i, f in enumerate(files) if f is not None]
    return image_grid([files[i] for i in keep], [titles[i] for i in keep], per_class,
                      f"Random train images, {rows}", cell=1.3)


def converted_samples(manifest: pd.DataFrame, names: dict[str, str], n: int) -> plt.Figure | None:
    """Up to `n` of the images that were converted to RGB, titled with their original mode."""
    converted = manifest[manifest.converted]
    if not len(converted):
        return None
    few = converted.sample(min(n, len(converted)), random_state=DISPLAY_SEED)
    return image_grid(list(few.file), [f"{names[label]} ({mode})" for label, mode in zip(few.label, few["mode"])],
                      n, "Some converted images")


def size_histograms(manifest: pd.DataFrame) -> plt.Figure:
    """Original width and height (after EXIF rotation), before resizing."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, col in zip(axes, ("width", "height")):
        sns.histplot(manifest, x=col, hue="split", bins=40, ax=ax, element="step")
        ax.set(title=f"Original {col}", xlabel="pixels")
    fig.tight_layout()
    return fig


def learning_curves(curves: pd.DataFrame, title: str = "Learning curves") -> plt.Figure:
    """Loss and accuracy per epoch, train and val; a line marks where fine-tuning begins."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(curves.epoch, curves[metric], "o-", label=f"train {metric}")
        ax.plot(curves.epoch, curves[f"val_{metric}"], "s-", label=f"val {metric}")
        starts = curves.groupby("stage", sort=False).epoch.min()
        for stage, epoch in list(starts.items())[1:]:
            ax.axvline(epoch - 0.5, color="gray", ls="--")
            ax.text(epoch - 0.45, ax.get_ylim()[1], stage, va="top", fontsize=8, color="gray")
        ax.set(xlabel="epoch", title=metric)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def rate_schedule(schedule, steps: int, steps_per_epoch: int) -> plt.Figure:
    """The learning rate a schedule gives at each training step, epochs marked."""
    rates = np.asarray(schedule(np.arange(steps + 1)))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.arange(steps + 1), rates)
    for epoch in range(steps_per_epoch, steps, steps_per_epoch):
        ax.axvline(epoch, color="gray", ls=":")
    ax.set(xlabel=f"step ({steps_per_epoch} per epoch)", ylabel="learning rate", title="Learning rate per step")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    fig.tight_layout()
    return fig


def tuner_trials(trials: pd.DataFrame, best_lr: float) -> plt.Figure:
    """Every trial: learning rate (log) against held-out accuracy and loss."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("val_accuracy", "val_loss")):
        ax.scatter(trials.lr, trials[metric], s=40)
        ax.axvline(best_lr, color="tab:red", ls="--", label=f"chosen lr {best_lr:.2e}")
        ax.set_xscale("log")
        ax.set(xlabel="learning rate", ylabel=f"held-out {metric.removeprefix('val_')}",
               title=f"{metric} per trial")
        ax.legend()
    fig.tight_layout()
    return fig


def confusion(matrix: np.ndarray, names: list[str], title: str, normalised: bool) -> plt.Figure:
    """A heatmap, rows the true classes; numbers in the cells up to MANY classes. Beyond, a colour
    scale instead, every class named in small type, the figure no larger than a page."""
    n = len(names)
    many = n > MANY
    side = min(0.6 * n + 3, 14) if not many else 14
    fig, ax = plt.subplots(figsize=(side, side * 0.85))
    sns.heatmap(matrix, annot=not many, fmt=".2f" if normalised else "d", cmap="Blues", cbar=many,
                xticklabels=names, yticklabels=names, ax=ax, vmin=0, vmax=1 if normalised else None,
                annot_kws={"fontsize": 7}, square=many)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    if many:
        ax.tick_params(labelsize=max(3, min(7, 500 // n)))
    plt.setp(ax.get_xticklabels(), rotation=45 if not many else 90, ha="right" if not many else "center")
    fig.tight_layout()
    return fig


def bars(frame: pd.DataFrame, x: str, y: str, title: str, hue: str | None = None,
         xlabel: str | None = None) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 0.35 * frame[y].nunique() + 1.5))
    sns.barplot(frame, x=x, y=y, hue=hue, ax=ax)
    ax.set(title=title, xlabel=xlabel or x, ylabel="")
    fig.tight_layout()
    return fig


def accuracies(table: pd.DataFrame, title: str) -> plt.Figure:
    """One bar per model (`model`, `accuracy`) with its 95% interval (`95% CI low`/`high`) as a
    whisker, on an axis that starts low enough to show the gaps."""
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(table) + 1.4))
    y = np.arange(len(table))
    err = np.vstack([table.accuracy - table["95% CI low"], table["95% CI high"] - table.accuracy])
    ax.barh(y, table.accuracy, xerr=err, color=sns.color_palette()[: len(table)], capsize=4)
    ax.set_yticks(y, table.model)
    ax.invert_yaxis()
    ax.set_xlim(max(0.0, float(table["95% CI low"].min()) - 0.02), 1.0)
    ax.set(title=title, xlabel="accuracy (whiskers: 95% interval)")
    fig.tight_layout()
    return fig


def latency(table: pd.DataFrame) -> plt.Figure:
    """Median latency per image (`median_ms`) by thread count (`threads`) for each `model`."""
    frame = table.assign(threads=[f"{t} thread{'s' if t > 1 else ''}" for t in table.threads])
    return bars(frame, "median_ms", "threads", "Latency per image (median, batch 1)", hue="model", xlabel="ms")


def per_class(table: pd.DataFrame, column: str, title: str, xlabel: str | None = None) -> plt.Figure:
    """One bar per class (`class`) of `column`, in the table's order (the worst first); only the
    MANY first where there are more classes, and the title says so."""
    shown = table.head(MANY)
    if len(shown) < len(table):
        title = f"{title}: the {len(shown)} worst of {len(table)} classes"
    return bars(shown, column, "class", title, xlabel=xlabel)


def per_class_f1(table: pd.DataFrame) -> plt.Figure:
    fig = per_class(table, "f1-score", "F1 per class (fine-tuned)")
    fig.axes[0].set_xlim(max(0.0, table["f1-score"].head(MANY).min() - 0.05), 1.0)
    return fig


def mistakes(table: pd.DataFrame) -> plt.Figure | None:
    """The images of a mistakes table (`file`, `true`, `predicted`, `confidence`), titled."""
    if not len(table):
        return None
    titles = [f"true: {t}\npred: {p} ({c:.0%})" for t, p, c in zip(table.true, table.predicted, table.confidence)]
    return image_grid(list(table.file), titles, 8, f"The {len(table)} most confident mistakes", cell=1.8)
