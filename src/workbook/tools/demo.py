"""`python -m workbook demo [MODEL...]`: the models on a local web page (Gradio), run as an app runs them.

A model (the study's float32 and int8, any other named), a thread count and an image (upload, drop,
webcam) give the top-3 classes named by the model's metadata, the image as the model sees it (read
and resized as the data stage does) and the latency of that LiteRT call; "Side by side" marks where
two models' top-1 differ. classify_image() is all of that without Gradio: the page only lays it out.
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib.util
import io
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from workbook.ml.classify import class_names
from workbook.ml.decode import UnreadableImage, fit_square, load_rgb, to_array, to_rgb
from workbook.ml.litert import Classifier, ModelError
from workbook.ml.tflite_metadata import MetadataError
from workbook.pipeline.paths import Paths, find_root

HOST, THREADS, TOP_K = "127.0.0.1", (1, 2, 3, 4), 3
_LOCK = threading.Lock()  # one call at a time: interpreters are not thread-safe, and timings stay clean


class DemoError(Exception):
    """What the page shows instead of a result; the message says why."""


@dataclass(frozen=True)
class Seen:
    """One image through one model."""

    model: Path
    top: list[tuple[str, float]]  # (class name, score), best first
    image: Image.Image  # the model's input: RGB, image_size pixels a side
    latency_ms: float  # the call that gave these scores: pixels in, scores out
    threads: int
    names_from: str | None  # "the model's metadata", a labels file, or None: classes by index

    @property
    def note(self) -> str:
        """Where the names come from, if not from the model's metadata; empty if they do."""
        if self.names_from is None:
            return f"{self.model.name} carries no class names (no metadata, no labels.txt): classes by index."
        return "" if self.names_from == "the model's metadata" else \
            f"{self.model.name} has no class names in its metadata: names from {self.names_from}."


@functools.lru_cache(maxsize=16)
def _loaded(path: str, threads: int, stamp: tuple[int, int]) -> tuple[Classifier, list[str], str | None]:
    """An interpreter kept as an app keeps it, run once (memory planning); `stamp` reloads a changed file."""
    clf = Classifier(path, num_threads=threads)
    names, source = class_names(clf)
    clf.probabilities(np.zeros((1, clf.image_size, clf.image_size, 3), np.uint8), batch_size=1)
    return clf, names, source


def classify_image(image: str | Path | Image.Image | None, model: str | Path, threads: int = 2,
                   top_k: int = TOP_K) -> Seen:
    """Top-k classes of one image with one .tflite model; DemoError with the reason where it cannot."""
    if image is None:
        raise DemoError("No image yet: upload one, drop one here, or take one with the webcam.")
    if threads not in THREADS:
        raise DemoError(f"{threads} threads: choose 1 to {THREADS[-1]}.")
    path = Path(model)
    if not path.is_file():
        raise DemoError(f"{path}: no such model file")
    try:
        with _LOCK:
            stat = path.stat()
            clf, names, source = _loaded(str(path), threads, (stat.st_mtime_ns, stat.st_size))
            # A file as the data stage reads it; a picture (the webcam's) from the same steps on.
            seen = (fit_square(to_rgb(ImageOps.exif_transpose(image)), clf.image_size)
                    if isinstance(image, Image.Image) else load_rgb(image, clf.image_size).image)
            pixels = to_array([seen])
            start = time.perf_counter()
            scores = clf.probabilities(pixels, batch_size=1)[0]
            ms = 1000 * (time.perf_counter() - start)
    except UnreadableImage as e:
        name = "The picture" if isinstance(image, Image.Image) else Path(image).name
        raise DemoError(f"{name} is not an image the model can take: {e}.") from None
    except (ModelError, MetadataError) as e:  # a ModelError's message names the file
        raise DemoError(str(e) if isinstance(e, ModelError) else f"{path.name}: metadata: {e}") from None
    best = np.argsort(-scores, kind="stable")[:max(1, min(top_k, clf.classes))]
    return Seen(path, [(names[i], float(scores[i])) for i in best], seen, ms, threads, source)


