"""The data stage: verify the raw archive, extract it, check the folder set, convert every
readable image to an upright RGB square, and set aside the rest with a reason.

The raw data is never modified: archives are extracted to a temporary folder, folder sets are
only read, and the prepared images are written to a new folder renamed into place at the end.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import multiprocessing
import os
import re
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.ml.decode import UnreadableImage, load_rgb
from workbook.ml.prepared import image_refs, pack_path
from workbook.pipeline.atomic import atomic_path, scratch, write_text
from workbook.pipeline.params import ARCHIVE, Pin, read_pin, resolve
from workbook.pipeline.progress import progress
from workbook.pipeline.source import SourceError, verify

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
# Imagenette keeps ImageNet's file names: "n01440764_123.JPEG" came from ImageNet's train split,
# "ILSVRC2012_val_00000293.JPEG" from its val split. Anything else is of unknown origin.
ORIGINS = (("ImageNet val", re.compile(r"^ILSVRC2012_val_\d+")), ("ImageNet train", re.compile(r"^n\d{8}_\d+")))


class DataError(ValueError):
    """The source cannot give a usable folder set; the message says which file and what to do."""


# ---------------------------------------------------------------------------------------------
# the source and its checksum


def expected_checksum(source: str, checksum: str | None, pin: Pin | None, root: Path) -> str | None:
    """What `source` must match: data.checksum, else the pinned md5 where it is data.dvc's archive."""
    if checksum:
        return checksum
    if pin and resolve(source, root) == resolve(pin.path, root):
        return pin.checksum
    return None


def extract(archive: Path, dest: Path) -> None:
    """Extract a .tgz/.tar/.zip into dest (a scratch folder, removed by the caller on failure:
    a broken archive leaves nothing behind). One pass: zip members are checked against their CRC
    as they are read, and a truncated tar fails at the member it breaks in."""
    try:
        if archive.suffix.lower() == ".zip":
            with zipfile.ZipFile(archive) as z:
                z.extractall(dest)
        else:
            with tarfile.open(archive) as t:
                t.extractall(dest, filter="data")  # refuses absolute paths and links out of dest
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise DataError(f"data.source: {archive} is not a readable archive ({e}); "
                        "download it again or check data.source") from None


def find_split_root(folder: Path, depth: int = 3) -> Path:
    """The folder holding train/ and val/ (archives often wrap it in a folder of their own)."""
    if all((folder / s).is_dir() for s in SPLITS):
        return folder
    if depth > 0:
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p.name)):
            try:
                return find_split_root(sub, depth - 1)
            except DataError:
                pass
    raise DataError(f"data.source: no folder with train/ and val/ inside {folder}; "
                    "expected train/<class>/<images> and val/<class>/<images>")


# ---------------------------------------------------------------------------------------------
# scanning and checking the folder set


@dataclass(frozen=True, slots=True)
class Candidate:
    split: str
    label: str
    source: str  # the original file (a string: 100,000 Paths would hold their parts in memory)
    rel: str  # its path inside the split folder, e.g. "n01440764/x.JPEG"


@dataclass
class Scan:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    class_folders: dict[str, list[str]] = field(default_factory=dict)  # split -> folders seen


def _hidden(name: str) -> bool:
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def scan(split_root: Path) -> Scan:
    """Every file under train/ and val/: an image candidate, or set aside with the reason."""
    result = Scan()
    for split in SPLITS:
        base = split_root / split
        result.class_folders[split] = []
        for entry in sorted(base.iterdir()):
            rel = entry.name
            if entry.is_file():
                reason = "hidden file" if _hidden(entry.name) else "not inside a class folder"
                result.skipped.append(_skip(split, "", rel, reason))
                continue
            if _hidden(entry.name):
                for f in sorted(p for p in entry.rglob("*") if p.is_file()):
                    result.skipped.append(_skip(split, "", f.relative_to(base).as_posix(), "inside a hidden folder"))
                continue
            result.class_folders[split].append(entry.name)
            for dirpath, dirnames, filenames in os.walk(entry):
                dirnames.sort()
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    rel = path.relative_to(base).as_posix()
                    hidden_part = next((p for p in Path(rel).parts if _hidden(p)), None)
                    if hidden_part is not None:
                        reason = "hidden file" if hidden_part == name else "inside a hidden folder"
                        result.skipped.append(_skip(split, entry.name, rel, reason))
                    else:
                        result.candidates.append(Candidate(split, entry.name, str(path), rel))
    return result


