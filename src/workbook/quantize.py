"""The quantize stage: the fine-tuned classifier as a float32 TFLite model (the reference) and as a
full-integer int8 one, both scored on every val image and timed per image.

The int8 model has integer input and output too (uint8 or int8), so a device feeds it raw pixels
and reads scores without any float op; its activation ranges are calibrated on a reproducible
sample of train images, fed exactly as the model takes them (float pixels 0..255, one at a time).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score

from workbook.atomic import atomic_path, write_text
from workbook.classify import TFLITE_METADATA, TFLiteClassifier, metadata_names
from workbook.images import read_prepared
from workbook.progress import progress

MODELS = ("float32", "int8")  # the names of the two models in every table and in the metrics
WARMUP_RUNS = 10  # untimed invocations before the timed ones
ACCURACY_BATCH = 32  # images per interpreter run when scoring val: ~7% faster per image than 1

# Why the labels ship as labels.txt and not inside the .tflite (checked with pip against the
# pinned stack; see the quantize report). metrics records whether the written model holds them.
LABELS_NOTE = (
    "labels ship only as models/labels.txt, not as TFLite metadata: no maintained metadata writer "
    "installs with TensorFlow 2.21 (protobuf>=6.31). tflite-support 0.4.4, its last "
    "release, requires protobuf<4; mediapipe up to 0.10.21 requires protobuf<5; mediapipe 0.10.30 to "
    "1.2.2 install alongside but their metadata writer cannot be imported (the wheels lack the "
    "native module mediapipe.tasks.cc.metadata.python._pywrap_metadata_version it needs); "
    "ai-edge-litert 2.3.0 has no metadata writer"
)


def representative_files(manifest: pd.DataFrame, n: int, seed: int) -> list[str]:
    """`n` train images drawn reproducibly with `seed` (every train image when there are fewer)."""
    train = manifest[manifest.split == "train"].reset_index(drop=True)
    rows = np.random.default_rng(seed).choice(len(train), size=min(n, len(train)), replace=False)
    return [train.file[i] for i in rows]


def representative_dataset(files: list[str]):
    """The converter's calibration input: each image as the model takes it, a batch of one."""
    def batches():
        for f in files:
            yield [read_prepared([f]).astype(np.float32)]
    return batches


def _convert(converter) -> bytes:
    # Keras 3 exports the model first and prints its signature: noise in a report. The converter
    # also warns that integer inputs come without "statistics": those are the TF1 training-time
    # ranges (quantized_input_stats); here the representative dataset calibrates the input.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


def float_tflite(model) -> bytes:
    """The Keras classifier as a float32 .tflite: the reference the int8 model is judged against."""
    import tensorflow as tf

    return _convert(tf.lite.TFLiteConverter.from_keras_model(model))


def _int8(converter, calibration: list[str], io_dtype: str):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = {"uint8": tf.uint8, "int8": tf.int8}[io_dtype]
    converter.representative_dataset = representative_dataset(calibration)
    return converter


def int8_tflite(model, calibration: list[str], io_dtype: str) -> bytes:
    """The Keras classifier as a full-integer int8 .tflite with `io_dtype` (uint8 | int8) I/O."""
    import tensorflow as tf

    return _convert(_int8(tf.lite.TFLiteConverter.from_keras_model(model), calibration, io_dtype))


@contextlib.contextmanager
def _saved_model(model):
    """`model` exported once as an inference-only SavedModel, the way TFLiteConverter's
    from_keras_model exports a Keras 3 model before converting it (TF 2.21)."""
    import functools
    import tempfile

    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="workbook-export-") as directory:
        archive = keras.export.ExportArchive()
        archive.track(model)
        signature = [tf.TensorSpec(x.shape, dtype=x.dtype, name=x.name) for x in model.inputs]
        archive.add_endpoint("serve", functools.partial(model.__call__, training=False), signature)
        with contextlib.redirect_stdout(io.StringIO()):
            archive.write_out(directory)
        yield directory


def tflite_models(model, calibration: list[str], io_dtype: str) -> dict[str, bytes]:
    """The float32 and the int8 .tflite of the classifier (see float_tflite and int8_tflite),
    from one export of it: the export is a third of each conversion's time."""
    import tensorflow as tf

    with _saved_model(model) as saved:
        return {"float32": _convert(tf.lite.TFLiteConverter.from_saved_model(saved)),
                "int8": _convert(_int8(tf.lite.TFLiteConverter.from_saved_model(saved), calibration, io_dtype))}


