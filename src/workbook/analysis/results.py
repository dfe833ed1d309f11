"""What every stage's function returns: a typed result, its details file, its summary in words.

Each stage's numbers are computed once, by one function in src/ returning a dataclass. Its
plain fields (numbers, words, lists and mappings of them) are the stage's details, written to
results/STAGE.json for later stages and the report; its tables, arrays and models stay in
memory for the notebook to show. The summary a notebook displays is markdown from a template
file in workbook/analysis/templates/, filled from the result, so the prose and the numbers agree.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from workbook.pipeline.atomic import write_json


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


def tuned_rate(paths) -> float:
    """The head's learning rate the tune stage chose (results/tune.json), which training starts from."""
    return float(json.loads(paths.details("tune").read_text())["best_lr"])


# ---------------------------------------------------------------------------------------------
# summaries in words


class Summary:
    """A result shown in a notebook as markdown from templates/<template>."""

    template: str = ""

    def _repr_markdown_(self) -> str:
        from workbook.analysis.summaries import (
            environment,  # wording only: not a dependency of the numbers
        )

        return environment().get_template(self.template).render(r=self)
