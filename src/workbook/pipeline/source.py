"""Where the raw images come from: the dvc.yaml `download` stage, which fetches the default
archive that data.dvc records, and the checksums both it and the data stage check.

data.source names a local archive or folder, and the data stage depends on it as DVC hashes any
path: a changed folder reruns the data stage, and `dvc status` needs no network. The default is
the archive data.dvc records (its URL, md5 and the path it is kept at, in data.dvc's `meta`), which
the download stage fetches into data/download/ only while it is missing (`python -m workbook
download`); offline, it stops with one line saying what to run instead. With data.source pointing
anywhere else, the stage fetches nothing.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from workbook.pipeline.params import ParamError, Pin, load_params, resolve
from workbook.pipeline.progress import progress

log = logging.getLogger(__name__)

OFFLINE = ("offline, point it at a local copy: dvc exp run -S data.source=/path/to/imagenette2-160.tgz "
           "-S model.weights=/path/to/no_top.h5 -S evaluate.baseline_weights=/path/to/with_top.h5 "
           "(README, \"Offline\")")


class SourceError(RuntimeError):
    """data.source cannot be had; the message names it and says what to do."""


def digest(path: Path, algorithm: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def verify(path: Path, expected: str | None) -> None:
    """Raise SourceError when `path` does not match `expected` ("md5:..." / "sha256:...")."""
    if not expected:
        return
    algorithm, _, want = expected.partition(":")
    got = digest(path, algorithm)
    if got != want.lower():
        raise SourceError(
            f"{path}: {algorithm} is {got}, expected {want} (data.checksum or data.dvc); "
            "the file is incomplete or not the one pinned: delete it to download again, "
            "or set data.checksum to the file you mean to use")


def reachable(url: str, timeout: float = 15) -> str | None:
    """None when `url` answers; else why not."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError as e:
        return None if e.code == 405 else f"HTTP {e.code}"  # 405: no HEAD, but the server is there
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


def _download(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as r, open(dest, "wb") as f:
        total = int(r.headers.get("Content-Length") or 0) or None
        with progress(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
            while chunk := r.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
        if total is not None and f.tell() != total:
            raise OSError(f"download ended after {f.tell()} of {total} bytes")


def download(pin: Pin, root: Path, retries: int = 3) -> Path:
    """The archive `pin` records, at its path under `root`: fetched (and verified) only when it is
    not there yet or does not match its checksum; a broken download is never kept."""
    from workbook.pipeline.atomic import atomic_path

    target = resolve(pin.path, root)
    if target.is_file():
        try:
            verify(target, pin.checksum)
            return target
        except SourceError:
            log.warning("%s does not match its checksum: downloading it again", target)
    why = reachable(pin.url)
    if why:
        raise SourceError(f"data.source: {pin.path} is not downloaded yet, and {pin.url} cannot be reached "
                          f"({why}); {OFFLINE}")
    for attempt in range(1, retries + 1):
        try:
            with atomic_path(target) as tmp:
                _download(pin.url, tmp)
                verify(tmp, pin.checksum)  # a broken download is never renamed into place
            return target
        except (urllib.error.URLError, OSError, SourceError) as e:
            if attempt == retries or isinstance(e, SourceError) and attempt > 1:
                raise SourceError(f"data.source: could not download {pin.url} ({e}); {OFFLINE}") from None
            log.warning("download of %s failed (%s); retrying", pin.url, e)
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


def main(root: Path, folder: Path, pin: Pin) -> int:
    """`python -m workbook download` (dvc.yaml's download stage, handed data.dvc's record as `pin`):
    `folder` (the stage's output) holding the archive `pin` records when data.source names it,
    empty otherwise; or one line on stderr and exit 2."""
    try:
        P = load_params(root / "params.yaml")
        target = resolve(pin.path, root)
        if target.parent != folder:
            raise SourceError(f"data.dvc: meta.path = {pin.path}: must lie in {folder.relative_to(root)}/, the "
                              "folder the download stage writes (dvc.yaml)")
        folder.mkdir(parents=True, exist_ok=True)
        if resolve(P.data.source, root) == target:
            download(pin, root)
    except (ParamError, SourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
