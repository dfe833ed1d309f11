"""The repository holds together: pins in step, notebooks clean, params named the same way
in params.yaml, dvc.yaml and the notebooks."""

from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml

from workbook.data import read_pin
from workbook.params import keys
from workbook.paths import STAGES
from workbook.stages import notebook_name

from conftest import REPO

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())


def pins(lines):
    return {re.split(r"[=<>!~ ]", p, maxsplit=1)[0].lower(): p for p in lines if not p.startswith("-")}


def test_environment_yml_and_pyproject_pin_the_same_packages():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda_pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(conda_pip) == pip
    assert all("==" in p for p in pip.values())
    assert "python=3.11" in env["dependencies"] and project["requires-python"].startswith(">=3.11")


def test_committed_defaults_are_the_public_sources():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["data"]["source"] == read_pin(REPO / "data.dvc").url
    assert params["model"]["weights"] == "imagenet"
    assert params["evaluate"]["baseline_weights"] == "imagenet"


def notebook(stage):
    return json.loads((REPO / "notebooks" / f"{notebook_name(stage)}.ipynb").read_text())


def parameters(nb) -> dict[str, str]:
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    return dict(re.findall(r"^(\w+) = (.+)$", "".join(cell["source"]), re.M))


@pytest.mark.parametrize("stage", [s for s in STAGES if s in DVC["stages"]])
def test_stage_params_agree_in_dvc_yaml_and_the_notebook(stage):
    spec = DVC["stages"][stage]
    passed = dict(re.findall(r"-p (\w+) \"?\$\{([\w.]+)\}\"?", spec["cmd"]))
    assert all(name == key.replace(".", "_", 1) for name, key in passed.items()), passed
    assert sorted(passed.values()) == sorted(spec["params"]) and set(spec["params"]) <= set(keys())
    assert parameters(notebook(stage)) == {name: "None" for name in passed}
    nb = f"notebooks/{notebook_name(stage)}.ipynb"
    assert f"papermill {nb} reports/.tmp-{notebook_name(stage)}.ipynb" in spec["cmd"]
    assert nb in spec["deps"] and f"reports/{notebook_name(stage)}.html" in spec["outs"]


@pytest.mark.parametrize("stage", [s for s in STAGES if s in DVC["stages"]])
def test_source_notebooks_carry_no_outputs(stage):
    for cell in notebook(stage)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_every_stage_writes_its_wall_time():
    for name, spec in DVC["stages"].items():
        metrics = [next(iter(m)) if isinstance(m, dict) else m for m in spec["metrics"]]
        assert f"metrics/timings/{name}.json" in metrics