def _skip(split: str, label: str, rel: str, reason: str) -> dict:
    return {"split": split, "label": label, "file": rel, "reason": reason}


def output_names(candidates: list[Candidate]) -> list[str]:
    """Each candidate's name among the prepared images: split/label/name (its source file's name
    without the extension).

    Files in nested folders keep their sub-path flattened with "__"; two sources that would land
    on the same name (a.png and a.jpg) keep their extension in the name instead.
    """
    def plain(c: Candidate) -> str:
        inner = Path(c.rel).relative_to(c.label)
        return "__".join((*inner.parent.parts, inner.stem))

    seen: dict[str, int] = {}
    for c in candidates:
        key = f"{c.split}/{c.label}/{plain(c)}"
        seen[key] = seen.get(key, 0) + 1
    names = []
    for c in candidates:
        stem = plain(c)
        if seen[f"{c.split}/{c.label}/{stem}"] > 1:
            stem += "_" + Path(c.rel).suffix.lstrip(".").lower()
        names.append(f"{c.split}/{c.label}/{stem}")
    return names


def check_classes(manifest: pd.DataFrame, class_folders: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The classes the study uses, and warnings; raise DataError when no honest study is possible.

    Deliberate rules: a class needs readable train images (else it cannot be learnt: error if val
    has images of it, dropped with a warning if not); a class with train images but no val images
    is kept with a warning (trained, not evaluated); val classes unknown to train are an error;
    fewer than two classes is an error.
    """
    counts = {s: manifest[manifest.split == s].label.value_counts().to_dict() for s in SPLITS}
    warnings = []
    train_classes = sorted(c for c, n in counts["train"].items() if n > 0)
    for c in sorted(set(class_folders["train"]) | set(class_folders["val"])):
        n_train, n_val = counts["train"].get(c, 0), counts["val"].get(c, 0)
        if n_train == 0 and n_val > 0:
            raise DataError(f"class {c!r} has {n_val} val images but no readable train image; "
                            "add train images or remove the class from val")
        if n_train == 0:
            where = " and ".join(s for s in SPLITS if c in class_folders[s])
            warnings.append(f"class {c!r} has no readable image in {where}: left out")
        elif n_val == 0:
            missing = "no val folder" if c not in class_folders["val"] else "no readable val image"
            warnings.append(f"class {c!r} has {missing}: it is trained but cannot be evaluated")
    if len(train_classes) < 2:
        raise DataError(f"train holds {len(train_classes)} class(es) with readable images "
                        f"({', '.join(train_classes) or 'none'}); a classifier needs at least 2")
    if not counts["val"]:
        raise DataError("val holds no readable image: nothing to evaluate on")
    return train_classes, warnings


def origin(filename: str) -> str:
    for name, pattern in ORIGINS:
        if pattern.match(filename):
            return name
    return "other"


# ---------------------------------------------------------------------------------------------
# converting and resizing


@functools.lru_cache(maxsize=2)
def _open_pack(path: str) -> np.ndarray:
    return np.load(path, mmap_mode="r+")


def _prepare_one(task: tuple[str, int, str, int]) -> dict:
    """Convert one image and write it into row `slot` of its split's array (a file every worker
    maps: the pixels never travel back through the pool); return what the manifest records."""
    source, size, pack, slot = task
    try:
        loaded = load_rgb(source, size)
    except UnreadableImage as e:
        return {"error": str(e)}
    except Exception as e:  # one bad file must never stop the run; its reason is kept
        return {"error": f"{type(e).__name__}: {e}"}
    pixels = np.asarray(loaded.image, dtype=np.uint8)
    _open_pack(pack)[slot] = pixels
    # The md5 of each image's pixels in the manifest makes manifest.csv a fingerprint of every
    # prepared image: later stages depend on that one file, not on the packed arrays.
    return {"mode": loaded.mode, "width": loaded.width, "height": loaded.height,
            "rotated": loaded.rotated, "converted": loaded.converted,
            "md5": hashlib.md5(pixels.tobytes()).hexdigest()}


MANIFEST = ["split", "label", "path", "row", "source", "origin", "mode", "width", "height", "rotated", "converted",
            "md5"]


def prepare_images(candidates: list[Candidate], out_dir: Path, size: int,
                   workers: int | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """Convert and resize every candidate on every core, with a progress bar, into one array per
    split in out_dir (workbook.ml.prepared.pack_path), in the order of the candidates.

    The tasks go to the workers as they take them and each result is kept as one tuple, so that
    memory grows by a few hundred bytes an image, not by every task and result at once."""
    names = output_names(candidates)
    out_dir.mkdir(parents=True, exist_ok=True)
    slots, counts = [], dict.fromkeys(SPLITS, 0)
    for c in candidates:  # each candidate's row in its split's array, before any is left out
        slots.append(counts[c.split])
        counts[c.split] += 1
    packs = {s: str(pack_path(out_dir, s)) for s in SPLITS}
    for split, n in counts.items():
        np.lib.format.open_memmap(packs[split], mode="w+", dtype=np.uint8, shape=(n, size, size, 3)).flush()
    tasks = ((c.source, size, packs[c.split], slot) for c, slot in zip(candidates, slots))
    rows, skipped, kept = [], [], {s: [] for s in SPLITS}
    with multiprocessing.Pool(workers or os.cpu_count() or 1) as pool:
        results = pool.imap(_prepare_one, tasks, chunksize=64)
        for c, name, slot, r in zip(candidates, names, slots, progress(results, total=len(candidates),
                                                                        desc="convert + resize", unit="img")):
            if "error" in r:
                skipped.append(_skip(c.split, c.label, c.rel, r["error"]))
                continue
            rows.append((c.split, c.label, name, len(kept[c.split]), c.rel, origin(Path(c.rel).name), r["mode"],
                         r["width"], r["height"], r["rotated"], r["converted"], r["md5"]))
            kept[c.split].append(slot)
    for split, slots_kept in kept.items():
        if len(slots_kept) < counts[split]:  # images set aside: their rows go
            _keep_rows(Path(packs[split]), np.asarray(slots_kept, dtype=np.int64))
    return pd.DataFrame(rows, columns=MANIFEST), skipped


def _keep_rows(pack: Path, rows: np.ndarray, chunk: int = 1024) -> None:
    """Rewrite a split's array with only `rows`, a chunk at a time (never the whole array in memory)."""
    old = np.load(pack, mmap_mode="r")
    with atomic_path(pack) as tmp:
        new = np.lib.format.open_memmap(tmp, mode="w+", dtype=old.dtype, shape=(len(rows), *old.shape[1:]))
        for start in range(0, len(rows), chunk):
            new[start:start + chunk] = old[rows[start:start + chunk]]
        new.flush()
        del new


