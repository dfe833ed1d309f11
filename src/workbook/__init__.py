"""A reproducible transfer-learning study: MobileNetV2 on a folder set, run by DVC through papermill.

Kept light on purpose: `python -m workbook check` runs before every stage and must not import
TensorFlow. Import the modules you need (workbook.data, workbook.model, ...).
"""

__version__ = "0.1.0"
