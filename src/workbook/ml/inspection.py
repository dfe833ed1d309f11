"""`python -m workbook inspect MODEL`: a .tflite model's input and output, its metadata, and its
ops in execution order with the size of what each writes (the largest bounds the working memory a
device needs beside the weights). LiteRT only: no TensorFlow.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from workbook.ml.litert import ModelError, interpreter
from workbook.ml.tflite_metadata import MetadataError
from workbook.ml.tflite_metadata import read as read_metadata


@dataclass(frozen=True)
class Op:
    index: int
    name: str  # the builtin op, e.g. CONV_2D
    shape: tuple[int, ...]  # of its (first) output tensor
    dtype: str
    bytes: int  # of all its output tensors


def _plain_interpreter(model: str | Path):
    """The model's interpreter without LiteRT's default delegate (XNNPACK), which would fold
    the ops into one node."""
    from ai_edge_litert.interpreter import OpResolverType

    return interpreter(model, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def ops(model: str | Path, plain=None) -> list[Op]:
    """Every op of the model in execution order, with its output tensor's shape and size
    (`plain`: one of `_plain_interpreter(model)` already at hand)."""
    plain = plain or _plain_interpreter(model)
    tensors = {t["index"]: t for t in plain.get_tensor_details()}
    rows = []
    for op in plain._get_ops_details():  # experimental API: the only per-op view LiteRT gives
        outs = [tensors[i] for i in op["outputs"] if i in tensors]
        if not outs:
            continue
        size = sum(int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in outs)
        rows.append(Op(int(op["index"]), op["op_name"], tuple(int(d) for d in outs[0]["shape"]),
                       np.dtype(outs[0]["dtype"]).name, size))
    return rows


def largest_activation(table: list[Op]) -> Op:
    return max(table, key=lambda op: op.bytes)


def print_metadata(model: str | Path, out: TextIO) -> None:
    """The TFLite metadata apps read: name, version, description, normalisation, class names."""
    meta = read_metadata(model)
    if meta is None:
        print("metadata: none (no class names or normalisation inside the model)", file=out)
        return
    print(f"metadata: {meta.name!r}, version {meta.version}, min parser version {meta.min_parser_version}",
          file=out)
    print(f"  description: {meta.description}", file=out)
    if meta.normalization:
        mean, std = meta.normalization
        print(f"  input normalisation: (pixel - {mean}) / {std}", file=out)
    shown = ", ".join(meta.labels[:12]) + (f", ... ({len(meta.labels)} in all)" if len(meta.labels) > 12 else "")
    print(f"  class names ({len(meta.labels)}, embedded label file): {shown or 'none'}", file=out)


def print_inspection(model: str | Path, out: TextIO | None = None) -> None:
    """The model's input and output, its op table and its largest activation, as text."""
    out = out or sys.stdout
    plain = _plain_interpreter(model)
    table = ops(model, plain)
    print(f"{model}: {Path(model).stat().st_size:,} bytes, {len(table)} ops", file=out)
    tensors = [("input", t) for t in plain.get_input_details()]
    tensors += [("output", t) for t in plain.get_output_details()]
    for role, t in tensors:
        scale, zero_point = t["quantization"]
        quant = f", scale {scale:.6g}, zero point {zero_point}" if scale else ""
        print(f"{role}: {[int(d) for d in t['shape']]} {np.dtype(t['dtype']).name}{quant}", file=out)
    print_metadata(model, out)
    print(f"\n{'index':>5}  {'op':<24} {'output shape':<22} {'dtype':<8} {'output bytes':>12}", file=out)
    for op in table:
        print(f"{op.index:>5}  {op.name:<24} {str(list(op.shape)):<22} {op.dtype:<8} {op.bytes:>12,}", file=out)
    if table:
        big = largest_activation(table)
        print(f"\nlargest activation: op {big.index} {big.name}, {list(big.shape)} {big.dtype}, "
              f"{big.bytes:,} bytes", file=out)


def run_inspect(model: str | Path, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The `inspect` command. Exit status 2 for a model that cannot be used."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        print_inspection(model, out)
    except (ModelError, MetadataError) as e:
        print(f"error: {e}", file=err)
        return 2
    return 0