@dataclass(repr=False)
class Found:
    """The folder set data.source holds, before any image is read: where its train/ and val/ are,
    the files in its class folders, and what is set aside unread (hidden files, stray files)."""

    source: Path
    split_root: Path  # the folder holding train/ and val/ (inside the extracted archive, for archives)
    shown_root: str  # the same as the reports name it
    scan: Scan
    extracted: tempfile.TemporaryDirectory | None  # an archive's files, removed by `close` (or with this object)

    def classes(self) -> pd.DataFrame:
        """Files per class folder and split, as found (each is read in the next step)."""
        table = pd.DataFrame([(c.split, c.label) for c in self.scan.candidates], columns=["split", "label"])
        return table.groupby(["label", "split"]).size().unstack(fill_value=0).reindex(columns=list(SPLITS),
                                                                                        fill_value=0)

    def set_aside(self) -> pd.DataFrame:
        """The files left unread, with the reason."""
        return pd.DataFrame(self.scan.skipped, columns=["split", "label", "file", "reason"])

    def close(self) -> None:
        if self.extracted is not None:
            self.extracted.cleanup()

    def __repr__(self) -> str:
        folders = {s: len(self.scan.class_folders[s]) for s in SPLITS}
        return (f"{len(self.scan.candidates):,} files in the class folders of {self.shown_root} (class folders: "
                f"{folders['train']} in train, {folders['val']} in val); {len(self.scan.skipped)} set aside unread")


