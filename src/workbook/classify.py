"""Running a .tflite image classifier with LiteRT: class probabilities for pixels, top-k labels for
image files (`python -m workbook classify`), and its ops with their tensor sizes (`inspect`).

No TensorFlow here: LiteRT's interpreter alone runs the model, so the commands start in a second.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from workbook.images import UnreadableImage, load_rgb, to_array
from workbook.paths import LABELS_FILE

TFLITE_METADATA = "TFLITE_METADATA"  # the model metadata entry that TFLite metadata writers add


class ModelError(Exception):
    """A .tflite file that is missing or cannot serve as an image classifier; the message says why."""


def _interpreter(model: str | Path, **kwargs):
    from ai_edge_litert.interpreter import Interpreter

    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        interpreter = Interpreter(model_path=str(path), **kwargs)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"{path}: not a TFLite model LiteRT can run ({e})") from None
    return interpreter


class TFLiteClassifier:
    """A .tflite classifier: pixels (0..255, N x S x S x 3) in, class probabilities out.

    Integer models are fed and read in their own types: the pixels are quantized with the input
    tensor's scale and zero point, the outputs dequantized with the output tensor's.
    """

    def __init__(self, model: str | Path, num_threads: int | None = None):
        self.path = Path(model)
        self.interpreter = _interpreter(self.path, num_threads=num_threads or os.cpu_count() or 1)
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        shape = tuple(inputs[0]["shape"]) if len(inputs) == 1 else ()
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or len(outputs) != 1 \
                or len(outputs[0]["shape"]) != 2:
            raise ModelError(f"{self.path}: not an image classifier (expected one square RGB input "
                             "N x S x S x 3 and one N x classes output)")
        self.input, self.output = inputs[0], outputs[0]
        self.batch = int(shape[0])

    @property
    def image_size(self) -> int:
        return int(self.input["shape"][1])

    @property
    def classes(self) -> int:
        return int(self.output["shape"][1])

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input["dtype"]).name

    @property
    def output_dtype(self) -> str:
        return np.dtype(self.output["dtype"]).name

    def quantized_input(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels as the input tensor takes them (quantized for an integer input)."""
        dtype = np.dtype(self.input["dtype"])
        if not np.issubdtype(dtype, np.integer):
            return pixels.astype(dtype)
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(dtype)
        q = np.round(pixels.astype(np.float32) / scale + zero_point)
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantized_output(self, raw: np.ndarray) -> np.ndarray:
        """The output tensor as float probabilities (dequantized for an integer output)."""
        if not np.issubdtype(raw.dtype, np.integer):
            return raw.astype(np.float32)
        scale, zero_point = self.output["quantization"]
        return (raw.astype(np.float32) - zero_point) * scale

    def _set_batch(self, n: int) -> None:
        if n != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], [n, self.image_size, self.image_size, 3])
            self.interpreter.allocate_tensors()
            self.batch = n

    def probabilities(self, pixels: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Class probabilities of every image in `pixels` (N x S x S x 3), `batch_size` per run."""
        out = []
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            self._set_batch(len(chunk))
            self.interpreter.set_tensor(self.input["index"], self.quantized_input(chunk))
            self.interpreter.invoke()
            out.append(self.dequantized_output(self.interpreter.get_tensor(self.output["index"])))
        return np.concatenate(out) if out else np.zeros((0, self.classes), np.float32)

    def invoke_ms(self, image: np.ndarray, runs: int, warmup: int) -> np.ndarray:
        """Milliseconds of each of `runs` single-image invocations, after `warmup` untimed ones
        (the first runs pay for memory planning and caches)."""
        self._set_batch(1)
        self.interpreter.set_tensor(self.input["index"], self.quantized_input(image[None]))
        for _ in range(warmup):
            self.interpreter.invoke()
        times = np.empty(runs)
        for i in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times[i] = time.perf_counter() - start
        return 1000 * times


# ---------------------------------------------------------------------------------------------
# inspect: the ops of the model itself


@dataclass(frozen=True)
class Op:
    index: int
    name: str  # the builtin op, e.g. CONV_2D
    shape: tuple[int, ...]  # of its (first) output tensor
    dtype: str
    bytes: int  # of all its output tensors


def _plain_interpreter(model: str | Path):
    """The model's interpreter without LiteRT's default delegate (XNNPACK), which would fold
    the ops into one node."""
    from ai_edge_litert.interpreter import OpResolverType

    return _interpreter(model, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def ops(model: str | Path, interpreter=None) -> list[Op]:
    """Every op of the model in execution order, with its output tensor's shape and size
    (`interpreter`: one of `_plain_interpreter(model)` already at hand)."""
    interpreter = interpreter or _plain_interpreter(model)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    rows = []
    for op in interpreter._get_ops_details():  # experimental API: the only per-op view LiteRT gives
        outs = [tensors[i] for i in op["outputs"] if i in tensors]
        if not outs:
            continue
        size = sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in outs)
        rows.append(Op(int(op["index"]), op["op_name"], tuple(int(d) for d in outs[0]["shape"]),
                       np.dtype(outs[0]["dtype"]).name, size))
    return rows


def largest_activation(table: list[Op]) -> Op:
    return max(table, key=lambda op: op.bytes)


def metadata_names(model: str | Path) -> list[str]:
    """Names of the model's metadata entries (TFLITE_METADATA where labels are embedded)."""
    from ai_edge_litert import schema_py_generated as schema

    buffer = Path(model).read_bytes()
    flat = schema.Model.GetRootAsModel(buffer, 0)
    return [flat.Metadata(i).Name().decode() for i in range(flat.MetadataLength())]


def print_inspection(model: str | Path, out: TextIO | None = None) -> None:
    """The model's input and output, its op table and its largest activation, as text."""
    out = out or sys.stdout
    interpreter = _plain_interpreter(model)
    table = ops(model, interpreter)
    print(f"{model}: {Path(model).stat().st_size:,} bytes, {len(table)} ops", file=out)
    tensors = [("input", t) for t in interpreter.get_input_details()]
    tensors += [("output", t) for t in interpreter.get_output_details()]
    for role, t in tensors:
        scale, zero_point = t["quantization"]
        quant = f", scale {scale:.6g}, zero point {zero_point}" if scale else ""
        print(f"{role}: {[int(d) for d in t['shape']]} {np.dtype(t['dtype']).name}{quant}", file=out)
    print(f"metadata: {', '.join(metadata_names(model)) or 'none'}", file=out)
    print(f"\n{'index':>5}  {'op':<24} {'output shape':<22} {'dtype':<8} {'output bytes':>12}", file=out)
    for op in table:
        print(f"{op.index:>5}  {op.name:<24} {str(list(op.shape)):<22} {op.dtype:<8} {op.bytes:>12,}", file=out)
    if table:
        big = largest_activation(table)
        print(f"\nlargest activation: op {big.index} {big.name}, {list(big.shape)} {big.dtype}, "
              f"{big.bytes:,} bytes", file=out)


# ---------------------------------------------------------------------------------------------
# classify: top-k labels of image files


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: list[tuple[str, float]]  # (label, probability), best first


@dataclass(frozen=True)
class Unread:
    path: Path
    reason: str


def image_files(paths: list[str | Path]) -> tuple[list[Path], list[Unread]]:
    """The files named, and every non-hidden file under the folders named (recursively, sorted)."""
    files, missing = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.is_file()
                            and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            files.append(p)
        else:
            missing.append(Unread(p, "no such file or folder"))
    return files, missing


def read_labels(path: Path, classes: int) -> list[str]:
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) != classes:
        raise ModelError(f"{path} holds {len(names)} labels but the model has {classes} outputs")
    return names


