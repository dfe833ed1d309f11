"""The stage contract, read from the repository's own files: each stage declared once in dvc.yaml,
its code dependencies derived from what its notebook imports, its notebook thin.

Here, statically. tests/test_pipeline.py checks the same contract on a real tiny study: editing
each module makes `dvc status` list every stage that imports it; notebooks run by hand leave the
pipeline's outputs alone.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

from workbook.params import keys
from workbook.paths import STAGES
from workbook.runner import notebook_code
from workbook.stages import notebook_name

from conftest import REPO

SRC = REPO / "src" / "workbook"
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]

# Modules that only draw figures or format text: editing them changes how a report looks, never
# a number, so no stage lists them as a dependency (restyling a figure does not retrain a model).
PRESENTATION_ONLY = {
    "plots",  # matplotlib figures of numbers the stages computed
    "progress",  # progress bars
}
# Modules a figure may import: they read inputs, and compute nothing.
READERS = {"pixels"}  # the prepared images, for the figures that show them
MAX_CODE_LINES = 50  # per stage notebook, non-blank and non-comment


def module_imports(source: str) -> set[str]:
    """The workbook modules a piece of Python imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("workbook.")}
            if any(a.name == "workbook" for a in node.names):
                found.add("__init__")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "workbook":
                # `from workbook import data` names a module; `from workbook import __version__` does not
                found |= {a.name for a in node.names if (SRC / f"{a.name}.py").is_file()}
            elif node.module.startswith("workbook."):
                found.add(node.module.split(".")[1])
    return found


def notebook_source(path: Path) -> str:
    return "\n".join(notebook_code(path))


def closure(modules: set[str]) -> set[str]:
    """Every workbook module reachable from `modules` through their imports."""
    seen, todo = set(), list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += module_imports((SRC / f"{name}.py").read_text()) - seen
    # importing any module of the package runs the package's __init__ first
    return seen | ({"__init__"} if seen else set())


def derived_deps(stage: str) -> set[str]:
    """src/workbook/*.py files a stage must depend on: its notebook's imports, closed, minus
    presentation-only modules."""
    used = closure(module_imports(notebook_source(REPO / "notebooks" / f"{notebook_name(stage)}.ipynb")))
    return {f"src/workbook/{m}.py" for m in used - PRESENTATION_ONLY}


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
    stages["quantize"]["deps"].remove("src/workbook/litert.py")
    assert missing_and_extra("quantize", stages)[0] == {"src/workbook/litert.py"}


def test_imports_are_followed_through_modules_and_functions():
    assert {"litert", "model", "params"} <= closure({"features"})  # litert inside a method
    assert "__init__" in closure({"paths"})


def test_presentation_only_modules_import_no_computing_module():
    for name in PRESENTATION_ONLY:
        assert closure({name}) - {name, "__init__", "atomic", *READERS} == set(), name


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
    nb = json.loads((REPO / "notebooks" / f"{notebook_name(stage)}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    assert re.fullmatch(r"params = None(\s*#.*)?", "".join(cell["source"]).strip())
    code = notebook_source(REPO / "notebooks" / f"{notebook_name(stage)}.ipynb")
    assert f'start("{stage}", params)' in code
    # no notebook restates a param by name: it reads them from the stage's view only
    assert not re.search(r"\b(seed|data|model|features|tune|train|finetune|evaluate|quantize)_\w+\s*=", code)
    assert f"notebooks/{notebook_name(stage)}.ipynb" in spec["deps"]


@pytest.mark.parametrize("stage", STAGES)
def test_notebooks_are_thin(stage):
    code = notebook_source(REPO / "notebooks" / f"{notebook_name(stage)}.ipynb")
    lines = [line for line in code.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(lines) <= MAX_CODE_LINES, f"{stage}: {len(lines)} code lines"


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_source_notebooks_carry_no_outputs(path):
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


VERDICT_WORDS = re.compile(r"does not beat|falls short|within chance|-point target|NOT met")


def test_verdicts_are_worded_in_one_module():
    places = [p for p in [*SRC.glob("*.py"), *(REPO / "notebooks").glob("*.ipynb")]
              if VERDICT_WORDS.search(p.read_text()) and p.name != "verdicts.py"]
    assert places == []


def test_no_python_file_holds_an_html_page():
    pages = [p.name for p in SRC.rglob("*.py") if re.search(r"<!DOCTYPE|<html|<body", p.read_text(), re.I)]
    assert pages == []


def test_every_output_path_in_dvc_yaml_is_declared_once():
    outs = [next(iter(e)) if isinstance(e, dict) else e
            for s in DVC.values() for kind in ("outs", "metrics", "plots") for e in s.get(kind) or []]
    assert len(outs) == len(set(outs))
