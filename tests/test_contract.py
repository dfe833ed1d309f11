"""The stage contract, read from the repository's own files: each stage declared once in dvc.yaml,
its code dependencies derived from what its notebook imports, its notebook thin.

Here, statically. tests/test_pipeline.py checks the same contract on a real tiny study: editing
each module makes `dvc status` list every stage that imports it; notebooks run by hand leave the
pipeline's outputs alone.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from workbook.pipeline.contract import notebook_name
from workbook.pipeline.params import keys
from workbook.pipeline.paths import STAGES
from workbook.pipeline.runner import notebook_code, read_notebook

SRC = REPO / "src" / "workbook"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

# Modules that only draw figures, put numbers into words or show progress: editing them changes
# how a report looks, never a number, so no stage lists them as a dependency (restyling a figure
# or rewording a summary does not retrain a model; the templates are not dependencies either).
PRESENTATION_ONLY = {
    "analysis/plots.py",  # matplotlib figures of numbers the stages computed
    "analysis/summaries.py",  # the stages' summaries in words, from analysis/templates/
    "analysis/formatting.py",  # how a number is written ("97.53% (95% CI 96.99–97.97%)")
    "pipeline/progress.py",  # progress bars
}
# Modules a figure may import: they read inputs, and compute nothing.
READERS = {"ml/prepared.py"}  # the prepared images, for the figures that show them
MAX_CODE_LINES = 50  # per stage notebook, non-blank and non-comment


def module_file(dotted: str) -> str | None:
    """"workbook.ml.network" -> "ml/network.py"; a package -> its __init__.py; None if neither."""
    parts = dotted.split(".")[1:]
    if parts and SRC.joinpath(*parts).with_suffix(".py").is_file():
        return "/".join(parts) + ".py"
    if SRC.joinpath(*parts, "__init__.py").is_file():
        return "/".join([*parts, "__init__.py"])
    return None


def module_imports(source: str) -> set[str]:
    """The workbook modules a piece of Python imports, at the top or inside functions, as paths
    under src/workbook ("ml/network.py")."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {module_file(a.name) for a in node.names if a.name.split(".")[0] == "workbook"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "workbook":
                continue
            # `from workbook.stages import data` names a module; `from workbook import __version__` does not
            named = {module_file(f"{node.module}.{a.name}") for a in node.names}
            found |= (named - {None}) or {module_file(node.module)}
            found.add(module_file(node.module))
    return found - {None}


def packages(module: str) -> set[str]:
    """The __init__.py files Python runs before `module` ("ml/network.py": __init__.py, ml/__init__.py)."""
    parts = module.split("/")[:-1]
    return {"/".join([*parts[:i], "__init__.py"]) for i in range(len(parts) + 1)}


def notebook_source(path: Path) -> str:
    return "\n".join(notebook_code(path))


def stage_notebook(stage: str, root: Path = REPO) -> Path:
    """notebooks/NN_stage.py: the stage's notebook, as text (what dvc.yaml depends on)."""
    return root / "notebooks" / f"{notebook_name(stage)}.py"


def closure(modules: set[str]) -> set[str]:
    """Every workbook module reachable from `modules` through their imports, with the package
    __init__ files that importing them runs."""
    seen, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += (module_imports((SRC / name).read_text()) | packages(name)) - seen
    return seen


def derived_deps(stage: str) -> set[str]:
    """src/workbook files a stage must depend on: its notebook's imports, closed, minus
    presentation-only modules."""
    used = closure(module_imports(notebook_source(stage_notebook(stage))))
    return {f"src/workbook/{m}" for m in used - PRESENTATION_ONLY}


def declared_module_deps(stage: str, stages: dict = DVC) -> set[str]:
    return {d for d in stages[stage].get("deps", []) if d.startswith("src/workbook/") and d.endswith(".py")}


def missing_and_extra(stage: str, stages: dict = DVC) -> tuple[set[str], set[str]]:
    derived, declared = derived_deps(stage), declared_module_deps(stage, stages)
    return derived - declared, declared - derived


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_exactly_the_modules_the_notebook_imports(stage):
    missing, extra = missing_and_extra(stage)
    assert not missing, f"dvc.yaml: stage {stage} imports {sorted(missing)} but does not depend on them"
    assert not extra, f"dvc.yaml: stage {stage} depends on {sorted(extra)} but never imports them"


def test_the_check_catches_a_dependency_removed_from_dvc_yaml():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    stages["quantize"]["deps"].remove("src/workbook/ml/litert.py")
    assert missing_and_extra("quantize", stages)[0] == {"src/workbook/ml/litert.py"}


def test_imports_are_followed_through_modules_and_functions():
    assert {"ml/litert.py", "ml/network.py", "pipeline/params.py"} <= closure({"stages/features.py"})
    assert {"__init__.py", "pipeline/__init__.py"} <= closure({"pipeline/paths.py"})
    assert module_imports("from workbook.stages import data\nfrom workbook import __version__") == {
        "stages/data.py", "stages/__init__.py", "__init__.py"}


def test_imports_run_one_way_stages_use_parts_and_nothing_imports_a_stage():
    for path in sorted(SRC.rglob("*.py")):
        module = path.relative_to(SRC).as_posix()
        if module == "__main__.py":  # the command line: `tune-worker` runs the tune stage's search
            continue
        stages = {m for m in module_imports(path.read_text()) if m.startswith("stages/")} - {"stages/__init__.py"}
        assert stages <= {module}, f"{module} imports the stage modules {sorted(stages - {module})}"


