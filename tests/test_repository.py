"""The repository holds together: public defaults committed, every stage timed. (The stage
contract: tests/test_contract.py; the install and its pins: tests/test_install.py.)"""

from __future__ import annotations

import yaml
from conftest import REPO

from workbook.pipeline.params import read_pin

DVC = yaml.safe_load((REPO / "dvc.yaml").read_text())


def test_committed_defaults_are_the_public_sources():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    pin = read_pin(REPO / "data.dvc")
    assert params["data"]["source"] == pin.path and pin.url.startswith("https://")
    assert pin.path.startswith("data/download/"), "the download stage's output folder (dvc.yaml)"
    assert DVC["stages"]["download"]["outs"] == ["data/download"]
    assert params["model"]["weights"] == "imagenet"
    assert params["evaluate"]["baseline_weights"] == "imagenet"


def test_every_stage_records_its_wall_time():
    for name, spec in DVC["stages"].items():
        if name == "download":  # a plain command, not a notebook stage: nothing to time
            continue
        outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec["outs"]]
        assert f"results/timings/{name}.json" in outs
