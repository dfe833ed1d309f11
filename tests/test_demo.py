"""`python -m workbook demo`: classify_image() alone (no Gradio, no browser), then the page itself in
headless Chromium driven by Playwright: an upload, the webcam (Chromium's fake camera), bad input.

The tiny models are converted and given metadata as the quantize stage does it (float32, and int8
with uint8 I/O). Their network is a colour classifier (mean R, G, B -> softmax), not the random-init
MobileNetV2 of test_classify.py, which scores these tiny images alike for every class: here
conftest.draw's red, green and blue bars are tench, English springer and gas pump, so a wrong name
on the page is a failure rather than a tie.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, draw

from workbook.__main__ import main
from workbook.ml.classify import classify_files
from workbook.ml.decode import load_rgb
from workbook.ml.litert import Classifier
from workbook.tools.demo import DemoError, classify_image, offered_models, verdict

SIZE, LABELS = 32, ["tench", "English springer", "gas pump"]


def gradio_installed() -> bool:
    spec = importlib.util.find_spec("gradio")
    return spec is not None and spec.origin is not None  # a folder named gradio is not Gradio


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """float32, int8 (uint8 I/O), the float32 with its names shifted by one, and int8 without metadata."""
    import keras

    from workbook.ml import litert
    from workbook.stages import quantize

    folder = tmp_path_factory.mktemp("models")
    calibration = []
    for i in range(3):
        draw(i, i, size=SIZE).save(folder / f"calib{i}.png")
        calibration.append(str(folder / f"calib{i}.png"))
    pixels = keras.Input((SIZE, SIZE, 3), name="pixels")
    dense = keras.layers.Dense(len(LABELS), activation="softmax")
    network = keras.Model(pixels, dense(keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(pixels))))
    dense.set_weights([12 * np.eye(3, dtype=np.float32), np.zeros(3, np.float32)])
    both = litert.classifier_tflite(network, quantize.representative_dataset(calibration), "uint8")
    paths = {"float32": folder / "model_float32.tflite", "int8": folder / "model_int8.tflite",
             "shifted": folder / "shifted.tflite", "bare": folder / "bare" / "model.tflite"}
    quantize.write_model(paths["float32"], quantize.embed_metadata(both["float32"], LABELS, "float32"))
    quantize.write_model(paths["int8"], quantize.embed_metadata(both["int8"], LABELS, "int8"))
    quantize.write_model(paths["shifted"], quantize.embed_metadata(both["float32"], LABELS[1:] + LABELS[:1], "float32"))
    paths["bare"].parent.mkdir()
    paths["bare"].write_bytes(both["int8"])
    return paths


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """c0.jpg, c1.jpg, c2.jpg: a bar of each class's colour on noise; notes.jpg: text."""
    folder = tmp_path_factory.mktemp("images")
    for c in range(3):
        draw(c, 10 + c, size=80).save(folder / f"c{c}.jpg", quality=90)
    (folder / "notes.jpg").write_text("not a picture, only text\n")
    return folder


# ---------------------------------------------------------------------------------------------
# classify_image: what the page shows, without the page


@pytest.mark.parametrize("kind", ["float32", "int8"])
def test_each_model_names_the_colour_it_sees_from_its_metadata(models, images, kind):
    for c, label in enumerate(LABELS):
        seen = classify_image(images / f"c{c}.jpg", models[kind], threads=2)
        assert seen.top[0][0] == label and len(seen.top) == 3
        assert sorted(name for name, _ in seen.top) == sorted(LABELS)
        scores = [s for _, s in seen.top]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0.5
        assert seen.image.size == (SIZE, SIZE) and seen.image.mode == "RGB"
        assert 0 < seen.latency_ms < 5000 and seen.threads == 2
        assert seen.names_from == "the model's metadata" and seen.note == ""


def test_scores_and_input_are_those_of_the_classify_command(models, images):
    f = images / "c1.jpg"
    seen = classify_image(f, models["int8"], threads=1)
    (prediction,), unread = classify_files(Classifier(models["int8"]), [f], LABELS, top_k=3)
    assert unread == [] and [n for n, _ in seen.top] == [n for n, _ in prediction.top]
    np.testing.assert_allclose([s for _, s in seen.top], [s for _, s in prediction.top], atol=1e-6)
    assert np.array_equal(np.asarray(seen.image), np.asarray(load_rgb(f, SIZE).image))


def test_a_webcam_picture_goes_through_the_same_steps_as_a_file(models, images, tmp_path):
    picture = draw(2, 5, size=120).convert("RGBA")  # browsers hand over RGB(A) frames, not files
    picture.save(tmp_path / "frame.png")
    from_picture = classify_image(picture, models["float32"])
    from_file = classify_image(tmp_path / "frame.png", models["float32"])
    assert from_picture.top == from_file.top and from_picture.top[0][0] == "gas pump"
    assert np.array_equal(np.asarray(from_picture.image), np.asarray(from_file.image))


