"""The templates (analysis/templates/) that put a stage's result into words in its notebook, and
the index page's: a Jinja environment with the number formats as filters. Presentation only:
editing a template or a format changes how a report reads, never a number (tests/test_contract.py)."""

from __future__ import annotations

import functools
from pathlib import Path

from workbook.analysis.formatting import interval, pct

TEMPLATES = Path(__file__).with_name("templates")


@functools.cache
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, interval=interval, count=lambda v: f"{v:,}", g3=lambda v: f"{v:.3g}")
    return env