def test_presentation_only_modules_import_no_computing_module():
    for name in PRESENTATION_ONLY:
        inits = {m for m in closure({name}) if m.endswith("__init__.py")}
        assert closure({name}) - {*PRESENTATION_ONLY, "pipeline/atomic.py", *READERS, *inits} == set(), name


@pytest.mark.parametrize("stage", STAGES)
def test_each_param_is_declared_once_and_exists(stage):
    declared = [str(p) for p in DVC[stage].get("params") or []]
    valid = set(keys()) | {k.split(".")[0] for k in keys()}
    assert set(declared) <= valid, f"unknown params in stage {stage}: {set(declared) - valid}"
    overlapping = [(a, b) for a in declared for b in declared if a != b and b.startswith(a + ".")]
    assert len(set(declared)) == len(declared) and not overlapping, f"stage {stage} names a param twice"


@pytest.mark.parametrize("stage", STAGES)
def test_stage_runs_through_the_runner_and_its_notebook_receives_only_params(stage):
    spec = DVC[stage]
    assert spec["cmd"] == f"python -m workbook run {stage}"
    cell = next(c for c in read_notebook(stage_notebook(stage)).cells if "parameters" in c.metadata.get("tags", []))
    assert re.fullmatch(r"params = None(\s*#.*)?", cell.source.strip())
    code = notebook_source(stage_notebook(stage))
    assert f'start("{stage}", params)' in code
    # no notebook restates a param by name: it reads them from the stage's view only
    assert not re.search(r"\b(seed|data|model|features|tune|train|finetune|control|evaluate|quantize)_\w+\s*=", code)
    assert f"notebooks/{notebook_name(stage)}.py" in spec["deps"]


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_notebook_runs_its_stage_in_one_call(stage):
    """A notebook is the method in steps, each leaving an object to inspect; `run()` composes
    the same steps for the tests and the bench."""
    code = notebook_source(stage_notebook(stage))
    assert not re.search(r"\b\w+\.run\(", code), f"{stage}'s notebook calls a whole run()"
    assert len(re.findall(r"^\w+ = ", code, flags=re.M)) >= 4, f"{stage}'s notebook leaves few objects to inspect"


@pytest.mark.parametrize("stage", STAGES)
def test_notebooks_are_thin(stage):
    code = notebook_source(stage_notebook(stage))
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= MAX_CODE_LINES, f"{stage}: {len(lines)} code lines"


def test_the_notebooks_are_text_with_cells_only():
    assert sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_file() and p.suffix != ".py") == []
    for path in (REPO / "notebooks").glob("*.py"):
        text = path.read_text()
        assert text.startswith("# %%"), f"{path.name}: a header (notebook metadata) before the first cell"
        markers = [line for line in text.splitlines() if line.startswith("# %%")]
        assert set(markers) <= {"# %%", "# %% [markdown]", '# %% tags=["parameters"]'}, path.name


def jupyterlab(root: Path):
    """What JupyterLab reads and saves notebooks through (Jupytext's contents manager), over a copy
    of the notebooks and jupytext.toml in `root`."""
    from jupytext.sync_contentsmanager import TextFileContentsManager

    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copy(REPO / "jupytext.toml", root)
    return TextFileContentsManager(root_dir=str(root))


def test_opening_running_and_saving_a_notebook_in_jupyterlab_writes_the_same_bytes(tmp_path):
    """What JupyterLab does to an unedited notebook: a kernel named, outputs, execution counts, cell
    ids and cell metadata added, then saved."""
    import nbformat

    manager = jupyterlab(tmp_path)
    for path in sorted((tmp_path / "notebooks").glob("*.py")):
        name = f"notebooks/{path.name}"
        nb = manager.get(name, type="notebook")["content"]
        nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                           language_info={"name": "python", "version": "3.11.9", "mimetype": "text/x-python"})
        for i, cell in enumerate(nb.cells):
            cell["id"] = f"cell-{i}"
            cell.metadata.update(collapsed=False, scrolled=True, execution={"iopub.status.idle": "2026-01-01"})
            if cell.cell_type == "code":
                cell.execution_count = i
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="something\n")]
        manager.save({"type": "notebook", "format": "json", "content": nb}, name)
        assert path.read_bytes() == (REPO / name).read_bytes(), name
        assert sorted(p.name for p in path.parent.iterdir() if not p.name.endswith(".py")) == [], "no paired .ipynb"


def test_editing_a_cell_changes_the_text_notebook(tmp_path):
    manager = jupyterlab(tmp_path)
    name = f"notebooks/{notebook_name('finetune')}.py"
    nb = manager.get(name, type="notebook")["content"]
    nb.cells[0].source += "\nA sentence more."
    manager.save({"type": "notebook", "format": "json", "content": nb}, name)
    assert (tmp_path / name).read_text() != (REPO / name).read_text()
    assert "# A sentence more." in (tmp_path / name).read_text()


VERDICT_WORDS = re.compile(r"does not beat|falls short|within chance|-point target|NOT met")


def test_verdicts_are_worded_in_one_module():
    places = [p for p in [*SRC.rglob("*.py"), *(REPO / "notebooks").glob("*.py")]
              if VERDICT_WORDS.search(p.read_text()) and p.name != "verdicts.py"]
    assert places == []


def test_no_python_file_holds_an_html_page():
    pages = [p.name for p in SRC.rglob("*.py") if re.search(r"<!DOCTYPE|<html|<body", p.read_text(), re.I)]
    assert pages == []


def test_every_output_path_in_dvc_yaml_is_declared_once():
    outs = [next(iter(e)) if isinstance(e, dict) else e
            for s in DVC.values() for kind in ("outs", "metrics", "plots") for e in s.get(kind) or []]
    assert len(outs) == len(set(outs))