def test_a_file_that_is_no_image_and_no_image_at_all_say_so(models, images):
    with pytest.raises(DemoError, match=r"notes\.jpg is not an image the model can take: not an image Pillow"):
        classify_image(images / "notes.jpg", models["int8"])
    with pytest.raises(DemoError, match="No image yet"):
        classify_image(None, models["int8"])


def test_a_model_without_metadata_shows_classes_by_index_and_says_so(models, images, tmp_path):
    seen = classify_image(images / "c0.jpg", models["bare"])
    assert seen.top[0][0] == "class 0" and {n for n, _ in seen.top} == {"class 0", "class 1", "class 2"}
    assert seen.names_from is None and "carries no class names" in seen.note and "by index" in seen.note
    shutil.copy(models["bare"], tmp_path / "model.tflite")  # with labels.txt beside it, as `classify` reads it
    (tmp_path / "labels.txt").write_text("".join(f"{n}\n" for n in LABELS))
    seen = classify_image(images / "c0.jpg", tmp_path / "model.tflite")
    assert seen.top[0][0] == "tench" and "names from" in seen.note and "labels.txt" in seen.note


def test_a_missing_or_broken_model_and_a_bad_thread_count(models, images, tmp_path):
    with pytest.raises(DemoError, match="no such model file"):
        classify_image(images / "c0.jpg", tmp_path / "nope.tflite")
    with pytest.raises(DemoError, match="not a TFLite model"):
        classify_image(images / "c0.jpg", images / "notes.jpg")
    for threads in (0, 5):
        with pytest.raises(DemoError, match="choose 1 to 4"):
            classify_image(images / "c0.jpg", models["int8"], threads=threads)


def test_the_verdict_marks_a_different_top1(models, images):
    f = images / "c0.jpg"
    float32, int8, shifted = (classify_image(f, models[k]) for k in ("float32", "int8", "shifted"))
    assert "Agree: both say tench" in verdict(float32, int8) and "disagree" not in verdict(float32, int8)
    marked = verdict(float32, shifted)
    assert 'class="message disagree"' in marked and "Top-1 differs" in marked
    assert "model_float32.tflite says tench" in marked and "shifted.tflite says English springer" in marked
    assert verdict(float32, None) == ""


def test_the_study_models_come_first_then_those_named(models, tmp_path):
    (tmp_path / "models").mkdir()
    for kind in ("float32", "int8"):
        shutil.copy(models[kind], tmp_path / "models" / f"model_{kind}.tflite")
    offered = offered_models([str(models["bare"]), str(tmp_path / "models" / "model_int8.tflite")], tmp_path)
    assert list(offered) == ["study float32 (models/model_float32.tflite)", "study int8 (models/model_int8.tflite)",
                             str(models["bare"])]  # the study's int8 named again is not offered twice
    assert offered_models([], None) == {}
    with pytest.raises(DemoError, match="nope.tflite: no such model file"):
        offered_models(["nope.tflite"], tmp_path)


def test_the_command_without_a_model_or_with_a_missing_one_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no repository here: no study models
    assert main(["demo"]) == 2 and main(["demo", "nope.tflite"]) == 2
    err = capsys.readouterr().err
    if gradio_installed():
        assert "no model to show" in err and "nope.tflite: no such model file" in err
    else:
        assert err.count("pip install -e '.[demo]'") == 2


def test_classifying_imports_neither_tensorflow_nor_gradio(models, images):
    code = ("import sys; from workbook.tools.demo import classify_image; "
            f"print(classify_image({str(images / 'c1.jpg')!r}, {str(models['int8'])!r}).top[0][0]); "
            "assert not {'tensorflow', 'gradio'} & set(sys.modules), 'imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0 and proc.stdout.strip() == "English springer", proc.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# the page, in a real browser


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    """`python -m workbook demo` on the float32, the shifted float32, the int8 and the bare model,
    outside any repository (so no study models), on a free port: its URL, read from its first line."""
    if not gradio_installed():
        pytest.skip("Gradio is not installed (pip install -e '.[demo]'); the page test needs it")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path_factory.mktemp("demo")
    stderr = (folder / "stderr.txt").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbook", "demo", *(str(models[k]) for k in ("float32", "shifted", "int8", "bare")),
         "--port", str(port)], cwd=folder, stdout=subprocess.PIPE, stderr=stderr, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    first = []
    reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(180)
    try:
        assert first and first[0], f"no line from the demo in 180 s:\n{(folder / 'stderr.txt').read_text()[-3000:]}"
        assert re.match(rf"workbook demo: http://127\.0\.0\.1:{port}/ ", first[0]), first[0]
        yield proc, f"http://127.0.0.1:{port}/", folder
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        stderr.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, offline, with Chromium's fake camera allowed."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed "
                                   "(pip install -e '.[dev]'); the page test needs it")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("no chromium on PATH (Debian's package; .ci/run installs it); the page test needs it")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"])
        yield launched
        launched.close()


