"""workbook.pipeline.quiet takes out the known native start-up lines, and nothing else."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from workbook.pipeline.quiet import quiet_notebook

# Captured from a papermill run (TensorFlow 2.21 with TF_ENABLE_ONEDNN_OPTS=1, ai-edge-litert 2.3).
ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = ("I0000 00:00:1795373954.928714   21909 port.cc:153] oneDNN custom operations are on. You may see "
          "slightly different numerical results due to floating-point round-off errors from different "
          "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")
XNNPACK = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
QUANTIZE = "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8\n"
WARNING = "/tmp/ipykernel_1/1.py:2: UserWarning: something that matters\n  warnings.warn('something that matters')\n"
ERROR = "E0000 00:00:1795374106.819769   22781 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"


def stderr(text):
    return new_output("stream", name="stderr", text=text)


def test_only_the_known_lines_go():
    nb = new_notebook(cells=[
        new_code_cell("import tensorflow", outputs=[stderr(ABSL + ONEDNN), stderr(ABSL + ONEDNN)]),
        new_code_cell("convert()", outputs=[stderr(WARNING), new_output("stream", name="stdout", text="42\n"),
                                            stderr(QUANTIZE + ERROR), stderr(XNNPACK)]),
        new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text=ABSL)]),
    ])
    assert quiet_notebook(nb) == 6
    assert nb.cells[0].outputs == []
    assert [o.get("text") for o in nb.cells[1].outputs] == [WARNING, "42\n", ERROR]
    assert nb.cells[2].outputs[0].text == ABSL  # stdout is never touched
    nbformat.validate(nb)


def test_a_line_forwarded_in_two_pieces_is_still_found():
    nb = new_notebook(cells=[new_code_cell("import tensorflow", outputs=[stderr(ABSL + ONEDNN[:40]),
                                                                         stderr(ONEDNN[40:] + WARNING)])])
    assert quiet_notebook(nb) == 2
    assert [o.text for o in nb.cells[0].outputs] == [WARNING]