def find(source: str, checksum: str | None, root: Path, data_dvc: Path, work_dir: Path) -> Found:
    """data.source checked against its checksum, extracted (into a temporary folder under
    `work_dir`) when it is an archive, and its class folders listed."""
    path = resolve(source, root)
    if not path.exists():
        raise DataError(f"data.source: {path} does not exist")
    extracted = None
    if path.is_dir():
        split_root = find_split_root(path)
    elif ARCHIVE.search(path.name):
        try:
            verify(path, expected_checksum(source, checksum, read_pin(data_dvc), root))
        except SourceError as e:
            raise DataError(str(e)) from None
        extracted = scratch(work_dir / "extract")
        try:
            log.info("extracting %s", path)
            extract(path, Path(extracted.name))
            split_root = find_split_root(Path(extracted.name))
        except DataError:
            extracted.cleanup()
            raise
    else:
        raise DataError(f"data.source: {path} is neither a folder nor a .tgz/.tar/.zip archive")
    found = scan(split_root)
    if not found.candidates:
        if extracted is not None:
            extracted.cleanup()
        raise DataError(f"data.source: no files in the class folders under {split_root}")
    shown = split_root.relative_to(extracted.name).as_posix() if extracted is not None else str(split_root)
    return Found(path, split_root, shown, found, extracted)


@dataclass
class Prepared:
    manifest: pd.DataFrame  # one row per usable image: split, label, path, row, source, origin, mode, ...
    skipped: pd.DataFrame  # split, label, file, reason
    classes: list[str]
    warnings: list[str]
    split_root: str  # where the folder set was read from (inside the archive, for archives)

    @property
    def names(self) -> dict[str, str]:
        """Each class's readable name (ImageNet's, for wnids)."""
        from workbook.ml import imagenet_classes as imagenet

        return imagenet.display_names(self.classes)

    def __repr__(self) -> str:
        counts = self.manifest.split.value_counts()
        return (f"{len(self.manifest):,} images prepared ({counts.get('train', 0):,} train, {counts.get('val', 0):,} "
                f"val) in {len(self.classes)} classes; {len(self.skipped)} files set aside")


def convert(found: Found, image_size: int, out_dir: Path) -> Prepared:
    """Every file found read, turned upright and RGB, resized to `image_size`, into out_dir (one
    array of images per split, manifest.csv, skipped.csv, classes.txt: workbook.ml.prepared),
    written whole or not at all; unreadable files set aside with their reason."""
    with atomic_path(out_dir) as staging:
        manifest, unreadable = prepare_images(found.scan.candidates, staging, image_size)
        classes, warnings = check_classes(manifest, found.scan.class_folders)
        dropped = ~manifest.label.isin(classes)
        manifest = manifest[~dropped].reset_index(drop=True)
        skipped = pd.DataFrame(found.scan.skipped + unreadable, columns=["split", "label", "file", "reason"])
        skipped = skipped.sort_values(["split", "label", "file"]).reset_index(drop=True)
        manifest.to_csv(staging / "manifest.csv", index=False)
        skipped.to_csv(staging / "skipped.csv", index=False)
        write_text(staging / "classes.txt", "\n".join(classes) + "\n")
    return Prepared(manifest, skipped, classes, warnings, found.shown_root)


