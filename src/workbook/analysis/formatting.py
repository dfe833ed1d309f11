"""How numbers are written in the notebooks, the index page, the verdicts and the compare page:
one function per kind of number, so that an accuracy reads the same wherever it appears."""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"  # a number that is missing, null or NaN


def missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


def pct(x: float | None, digits: int = 2) -> str:
    """A share as a percentage: 0.97531 -> "97.53%"."""
    return NA if missing(x) else f"{100 * x:.{digits}f}%"


def interval(value: Any, low: float | None = None, high: float | None = None, digits: int = 2) -> str:
    """An accuracy with its 95% interval: "97.53% (95% CI 96.99–97.97%)".

    `value` is a number with its bounds given, or anything with value, low and high (a mapping
    such as results/evaluate.json's accuracies, or workbook.analysis.stats.Accuracy)."""
    if value is not None and not isinstance(value, (int, float)):
        get = value.get if isinstance(value, dict) else (lambda k: getattr(value, k, None))
        value, low, high = get("value"), get("low"), get("high")
    if missing(value):
        return NA
    if missing(low) or missing(high):
        return pct(value, digits)
    return f"{pct(value, digits)} (95% CI {100 * low:.{digits}f}–{100 * high:.{digits}f}%)"
