"""TFLite metadata inside a .tflite image classifier: its class names and input normalisation, where
MediaPipe Tasks and LiteRT's support libraries read them (the format of tflite-support's
MetadataPopulator, as Model Maker models carry it).

The metadata is a `tflite.ModelMetadata` flatbuffer (identifier "M001") held in a model buffer that
the model's metadata entry "TFLITE_METADATA" points to; the label file is appended to the model as
an uncompressed zip archive. No TensorFlow here: LiteRT's flatbuffer tools read and write the model,
mediapipe's generated schema bindings the metadata.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np

METADATA_ENTRY = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
# The oldest metadata parser that understands every field embed() writes: what tflite-support's
# populator computes (GetMinimumMetadataParserVersion). Its rule: 1.0.0, raised to the version
# metadata_schema.fbs gives ("Added in: 1.x") for each later member present. embed() writes only
# 1.0.0 members (no vocabulary or ScaNN files, no AssociatedFile.version, no subgraph process units,
# tensor groups or custom metadata, no audio properties); tests/test_metadata.py checks that.
MIN_PARSER_VERSION = "1.0.0"

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same model and labels give the same bytes (DVC)
_SCHEMA_MODULE = "mediapipe.tasks.metadata.metadata_schema_py_generated"


class MetadataError(ValueError):
    """Metadata that cannot be written into, or read from, a model; the message says why."""


@dataclass(frozen=True)
class Metadata:
    """What read() finds in a model."""

    name: str
    description: str
    version: str
    labels: list[str]  # class names in output order, from the embedded label file ([] if none)
    normalization: tuple[list[float], list[float]] | None  # (mean, std) of a float input, as float32
    min_parser_version: str


@functools.cache
def _schema():
    """mediapipe's bindings of metadata_schema.fbs, loaded from the installed wheel's file.

    Not imported by name: any `import mediapipe...` first runs mediapipe/__init__.py, which loads
    every Task and, where it is installed, TensorFlow (seconds, and C++ log lines), while the
    bindings need only flatbuffers.
    """
    if _SCHEMA_MODULE in sys.modules:
        return sys.modules[_SCHEMA_MODULE]
    package = importlib.util.find_spec("mediapipe")  # finds the top-level package without running it
    if package is None or not package.submodule_search_locations:
        raise MetadataError("TFLite metadata needs the mediapipe package (its metadata schema); "
                            "it is not installed")
    path = Path(package.submodule_search_locations[0], *_SCHEMA_MODULE.split(".")[1:]).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(f"workbook._{path.stem}", path)
    if spec is None or not path.is_file():
        raise MetadataError(f"{path}: mediapipe's metadata schema bindings are missing")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


def _model_bytes(model: bytes | str | Path) -> bytes:
    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise MetadataError(f"{path}: no such model file")
        return path.read_bytes()
    return bytes(model)


def _check_model(content: bytes) -> None:
    if len(content) < 8 or not _model_schema().Model.ModelBufferHasIdentifier(content, 0):
        raise MetadataError("not a TFLite model (no TFL3 flatbuffer identifier)")


def _labels_file(labels: list[str]) -> bytes:
    for i, label in enumerate(labels):
        if not label.strip() or "\n" in label or "\r" in label:
            raise MetadataError(f"label {i} ({label!r}) is empty or spans lines: the label file holds "
                                "one name per line")
    return "".join(f"{label}\n" for label in labels).encode()


def _dtype(tensor) -> np.dtype:
    """The numpy type of a model tensor, one of those an image classifier's input and output come in."""
    types = _model_schema().TensorType
    known = {types.FLOAT32: np.float32, types.UINT8: np.uint8, types.INT8: np.int8}
    if tensor.type not in known:
        raise MetadataError(f"tensor {tensor.name.decode()!r} has TFLite type {tensor.type}, not float32, "
                            "uint8 or int8")
    return np.dtype(known[tensor.type])


def _type_range(dtype: np.dtype) -> tuple[list[float], list[float]]:
    info = np.iinfo(dtype)
    return [float(info.min)], [float(info.max)]


