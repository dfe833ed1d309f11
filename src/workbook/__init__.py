"""A reproducible transfer-learning study: MobileNetV2 on a folder set, run by DVC through papermill.

Kept light on purpose: `python -m workbook check` runs before every stage and must not import
TensorFlow. Import the modules you need (workbook.data, workbook.model, ...).
"""

import os

# TensorFlow's C++ INFO and WARNING lines (oneDNN notices, converter chatter) would fill every
# report; errors still show. Takes effect when workbook is imported before TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
