"""The one reader of params.yaml: typed, checked before any work starts, errors in words.

Every key is declared once below with its type and allowed range. A bad value raises
ParamError naming the file, the key, the value and what is allowed; an unknown key is
rejected with the closest valid name.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from workbook.pipeline.paths import DATA_RECORD

ARCHIVE = re.compile(r"\.(tgz|tar\.gz|tar|zip)$", re.I)  # the archives data.source may name


def is_url(source: str) -> bool:
    return bool(re.match(r"^https?://", source))


@dataclass(frozen=True)
class Pin:
    """The default images as data.dvc records them."""

    url: str
    path: str  # where the download stage keeps the archive, relative to the repository root
    checksum: str  # "md5:<hex>"


def read_pin(data_dvc: Path) -> Pin | None:
    """The default archive's URL, path and checksum, from data.dvc's `meta` (None when absent)."""
    if not data_dvc.is_file():
        return None
    record = yaml.safe_load(data_dvc.read_text()) or {}
    try:
        meta = record["meta"]
        return Pin(meta["url"], meta["path"], "md5:" + meta["md5"])
    except (KeyError, TypeError):
        raise ParamError(f"{data_dvc}: expected meta.url, meta.path and meta.md5 (the default images' "
                         "record)") from None


@dataclass(frozen=True)
class Backbone:
    """What the params need to know of a backbone (model.backbone): workbook.ml.network builds it
    from keras.applications, and build_base and tests/test_model.py check these facts against Keras."""

    layers: int  # layers without the classifier, at any input size and width
    fine_tune_at: int  # finetune.fine_tune_at's default: the first layer fine-tuned
    why: str  # that layer, and why there
    min_size: int  # the smallest input side it takes
    alphas: tuple[float, ...]  # width multipliers Keras has ImageNet weights for (model.alpha)
    marks: tuple[str, ...]  # layer names a Keras .h5 file of its weights holds ("/" read as "_")
    absent: tuple[str, ...] = ()  # and names such a file does not hold (those of a bigger sibling)


# Each default fine-tunes about the share of the network that 130 of MobileNetV2's 154 layers do
# (its last 24, 16%), starting at the block boundary nearest that share.
BACKBONES = {
    "mobilenet_v2": Backbone(154, 130, "block_14_depthwise_relu: the last 24 of 154 layers (16%), from the middle "
                                       "of block 14 of 17", 32, (0.35, 0.5, 0.75, 1.0, 1.3, 1.4),
                             ("Conv1", "Conv_1")),
    "mobilenet_v3_small": Backbone(157, 139, "expanded_conv_10_expand: its last inverted-residual block and the "
                                             "final 1x1 conv, 18 of 157 layers (11%; the block before would be 21%)",
                                   32, (0.75, 1.0), ("expanded_conv_10_project",), ("expanded_conv_11_project",)),
    "mobilenet_v3_large": Backbone(187, 154, "expanded_conv_13_expand: its last two inverted-residual blocks and the "
                                             "final 1x1 conv, 33 of 187 layers (18%)", 32, (0.75, 1.0),
                                   ("expanded_conv_14_project",)),
    "efficientnet_b0": Backbone(237, 206, "block6d_expand_conv: its last two MBConv blocks (6d, 7a) and the top conv, "
                                          "31 of 237 layers (13%; from block 6c it would be 19%)", 32, (1.0,),
                                ("stem_conv", "top_conv", "block7a_project_conv"), ("block7b_project_conv",)),
    "inception_v3": Backbone(311, 249, "the first layer after mixed8: its top two inception blocks (mixed9, mixed10), "
                                       "62 of 311 layers (20%), as Keras's fine-tuning example trains it", 75, (1.0,),
                             ("mixed8", "mixed10")),
}
DEFAULT = "default"  # finetune.fine_tune_at: the backbone's own (Backbone.fine_tune_at)
MIN_IMAGE_SIZE = min(b.min_size for b in BACKBONES.values())


def backbone_of(layer_names: list[str]) -> str | None:
    """The backbone whose weights a Keras .h5 file with these layer names holds (None: none of them)."""
    names = {n.replace("/", "_") for n in layer_names}
    for name, b in BACKBONES.items():
        if set(b.marks) <= names and not set(b.absent) & names:
            return name
    return None


def _h5_layer_names(path: Path) -> list[str]:
    import h5py  # only here: a check that needs no TensorFlow

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        return [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs["layer_names"]]


class ParamError(ValueError):
    """A value in params.yaml (or passed over it) that the study cannot use."""


Check = Callable[[Any], Any]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    def check(v):
        if not _is_int(v):
            raise ValueError(f"must be an integer{_range(lo, hi)}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(f"must be an integer{_range(lo, hi)}")
        return v
    return check


def number(lo: float | None = None, hi: float | None = None, lo_open=False, hi_open=False) -> Check:
    def check(v):
        ok = (_is_int(v) or isinstance(v, float)) and v == v
        if ok:
            v = float(v)
            ok = not (lo is not None and (v <= lo if lo_open else v < lo))
            ok = ok and not (hi is not None and (v >= hi if hi_open else v > hi))
        if not ok:
            bounds = []
            if lo is not None:
                bounds.append(f"{'above' if lo_open else 'at least'} {lo:g}")
            if hi is not None:
                bounds.append(f"{'below' if hi_open else 'at most'} {hi:g}")
            raise ValueError("must be a number" + (" " + " and ".join(bounds) if bounds else ""))
        return v
    return check


def choice(*options: str) -> Check:
    def check(v):
        if v not in options:
            raise ValueError("must be one of " + ", ".join(options))
        return v
    return check


def text() -> Check:
    def check(v):
        if not isinstance(v, str) or not v.strip():
            raise ValueError("must be a non-empty string")
        return v
    return check


def checksum() -> Check:
    def check(v):
        if v is None:
            return None
        if not isinstance(v, str) or not re.fullmatch(r"(md5:[0-9a-fA-F]{32}|sha256:[0-9a-fA-F]{64})", v):
            raise ValueError('must be null, "md5:<32 hex digits>" or "sha256:<64 hex digits>"')
        return v.lower()
    return check


def one_of(*options: float) -> Check:
    """A number from a fixed set (compared as numbers: 1 and 1.0 are the same)."""
    def check(v):
        if not (_is_int(v) or isinstance(v, float)) or float(v) not in options:
            raise ValueError("must be one of " + ", ".join(f"{o:g}" for o in options))
        return float(v)
    return check


def count_or_all(least: int = 1) -> Check:
    """An integer of at least `least`, or "all"."""
    def check(v):
        if v == "all" or (_is_int(v) and v >= least):
            return v
        raise ValueError(f"must be an integer of at least {least}, or all")
    return check


def weights(*keywords: str) -> Check:
    """A keyword ("imagenet", "none") or a path to an existing .h5 file."""
    def check(v):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"must be {', '.join(keywords)} or a path to an .h5 file")
        if v in keywords:
            return v
        if not v.endswith(".h5"):
            raise ValueError(f"must be {', '.join(keywords)} or a path to an .h5 file")
        return v
    return check


def _range(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" of at least {lo}"
    if hi is not None:
        return f" of at most {hi}"
    return ""


def key(check: Check) -> Any:
    return field(metadata={"check": check})


@dataclass(frozen=True)
class Data:
    source: str = key(text())
    checksum: str | None = key(checksum())
    image_size: int = key(integer(MIN_IMAGE_SIZE, 1024))
    # train images per class the models learn from, drawn per class from `seed` (val unchanged);
    # at least 2: some are held out to score the choices (tune.holdout), one at least is fitted
    train_per_class: int | str = key(count_or_all(least=2))


@dataclass(frozen=True)
class Model:
    backbone: str = key(choice(*BACKBONES))
    weights: str = key(weights("imagenet", "none"))
    alpha: float = key(one_of(*sorted({a for b in BACKBONES.values() for a in b.alphas})))


@dataclass(frozen=True)
class Features:
    batch_size: int = key(integer(1, 4096))
    dtype: str = key(choice("float16", "float32"))


@dataclass(frozen=True)
class Tune:
    trials: int = key(integer(1, 1000))
    lr_min: float = key(number(0, 1, lo_open=True))
    lr_max: float = key(number(0, 1, lo_open=True))
    epochs: int = key(integer(1, 1000))
    holdout: float = key(number(0, 1, lo_open=True, hi_open=True))


@dataclass(frozen=True)
class Train:
    epochs: int = key(integer(1, 1000))
    batch_size: int = key(integer(1, 4096))
    dense_units: int = key(integer(1, 65536))
    dropout: float = key(number(0, 1, hi_open=True))
    augment: str = key(choice("none", "flip", "full"))
    rotation: float = key(number(0, 0.5))
    distribute: str = key(choice("none", "mirrored"))


def layer() -> Check:
    """A layer's index (from 1), its name, or "default"."""
    def check(v):
        if (_is_int(v) and v >= 1) or (isinstance(v, str) and v.strip() and v == v.strip()):
            return v
        raise ValueError(f"must be a layer's index (1 or more), its name, or {DEFAULT}")
    return check


