"""Where the raw images come from (params.yaml `data.source`): what a source may be, its pin in
data.dvc, and the dvc.yaml `source` stage that stands for it as a dependency.

DVC would check a URL dependency itself, over the network, before any stage runs, and offline it
stops with a bare "dependency ... does not exist". So the data stage depends on
data/source.json instead, written by `python -m workbook source` in a stage that DVC runs every
time (`always_changed`): for a URL, the URL and its pinned checksum (reached only when the archive
is not downloaded yet, with one line saying what to run offline); for a local archive or folder,
its files' names, sizes and modification times, so that a changed folder reruns the data stage.
"""

from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import yaml

from workbook.pipeline.params import ParamError, is_url, load_params, resolve

OFFLINE = ("offline, point it at a local copy: dvc exp run -S data.source=/path/to/imagenette2-160.tgz "
           "-S model.weights=/path/to/no_top.h5 -S evaluate.baseline_weights=/path/to/with_top.h5 "
           "(README, \"Offline\")")


class SourceError(RuntimeError):
    """data.source cannot be used; the message names it and says what to do."""


@dataclass(frozen=True)
class Pin:
    url: str
    path: str  # where data.dvc puts the archive, relative to the repository root
    checksum: str  # "md5:<hex>"


def read_pin(data_dvc: Path) -> Pin | None:
    """The default archive's URL and checksum as recorded in data.dvc (None when absent)."""
    if not data_dvc.is_file():
        return None
    record = yaml.safe_load(data_dvc.read_text())
    try:
        out = record["outs"][0]
        return Pin(record["deps"][0]["path"], out["path"], "md5:" + out["md5"])
    except (KeyError, IndexError, TypeError):
        raise SourceError(f"{data_dvc}: expected deps[0].path and outs[0].md5/path (a dvc import-url record)") from None


def download_target(source: str, root: Path, raw_dir: Path, pin: Pin | None) -> Path:
    """Where the data stage keeps a URL's archive: data.dvc's path for the pinned one, else
    raw_dir/<the URL's file name>."""
    if pin is not None and pin.url == source:
        return root / pin.path
    return raw_dir / (Path(urlparse(source).path).name or "archive")


def reachable(url: str, timeout: float = 15) -> str | None:
    """None when `url` answers; else why not."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError as e:
        return None if e.code == 405 else f"HTTP {e.code}"  # 405: no HEAD, but the server is there
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


def listing(path: Path) -> str:
    """A digest of a local archive or folder: each file's relative name, size and mtime."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.md5()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else f.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def fingerprint(source: str, checksum: str | None, root: Path, raw_dir: Path | None = None) -> dict:
    """What data/source.json holds for `source`; raises SourceError when it cannot be used."""
    if is_url(source):
        pin = read_pin(root / "data.dvc")
        if not download_target(source, root, raw_dir or root / "data" / "raw", pin).is_file():
            why = reachable(source)
            if why:
                raise SourceError(f"data.source: {source} cannot be reached ({why}); {OFFLINE}")
        return {"source": source, "checksum": checksum or (pin.checksum if pin and pin.url == source else None)}
    path = resolve(source, root)
    if not path.exists():
        raise SourceError(f"data.source: no such file or folder ({path}); give a URL, an archive or a "
                          f"folder set")
    return {"source": source, "checksum": checksum, "files": listing(path)}


def main(root: Path, out: Path, raw_dir: Path | None = None) -> int:
    """`python -m workbook source`: write data/source.json, or one line on stderr and exit 2."""
    from workbook.pipeline.atomic import write_json

    try:
        P = load_params(root / "params.yaml")
        write_json(out, fingerprint(P.data.source, P.data.checksum, root, raw_dir))
    except (ParamError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
