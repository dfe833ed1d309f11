"""Multiply-adds of a Keras network: one weight times one input, summed in. Conv2D,
DepthwiseConv2D and Dense layers make them all (BatchNorm, activations, pooling and adds are a
few operations per value, left out). What the quantize stage reports of the model that ships,
and what the bench's floor counts (workbook.tools.arithmetic).
"""

from __future__ import annotations

import keras
import numpy as np


def layer_multiply_adds(layer: keras.layers.Layer) -> int:
    """Multiply-adds of `layer` for one sample, from its input and output shapes (0 for layers
    without a weight matrix; a weight matrix of a kind not counted here raises)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = layer.output.shape[1:]
        return int(np.prod(out)) * int(np.prod(layer.kernel_size))
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        out, fan_in = layer.output.shape[1:], layer.input.shape[-1] // layer.groups
        return int(np.prod(out)) * int(np.prod(layer.kernel_size)) * int(fan_in)
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(layer.input.shape[1:])) * layer.units
    if any(w.name.endswith("kernel") for w in layer.weights):
        raise ValueError(f"{layer.name}: a {type(layer).__name__} layer, whose multiply-adds are not counted")
    return 0


def weighted_layers(model: keras.Model) -> list[int]:
    """Multiply-adds of each weighted layer of `model` (nested models included), in graph order."""
    out = []
    for layer in model.layers:
        out += weighted_layers(layer) if isinstance(layer, keras.Model) else [layer_multiply_adds(layer)]
    return [m for m in out if m]


def forward(*models: keras.Model) -> int:
    """Multiply-adds of one sample through `models`, one after the other."""
    return sum(sum(weighted_layers(m)) for m in models)