@pytest.fixture
def page(server, browser):
    """The page in a new tab; `tab.asked` lists every address the page requests (its own server's
    included)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    tab = context.new_page()
    tab.asked = []
    context.on("request", lambda request: tab.asked.append(request.url))
    tab.goto(server[1])
    yield tab
    context.close()


def upload(page, file: Path) -> None:
    clear = page.locator("#upload button[aria-label=Clear]")
    if clear.count():
        clear.click()
    page.locator("#upload input[type=file]").set_input_files(str(file))


def text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text()


def wait_for(page, selector: str, words: str) -> str:
    page.wait_for_function("([s, w]) => document.querySelector(s)?.innerText.includes(w)", arg=[selector, words],
                           timeout=30_000)
    return text(page, selector)


def choose(page, dropdown: str, value: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.locator(f'{dropdown} li[role=option][aria-label="{value}"]').click()


def test_the_page_classifies_an_upload_and_marks_where_two_models_differ(page, models, images):
    upload(page, images / "c1.jpg")
    latency = wait_for(page, "#latency-one", " ms")
    expected = classify_image(images / "c1.jpg", models["float32"]).top[0][0]
    assert text(page, "#top-one [data-testid=label-output-value]") == expected == "English springer"
    assert float(re.search(r"([\d.]+) ms for this call", latency).group(1)) > 0
    assert "model_float32.tflite" in latency and "32x32 input" in latency
    assert page.locator("#seen-one img").count() == 1  # the image as the model sees it

    page.get_by_role("tab", name="Side by side").click()  # A: float32, B: the shifted names
    headline = wait_for(page, "#verdict", "Top-1 differs")
    assert "model_float32.tflite says English springer" in headline and "shifted.tflite says gas pump" in headline
    assert page.locator("#verdict .disagree").is_visible()
    assert text(page, "#top-b [data-testid=label-output-value]") == "gas pump"
    choose(page, "#model-b", str(models["int8"]))
    assert "Agree: both say English springer" in wait_for(page, "#verdict", "Agree")
    assert page.locator("#verdict .disagree").count() == 0
    assert re.search(r"[\d.]+ ms for this call \(\d threads?, 32x32 input, model_int8\.tflite\)",
                     wait_for(page, "#latency-b", "model_int8"))


def test_the_page_says_what_is_wrong_and_never_shows_a_traceback(page, models, images):
    choose(page, "#model", str(models["bare"]))
    upload(page, images / "c2.jpg")
    assert "classes by index" in wait_for(page, "#message-one", "by index")
    assert text(page, "#top-one [data-testid=label-output-value]") == "class 2"
    upload(page, images / "notes.jpg")
    assert "notes.jpg is not an image the model can take" in wait_for(page, "#message-one", "not an image")
    assert page.locator("#top-one [data-testid=label-output-value]").count() == 0
    assert "Traceback" not in page.content() and "Error" not in text(page, "body")


def test_the_webcam_picture_is_classified(page):
    page.get_by_role("tab", name="Webcam").click()
    page.get_by_role("button", name="Click to Access Webcam").click()
    page.wait_for_function("document.querySelector('video')?.readyState >= 2", timeout=30_000)
    page.get_by_role("button", name="capture photo").click()  # Chromium's fake camera: a green frame
    wait_for(page, "#latency-one", " ms")
    assert text(page, "#top-one [data-testid=label-output-value]") == "English springer"


def test_no_request_leaves_the_machine_and_nothing_offers_to_share(page, images, server):
    upload(page, images / "c0.jpg")
    wait_for(page, "#latency-one", " ms")
    page.get_by_role("tab", name="Webcam").click()
    assert page.asked and all(url.startswith(server[1]) for url in page.asked if not url.startswith(("data:", "blob:"))), \
        sorted({url for url in page.asked if not url.startswith(server[1])})
    assert page.get_by_role("button", name="Share").count() == 0


def test_the_server_listens_on_localhost_only_and_serves_no_file_of_its_folder(server):
    import urllib.error
    import urllib.request

    import psutil

    proc, url, folder = server
    listening = [c.laddr for c in psutil.Process(proc.pid).net_connections("inet") if c.status == "LISTEN"]
    assert listening and {a.ip for a in listening} == {"127.0.0.1"}, listening
    with pytest.raises(urllib.error.HTTPError, match="403"):  # Gradio's route for files
        urllib.request.urlopen(f"{url}gradio_api/file={folder / 'stderr.txt'}", timeout=30)
