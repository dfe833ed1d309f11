"""Each stage notebook is the method in steps: run by hand cell by cell on a tiny study, every step
leaves the named object it promises, and the notebook ends where the stage's `run()` ends.

Checks are cells injected after the cell that binds a name; they run in the notebook's own kernel,
as a researcher would type them. Minutes: a tiny study first (`dvc repro`), then each notebook.
"""

from __future__ import annotations

import textwrap

import pytest
from conftest import copy_repo, make_folder_set, tiny_params

from workbook.pipeline.contract import notebook_name
from workbook.pipeline.runner import read_notebook

pytestmark = pytest.mark.slow

# stage -> [(a name the notebook binds, what must hold once it is bound)], in the notebook's order.
# `P` is stage.P; the last check of each compares the notebook's result with `run()`'s.
CHECKS = {
    "tune": [
        ("batches", """
            assert batches.train.n + batches.held.n == len(given.y_train), "the hold-out is carved from train"
            assert set(batches.train.subset).isdisjoint(batches.held.subset)
        """),
        ("space", """
            assert list(space.index) == ["lr"] and space.loc["lr", "sampling"] == "log"
            assert (space.loc["lr", "min"], space.loc["lr", "max"]) == (P.tune.lr_min, P.tune.lr_max)
        """),
        ("trials", """
            assert len(trials) == P.tune.trials and "best" not in trials
            assert trials.lr.between(P.tune.lr_min, P.tune.lr_max).all() and trials.val_loss.notna().all()
        """),
        ("result", """
            assert result.best_lr == trials.lr[trials.val_loss.idxmin()]
            again = tune.run(P, stage.paths)
            assert (again.best_lr, again.best_val_loss) == (result.best_lr, result.best_val_loss)
        """),
    ],
    "train": [
        ("initial", """
            assert initial.head.name == "head" and all(layer.trainable for layer in initial.head.layers)
            assert initial.model is initial.head, "with train.augment flip the head trains on pooled features"
            initial_weights = [w.copy() for w in initial.head.get_weights()]
        """),
        ("batches", """
            x, y = batches.train[0]
            assert x.shape == (P.train.batch_size, given.data.features) and len(y) == P.train.batch_size
        """),
        ("fitted", """
            assert fitted.curves.epoch.tolist() == list(range(1, P.train.epochs + 1))
            moved = [(a != b).any() for a, b in zip(initial_weights, fitted.model.get_weights())]
            assert any(moved), "the fit moved the head"
        """),
        ("selection", """
            assert 0 < len(given.fit.y_train) < len(given.data.y_train), "the choice's head leaves the hold-out out"
            assert selection.model.count_params() == fitted.model.count_params()
            assert stage.paths.selection_head.is_file()
        """),
        ("result", """
            again = train.run(P, stage.paths)
            assert (again.val_accuracy, again.val_loss) == (result.val_accuracy, result.val_loss)
        """),
    ],
    "finetune": [
        ("selection", """
            assert selection.choice.model in ("fine-tuned", "head")
            assert 0 <= selection.head_holdout <= 1 and 0 <= selection.finetuned_holdout <= 1
            assert len(given.fit.y_train) + len(given.held.y_train) == len(given.data.y_train)
        """),
        ("unfrozen", """
            k = P.finetune.fine_tune_at
            assert [l.name for l in unfrozen.base.layers if l.trainable] == [l.name for l in unfrozen.base.layers[k:]]
            layers = unfrozen.layers()
            assert list(layers.index) == list(range(k, len(unfrozen.base.layers))) and layers.trainable.all()
            assert unfrozen.trainable_parameters == layers["trainable parameters"].sum() + given.head.count_params()
        """),
        ("schedule", """
            steps = P.finetune.epochs * len(batches.train)
            assert abs(float(schedule(0)) - given.lr) < 1e-12 and float(schedule(steps)) == 0.0
            x, y = batches.train[0]
            assert [a.shape[1:] for a in x] == [a.shape[1:] for a in given.data.cache.cut("train")]
        """),
        ("fitted", """
            assert fitted.curves.epoch.tolist() == [P.train.epochs + 1 + i for i in range(P.finetune.epochs)]
        """),
        ("result", """
            assert not any(layer.trainable for layer in given.base.layers), "frozen again once trained"
            assert model.output_shape[-1] == len(given.data.classes)
            again = finetune.run(P, stage.paths)
            assert (again.val_accuracy, again.val_loss) == (result.val_accuracy, result.val_loss)
        """),
    ],
    "evaluate": [
        ("predictions", """
            import numpy as np
            assert {"fine-tuned", "head only"} <= set(predictions.probs)
            for p in predictions.probs.values():
                assert p.shape == (len(given.data.y_val), len(given.data.classes))
                assert np.allclose(p.sum(axis=1), 1, atol=1e-5)
        """),
        ("result", """
            assert result.accuracy.right == int((predictions.probs["fine-tuned"].argmax(1) == given.data.y_val).sum())
            again = evaluate.run(P, stage.paths)
            assert again.accuracy == result.accuracy and again.head == result.head
        """),
    ],
    "quantize": [
        ("conversion", """
            assert conversion.io_dtype == P.quantize.io_dtype
            assert len(conversion.calibration) == min(P.quantize.representative_samples, conversion.train_images)
            assert set(conversion.settings().columns) == {"float32", "int8"}
        """),
        ("models", """
            assert models["int8"].input["dtype"].__name__ == P.quantize.io_dtype
            assert models["float32"].input["dtype"].__name__ == "float32"
        """),
        ("result", """
            again = quantize.run(P, stage.paths)
            assert (again.int8, again.float32, again.agreement) == (result.int8, result.float32, result.agreement)
        """),
    ],
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A tiny study, run to its end by the pipeline."""
    tmp = tmp_path_factory.mktemp("notebooks")
    repo = copy_repo(tmp / "repo")
    repo.write_params(tiny_params(make_folder_set(tmp / "images", train=8, val=3)))
    repo.run("git", "commit", "-qam", "tiny params")
    repo.dvc("repro")
    return repo


def with_checks(stage: str, root):
    """The stage's notebook with each check injected after the first cell that binds its name."""
    import nbformat

    nb = read_notebook(root / "notebooks" / f"{notebook_name(stage)}.py")
    cells, todo = [], list(CHECKS[stage])
    for cell in nb.cells:
        cells.append(cell)
        while todo and cell.cell_type == "code" and any(line.startswith(f"{todo[0][0]} = ")
                                                        for line in cell.source.splitlines()):
            cells.append(nbformat.v4.new_code_cell("P = stage.P\n" + textwrap.dedent(todo.pop(0)[1]).strip()))
    assert not todo, f"{stage}: the notebook binds no {todo[0][0]!r}"
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.mark.parametrize("stage", list(CHECKS))
def test_each_step_leaves_its_object_and_the_notebook_ends_where_run_ends(study, stage):
    from nbclient import NotebookClient

    nb = with_checks(stage, study.root)
    folder = study.root / "notebooks"
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(folder)}}).execute(env=study.env())
    said = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert said.startswith("Exploring:"), "run by hand: the outputs go under scratch/"
