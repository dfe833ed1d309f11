"""Commands that are not stages: the bench and the arithmetic count it measures against, and the
demo page that tries a .tflite model as an app would."""