@dataclass(frozen=True)
class Finetune:
    fine_tune_at: int | str = key(layer())  # "default" is replaced by the backbone's own on loading
    lr_factor: float = key(number(0, 10, lo_open=True))
    epochs: int = key(integer(0, 1000))
    ship_margin: float = key(number(0, 1))


# The from-scratch control's network takes at least this many pixels a side: its first conv
# halves them and three poolings halve them again (workbook.ml.scratch_cnn).
MIN_CONTROL_SIZE = 16


@dataclass(frozen=True)
class Control:
    epochs: int = key(integer(1, 1000))
    image_size: int = key(integer(MIN_CONTROL_SIZE, 1024))
    width: int = key(integer(1, 1024))
    batch_size: int = key(integer(1, 4096))
    lr: float = key(number(0, 1, lo_open=True))


@dataclass(frozen=True)
class Evaluate:
    baseline_weights: str = key(weights("imagenet", "none"))
    mistakes: int = key(integer(0, 1000))


@dataclass(frozen=True)
class Quantize:
    representative_samples: int = key(integer(1, 100000))
    io_dtype: str = key(choice("uint8", "int8"))
    latency_runs: int = key(integer(1, 100000))
    max_threads: int = key(integer(1, 64))


@dataclass(frozen=True)
class Params:
    seed: int = key(integer(0, 2**31 - 1))
    data: Data = key(None)
    model: Model = key(None)
    features: Features = key(None)
    tune: Tune = key(None)
    train: Train = key(None)
    finetune: Finetune = key(None)
    control: Control = key(None)
    evaluate: Evaluate = key(None)
    quantize: Quantize = key(None)

    def get(self, dotted: str) -> Any:
        return dotted_get(self, dotted)


