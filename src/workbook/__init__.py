"""A reproducible transfer-learning study: an ImageNet backbone on a folder set, run by DVC through papermill.

Kept light on purpose: `python -m workbook run STAGE` checks params.yaml before a stage's notebook
starts, and `classify`/`inspect` run models, without importing TensorFlow. Import the modules you
need (workbook.stages.data, workbook.ml.network, ...).
"""

import os

# TensorFlow's C++ INFO and WARNING lines (the CPU-feature notice, converter chatter) would fill
# the terminal of every run; errors still show. Takes effect when workbook is imported before
# TensorFlow. Native lines never reach a notebook's cells either way (workbook.pipeline.kernel).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
