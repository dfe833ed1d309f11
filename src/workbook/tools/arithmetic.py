"""The study's arithmetic: the multiply-adds each stage makes, counted from the network and the
params, and the least time a CPU could make them in (`python -m workbook bench`'s floor).

A multiply-add is one weight times one input, summed in: Conv2D, DepthwiseConv2D and Dense layers
make them all (BatchNorm, activations, pooling and adds are a few operations per value, left
out). Training a layer costs three times its forward pass: the forward, the gradient of its
weights, the gradient of its input; the first trained layer needs no input gradient. The floor
is all of it at this CPU's float32 matrix-multiply rate (NumPy's BLAS on every core, the fastest
arithmetic the machine does), so no implementation of the same study can run faster; int8 work
counts as float32 work, as fast as XNNPACK's int8 kernels run on CPUs without int8 dot-product
instructions (see the quantize report). Decoding and resizing images (the data stage) is no
multiply-add: the floor leaves it out.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from workbook.ml.multiply_adds import forward, weighted_layers


def training(*models: keras.Model) -> int:
    """Multiply-adds of one training step's sample through `models`, all trained: forward, weight
    gradients, and input gradients for every weighted layer but the first."""
    layers = [m for model in models for m in weighted_layers(model)]
    return 2 * sum(layers) + sum(layers[1:])


def stage_multiply_adds(P, n_train: int, n_val: int, n_classes: int) -> dict[str, int]:
    """Multiply-adds of each stage of the study with params `P` on `n_train` + `n_val` images of
    `n_classes` classes: every pass the stage makes, as its code makes it."""
    from workbook.ml import latency, op_profile, scratch_cnn
    from workbook.ml.holdout import sizes
    from workbook.ml.network import build_base, build_head, split_base

    base = build_base(P.data.image_size, "none", alpha=P.model.alpha, backbone=P.model.backbone)  # shapes only
    split = split_base(base, P.finetune.fine_tune_at)
    head = build_head(n_classes, P.train.dense_units, P.train.dropout, P.seed, int(base.output.shape[-1]))
    full, trunk, top = forward(base), forward(split.trunk), forward(split.top)
    flip, pixels = P.train.augment == "flip", P.train.augment == "full"
    # what the models learn from: data.train_per_class of each class; the choices fit on part of it
    n_drawn, n_fit, n_held = sizes(n_train, P.data.train_per_class, n_classes, P.tune.holdout)
    control = scratch_cnn.build(n_classes, P.control.image_size, P.control.width, P.seed)
    classifier = full + forward(head)  # pixels -> class scores, as the TFLite models run it
    # head training: from cached pooled features, or (full) from pixels through the frozen base
    head_step, head_eval = (full + training(head), classifier) if pixels else (training(head), forward(head))
    # fine-tuning: from the cached cut, or (full) from pixels through the frozen trunk first
    finetune_step = (trunk if pixels else 0) + training(split.top, head)
    finetune_eval = classifier if pixels else top + forward(head)
    Q = P.quantize
    timed = len(latency.MODELS) * Q.max_threads * (Q.latency_runs + latency.WARMUP_RUNS)
    profiled = len(latency.MODELS) * op_profile.ROUNDS * (op_profile.RUNS + op_profile.WARMUP)
    scored = len(latency.MODELS) * n_val + min(Q.representative_samples, n_train) + n_classes
    return {
        "data": 0,
        "features": (n_train * (2 if flip else 1) + n_val) * full,
        "tune": P.tune.trials * P.tune.epochs * (n_fit * training(head) + n_held * forward(head)),
        # the head on every drawn image, and on the fit rows (the choice's)
        "train": P.train.epochs * ((n_drawn + n_fit) * head_step + 2 * n_val * head_eval),
        # the choice (fine-tuning on the fit rows, the head and the fine-tuned model over the
        # hold-out), then fine-tuning on every drawn image
        "finetune": P.finetune.epochs * ((n_fit + n_drawn) * finetune_step + 2 * n_val * finetune_eval)
                    + n_held * (2 * forward(head) + top),
        # an epoch is as long at every train_per_class: every train image
        "control": P.control.epochs * (n_train * training(control) + n_val * forward(control)),
        # the fine-tuned model from the cut, the head from the pooled features, the baseline's
        # ImageNet classifier on the pooled features (its trunk is the cache's), the N classes' outputs
        "evaluate": n_val * (top + 2 * forward(head) + int(base.output.shape[-1]) * n_classes),
        "quantize": (scored + timed + profiled) * classifier,
        "report": 0,
    }


def matmul_gflops(seconds: float = 2.0, n: int = 2048) -> float:
    """This CPU's float32 matrix-multiply rate, GFLOP/s (2 per multiply-add): NumPy's BLAS on
    every core, the best of repeated n x n products over about `seconds`."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a  # warm-up: threads started, pages touched
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ a
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best
