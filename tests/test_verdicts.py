"""The targets, judged and worded in one place (workbook.analysis.verdicts) for the notebooks and the page."""

from __future__ import annotations

import dataclasses

from workbook.analysis import verdicts
from workbook.analysis.stats import Accuracy


def acc(right: int, images: int = 1000) -> dict:
    return dataclasses.asdict(Accuracy.of(right, images))


def evaluate(ft: int, bl: int | None, only_a: int = 0, only_b: int = 0, p: float = 1.0) -> dict:
    return {"accuracy": acc(ft), "baseline": acc(bl) if bl is not None else None,
            "vs_baseline": {"only_a": only_a, "only_b": only_b, "p_value": p} if bl is not None else None}


def test_beating_the_baseline_needs_a_gap_beyond_chance():
    v = verdicts.baseline(evaluate(900, 800, 110, 10, 1e-20))
    assert v.met is True and " beats " in v.text and "+10.00 points" in v.text and "a real difference" in v.text
    assert "90.00% (95% CI 87.98–91.71%)" in v.text  # every accuracy with its interval
    v = verdicts.baseline(evaluate(900, 898, 12, 10, 0.83))
    assert v.met is False and "ahead of, but does not beat" in v.text
    assert "right on 12" in v.text and "baseline on 10" in v.text and "p = 0.83: within chance" in v.text
    assert verdicts.baseline(evaluate(800, 800, 5, 5)).met is False and "ties with" in verdicts.baseline(evaluate(800, 800, 5, 5)).text
    v = verdicts.baseline(evaluate(880, 900, 5, 25, 0.0003))
    assert v.met is False and "falls behind" in v.text
    assert "does not beat" in verdicts.baseline(evaluate(898, 900, 5, 7, 0.77)).text


def test_no_baseline_cannot_be_judged_and_says_why():
    v = verdicts.baseline({**evaluate(900, None), "baseline_note": "skipped: offline"})
    assert v.met is None and v.status == "cannot tell" and "skipped: offline" in v.text
    assert verdicts.baseline(None).met is None


def test_int8_targets():
    q = {"float32": acc(900), "int8": acc(895), "agreement": 0.99, "disagreements": 10}
    assert verdicts.int8_accuracy(q).met is True  # exactly 0.50 points: within, despite float rounding
    v = verdicts.int8_accuracy({**q, "int8": acc(894)})
    assert v.met is False and "0.60 points below" in v.text and "outside" in v.text
    v = verdicts.int8_accuracy({**q, "int8": acc(903)})
    assert v.met is True and "0.30 points above" in v.text
    assert verdicts.agreement(q).met is True and "(10 differ)" in verdicts.agreement(q).text
    v = verdicts.agreement({**q, "agreement": 0.9899})
    assert v.met is False and "98.99%" in v.text and "falls short" in v.text
    assert verdicts.int8_accuracy(None).met is None and verdicts.agreement({}).met is None


def test_a_verdict_reads_as_markdown_in_a_notebook():
    text = verdicts.agreement({"agreement": 0.995})._repr_markdown_()
    assert text.startswith("**Target: int8 and float32 agree on at least 99% of val images: met.**")


def test_int8_speed_says_what_limits_it():
    q = {"float_ms_2_threads": 3.0, "int8_ms_2_threads": 1.5, "cpu": {"model": "X", "int8_dot": "avx512_vnni"}}
    assert verdicts.int8_speed(q).met is True and "2.00x" in verdicts.int8_speed(q).text
    slow = {**q, "int8_ms_2_threads": 3.2, "cpu": {"model": "AMD EPYC", "int8_dot": "none", "simd": ["avx2", "fma"]},
            "op_ratios": {"stem conv 3x3": 0.52, "1x1 conv / dense": 0.98, "total": 0.94}}
    v = verdicts.int8_speed(slow)
    assert v.met is False and "0.94x" in v.text and "no int8 dot-product instructions" in v.text
    assert "stem conv 3x3 0.52x" in v.text and "total" not in v.text.split("op, float32")[-1]
    assert verdicts.int8_speed({}).met is None
