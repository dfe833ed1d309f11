"""Commands that are not stages: the bench and the arithmetic count it measures against."""