def write_model(path: str | Path, content: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def write_labels(path: str | Path, names: list[str]) -> None:
    """One display name per line, in class order (what `classify` reads beside the model)."""
    write_text(path, "".join(f"{n}\n" for n in names))


def labels_in_metadata(path: str | Path) -> bool:
    return TFLITE_METADATA in metadata_names(path)


def val_probabilities(models: dict[str, str | Path], files: list[str], threads: int | None = None,
                      chunk: int = 256) -> dict[str, np.ndarray]:
    """Probabilities of every model on every file; each chunk of images is read once for all models."""
    runners = {name: TFLiteClassifier(path, num_threads=threads) for name, path in models.items()}
    out: dict[str, list[np.ndarray]] = {name: [] for name in models}
    with progress(total=len(files), desc="val images", unit="img") as bar:
        for start in range(0, len(files), chunk):
            pixels = read_prepared(files[start:start + chunk])
            for name, runner in runners.items():
                out[name].append(runner.probabilities(pixels, ACCURACY_BATCH))
            bar.update(len(pixels))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of images on which two models' top-1 classes agree."""
    return float((a.argmax(axis=1) == b.argmax(axis=1)).mean())


def tied_top(probs: np.ndarray) -> np.ndarray:
    """Images whose best score is shared by two classes: int8 scores come in steps (1/256), and
    on a tie the first class in class order wins."""
    top2 = np.sort(probs, axis=1)[:, -2:]
    return top2[:, 0] == top2[:, 1]


def per_class(y: np.ndarray, probs: dict[str, np.ndarray], classes: list[str], names: list[str]) -> pd.DataFrame:
    """Accuracy of each model on each class's val images, the change from float32 to int8, and
    how many of the class's images the two models label differently."""
    from workbook.evaluate import confusions

    counts, _ = confusions(y, probs["float32"], len(classes))
    support = counts.sum(axis=1)
    table = pd.DataFrame({"class": names, "label": classes, "support": support})
    for name in MODELS:
        counts, _ = confusions(y, probs[name], len(classes))
        table[f"{name}_accuracy"] = np.divide(np.diag(counts), support, out=np.full(len(classes), np.nan),
                                              where=support > 0)
    table["change"] = table["int8_accuracy"] - table["float32_accuracy"]
    differ = probs["float32"].argmax(axis=1) != probs["int8"].argmax(axis=1)
    table["disagreements"] = np.bincount(y[differ], minlength=len(classes))
    return table


def _busy_ticks() -> int | None:
    """CPU time every process on the machine has used so far, in clock ticks (Linux's /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


@contextlib.contextmanager
def background_load():
    """Measure how many cores' worth of CPU *other* processes used while the block ran: timings
    taken on a busy machine are slower, multi-threaded ones most, and the report should say so.
    Yields a dict whose "cores" is set on exit (None where /proc/stat cannot be read)."""
    out: dict = {}
    busy, own, start = _busy_ticks(), os.times(), time.monotonic()
    yield out
    busy_end, own_end, elapsed = _busy_ticks(), os.times(), time.monotonic() - start
    if busy is None or busy_end is None or elapsed <= 0:
        out["cores"] = None
        return
    tick = os.sysconf("SC_CLK_TCK")
    mine = (own_end.user + own_end.system - own.user - own.system) * tick
    out["cores"] = round(max(0.0, (busy_end - busy - mine) / (tick * elapsed)), 3)


def latency(models: dict[str, str | Path], image: np.ndarray, max_threads: int, runs: int) -> dict:
    """Milliseconds per single image (median and 90th percentile of `runs` timed invocations after a
    warm-up) for each model at 1..max_threads threads, with the CPU other processes used meanwhile:
    {model: {"threads": {median_ms, p90_ms, background_cores}}}."""
    table: dict[str, dict] = {}
    for name, path in models.items():
        table[name] = {}
        for threads in range(1, max_threads + 1):
            runner = TFLiteClassifier(path, num_threads=threads)
            with background_load() as load:
                ms = runner.invoke_ms(image, runs, WARMUP_RUNS)
            table[name][str(threads)] = {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
                                         "background_cores": load["cores"]}
    return table


def max_background(table: dict) -> float | None:
    """The most CPU other processes used while any of the latencies was timed (cores)."""
    loads = [stats["background_cores"] for by_threads in table.values() for stats in by_threads.values()
             if stats.get("background_cores") is not None]
    return max(loads) if loads else None


def latency_frame(table: dict) -> pd.DataFrame:
    """The latency table as rows: model, threads, median_ms, p90_ms, background_cores."""
    return pd.DataFrame([{"model": name, "threads": int(threads), **stats}
                         for name, by_threads in table.items() for threads, stats in by_threads.items()])


def summary(y: np.ndarray, probs: dict[str, np.ndarray], sizes: dict[str, int], lat: dict, io_dtype: str,
            representative: int, in_metadata: bool) -> dict:
    """The quantize stage's metrics (metrics/quantize.json)."""
    def at_two(name):
        return lat[name]["2"]["median_ms"] if "2" in lat[name] else None

    return {
        "float_accuracy": float(accuracy_score(y, probs["float32"].argmax(axis=1))),
        "int8_accuracy": float(accuracy_score(y, probs["int8"].argmax(axis=1))),
        "agreement": agreement(probs["float32"], probs["int8"]),
        "int8_tied_top": int(tied_top(probs["int8"]).sum()),
        "val_images": int(len(y)),
        "float_bytes": int(sizes["float32"]),
        "int8_bytes": int(sizes["int8"]),
        "io_dtype": io_dtype,
        "representative_samples": int(representative),
        "float_latency_ms_2_threads": at_two("float32"),
        "int8_latency_ms_2_threads": at_two("int8"),
        "cpu_count": os.cpu_count(),
        "latency": lat,
        "latency_background_cores": max_background(lat),
        "labels_in_metadata": bool(in_metadata),
        "labels_note": "labels are embedded as TFLite metadata" if in_metadata else LABELS_NOTE,
    }