def dotted_get(params, dotted: str) -> Any:
    """params.get("train.epochs"): the value at a dotted key."""
    value: Any = params
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


GROUPS = {"data": Data, "model": Model, "features": Features, "tune": Tune, "train": Train,
          "finetune": Finetune, "control": Control, "evaluate": Evaluate, "quantize": Quantize}


def keys() -> list[str]:
    """Every valid dotted key, e.g. "data.image_size"."""
    return ["seed"] + [f"{g}.{f.name}" for g, cls in GROUPS.items() for f in dataclasses.fields(cls)]


def _build(cls, raw: Any, where: str, file: str):
    if not isinstance(raw, dict):
        raise ParamError(f"{file}: {where or 'the file'} must be a mapping of keys to values, got {raw!r}")
    names = [f.name for f in dataclasses.fields(cls)]
    for k in raw:
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            hint = f"; did you mean {where}{close[0]}?" if close else f"; valid keys: {', '.join(names)}"
            raise ParamError(f"{file}: unknown key {where}{k}{hint}")
    values = {}
    for f in dataclasses.fields(cls):
        dotted = where + f.name
        if f.name not in raw:
            raise ParamError(f"{file}: {dotted} is missing")
        if cls is Params and f.name in GROUPS:
            values[f.name] = _build(GROUPS[f.name], raw[f.name], dotted + ".", file)
            continue
        try:
            values[f.name] = f.metadata["check"](raw[f.name])
        except ValueError as e:
            raise ParamError(f"{file}: {dotted} = {raw[f.name]!r}: {e}") from None
    return cls(**values)


