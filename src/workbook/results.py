"""What every stage's function returns: a typed result, its details file, its summary in words.

Each stage's numbers are computed once, by one function in src/ returning a dataclass. Its
plain fields (numbers, words, lists and mappings of them) are the stage's details, written to
results/STAGE.json for later stages and the report; its tables, arrays and models stay in
memory for the notebook to show. The summary a notebook displays is markdown from a template
file in workbook/templates/, filled from the result, so the prose and the numbers agree.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any

from workbook.atomic import write_json

TEMPLATES = Path(__file__).with_name("templates")


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return dataclasses.is_dataclass(value) and not isinstance(value, type) and _plain(dataclasses.asdict(value))


def _as_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: _as_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_plain(v) for v in value]
    return value


def details(result: Any) -> dict:
    """The result's plain fields (nested dataclasses as mappings); tables and models left out."""
    return {f.name: _as_plain(getattr(result, f.name)) for f in dataclasses.fields(result)
            if _plain(getattr(result, f.name))}


def write_details(path: Path, result: Any) -> None:
    write_json(path, details(result))


# ---------------------------------------------------------------------------------------------
# summaries in words


def pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.{digits}f}%"


def interval(a: Any, digits: int = 2) -> str:
    """An accuracy with its interval: "97.53% (95% CI 96.99-97.97%)"."""
    if a is None:
        return "n/a"
    get = a.get if isinstance(a, dict) else (lambda k: getattr(a, k))
    if get("value") is None:
        return "n/a"
    return f"{pct(get('value'), digits)} (95% CI {100 * get('low'):.{digits}f}-{100 * get('high'):.{digits}f}%)"


@functools.cache
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, interval=interval, count=lambda v: f"{v:,}", g3=lambda v: f"{v:.3g}")
    return env


class Summary:
    """A result shown in a notebook as markdown from templates/<template>."""

    template: str = ""

    def _repr_markdown_(self) -> str:
        return environment().get_template(self.template).render(r=self)