def offered_models(named: list[str], root: Path | None) -> dict[str, Path]:
    """Menu label -> model: the study's float32 and int8 where they exist, then those named (which must)."""
    found = {}
    if root is not None:
        paths = Paths(root)
        for kind, path in (("float32", paths.tflite_float), ("int8", paths.tflite_int8)):
            if path.is_file():
                found[f"study {kind} ({path.relative_to(root)})"] = path
    for p in map(Path, named):
        if not p.is_file():
            raise DemoError(f"{p}: no such model file")
        if p.resolve() not in {q.resolve() for q in found.values()}:
            found[str(p)] = p
    return found


def verdict(a: Seen | None, b: Seen | None) -> str:
    """The side-by-side's headline, as HTML: agreement, or the two top-1 names where they differ."""
    if a is None or b is None:
        return ""
    (name_a, score_a), (name_b, score_b) = a.top[0], b.top[0]
    if name_a == name_b:
        return _box("agree", f"Agree: both say {name_a} ({score_a:.3f} and {score_b:.3f}).")
    return _box("disagree", f"⚠ Top-1 differs: {a.model.name} says {name_a} ({score_a:.3f}), "
                            f"{b.model.name} says {name_b} ({score_b:.3f}).")


# ---------------------------------------------------------------------------------------------
# the page (Gradio, imported only here)

CSS = """
.message { padding: 0.6em 0.8em; border-radius: 6px; }
.problem { background: #fde8e8; border: 2px solid #c81e1e; color: #771d1d; font-weight: 600; }
.note { background: #fdf6b2; border: 1px solid #c27803; color: #723b13; }
.agree { background: #def7ec; border: 2px solid #057a55; color: #014737; font-size: 1.1em; }
.disagree { background: #fde8e8; border: 3px solid #c81e1e; color: #771d1d; font-size: 1.3em; font-weight: 700; }
.seen img { image-rendering: pixelated; }
"""


def _box(kind: str, text: str) -> str:
    return f'<div class="message {kind}">{html.escape(text)}</div>' if text else ""


def _view(source, model: Path | None, threads) -> tuple[Seen | None, list]:
    """One model's results as the page shows them: message, image, scores, latency and scores in full."""
    try:
        if model is None:
            raise DemoError("Choose a model.")
        seen = classify_image(source, model, int(threads))
    except DemoError as e:
        return None, [_box("note" if source is None else "problem", str(e)), None, None, ""]
    except Exception as e:  # never a traceback on the page; the terminal gets it
        traceback.print_exc()
        return None, [_box("problem", f"Unexpected error: {type(e).__name__}: {e}"), None, None, ""]
    scores: dict[str, float] = {}
    for name, score in seen.top:  # gr.Label takes a dict: a name the metadata repeats keeps its rank
        scores[name if name not in scores else f"{name} (#{len(scores) + 1})"] = score
    text = (f"**{seen.latency_ms:.2f} ms** for this call ({seen.threads} thread{'s' * (seen.threads > 1)}, "
            f"{seen.image.width}x{seen.image.height} input, {seen.model.name})  \nscores: "
            + ", ".join(f"{html.escape(name)} {score:.4f}" for name, score in seen.top))
    return seen, [_box("note", seen.note), seen.image, scores, text]


def _results(gr, key: str, stacked: bool) -> list:
    message = gr.HTML(elem_id=f"message-{key}")
    with gr.Column() if stacked else gr.Row():
        seen = gr.Image(label="As the model sees it", type="pil", interactive=False, height=224,
                        elem_id=f"seen-{key}", elem_classes="seen", buttons=["fullscreen"])  # no sharing
        top = gr.Label(num_top_classes=TOP_K, label=f"Top {TOP_K}", elem_id=f"top-{key}")
    return [message, seen, top, gr.Markdown(elem_id=f"latency-{key}")]