def _cross_checks(p: Params, file: str, root: Path) -> None:
    def fail(dotted, why):
        raise ParamError(f"{file}: {dotted} = {p.get(dotted)!r}: {why}")

    if p.tune.lr_min >= p.tune.lr_max:
        fail("tune.lr_min", f"must be below tune.lr_max ({p.tune.lr_max:g})")
    backbone = BACKBONES[p.model.backbone]
    at = p.finetune.fine_tune_at
    if _is_int(at) and at >= backbone.layers:
        fail("finetune.fine_tune_at", f"must be below {backbone.layers}, the number of {p.model.backbone}'s layers")
    if p.model.alpha not in backbone.alphas:
        fail("model.alpha", f"{p.model.backbone} takes " + (", ".join(f"{a:g}" for a in backbone.alphas)
                                                            if len(backbone.alphas) > 1 else "no width multiplier: 1")
             + " (Keras has ImageNet weights for those)")
    if p.data.image_size < backbone.min_size:
        fail("data.image_size", f"{p.model.backbone} takes images of at least {backbone.min_size} pixels a side")
    per_class = p.data.train_per_class
    if per_class != "all" and p.tune.holdout * per_class > per_class - 1:
        fail("tune.holdout", f"would hold out every one of data.train_per_class = {per_class} images of a class, "
             f"leaving none to train on: at most {(per_class - 1) / per_class:g} at that count")
    if p.control.image_size > p.data.image_size:
        fail("control.image_size", f"must be at most data.image_size ({p.data.image_size}): the control "
             "is trained on the prepared images, shrunk")
    source = p.data.source
    if is_url(source):
        fail("data.source", f"a URL: give a local archive or folder set. The download stage fetches the archive "
             f"{DATA_RECORD} records (its meta: url, md5, path) and data.source names its path; to start from "
             "another URL, record it there")
    path = resolve(source, root)
    pin = read_pin(root / DATA_RECORD)
    downloaded = pin is not None and path == resolve(pin.path, root)  # the download stage provides it
    if not path.exists() and not downloaded:
        fail("data.source", f"no such file or folder ({path}); give an archive or a folder set"
             + _queue_hint(source, root))
    if not path.is_dir() and not ARCHIVE.search(path.name):
        fail("data.source", "a file source must be a .tgz, .tar.gz, .tar or .zip archive")
    for dotted, with_top in (("model.weights", False), ("evaluate.baseline_weights", True)):
        value = p.get(dotted)
        if value in ("imagenet", "none"):
            continue
        problem = h5_problem(resolve(value, root), with_top, p.model.backbone)
        if problem:
            fail(dotted, problem + (_queue_hint(value, root) if "no such file" in problem else ""))


def _queue_hint(path: str, root: Path) -> str:
    """Why a relative path that works in the workspace fails in a queued experiment."""
    if Path(path).is_absolute() or ".dvc/tmp/exps" not in root.as_posix():
        return ""
    return ("; queued experiments run in a copy of the repository under .dvc/tmp/exps, where "
            "relative paths point elsewhere: give an absolute path")


