"""The two installs, CPU (extra `cpu`) and NVIDIA GPU (extra `gpu`), hold together: pyproject.toml
and the conda files pin the same packages, and every install the README, CI or a conda file offers
gets exactly one TensorFlow distribution. tensorflow-cpu and tensorflow ship the same files: one
installed over the other leaves a mix of both, and uninstalling either breaks the other."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]
CONDA = {"environment.yml": ("cpu", "dev", "demo"), "environment-gpu.yml": ("gpu", "dev", "demo")}  # file: its extras

# Distributions that each install the `tensorflow` package (unlike tensorflow-io-gcs-filesystem etc.).
TENSORFLOW = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
              "tf-nightly", "tf-nightly-cpu", "tf-nightly-gpu"}
# `pip install ... -e '.[a,b]'` (quoted or not, with or without extras) in the README and in CI.
EDITABLE = re.compile(r"pip install[^\n]*?\s-e\s+['\"]?\.(?:\[([^\]]*)\])?")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(lines) -> dict[str, str]:
    """Requirement lines, normalised, by package name; pip options (`-e .`) left out."""
    reqs = [Requirement(line) for line in lines if not line.startswith("-")]
    return {canonical(r.name): str(r) for r in reqs}


def conda(name: str) -> tuple[dict, list[str]]:
    env = yaml.safe_load((REPO / name).read_text())
    return env, next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))


def tensorflows(requirements) -> set[str]:
    """The TensorFlow distributions (`name[extras]`) that installing `requirements` brings in,
    through extras and dependencies: the project's from pyproject.toml, every other package's from
    its installed metadata (a package not installed here counts for itself only)."""
    todo, seen, found = [(r, frozenset()) for r in requirements], set(), set()
    while todo:
        line, parent_extras = todo.pop()
        req = Requirement(line)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in parent_extras or {""}):
            continue
        name, extras = canonical(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        if name in TENSORFLOW:
            found.add(name + (f"[{','.join(sorted(extras))}]" if extras else ""))
        elif name == canonical(PROJECT["name"]):
            todo += [(r, extras) for r in PROJECT["dependencies"] + [r for e in extras for r in EXTRAS[e]]]
        else:
            try:
                todo += [(r, extras) for r in metadata.requires(name) or []]
            except metadata.PackageNotFoundError:
                pass
    return found


def offered() -> dict[str, list[str]]:
    """Every install the project offers, as requirement lines: the README's and CI's
    `pip install -e '.[...]'` and the conda files."""
    installs = {}
    for path in ("README.md", ".ci/run"):
        for extras in EDITABLE.findall((REPO / path).read_text()):
            spec = f".[{extras}]" if extras else "."
            installs[f"{path}: pip install -e '{spec}'"] = [f"workbook[{extras}]" if extras else "workbook"]
    for name in CONDA:
        _, pip = conda(name)
        installs[name] = [line for line in pip if not line.startswith("-")] + (
            ["workbook"] if "-e ." in pip else [])
    return installs


def test_every_pin_is_exact():
    for line in PROJECT["dependencies"] + [r for reqs in EXTRAS.values() for r in reqs]:
        assert [s.operator for s in Requirement(line).specifier] == ["=="], line


@pytest.mark.parametrize("name", CONDA)
def test_conda_files_pin_what_pyproject_pins(name):
    env, pip = conda(name)
    extras = CONDA[name]
    assert pinned(pip) == pinned(PROJECT["dependencies"] + [r for e in extras for r in EXTRAS[e]])
    assert "-e ." in pip
    assert "python=3.11" in env["dependencies"] and PROJECT["requires-python"].startswith(">=3.11")
    assert f"conda env create -f {name}" in (REPO / "README.md").read_text()


def test_the_core_brings_no_tensorflow_and_each_extra_one():
    # What makes `cpu` and `gpu` exclusive: TensorFlow comes from them alone.
    assert tensorflows(PROJECT["dependencies"]) == set()
    assert tensorflows(EXTRAS["cpu"]) == {"tensorflow-cpu"}
    assert tensorflows(EXTRAS["gpu"]) == {"tensorflow[and-cuda]"}
    cpu, gpu = Requirement(EXTRAS["cpu"][0]), Requirement(EXTRAS["gpu"][0])
    assert cpu.specifier == gpu.specifier  # the same TensorFlow release on both


def test_every_offered_install_gets_exactly_one_tensorflow():
    installs = offered()
    assert any("README.md" in k for k in installs), "no `pip install -e '.[...]'` found in the README"
    for where, requirements in installs.items():
        found = tensorflows(requirements)
        assert found in ({"tensorflow-cpu"}, {"tensorflow[and-cuda]"}), f"{where} installs {found or 'no TensorFlow'}"


def test_ci_installs_as_the_readme_says():
    def extras(path):
        return {frozenset(e.replace(" ", "").split(",")) for e in EDITABLE.findall((REPO / path).read_text())}

    ci = extras(".ci/run")
    assert ci and ci <= extras("README.md") and all("cpu" in e for e in ci), ci