def build_page(models: dict[str, Path], threads: int = 2):
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio's import: no telemetry, no version check
    import gradio as gr

    labels = list(models)
    pair = (labels * 2)[:2]  # the study's float32 and int8 where they exist: offered_models lists them first
    with gr.Blocks(title="workbook demo", analytics_enabled=False) as page:
        gr.Markdown("## Try the model as an app would\nLiteRT runs the `.tflite` here, one image per call, "
                    "as an app runs it; images are read and resized as the data stage does.")
        source = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                with gr.Tab("Upload"):
                    upload = gr.File(label="Image file (click or drop)", elem_id="upload")
                with gr.Tab("Webcam"):
                    webcam = gr.Image(sources=["webcam"], type="pil", label="Webcam",
                                      webcam_options=gr.WebcamOptions(mirror=False))
                count = gr.Slider(1, THREADS[-1], value=threads, step=1, label="Threads", elem_id="threads")
            with gr.Column(scale=3):
                with gr.Tab("One model"):
                    model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="model")
                    one = _results(gr, "one", stacked=False)
                with gr.Tab("Side by side"):
                    headline = gr.HTML(elem_id="verdict")
                    with gr.Row():
                        with gr.Column():
                            model_a = gr.Dropdown(labels, value=pair[0], label="Model A", elem_id="model-a")
                            side_a = _results(gr, "a", stacked=True)
                        with gr.Column():
                            model_b = gr.Dropdown(labels, value=pair[1], label="Model B", elem_id="model-b")
                            side_b = _results(gr, "b", stacked=True)

        def show(src, m, n, a, b):
            _, single = _view(src, models.get(m), n)
            (seen_a, left), (seen_b, right) = _view(src, models.get(a), n), _view(src, models.get(b), n)
            return [src, *single, verdict(seen_a, seen_b), *left, *right]

        outputs, controls = [source, *one, headline, *side_a, *side_b], [model, count, model_a, model_b]
        upload.change(show, [upload, *controls], outputs)  # the file's path, or None once cleared
        webcam.change(show, [webcam, *controls], outputs)
        for control in controls:
            control.change(show, [source, *controls], outputs)
    return page


def serve(models: dict[str, Path], port: int | None = None, threads: int = 2) -> None:
    """The page on 127.0.0.1, its address the first line printed, until Ctrl+C."""
    import gradio as gr

    page = build_page(models, threads)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],  # no Google Fonts
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    with contextlib.redirect_stdout(io.StringIO()):  # Gradio's own lines would come first
        # blocked_paths: nothing of the working folder (the repository) is served, whatever asks for it.
        page.launch(server_name=HOST, server_port=port, share=False, quiet=True, footer_links=[], theme=theme,
                    css=CSS, prevent_thread_lock=True, blocked_paths=[os.getcwd()])
    print(f"workbook demo: {page.local_url} (127.0.0.1 only; Ctrl+C stops it)", flush=True)
    print("models:", ", ".join(map(str, models.values())), flush=True)
    page.block_thread()


def run_demo(named: list[str], port: int | None = None) -> int:
    """The `demo` command. Exit status 2 without Gradio, a model to offer or a port to serve on."""
    spec, root = importlib.util.find_spec("gradio"), None
    with contextlib.suppress(FileNotFoundError):  # outside the repository: only the models named
        root = find_root()
    try:
        if spec is None or spec.origin is None:  # not installed (a folder named gradio is not it)
            raise DemoError("the demo needs Gradio, the extra `demo`: pip install -e '.[demo]'")
        models = offered_models(named, root)
        if not models:
            raise DemoError("no model to show: run the study (dvc repro) for models/model_float32.tflite "
                            "and model_int8.tflite, or name one: python -m workbook demo MODEL.tflite")
        serve(models, port, threads=min(THREADS[-1], os.cpu_count() or 1))
    except (DemoError, OSError) as e:  # OSError: the port is taken, or none is free
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
