"""A reproducible transfer-learning study: MobileNetV2 on a folder set, run by DVC through papermill.

Kept light on purpose: `python -m workbook run STAGE` checks params.yaml before a stage's notebook
starts, and `classify`/`inspect` run models, without importing TensorFlow. Import the modules you
need (workbook.stages.data, workbook.ml.network, ...).
"""

import os

# TensorFlow's C++ INFO and WARNING lines (the CPU-feature notice, converter chatter) would fill
# every report; errors still show. Takes effect when workbook is imported before TensorFlow. The
# few native lines it does not reach (the oneDNN notice among them) are for workbook.pipeline.quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
