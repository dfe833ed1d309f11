"""`python -m workbook classify` and `inspect` on a tiny int8 model: any image Pillow reads is
classified, anything else is reported with its reason and never fails the command."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, draw
from PIL import Image

from workbook.__main__ import main

SIZE, LABELS = 32, ["tench", "English springer", "gas pump"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A tiny classifier converted as the quantize stage converts it: int8 with uint8 I/O."""
    from workbook.ml import litert
    from workbook.ml.network import build_base, build_classifier, build_head
    from workbook.stages import quantize

    folder = tmp_path_factory.mktemp("calibration")
    calibration = []
    for i in range(3):
        draw(i, i, size=SIZE).save(folder / f"calib{i}.png")
        calibration.append(str(folder / f"calib{i}.png"))
    keras_model = build_classifier(build_base(SIZE, "none"), build_head(len(LABELS), 8, 0.0, seed=0), SIZE)
    return litert.classifier_tflite(keras_model, quantize.representative_dataset(calibration), "uint8")["int8"]


@pytest.fixture(scope="module")
def model(converted, tmp_path_factory):
    """models/model_int8.tflite (class names in its metadata) with labels.txt beside it, as the
    quantize stage leaves them."""
    from workbook.stages import quantize

    folder = tmp_path_factory.mktemp("models")
    path = folder / "model_int8.tflite"
    quantize.write_model(path, quantize.embed_metadata(converted, LABELS, "int8"))
    quantize.write_labels(folder / "labels.txt", LABELS)
    return path


@pytest.fixture
def bare(converted, tmp_path):
    """The same model without metadata, alone in its folder."""
    path = tmp_path / "bare" / "model.tflite"
    path.parent.mkdir()
    path.write_bytes(converted)
    return path


@pytest.fixture
def images(tmp_path):
    """A JPEG, a PNG with alpha, a grayscale image (in a subfolder) and a text file named .jpg."""
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    draw(0, 1, size=80).save(folder / "photo.jpg", quality=90)
    rgba = draw(1, 2, size=50).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((50, 50)))
    rgba.save(folder / "logo.png")
    draw(2, 3, size=64, mode="L").save(folder / "more" / "gray.png")
    (folder / "notes.jpg").write_text("not a picture, only text\n")
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: not an image anyone meant
    return folder


def test_classify_a_folder_reports_the_unreadable_file_and_succeeds(model, images, capsys):
    assert main(["classify", str(model), str(images)]) == 0
    out, err = capsys.readouterr()
    for name in ("photo.jpg", "logo.png", "gray.png"):
        assert name in out
    assert "notes.jpg" not in out and ".DS_Store" not in out + err
    assert "notes.jpg: not an image Pillow can read" in err
    assert "classified 3 image(s)" in err
    blocks = out.strip().split("\n")
    assert len(blocks) == 3 * 4  # a path line and three labels per image
    scores = [float(line.split()[0]) for line in blocks if line.startswith("  ")]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert {line.split(maxsplit=1)[1] for line in blocks if line.startswith("  ")} <= set(LABELS)


def test_top_k_and_an_explicit_labels_file(model, images, tmp_path, capsys):
    labels = tmp_path / "mine.txt"
    labels.write_text("a\nb\nc\n")
    assert main(["classify", str(model), str(images / "photo.jpg"), "--top-k", "2", "--labels", str(labels)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("photo.jpg") and len(out) == 3
    assert {line.split()[1] for line in out[1:]} <= {"a", "b", "c"}


def test_same_probabilities_as_the_data_stage_pipeline(model, images):
    from workbook.ml.classify import classify_files
    from workbook.ml.decode import load_rgb
    from workbook.ml.litert import Classifier

    clf = Classifier(model)
    predictions, unread = classify_files(clf, [images / "logo.png"], LABELS, top_k=3)
    expected = clf.probabilities(np.asarray(load_rgb(images / "logo.png", SIZE).image)[None].astype(np.float32))[0]
    assert not unread and [s for _, s in predictions[0].top] == pytest.approx(sorted(expected, reverse=True))


def test_nothing_readable_exits_1(model, images, capsys):
    assert main(["classify", str(model), str(images / "notes.jpg"), str(images / "missing.png")]) == 1
    err = capsys.readouterr().err
    assert "notes.jpg: not an image Pillow can read" in err and "missing.png: no such file or folder" in err


@pytest.mark.parametrize("problem", ["missing", "not a model", "labels mismatch", "labels missing"])
def test_an_unusable_model_or_labels_file_exits_2(model, images, tmp_path, capsys, problem):
    args = {
        "missing": [str(tmp_path / "nope.tflite")],
        "not a model": [str(images / "notes.jpg")],
        "labels mismatch": [str(model), "--labels", str(tmp_path / "two.txt")],
        "labels missing": [str(model), "--labels", str(tmp_path / "absent.txt")],
    }[problem]
    (tmp_path / "two.txt").write_text("a\nb\n")
    assert main(["classify", *args, str(images)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_the_names_come_from_the_model_itself(model, images, tmp_path, capsys):
    lone = tmp_path / "lone.tflite"  # no labels.txt beside it
    lone.write_bytes(model.read_bytes())
    assert main(["classify", str(lone), str(images / "photo.jpg"), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in LABELS) and "class 0" not in out


def test_a_model_without_metadata_takes_labels_txt_beside_it_or_shows_numbers(bare, images, capsys):
    assert main(["classify", str(bare), str(images / "photo.jpg")]) == 0
    out, err = capsys.readouterr()
    assert "class 0" in out and "carries no class names" in err
    (bare.parent / "labels.txt").write_text("".join(f"{n}\n" for n in reversed(LABELS)))
    assert main(["classify", str(bare), str(images / "photo.jpg"), "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in LABELS) and "class 0" not in out


def test_inspect_prints_the_op_table_and_the_largest_activation(model, capsys):
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "input: [1, 32, 32, 3] uint8" in out and "output: [1, 3] uint8" in out
    for op in ("QUANTIZE", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"):
        assert op in out
    assert "largest activation: op " in out
    assert "class names (3, embedded label file): tench, English springer, gas pump" in out


def test_inspect_says_when_a_model_has_no_metadata(bare, capsys):
    assert main(["inspect", str(bare)]) == 0
    assert "metadata: none" in capsys.readouterr().out


def test_inspect_of_a_missing_model_exits_2(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.tflite")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_the_commands_never_import_tensorflow(model, images):
    code = ("import sys; from workbook.__main__ import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for args in (["classify", str(model), str(images)], ["inspect", str(model)]):
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=120)
        assert proc.returncode == 0, proc.stderr