def classify_files(clf: TFLiteClassifier, files: list[Path], labels: list[str], top_k: int,
                   chunk: int = 32) -> tuple[list[Prediction], list[Unread]]:
    """Top-k labels of every readable file, prepared exactly as the data stage prepares images."""
    predictions, unread = [], []
    for start in range(0, len(files), chunk):
        read, images = [], []
        for f in files[start:start + chunk]:
            try:
                images.append(load_rgb(f, clf.image_size).image)
                read.append(f)
            except UnreadableImage as e:
                unread.append(Unread(f, str(e)))
        if not read:
            continue
        probs = clf.probabilities(to_array(images))
        for f, p in zip(read, probs):
            best = np.argsort(-p, kind="stable")[:top_k]
            predictions.append(Prediction(f, [(labels[i], float(p[i])) for i in best]))
    return predictions, unread


def run_classify(model: str | Path, paths: list[str | Path], top_k: int = 3, labels: str | Path | None = None,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `classify` command. Exit status: 0 if any image was classified, 1 if none, 2 for a
    model (or labels file) that cannot be used."""
    out, err = out or sys.stdout, err or sys.stderr  # looked up now: tests and callers swap them
    try:
        clf = TFLiteClassifier(model)
        labels_path = Path(labels) if labels else Path(model).with_name(LABELS_FILE)
        if labels_path.is_file():
            names = read_labels(labels_path, clf.classes)
        elif labels:
            raise ModelError(f"{labels_path}: no such labels file")
        else:
            print(f"note: no {LABELS_FILE} beside {model}: showing class numbers", file=err)
            names = [f"class {i}" for i in range(clf.classes)]
    except ModelError as e:
        print(f"error: {e}", file=err)
        return 2
    files, unread = image_files(paths)
    predictions, unreadable = classify_files(clf, files, names, max(1, min(top_k, clf.classes)))
    unread += unreadable
    for p in predictions:
        print(p.path, file=out)
        for label, score in p.top:
            print(f"  {score:6.3f}  {label}", file=out)
    if unread:
        print(f"could not read {len(unread)} file(s):", file=err)
        for u in unread:
            print(f"  {u.path}: {u.reason}", file=err)
    print(f"classified {len(predictions)} image(s) with {Path(model).name}; {len(unread)} not read",
          file=err)
    return 0 if predictions else 1


def run_inspect(model: str | Path, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `inspect` command. Exit status 2 for a model that cannot be used."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        print_inspection(model, out)
    except ModelError as e:
        print(f"error: {e}", file=err)
        return 2
    return 0
