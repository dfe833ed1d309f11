"""The quantize stage: the classifier that ships (models/model.keras, the finetune stage's choice)
as a float32 TFLite model (the reference) and as a full-integer int8 one, both with TFLite metadata inside (class names, input normalisation), both
scored on every val image and timed per image.

The int8 model has integer input and output too (uint8 or int8), so a device feeds it raw pixels
and reads scores without any float op; its activation ranges are calibrated on a reproducible
sample of train images, fed exactly as the model takes them (float pixels 0..255).

The quantize stage's notebook calls the steps one by one: `converter` (what the conversion starts
from and its settings), `convert` (both models written, as interpreters), `save` (scored, timed,
described); `run` composes the same.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workbook.analysis.results import Summary, write_details
from workbook.analysis.stats import Accuracy
from workbook.analysis.verdicts import int8_speedup
from workbook.ml.holdout import ALL
from workbook.ml.latency import MODELS, latency, latency_frame, max_background
from workbook.ml.litert import Classifier
from workbook.ml.prepared import read_prepared
from workbook.pipeline.atomic import atomic_path, write_csv, write_text
from workbook.pipeline.progress import progress

ACCURACY_BATCH = 32  # images per interpreter run when scoring val: faster per image than 1


def drawn_train(manifest: pd.DataFrame, per_class: int | str, seed: int) -> pd.DataFrame:
    """The train images the models learned from: `per_class` of each class (data.train_per_class)."""
    from workbook.ml.holdout import draw_per_class

    train = manifest[manifest.split == "train"].reset_index(drop=True)
    return train.iloc[draw_per_class(train.y.to_numpy(), per_class, seed)].reset_index(drop=True)


def representative_files(manifest: pd.DataFrame, n: int, seed: int, per_class: int | str = ALL) -> list[str]:
    """`n` of the drawn train images (`drawn_train`), drawn reproducibly with `seed` (all of them
    when there are fewer)."""
    drawn = drawn_train(manifest, per_class, seed)
    rows = np.random.default_rng(seed).choice(len(drawn), size=min(n, len(drawn)), replace=False)
    return [drawn.file[i] for i in rows]


CALIBRATION_BATCH = 32  # images per calibration sample


def representative_dataset(files: list[str], batch: int = CALIBRATION_BATCH):
    """The converter's calibration input: the images as the model takes them (float pixels
    0..255), `batch` at a time. TFLite's calibrator resizes the input to each sample and keeps each
    tensor's overall min and max, so the ranges are those of feeding them one by one (checked on
    the study's model: every scale within 5e-7, every zero point the same), in 15% less time."""
    def batches():
        for start in range(0, len(files), batch):
            yield [read_prepared(files[start:start + batch]).astype(np.float32)]
    return batches


