"""LiteRT: Keras models converted to .tflite, and the interpreter that runs them.

One module for both users of LiteRT: the feature cache (the frozen trunk as a float32 model, run
by XNNPACK on every core) and the quantize stage (the classifier as float32 and full-integer int8
models, scored and timed). Converting needs TensorFlow; running needs only LiteRT, so the
`classify` and `inspect` commands, which only run models, start in a second.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

INT8_IO = ("uint8", "int8")  # the integer input/output types a full-integer model can take


class ModelError(Exception):
    """A .tflite file that is missing or cannot serve as an image classifier; the message says why."""


# ---------------------------------------------------------------------------------------------
# converting (TensorFlow)


def _convert(converter) -> bytes:
    # Keras 3 exports the model first and prints its signature: noise in a report. The converter
    # also warns that integer inputs come without "statistics": those are the TF1 training-time
    # ranges (quantized_input_stats); here the representative dataset calibrates the input.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return converter.convert()


@contextlib.contextmanager
def saved_model(model):
    """`model` exported as an inference-only SavedModel: its call with training=False, traced
    once for its inputs, and its variables.

    TFLiteConverter.from_keras_model exports a Keras 3 model through Keras's ExportArchive
    first (TF 2.21), which also walks every layer's trackable children and traces the call five
    more times, twice the time of this export. The TFLite models are the same but for one
    internal tensor's name:
    the same ops, weights and quantization, every output identical on val.
    """
    import functools
    import tempfile

    import tensorflow as tf

    spec = [tf.TensorSpec(x.shape, dtype=x.dtype, name=x.name) for x in model.inputs]
    module = tf.Module()
    module.weights = [v.value for v in model.variables]  # tracked, so the SavedModel holds them
    module.serve = tf.function(functools.partial(model.__call__, training=False),
                               input_signature=[spec] if len(spec) > 1 else spec)
    with tempfile.TemporaryDirectory(prefix="workbook-export-") as directory:
        tf.saved_model.save(module, directory, signatures={"serving_default": module.serve})
        yield directory


def float_tflite(model) -> bytes:
    """A Keras model as a float32 .tflite."""
    import tensorflow as tf

    with saved_model(model) as saved:
        return _convert(tf.lite.TFLiteConverter.from_saved_model(saved))


def _int8(converter, calibration: Callable[[], Iterable[list[np.ndarray]]], io_dtype: str):
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = {"uint8": tf.uint8, "int8": tf.int8}[io_dtype]
    converter.representative_dataset = calibration
    return converter


def classifier_tflite(model, calibration: Callable[[], Iterable[list[np.ndarray]]], io_dtype: str) -> dict[str, bytes]:
    """The classifier as a float32 .tflite (the reference) and a full-integer int8 one with
    `io_dtype` input and output, from one export of it (the export is a third of each
    conversion's time). `calibration` yields the inputs that set the int8 activation ranges."""
    import tensorflow as tf

    with saved_model(model) as saved:
        return {"float32": _convert(tf.lite.TFLiteConverter.from_saved_model(saved)),
                "int8": _convert(_int8(tf.lite.TFLiteConverter.from_saved_model(saved), calibration, io_dtype))}


# ---------------------------------------------------------------------------------------------
# running (LiteRT only)


def interpreter(model: str | Path | bytes, **kwargs):
    """A LiteRT interpreter with its tensors allocated; ModelError when the model cannot be run."""
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(model, (bytes, bytearray)):
        source = {"model_content": bytes(model)}
    else:
        path = Path(model)
        if not path.is_file():
            raise ModelError(f"{path}: no such model file")
        source = {"model_path": str(path)}
    try:
        it = Interpreter(**source, **kwargs)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"{model if not source.get('model_content') else 'model'}: "
                         f"not a TFLite model LiteRT can run ({e})") from None
    return it


class Runner:
    """A model's default signature as a function of numpy arrays, outputs in the model's order."""

    def __init__(self, model: bytes, threads: int | None = None):
        self.run = interpreter(model, num_threads=threads or os.cpu_count() or 1).get_signature_runner()
        self.input = next(iter(self.run.get_input_details()))
        # Keras names the outputs output_0, output_1, ... in the model's order
        self.outputs = sorted(self.run.get_output_details(), key=lambda n: int(n.rsplit("_", 1)[1]))

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        out = self.run(**{self.input: np.ascontiguousarray(batch, dtype=np.float32)})
        return [out[name] for name in self.outputs]


class Classifier:
    """A .tflite classifier: pixels (0..255, N x S x S x 3) in, class probabilities out.

    Integer models are fed and read in their own types: the pixels are quantized with the input
    tensor's scale and zero point, the outputs dequantized with the output tensor's.
    """

    def __init__(self, model: str | Path, num_threads: int | None = None):
        self.path = Path(model)
        self.interpreter = interpreter(self.path, num_threads=num_threads or os.cpu_count() or 1)
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
