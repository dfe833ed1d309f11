"""Known lines of native chatter, taken out of an executed notebook's stderr outputs.

The Jupyter kernel forwards whatever native code writes to file descriptor 2 into the running
cell's output. TF_CPP_MIN_LOG_LEVEL=2 (workbook/__init__.py, runner.KERNEL_ENV) stops TensorFlow's
own INFO and WARNING lines; these four it does not reach, and no setting silences them without
changing what is computed (TensorFlow 2.21, ai-edge-litert 2.3):

- `WARNING: All log messages before absl::InitializeLog() is called are written to STDERR`:
  absl's preface to the first line logged by each library that carries its own absl.
- `I... port.cc:153] oneDNN custom operations are on. ...`: logged while libtensorflow_framework.so.2
  and _pywrap_profiler_plugin.so load (so twice), on CPUs where oneDNN is on by default (AVX-512
  VNNI or BF16, AVX-VNNI, AMX). Only TF_ENABLE_ONEDNN_OPTS=0 stops it, by switching oneDNN off.
- `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`: LiteRT's own logger, at the first
  interpreter of a process.
- `fully_quantize: 0, inference_type: 6, ...`: printed by TensorFlow's converter at every
  full-integer conversion.

Only whole lines that match are taken; Python warnings, errors and every other line stay.
"""

from __future__ import annotations

import re

NOISE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\. .*"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."
    r"|fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+"
    r")\n?",
    re.M,
)


def strip_noise(text: str) -> str:
    """`text` without the known lines."""
    return NOISE.sub("", text)


def quiet_notebook(nb) -> int:
    """Remove the known lines from every stderr output of `nb` (an nbformat notebook), in place;
    returns how many went. Adjacent stderr outputs of a cell are joined first, so that a line
    the kernel forwarded in two pieces is still found; an output left empty is dropped."""
    removed = 0
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            if _stderr(out) and outputs and _stderr(outputs[-1]):
                outputs[-1]["text"] += out["text"]
            else:
                outputs.append(out)
        for out in outputs:
            if _stderr(out):
                removed += len(NOISE.findall(out["text"]))
                out["text"] = strip_noise(out["text"])
        if "outputs" in cell:
            cell["outputs"] = [o for o in outputs if not (_stderr(o) and not o["text"])]
    return removed


def _stderr(out) -> bool:
    return out.get("output_type") == "stream" and out.get("name") == "stderr"