def prepare(source: str, checksum: str | None, image_size: int, root: Path, data_dvc: Path,
            out_dir: Path) -> Prepared:
    """The data stage's work in one call (`find`, then `convert`)."""
    found = find(source, checksum, root, data_dvc, out_dir.parent)
    try:
        return convert(found, image_size, out_dir)
    finally:
        found.close()


@dataclass
class DataResult(Summary):
    """The data stage's result; its plain fields are results/data.json."""

    template = "data.md.j2"
    source: str
    split_root: str  # the folder set read (inside the archive, for archives)
    classes: int
    train_images: int
    val_images: int
    skipped: int
    converted: int
    converted_by_mode: dict[str, int]
    exif_rotated: int
    val_from_imagenet_train: int  # val images named as ImageNet train images: seen in pretraining
    val_from_imagenet_val: int
    val_other: int
    warnings: list[str]
    labels: list[str]  # class folder names, in class order
    names: dict[str, str]  # readable name of each label
    manifest: pd.DataFrame  # one row per prepared image, with its reference in `file`
    skipped_files: pd.DataFrame  # split, label, file, reason

    def counts(self) -> pd.DataFrame:
        """Images per class and split."""
        counts = (self.manifest.groupby(["label", "split"]).size().unstack(fill_value=0)
                  .reindex(columns=list(SPLITS), fill_value=0))
        counts.insert(0, "class", [self.names[c] for c in counts.index])
        return counts

    def conversions(self) -> pd.DataFrame:
        converted = self.manifest[self.manifest.converted]
        return converted.groupby(["split", "mode"]).size().rename("images").reset_index()

    def sizes(self) -> pd.DataFrame:
        """Original width and height (after EXIF rotation): min, median, max per split."""
        sizes = self.manifest.groupby("split")[["width", "height"]].describe()
        return sizes.loc[:, (slice(None), ["min", "50%", "max"])].rename(columns={"50%": "median"}).astype(int)

    def provenance(self) -> pd.DataFrame:
        return self.manifest.groupby(["split", "origin"]).size().unstack(fill_value=0)


def folders(P, paths) -> Found:
    """Step 1: data.source verified, extracted when it is an archive, its class folders listed."""
    return find(P.data.source, P.data.checksum, paths.root, paths.data_dvc, paths.prepared.parent)


def images(P, paths, found: Found) -> Prepared:
    """Step 2: every image read, converted and resized into data/prepared (the archive's
    extracted files are removed once they are read); the manifest's `file` references each."""
    try:
        prep = convert(found, P.data.image_size, paths.prepared)
    finally:
        found.close()
    prep.manifest = prep.manifest.assign(file=lambda m: image_refs(paths.prepared, m))
    return prep


def save(P, paths, prep: Prepared) -> DataResult:
    """Step 3: the audit, results/data.json: what was read, converted, turned, set aside, and
    where the val images come from."""
    m = prep.manifest
    val = m[m.split == "val"]
    result = DataResult(
        source=P.data.source, split_root=prep.split_root, classes=len(prep.classes),
        train_images=int((m.split == "train").sum()), val_images=len(val), skipped=len(prep.skipped),
        converted=int(m.converted.sum()),
        converted_by_mode={k: int(v) for k, v in m[m.converted].value_counts("mode").items()},
        exif_rotated=int(m.rotated.sum()),
        val_from_imagenet_train=int((val.origin == "ImageNet train").sum()),
        val_from_imagenet_val=int((val.origin == "ImageNet val").sum()),
        val_other=int((val.origin == "other").sum()),
        warnings=prep.warnings, labels=prep.classes, names=prep.names,
        manifest=m, skipped_files=prep.skipped)
    write_details(paths.details("data"), result)
    return result


def run(P, paths) -> DataResult:
    """The data stage's steps in order: find the folder set, prepare its images, describe them."""
    return save(P, paths, images(P, paths, folders(P, paths)))
