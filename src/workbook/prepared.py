"""Reading the data stage's output (data/prepared): the manifest of prepared images and the
class names. Every later stage reads the images through here; none of them runs the data stage's
code (workbook.data writes the folder).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def load_manifest(prepared_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """The prepared images (manifest rows, absolute paths) and the class names, in label order."""
    manifest = pd.read_csv(prepared_dir / "manifest.csv")
    classes = (prepared_dir / "classes.txt").read_text().split()
    manifest["file"] = [str(prepared_dir / p) for p in manifest.path]
    manifest["y"] = manifest.label.map({c: i for i, c in enumerate(classes)})
    return manifest, classes