def _normalization(dtype: np.dtype, normalization) -> tuple[list[float], list[float]] | None:
    """(mean, std) as floats for a float input, None for an integer one; in words what is wrong."""
    if dtype != np.float32:
        if normalization is not None:
            raise MetadataError(f"normalization describes a float input; this model's input is {dtype}, "
                                "which takes the pixels as they are (pass None)")
        return None
    if normalization is None:
        raise MetadataError("a float32 input needs normalization (mean, std): MediaPipe will not feed "
                            "a float model without it (mean 0, std 1 for raw pixels 0..255)")
    mean, std = ([float(v) for v in values] for values in normalization)
    if len(mean) != len(std) or len(mean) not in (1, 3):
        raise MetadataError(f"normalization needs 1 or 3 means and as many stds, got {len(mean)} "
                            f"means and {len(std)} stds")
    if len(set(mean)) > 1 or len(set(std)) > 1:
        raise MetadataError("MediaPipe Tasks take one mean and std for all channels, got per-channel "
                            f"values {mean} and {std}")
    if 0.0 in std:
        raise MetadataError("normalization std cannot be 0")
    return mean, std


def _input_metadata(md, dtype: np.dtype, normalization) -> object:
    image = md.ImagePropertiesT()
    image.colorSpace = md.ColorSpaceType.RGB
    tensor = md.TensorMetadataT()
    tensor.name = "image"
    tensor.description = "RGB image, pixels 0..255"
    tensor.content = md.ContentT()
    tensor.content.contentPropertiesType = md.ContentProperties.ImageProperties
    tensor.content.contentProperties = image
    tensor.stats = md.StatsT()
    if normalization is None:  # an integer input takes the pixels as they are
        tensor.stats.min, tensor.stats.max = _type_range(dtype)
        return tensor
    mean, std = normalization
    unit = md.ProcessUnitT()
    unit.optionsType = md.ProcessUnitOptions.NormalizationOptions
    unit.options = md.NormalizationOptionsT()
    unit.options.mean, unit.options.std = mean, std
    tensor.processUnits = [unit]
    tensor.stats.min = [(0.0 - m) / s for m, s in zip(mean, std)]
    tensor.stats.max = [(255.0 - m) / s for m, s in zip(mean, std)]
    return tensor


def _output_metadata(md, dtype: np.dtype, label_file: str) -> object:
    labels = md.AssociatedFileT()
    labels.name = label_file
    labels.description = "Class names, one per line, in the order of the output's scores"
    labels.type = md.AssociatedFileType.TENSOR_AXIS_LABELS
    tensor = md.TensorMetadataT()
    tensor.name = "probability"  # MediaPipe's results call the classification head by this name
    tensor.description = "Probability of each class"
    tensor.content = md.ContentT()
    tensor.content.contentPropertiesType = md.ContentProperties.FeatureProperties
    tensor.content.contentProperties = md.FeaturePropertiesT()
    tensor.associatedFiles = [labels]
    tensor.stats = md.StatsT()
    # Stats are in the tensor's own values: a quantized output's span its type (as MediaPipe's writer has it).
    tensor.stats.min, tensor.stats.max = ([0.0], [1.0]) if dtype == np.float32 else _type_range(dtype)
    return tensor