def h5_problem(path: Path, with_top: bool, backbone: str = "mobilenet_v2") -> str | None:
    """Why a Keras .h5 weights file cannot be `backbone`'s (no top or with top), or None."""
    if not path.is_file():
        return f"no such file ({path})"
    try:
        names = _h5_layer_names(path)
    except (OSError, KeyError) as e:
        return f"not a Keras .h5 weights file ({path}: {e})"
    held = backbone_of(names)
    if held is None:
        return f"{path} holds weights of none of the backbones ({', '.join(BACKBONES)})"
    if held != backbone:
        return f"{path} holds {held} weights, and model.backbone is {backbone}"
    has_top = any(n in ("Logits", "predictions") for n in names)
    if has_top and not with_top:
        return (f"{path} holds the with-top (classifier) weights; give the no-top file here "
                "(the with-top one belongs to evaluate.baseline_weights)")
    if with_top and not has_top:
        return f"{path} holds no classifier (no-top weights); the baseline needs the with-top file"
    return None


def resolve(path: str | Path, root: Path) -> Path:
    """A path from params.yaml: relative ones are relative to the repository root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (root / p)


def _overlay(raw: dict, values: dict, where: str = "") -> None:
    """Put `values` (a nested mapping of params.yaml's shape) over `raw`, key by key."""
    for name, value in values.items():
        dotted = f"{where}{name}"
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            _overlay(raw[name], value, dotted + ".")
        elif dotted.split(".")[0] not in ("seed", *GROUPS) or (where and dotted not in keys()):
            raise ParamError(f"{dotted}: not a params.yaml key")
        else:
            raw[name] = value


def load_params(path: str | Path | None = None, values: dict | None = None) -> Params:
    """Read and check params.yaml (default: the repository's), with `values` put over it.

    `values` is what a stage's notebook receives (its params from dvc.yaml, nested as in
    params.yaml); a value given there wins over the file's.
    """
    from workbook.pipeline.paths import find_root

    root = find_root() if path is None else Path(path).resolve().parent
    file = root / "params.yaml" if path is None else Path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise ParamError(f"{file}: not found; run from the repository (or a folder inside it)") from None
    except yaml.YAMLError as e:
        raise ParamError(f"{file}: not valid YAML: {e}".replace("\n", " ")) from None
    raw = raw if raw is not None else {}
    if values:
        _overlay(raw, values)
    params = _build(Params, raw, "", file.name)
    _cross_checks(params, file.name, root)
    if params.finetune.fine_tune_at == DEFAULT:
        own = BACKBONES[params.model.backbone].fine_tune_at
        params = dataclasses.replace(params, finetune=dataclasses.replace(params.finetune, fine_tune_at=own))
    return params


def subset(params: Params, declared: list[str]) -> dict:
    """The values of the `declared` params (dvc.yaml's names: "seed", "train", "data.image_size"),
    nested as in params.yaml: what a stage's notebook is handed."""
    out: dict = {}
    for dotted in declared:
        value = params.get(dotted)
        value = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        *groups, leaf = dotted.split(".")
        target = out
        for g in groups:
            target = target.setdefault(g, {})
        target[leaf] = value
    return out


class UndeclaredParam(ParamError):
    """A stage read a param that its entry in dvc.yaml does not declare."""


class StageParams:
    """The params of one stage, as dvc.yaml declares them: reading any other one is an error.

    DVC reruns a stage when one of its declared params changes, and only then. A stage that read
    an undeclared value would give results that DVC calls up to date after that value changed;
    this view makes such a read fail at once, naming the key.
    """

    def __init__(self, params, declared: list[str], stage: str, where: str = ""):
        self._params, self._declared, self._stage, self._where = params, list(declared), stage, where

    def _covers(self, dotted: str) -> bool:
        return any(d == dotted or dotted.startswith(d + ".") or d.startswith(dotted + ".")
                   for d in self._declared)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        dotted = self._where + name
        if not self._covers(dotted):
            raise UndeclaredParam(
                f"{dotted} is not a param of the {self._stage} stage; if its results depend on it, "
                f"add it to stages.{self._stage}.params in dvc.yaml")
        value = getattr(self._params, name)
        if dataclasses.is_dataclass(value):
            return StageParams(value, self._declared, self._stage, dotted + ".")
        return value

    def get(self, dotted: str) -> Any:
        return dotted_get(self, dotted)

    def __repr__(self) -> str:
        return f"StageParams({self._stage}: {', '.join(self._declared)})"
