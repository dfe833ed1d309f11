"""The study's targets for the int8 model against the float32 one, on the same val images.

One place for the quantize report and the index page (which must stay light: no TensorFlow,
no scikit-learn) to judge them by.
"""

INT8_MAX_GAP_POINTS = 0.5
INT8_MIN_AGREEMENT = 0.99


def within_gap(gap_points: float) -> bool:
    """int8 accuracy within INT8_MAX_GAP_POINTS of float32's; the tolerance absorbs float
    rounding at the edge (0.895 - 0.9 is -0.5000000000000004 points)."""
    return abs(gap_points) <= INT8_MAX_GAP_POINTS + 1e-9


def agrees_enough(agreement: float) -> bool:
    return agreement >= INT8_MIN_AGREEMENT