def write_model(path: str | Path, content: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(content)


def write_labels(path: str | Path, names: list[str]) -> None:
    """One display name per line, in class order (what `classify` reads beside the model)."""
    write_text(path, "".join(f"{n}\n" for n in names))


def val_probabilities(models: dict[str, str | Path], files: list[str], threads: int | None = None,
                      chunk: int = 256) -> dict[str, np.ndarray]:
    """Probabilities of every model on every file; each chunk of images is read once for all models."""
    runners = {name: Classifier(path, num_threads=threads) for name, path in models.items()}
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
    how many of the class's images the two models label differently; the classes int8 hurts most
    first."""
    from workbook.analysis.scoring import confusions

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
    return table.sort_values(["change", "int8_accuracy"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# the quantize stage


@dataclass
class QuantizeResult(Summary):
    """The quantize stage's result; its plain fields are results/quantize.json."""

    template = "quantize.md.j2"
    backbone: str  # the network the model transfers
    parameters: int  # of the model that ships
    multiply_adds: int  # of one image through it
    float32: Accuracy  # the float32 TFLite model on every val image
    int8: Accuracy
    agreement: float  # share of val images where both models give the same top class
    disagreements: int
    tied_disagreements: int  # of those, images where the int8 model's two best scores are equal
    float_bytes: int
    int8_bytes: int
    io_dtype: str
    input_quantization: list[float]  # scale, zero point of the int8 model's input
    output_quantization: list[float]
    representative_samples: int
    cpu_count: int
    latency: dict  # {model: {threads: {median_ms, p90_ms, background_cores}}}
    float_ms_2_threads: float | None
    int8_ms_2_threads: float | None
    latency_background_cores: float | None  # the most CPU other processes used while timing
    cpu: dict  # the CPU's model and its widest int8 dot-product instructions ("none": AVX2 only)
    op_ratios: dict[str, float]  # float32 time / int8 time per kind of op, profiled at 2 threads
    profile_note: str  # why there is no profile, when there is none
    metadata: dict  # what the int8 model's TFLite metadata holds (name, version, labels, ...)
    names: list[str]
    per_class: pd.DataFrame
    latency_table: pd.DataFrame
    confusion: np.ndarray  # int8 model, counts
    op_table: pd.DataFrame  # the int8 model's ops, in execution order
    samples: pd.DataFrame  # one val image per class through the int8 model, top 3
    op_types: pd.DataFrame | None  # per kind of op: each model's microseconds, shares, ratio
    op_blocks: pd.DataFrame | None  # per block of the network (op_profile), the same

    @property
    def speedup_2_threads(self) -> float | None:
        return int8_speedup(self.float_ms_2_threads, self.int8_ms_2_threads)

    @property
    def size_ratio(self) -> float:
        return self.float_bytes / self.int8_bytes


def embed_metadata(model: bytes, names: list[str], kind: str, backbone: str = "MobileNetV2") -> bytes:
    """The model with its TFLite metadata: what apps (MediaPipe Tasks, LiteRT's support library)
    read to name the classes and to normalise a float input."""
    from workbook import __version__
    from workbook.ml import tflite_metadata as metadata

    image = "float32 RGB pixels 0..255" if kind == "float32" else "RGB pixels 0..255 as integers"
    return metadata.embed(
        model, name=f"Image classifier ({len(names)} classes, {kind})", version=__version__,
        description=f"{backbone} transfer-learnt by the workbook study. Input: a square image as {image}, "
                    "resized as the data stage does (shorter side, centre crop, bilinear). Output: a "
                    "probability per class, in the order of the embedded label file.",
        labels=names, normalization=([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]) if kind == "float32" else None)


class QuantizeError(RuntimeError):
    """An int8 model that apps could not feed as they do; the message says why and what to do."""


def check_raw_pixel_input(model: Classifier, io_dtype: str) -> None:
    """A uint8 input must take pixels as they are (scale 1, zero point 0): MediaPipe and most apps
    feed it raw 0..255 values without applying the input's quantization. The converter sets the
    input's range from the calibration images, so they must reach both 0 and 255."""
    scale, zero_point = model.input["quantization"]
    if io_dtype == "uint8" and (abs(scale - 1.0) > 1e-6 or zero_point != 0):
        raise QuantizeError(
            f"{model.path}: its uint8 input has scale {scale:g} and zero point {zero_point}, not 1 and 0, so "
            "apps feeding raw pixels would get wrong answers; the calibration images never reached both 0 and "
            "255: raise quantize.representative_samples")


def classify_as_files(model: Classifier, images: pd.DataFrame, labels: list[str]) -> list:
    """Top-3 of the model on manifest rows' images read as an app reads them (`classify`): each
    written as a PNG file (lossless), then read back from the file."""
    import tempfile

    from PIL import Image

    from workbook.ml.classify import classify_files

    with tempfile.TemporaryDirectory(prefix="workbook-sample-") as tmp:
        files = []
        for name, pixels in zip(images.path, read_prepared(list(images.file))):
            files.append(Path(tmp) / f"{Path(name).name}.png")
            Image.fromarray(pixels).save(files[-1])
        predicted, unread = classify_files(model, files, labels, top_k=3)
    if unread:
        raise QuantizeError(f"classify could not read {unread[0].path.name}: {unread[0].reason}")
    return predicted


def _ratios(by_type: pd.DataFrame) -> dict[str, float]:
    """float32 time / int8 time for each kind of op both models run (> 1: int8 faster)."""
    ratios = by_type["float32/int8"].replace([np.inf, -np.inf], np.nan).dropna()
    return {str(k): round(float(v), 3) for k, v in ratios.items() if by_type.loc[k, "float32"] > 0}


def _at_two(lat: dict, name: str) -> float | None:
    return lat[name]["2"]["median_ms"] if "2" in lat[name] else None


@dataclass
class Conversion:
    """What the conversion starts from, and how it is set (workbook.ml.litert converts)."""

    model: object  # the Keras classifier that ships (models/model.keras)
    io_dtype: str  # the int8 model's input and output type
    calibration: list[str]  # the train images that set the int8 activation ranges
    train_images: int  # the drawn train images they come from (data.train_per_class of each class)
    manifest: pd.DataFrame
    classes: list[str]
    names: list[str]  # readable class names, in class order: the label file inside both models

    @property
    def backbone(self) -> str:
        """The network the model transfers, as the reports name it (MobileNetV2, ...)."""
        from workbook.ml.network import APPLICATIONS, backbone_name
        from workbook.ml.predict import parts

        return APPLICATIONS[backbone_name(parts(self.model)[0])].name

    def settings(self) -> pd.DataFrame:
        """TFLite's converter settings for each model."""
        return pd.DataFrame({
            "float32": {"optimizations": "none", "ops": "TFLite builtins (float)", "input": "float32 pixels 0..255",
                        "output": "float32 probabilities", "calibration": "none"},
            "int8": {"optimizations": "Optimize.DEFAULT", "ops": "TFLITE_BUILTINS_INT8 only",
                     "input": f"{self.io_dtype} pixels", "output": f"{self.io_dtype} probabilities",
                     "calibration": f"{len(self.calibration)} of the {self.train_images:,} drawn train images "
                                    f"(from seed), {CALIBRATION_BATCH} at a time"}})


def converter(P, paths) -> Conversion:
    """The classifier that ships, the classes, and the calibration sample drawn from `seed`."""
    from workbook.ml import imagenet_classes as imagenet
    from workbook.ml.network import load_model
    from workbook.ml.prepared import load_manifest

    manifest, classes = load_manifest(paths.prepared)
    names = list(imagenet.display_names(classes).values())
    per_class = P.data.train_per_class
    calibration = representative_files(manifest, P.quantize.representative_samples, P.seed, per_class)
    drawn = len(drawn_train(manifest, per_class, P.seed))
    return Conversion(load_model(paths.model), P.quantize.io_dtype, calibration, drawn, manifest, classes, names)


def convert(P, paths, conversion: Conversion) -> dict[str, Classifier]:
    """Both models converted, with their metadata, written (and the label file beside them); as
    LiteRT interpreters. Raises QuantizeError when the int8 input would not take raw pixels."""
    from workbook.ml.litert import classifier_tflite

    files = {"float32": paths.tflite_float, "int8": paths.tflite_int8}
    converted = classifier_tflite(conversion.model, representative_dataset(conversion.calibration),
                                  conversion.io_dtype)
    for name, content in converted.items():
        write_model(files[name], embed_metadata(content, conversion.names, name, conversion.backbone))
    write_labels(paths.labels, conversion.names)
    models = {name: Classifier(path) for name, path in files.items()}
    check_raw_pixel_input(models["int8"], conversion.io_dtype)
    return models


def interpreters(models: dict[str, Classifier]) -> pd.DataFrame:
    """Each interpreter's input and output: type, shape, quantization (scale, zero point)."""
    return pd.DataFrame({name: {"file": m.path.name, "bytes": m.path.stat().st_size,
                                "input": f"{m.input_dtype} {[int(n) for n in m.input['shape']]}",
                                "input scale, zero point": tuple(float(v) for v in m.input["quantization"]),
                                "output": f"{m.output_dtype} {[int(n) for n in m.output['shape']]}",
                                "output scale, zero point": tuple(float(v) for v in m.output["quantization"])}
                         for name, m in models.items()})


def save(P, paths, conversion: Conversion, models: dict[str, Classifier]) -> QuantizeResult:
    """Both models on every val image, timed and profiled, the int8 one read op by op and tried
    on a few images as an app would; results/quantize.json and the per-class table."""
    from workbook.analysis.scoring import confusions
    from workbook.ml import tflite_metadata as metadata
    from workbook.ml.inspection import ops
    from workbook.ml.multiply_adds import forward
    from workbook.ml.op_profile import cpu_int8_support, profile

    Q, manifest, classes, names = P.quantize, conversion.manifest, conversion.classes, conversion.names
    files = {name: m.path for name, m in models.items()}
    int8, calibration = models["int8"], conversion.calibration
    val = manifest[manifest.split == "val"].reset_index(drop=True)
    y = val.y.to_numpy()
    probs = val_probabilities(files, list(val.file))
    lat = latency(files, read_prepared(val.file[:1].tolist())[0], Q.max_threads, Q.latency_runs)
    profiled, profile_note = profile(files, threads=2)
    differ = probs["float32"].argmax(1) != probs["int8"].argmax(1)
    sample = val.groupby("label").head(1)
    predicted = classify_as_files(int8, sample, metadata.read(files["int8"]).labels)
    result = QuantizeResult(
        backbone=conversion.backbone, parameters=int(conversion.model.count_params()),
        multiply_adds=forward(conversion.model),
        float32=Accuracy.of_predictions(y, probs["float32"].argmax(1)),
        int8=Accuracy.of_predictions(y, probs["int8"].argmax(1)),
        agreement=agreement(probs["float32"], probs["int8"]), disagreements=int(differ.sum()),
        tied_disagreements=int((tied_top(probs["int8"]) & differ).sum()),
        float_bytes=files["float32"].stat().st_size, int8_bytes=files["int8"].stat().st_size,
        io_dtype=Q.io_dtype, input_quantization=[float(v) for v in int8.input["quantization"]],
        output_quantization=[float(v) for v in int8.output["quantization"]],
        representative_samples=len(calibration), cpu_count=os.cpu_count() or 1, latency=lat,
        float_ms_2_threads=_at_two(lat, "float32"), int8_ms_2_threads=_at_two(lat, "int8"),
        latency_background_cores=max_background(lat), cpu=cpu_int8_support(),
        op_ratios={} if profiled is None else _ratios(profiled["type"]), profile_note=profile_note,
        op_types=None if profiled is None else profiled["type"],
        op_blocks=None if profiled is None else profiled["block"],
        metadata=dataclasses.asdict(metadata.read(files["int8"])),
        names=names, per_class=per_class(y, probs, classes, names), latency_table=latency_frame(lat),
        confusion=confusions(y, probs["int8"], len(names))[0],
        op_table=pd.DataFrame([vars(op) for op in ops(files["int8"])]),
        samples=pd.DataFrame({"image": [p.path.name for p in predicted], "true": [names[i] for i in sample.y],
                              "top-3 (int8)": [", ".join(f"{label} {score:.2f}" for label, score in p.top)
                                               for p in predicted]}))
    write_details(paths.details("quantize"), result)
    write_csv(paths.table("quantize_per_class"), result.per_class)
    return result


def run(P, paths) -> QuantizeResult:
    """The stage's steps in order: convert, embed the metadata, score both models on val, time them."""
    conversion = converter(P, paths)
    return save(P, paths, conversion, convert(P, paths, conversion))
