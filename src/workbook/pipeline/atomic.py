"""Crash-safe writes: build every output under a temporary name, then rename it into place.

A run killed at any moment leaves the old file or the new one, never a half-written one;
stray `.tmp-*` leftovers of a killed run are ignored by git and DVC and swept by the next write.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target`, on error it goes.

    Works for files and folders. `suffix` keeps the extension some writers insist on
    (Keras wants ".keras", papermill ".ipynb"); by default the target's own suffix is used.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent))
    tmp.rmdir()  # only the unique name is wanted; the writer creates a file or a folder there
    tmp = tmp.with_name(tmp.name + (suffix if suffix is not None else "".join(target.suffixes)))
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer of {target} produced nothing")
        if tmp.is_dir():
            _replace_dir(tmp, target)
        else:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
    finally:
        _remove(tmp)


def scratch(target: str | Path) -> tempfile.TemporaryDirectory:
    """A temporary folder beside `target` (named after it), removed by `cleanup()`, at the end of a
    `with` block, or with the object; the ones runs killed before left behind go now."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target)
    return tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{target.name}-", dir=target.parent)


def _replace_dir(tmp: Path, target: Path) -> None:
    # os.replace cannot swap a non-empty folder: move the old one aside first.
    old = None
    if target.exists():
        old = target.with_name(f"{TMP_PREFIX}{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        _remove(old)


def _sweep(target: Path) -> None:
    """Remove leftovers of earlier killed writes of this target."""
    for stale in target.parent.glob(f"{TMP_PREFIX}{target.name}-*"):
        _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: str | Path, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_plain) + "\n")


def write_csv(target: str | Path, frame) -> None:
    """Write a pandas DataFrame as CSV, atomically."""
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


def _plain(obj):
    # numpy scalars and paths in metrics
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