def embed(model: bytes, *, name: str, description: str, version: str, labels: list[str],
          normalization: tuple[list[float], list[float]] | None, label_file: str = "labels.txt") -> bytes:
    """`model` (a .tflite image classifier: one N x H x W x 3 input, one N x classes output) with
    TFLite metadata and its label file embedded, replacing any it had.

    `normalization`: the (mean, std) that turn pixels 0..255 into a float input, (x - mean) / std;
    None for an integer (uint8/int8) input. MediaPipe Tasks run float32 and uint8 models only.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    md, schema = _schema(), _model_schema()
    content = bytes(model)
    _check_model(content)
    flat = flatbuffer_utils.read_model_from_bytearray(content)
    if len(flat.subgraphs) != 1:
        raise MetadataError(f"the model has {len(flat.subgraphs)} subgraphs; TFLite metadata describes one")
    graph = flat.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise MetadataError(f"an image classifier has one input and one output; the model has "
                            f"{len(graph.inputs)} inputs and {len(graph.outputs)} outputs")
    image, scores = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    if len(image.shape) != 4 or image.shape[3] != 3:
        raise MetadataError(f"the model's input has shape {list(image.shape)}, not N x H x W x 3 (RGB)")
    if len(scores.shape) != 2 or scores.shape[1] != len(labels):
        raise MetadataError(f"{len(labels)} labels for a model whose output has shape {list(scores.shape)} "
                            f"({scores.shape[-1] if len(scores.shape) else 0} classes)")
    if not label_file or "/" in label_file or "\\" in label_file:
        raise MetadataError(f"label_file {label_file!r} must be a plain file name (the zip entry's name)")
    normalization = _normalization(_dtype(image), normalization)
    label_text = _labels_file(labels)

    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [_input_metadata(md, _dtype(image), normalization)]
    subgraph.outputTensorMetadata = [_output_metadata(md, _dtype(scores), label_file)]
    meta = md.ModelMetadataT()
    meta.name, meta.description, meta.version = name, description, version
    meta.subgraphMetadata = [subgraph]
    meta.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(1024)
    builder.Finish(meta.Pack(builder), METADATA_IDENTIFIER)

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(bytes(builder.Output()), np.uint8)
    entries = [m for m in flat.metadata or [] if m.name.decode() == METADATA_ENTRY]
    if entries:
        flat.buffers[entries[0].buffer] = buffer
    else:
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_ENTRY, len(flat.buffers)
        flat.buffers.append(buffer)
        flat.metadata = [*(flat.metadata or []), entry]
    # Repacking drops whatever followed the flatbuffer (an earlier label zip), so files are written anew.
    out = io.BytesIO()
    out.write(flatbuffer_utils.convert_object_to_bytearray(flat))
    # "w" at the model's end, not "a" as the populator does: the offsets count from the file's start
    # all the same, and no end-of-archive signature that the weights hold by chance is taken for a zip.
    info = zipfile.ZipInfo(label_file, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED  # MediaPipe reads uncompressed files only
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(info, label_text)
    return out.getvalue()


def metadata_buffer(model: bytes | str | Path) -> bytes | None:
    """The model's TFLITE_METADATA flatbuffer, or None where it has none."""
    content = _model_bytes(model)
    _check_model(content)
    flat = _model_schema().Model.GetRootAs(content, 0)
    for i in range(flat.MetadataLength()):
        entry = flat.Metadata(i)
        if entry.Name() is None or entry.Name().decode() != METADATA_ENTRY:
            continue
        if entry.Buffer() >= flat.BuffersLength():
            raise MetadataError(f"the {METADATA_ENTRY} entry points at buffer {entry.Buffer()}, "
                                f"but the model has {flat.BuffersLength()}")
        buffer = flat.Buffers(entry.Buffer())
        if buffer.Offset() > 1:  # a model over 2 GB keeps its buffers after the flatbuffer
            return content[buffer.Offset():buffer.Offset() + buffer.Size()]
        return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else None
    return None


def _associated_file(content: bytes, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return archive.read(name)
    except (zipfile.BadZipFile, KeyError):
        raise MetadataError(f"the metadata names the label file {name!r}, but the model holds no such "
                            "file") from None


def read(model: bytes | str | Path) -> Metadata | None:
    """The metadata embedded in a .tflite model (bytes or a path); None for a model without any."""
    content = _model_bytes(model)
    buffer = metadata_buffer(content)
    if buffer is None:
        return None
    md = _schema()
    if not md.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0):
        raise MetadataError(f"the {METADATA_ENTRY} buffer is not TFLite metadata (identifier "
                            f"{buffer[4:8]!r}, expected {METADATA_IDENTIFIER!r})")
    meta = md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAs(buffer, 0))
    subgraph = meta.subgraphMetadata[0] if meta.subgraphMetadata else md.SubGraphMetadataT()

    normalization = None
    for tensor in subgraph.inputTensorMetadata or []:
        for unit in tensor.processUnits or []:
            if unit.optionsType == md.ProcessUnitOptions.NormalizationOptions:
                normalization = ([float(v) for v in unit.options.mean], [float(v) for v in unit.options.std])
    labels: list[str] = []
    for tensor in subgraph.outputTensorMetadata or []:
        files = [f for f in tensor.associatedFiles or []
                 if f.type == md.AssociatedFileType.TENSOR_AXIS_LABELS and not f.locale]
        if files:
            # As MediaPipe reads it: one name per "\n"-ended line.
            lines = _associated_file(content, files[0].name.decode()).decode().split("\n")
            labels = lines[:-1] if lines and lines[-1] == "" else lines
            break

    def text(value) -> str:
        return value.decode() if value is not None else ""

    return Metadata(name=text(meta.name), description=text(meta.description), version=text(meta.version),
                    labels=labels, normalization=normalization,
                    min_parser_version=text(meta.minParserVersion))
