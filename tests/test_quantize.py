"""The quantize stage on a tiny random-init MobileNetV2 (32 px, 3 classes): conversion to float32 and
full-integer int8 with integer I/O, both run by LiteRT, and the numbers the report is built from."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from conftest import draw

from workbook.ml import latency, litert
from workbook.ml import tflite_metadata as metadata
from workbook.ml.inspection import ops
from workbook.ml.litert import Classifier
from workbook.stages import quantize

SIZE, CLASSES = 32, 3


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> pd.DataFrame:
    """A manifest of prepared PNGs (train and val), as load_manifest returns it."""
    folder = tmp_path_factory.mktemp("prepared")
    rows = []
    for split, n in (("train", 4), ("val", 2)):
        for c in range(CLASSES):
            for i in range(n):
                f = folder / f"{split}_{c}_{i}.png"
                draw(c, hash((split, c, i)) % 2**32, size=SIZE).save(f)
                rows.append({"split": split, "label": f"c{c}", "file": str(f), "y": c})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def keras_model():
    from workbook.ml.network import build_base, build_classifier, build_head

    return build_classifier(build_base(SIZE, "none"), build_head(CLASSES, 8, 0.0, seed=0), SIZE)


@pytest.fixture(scope="module")
def tflite(tmp_path_factory, keras_model, prepared) -> dict:
    """float32, int8 with uint8 I/O and int8 with int8 I/O, written as the stage writes them."""
    folder = tmp_path_factory.mktemp("models")
    calibration = quantize.representative_files(prepared, 4, seed=0)
    paths = {"float32": folder / "float.tflite", "uint8": folder / "int8_u.tflite", "int8": folder / "int8_s.tflite"}
    dataset = quantize.representative_dataset(calibration)
    both = litert.classifier_tflite(keras_model, dataset, "uint8")  # as the stage converts
    quantize.write_model(paths["float32"], both["float32"])
    quantize.write_model(paths["uint8"], both["int8"])
    quantize.write_model(paths["int8"], litert.classifier_tflite(keras_model, dataset, "int8")["int8"])
    return paths


def val_pixels(prepared) -> np.ndarray:
    from workbook.ml.prepared import read_prepared

    return read_prepared(list(prepared[prepared.split == "val"].file))


def test_representative_files_are_train_images_drawn_reproducibly(prepared):
    a = quantize.representative_files(prepared, 5, seed=3)
    assert a == quantize.representative_files(prepared, 5, seed=3)
    assert a != quantize.representative_files(prepared, 5, seed=4)
    train = set(prepared[prepared.split == "train"].file)
    assert len(set(a)) == 5 and set(a) <= train
    assert set(quantize.representative_files(prepared, 1000, seed=3)) == train  # capped at what there is


def test_representative_dataset_feeds_float_pixels_in_batches(prepared):
    files = quantize.representative_files(prepared, 5, seed=0)
    batches = list(quantize.representative_dataset(files, batch=2)())
    assert [len(x) for (x,) in batches] == [2, 2, 1]  # every file once, in order
    (x,) = batches[0]
    assert x.shape == (2, SIZE, SIZE, 3) and x.dtype == np.float32 and x.max() > 1.0  # 0..255, not -1..1


@pytest.mark.parametrize("io", ["uint8", "int8"])
def test_int8_model_is_full_integer_with_integer_io(tflite, io):
    clf = Classifier(tflite[io])
    assert clf.input_dtype == io and clf.output_dtype == io
    assert clf.image_size == SIZE and clf.classes == CLASSES
    # every op between the integer input and output computes in int8
    assert {op.dtype for op in ops(tflite[io])} <= {"int8", io}
    assert tflite[io].stat().st_size < tflite["float32"].stat().st_size / 2.5
    pixels = np.arange(256, dtype=np.float32)
    scale = clf.input["quantization"][0]
    back = (clf.quantized_input(pixels).astype(np.float32) - clf.input["quantization"][1]) * scale
    assert np.abs(back - pixels).max() <= scale / 2 + 1e-4


def test_one_export_converts_as_the_keras_converter_does(tflite, keras_model, prepared, tmp_path):
    import tensorflow as tf

    dataset = quantize.representative_dataset(quantize.representative_files(prepared, 4, seed=0))
    keras_int8 = litert._int8(tf.lite.TFLiteConverter.from_keras_model(keras_model), dataset, "uint8")
    separate = {"float32": litert.float_tflite(keras_model), "uint8": litert._convert(keras_int8)}
    pixels = val_pixels(prepared)
    for name, content in separate.items():
        quantize.write_model(tmp_path / f"{name}.tflite", content)
        ours = Classifier(tflite[name]).probabilities(pixels, 4)
        theirs = Classifier(tmp_path / f"{name}.tflite").probabilities(pixels, 4)
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_float_model_keeps_float_io(tflite):
    clf = Classifier(tflite["float32"])
    assert clf.input_dtype == "float32" and clf.output_dtype == "float32"


@pytest.mark.parametrize("name", ["float32", "uint8", "int8"])
def test_every_model_gives_probabilities_batched_or_not(tflite, prepared, name):
    pixels = val_pixels(prepared)
    clf = Classifier(tflite[name])
    probs = clf.probabilities(pixels, batch_size=4)
    assert probs.shape == (len(pixels), CLASSES) and probs.dtype == np.float32
    assert (probs >= 0).all() and np.allclose(probs.sum(axis=1), 1.0, atol=CLASSES / 256 + 1e-5)
    assert np.allclose(probs, clf.probabilities(pixels, batch_size=1), atol=1e-6)


def test_val_probabilities_runs_every_model_on_every_file(tflite, prepared, keras_model):
    files = list(prepared[prepared.split == "val"].file)
    probs = quantize.val_probabilities({"float32": tflite["float32"], "int8": tflite["uint8"]}, files, chunk=4)
    assert set(probs) == {"float32", "int8"} and all(p.shape == (len(files), CLASSES) for p in probs.values())
    reference = keras_model(val_pixels(prepared).astype(np.float32)).numpy()
    assert np.allclose(probs["float32"], reference, atol=1e-4)  # the float .tflite is the Keras model


def one_hot(pred: list[int]) -> np.ndarray:
    return np.eye(CLASSES, dtype=np.float32)[pred] * 0.9 + 0.1 / CLASSES


def test_accuracy_agreement_and_per_class_on_a_tiny_set():
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = {"float32": one_hot([0, 0, 1, 2, 2, 2]), "int8": one_hot([0, 1, 1, 2, 2, 0])}
    assert quantize.agreement(probs["float32"], probs["int8"]) == pytest.approx(4 / 6)
    table = quantize.per_class(y, probs, ["c0", "c1", "c2"], ["zero", "one", "two"])
    # the classes int8 hurts most first (in class order among equals)
    assert list(table["class"]) == ["zero", "two", "one"] and list(table.support) == [2, 2, 2]
    assert np.allclose(table.float32_accuracy, [1.0, 1.0, 0.5])
    assert np.allclose(table.int8_accuracy, [0.5, 0.5, 0.5])
    assert np.allclose(table.change, [-0.5, -0.5, 0.0])
    assert list(table.disagreements) == [1, 1, 0]


def test_tied_top_scores_are_found():
    scores = np.array([[0.5, 0.5, 0.0], [0.2, 0.7, 0.1], [0.4, 0.2, 0.4]], dtype=np.float32)
    assert list(quantize.tied_top(scores)) == [True, False, True]


def test_a_class_without_val_images_has_no_accuracy():
    y = np.array([0, 1])
    probs = {"float32": one_hot([0, 1]), "int8": one_hot([0, 0])}
    table = quantize.per_class(y, probs, ["c0", "c1", "c2"], ["zero", "one", "two"])
    assert np.isnan(table.float32_accuracy[2]) and table.support[2] == 0


def test_latency_table_has_every_model_and_thread_count(tflite, prepared):
    models = {"float32": tflite["float32"], "int8": tflite["uint8"]}
    lat = latency.latency(models, val_pixels(prepared)[0], max_threads=2, runs=3)
    assert set(lat) == {"float32", "int8"} and all(set(t) == {"1", "2"} for t in lat.values())
    for by_threads in lat.values():
        for stats in by_threads.values():
            assert 0 < stats["median_ms"] <= stats["p90_ms"]
            assert stats["background_cores"] is None or stats["background_cores"] >= 0
    frame = latency.latency_frame(lat)
    assert len(frame) == 4 and list(frame.columns[:4]) == ["model", "threads", "median_ms", "p90_ms"]


def test_background_load_sees_another_busy_process():
    import subprocess
    import sys

    with latency.background_load() as quiet:
        pass
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass"])
    try:
        with latency.background_load() as busy:
            time.sleep(0.5)
    finally:
        spin.wait()
    if busy["cores"] is None:
        pytest.skip("no /proc/stat here")
    assert busy["cores"] > 0.5 and quiet["cores"] is not None


def test_labels_file_has_one_name_per_line_in_class_order(tmp_path):
    path = tmp_path / "models" / "labels.txt"
    quantize.write_labels(path, ["tench", "English springer", "gas pump"])
    assert path.read_text().splitlines() == ["tench", "English springer", "gas pump"]


def test_both_models_carry_the_class_names_and_the_float_one_its_normalisation(tflite, prepared):
    names = ["zero", "one", "two"]
    pixels = val_pixels(prepared)
    for kind, key in (("float32", "float32"), ("int8", "uint8")):
        embedded = quantize.embed_metadata(tflite[key].read_bytes(), names, kind)
        read = metadata.read(embedded)
        assert read.labels == names and kind in read.name
        assert read.normalization == (([0.0] * 3, [1.0] * 3) if kind == "float32" else None)
        quantize.write_model(tflite[key].with_suffix(".meta.tflite"), embedded)
        with_meta = Classifier(tflite[key].with_suffix(".meta.tflite")).probabilities(pixels)
        np.testing.assert_array_equal(with_meta, Classifier(tflite[key]).probabilities(pixels))


def test_model_writes_are_atomic(tmp_path):
    path = tmp_path / "model.tflite"
    quantize.write_model(path, b"old")
    with pytest.raises(TypeError):
        quantize.write_model(path, None)  # a failed writer leaves the old file and no leftovers
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]
    quantize.write_model(path, b"new")
    assert path.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 1


def test_op_profile_times_every_kind_of_op_of_both_models(tflite):
    from workbook.ml.op_profile import profile

    tables, why = profile({"float32": tflite["float32"], "int8": tflite["uint8"]}, threads=1)
    assert tables is not None, why
    by_type = tables["type"]
    assert {"stem conv 3x3", "depthwise conv", "1x1 conv / dense"} <= set(by_type.index)
    assert (by_type.loc["total", ["float32", "int8"]] > 0).all()
    assert by_type.loc["total", "float32/int8"] == pytest.approx(
        by_type.loc["total", "float32"] / by_type.loc["total", "int8"])
    assert "block_16" in tables["block"].index and "stem conv" in tables["block"].index


def test_a_profiler_that_fails_costs_the_table_not_the_stage(tmp_path):
    from workbook.ml.op_profile import profile

    (tmp_path / "bad.tflite").write_bytes(b"not a model")
    tables, why = profile({"float32": tmp_path / "bad.tflite", "int8": tmp_path / "bad.tflite"})
    assert tables is None and why.startswith("the profiler failed")


@pytest.mark.parametrize("flags, found", [("fpu sse2 avx2 fma", "none"), ("avx2 fma avx_vnni", "avx_vnni"),
                                          ("avx512f avx512_vnni amx_int8 avx2", "amx_int8"),
                                          ("fp asimd asimddp", "asimddp")])
def test_the_cpus_int8_instructions_are_read_from_cpuinfo(tmp_path, flags, found):
    from workbook.ml.op_profile import cpu_int8_support

    (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    info = cpu_int8_support(tmp_path / "cpuinfo")
    assert info["model"] == "Some CPU" and info["int8_dot"] == found
    assert cpu_int8_support(tmp_path / "missing")["int8_dot"] is None
