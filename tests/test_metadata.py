"""TFLite metadata embedded in tiny converted classifiers (float32, and full-integer int8 with uint8
I/O): MediaPipe Tasks' ImageClassifier names its categories from it, LiteRT runs the model as before,
and read() gives back what embed() wrote, without TensorFlow."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest
from conftest import draw

from workbook.ml import tflite_metadata as metadata
from workbook.ml.tflite_metadata import (
    METADATA_ENTRY,
    MIN_PARSER_VERSION,
    MetadataError,
    embed,
    read,
)

SIZE = 32
LABELS = ["ant", "bee", "cat"]
RAW_PIXELS = ([0.0], [1.0])  # the models take pixels 0..255, as the project's do
INFO = {"name": "tiny classifier", "description": "three drawn classes", "version": "v7"}


def tiny_keras():
    """A few layers, raw pixels in; a wide random head, so the three scores differ from image to image."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    head = keras.layers.Dense(len(LABELS), activation="softmax",
                              kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))
    return keras.Model(inputs, head(x))


def images(n: int = 4) -> list[np.ndarray]:
    return [np.asarray(draw(i % len(LABELS), seed=100 + i, size=SIZE)) for i in range(n)]


def _convert(converter) -> bytes:
    # Keras 3 prints the exported signature; the int8 converter warns about input "statistics"
    # (the TF1 ranges that the representative dataset replaces).
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return converter.convert()


@pytest.fixture(scope="module")
def models() -> dict[str, bytes]:
    """The tiny classifier as a float32 .tflite and as a full-integer one with uint8 input and output."""
    import tensorflow as tf

    model = tiny_keras()
    rng = np.random.default_rng(0)
    calibration = [rng.integers(0, 256, (1, SIZE, SIZE, 3)).astype(np.float32) for _ in range(4)]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    converter.representative_dataset = lambda: ([x] for x in calibration)
    float32 = _convert(tf.lite.TFLiteConverter.from_keras_model(model))
    return {"float32": float32, "uint8": _convert(converter)}


def normalization_for(kind: str):
    return RAW_PIXELS if kind == "float32" else None


@pytest.fixture(scope="module")
def embedded(models) -> dict[str, bytes]:
    return {kind: embed(content, **INFO, labels=LABELS, normalization=normalization_for(kind))
            for kind, content in models.items()}


def litert(content: bytes, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The raw output of one image and the probabilities it stands for (dequantized)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.set_tensor(inp["index"], pixels[None].astype(inp["dtype"]))  # uint8: pixels as they are
    interpreter.invoke()
    raw = interpreter.get_tensor(out["index"])[0]
    scale, zero_point = out["quantization"]
    return raw, (raw.astype(np.float32) - zero_point) * scale if scale else raw


@pytest.mark.parametrize("kind", ["float32", "uint8"])
def test_read_gives_back_what_embed_wrote(embedded, kind):
    got = read(embedded[kind])
    assert got == metadata.Metadata(**INFO, labels=LABELS, normalization=normalization_for(kind),
                                     min_parser_version=MIN_PARSER_VERSION)


def test_read_takes_a_path_and_gives_none_without_metadata(models, embedded, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(embedded["uint8"])
    assert read(path).labels == LABELS and read(str(path)).name == INFO["name"]
    assert read(models["float32"]) is None and read(models["uint8"]) is None


@pytest.mark.parametrize("kind", ["float32", "uint8"])
def test_litert_runs_the_model_with_metadata_as_without(models, embedded, kind):
    for pixels in images():
        before, _ = litert(models[kind], pixels)
        after, _ = litert(embedded[kind], pixels)
        assert after.dtype == before.dtype and np.array_equal(after, before)


@pytest.mark.parametrize("kind", ["float32", "uint8"])
def test_mediapipe_names_the_categories_from_the_model(embedded, kind, tmp_path):
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

    if kind == "uint8":  # one from a file, one from memory: apps do both
        path = tmp_path / "model.tflite"
        path.write_bytes(embedded[kind])
        base = BaseOptions(model_asset_path=str(path))
    else:
        base = BaseOptions(model_asset_buffer=embedded[kind])
    spread = 0.0
    with ImageClassifier.create_from_options(ImageClassifierOptions(base_options=base)) as classifier:
        for pixels in images():
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=pixels)
            (head,) = classifier.classify(image).classifications
            _, probs = litert(embedded[kind], pixels)
            assert head.head_name == "probability"
            assert sorted(c.index for c in head.categories) == list(range(len(LABELS)))
            for c in head.categories:
                assert c.category_name == LABELS[c.index]
                assert c.score == pytest.approx(float(probs[c.index]), abs=1e-5)
            spread = max(spread, float(probs.max() - probs.min()))
    assert spread > 0.1  # the scores tell the classes apart, so a shuffled name would show


def test_metadata_uses_only_fields_of_its_min_parser_version(embedded):
    # The members metadata_schema.fbs added after 1.0.0 ("Added in: 1.x"); any of them would need
    # a newer min_parser_version than MIN_PARSER_VERSION.
    md = metadata._schema()
    later_files = {md.AssociatedFileType.VOCABULARY, md.AssociatedFileType.SCANN_INDEX_FILE}
    for content in embedded.values():
        buffer = metadata.metadata_buffer(content)
        meta = md.ModelMetadataT.InitFromObj(md.ModelMetadata.GetRootAs(buffer, 0))
        assert meta.minParserVersion.decode() == MIN_PARSER_VERSION == "1.0.0"
        (subgraph,) = meta.subgraphMetadata
        assert subgraph.inputProcessUnits is subgraph.outputProcessUnits is None
        assert subgraph.inputTensorGroups is subgraph.outputTensorGroups is subgraph.customMetadata is None
        tensors = subgraph.inputTensorMetadata + subgraph.outputTensorMetadata
        files = (meta.associatedFiles or []) + (subgraph.associatedFiles or []) + \
            [f for t in tensors for f in t.associatedFiles or []]
        assert files and all(f.type not in later_files and f.version is None for f in files)
        assert all(t.content.contentPropertiesType != md.ContentProperties.AudioProperties for t in tensors)
        units = [u.optionsType for t in tensors for u in t.processUnits or []]
        assert set(units) <= {md.ProcessUnitOptions.NormalizationOptions}


def test_the_label_file_is_an_uncompressed_zip_after_the_model(embedded):
    content = embedded["uint8"]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (info,) = archive.infolist()
        assert info.filename == "labels.txt"
        assert info.compress_type == zipfile.ZIP_STORED  # MediaPipe reads no other
        assert archive.read(info).decode() == "ant\nbee\ncat\n"
        assert info.header_offset > len(content) // 2  # offsets count from the file's start


def test_embedding_again_replaces_the_metadata_and_gives_the_same_bytes(embedded):
    again = embed(embedded["uint8"], **{**INFO, "version": "v8"}, labels=["a", "b", "c"], normalization=None,
                  label_file="names.txt")
    from ai_edge_litert import schema_py_generated as schema

    flat = schema.Model.GetRootAs(again, 0)
    names = [flat.Metadata(i).Name().decode() for i in range(flat.MetadataLength())]
    assert names.count(METADATA_ENTRY) == 1
    with zipfile.ZipFile(io.BytesIO(again)) as archive:
        assert archive.namelist() == ["names.txt"]
    got = read(again)
    assert (got.version, got.labels) == ("v8", ["a", "b", "c"])
    assert embed(embedded["uint8"], **INFO, labels=LABELS, normalization=None) == embedded["uint8"]


@pytest.mark.parametrize("change, words", [
    ({"labels": ["ant", "bee"]}, "2 labels for a model whose output has shape [1, 3] (3 classes)"),
    ({"labels": ["ant", "", "cat"]}, "label 1 ('') is empty"),
    ({"labels": ["ant", "b\nee", "cat"]}, "spans lines"),
    ({"normalization": None}, "float32 input needs normalization"),
    ({"normalization": ([0.0, 1.0], [1.0])}, "got 2 means and 1 stds"),
    ({"normalization": ([0.0, 0.0, 1.0], [1.0, 1.0, 1.0])}, "per-channel"),
    ({"normalization": ([0.0], [0.0])}, "std cannot be 0"),
    ({"label_file": "a/labels.txt"}, "plain file name"),
])
def test_embed_says_what_is_wrong(models, change, words):
    args = {**INFO, "labels": LABELS, "normalization": RAW_PIXELS, **change}
    with pytest.raises(MetadataError, match=re.escape(words)):
        embed(models["float32"], **args)


def test_integer_input_takes_no_normalization_and_garbage_is_no_model(models):
    with pytest.raises(MetadataError, match="input is uint8, which takes the pixels as they are"):
        embed(models["uint8"], **INFO, labels=LABELS, normalization=RAW_PIXELS)
    with pytest.raises(MetadataError, match="not a TFLite model"):
        read(b"certainly not a flatbuffer")


def test_reading_needs_neither_tensorflow_nor_the_mediapipe_package(embedded, tmp_path):
    # `classify` and `inspect` start in a second: importing mediapipe would load all its Tasks and TensorFlow.
    path = tmp_path / "model.tflite"
    path.write_bytes(embedded["float32"])
    code = ("import sys; from workbook.ml.tflite_metadata import read; m = read(sys.argv[1]); "
            "heavy = {n.split('.')[0] for n in sys.modules} & {'tensorflow', 'mediapipe', 'keras'}; "
            "print(m.labels, sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{LABELS} []"
    assert out.stderr == ""  # no C++ log lines
