"""Where a .tflite model's time goes, op by op, and what the CPU offers int8 arithmetic.

LiteRT's Python API has no profiler, but the libLiteRt.so that ai-edge-litert ships exports
LiteRT's C API, profiler included (litert/c/litert_profiler.h); this drives it through ctypes
(the struct layouts are those of the pinned ai-edge-litert 2.3.0). The model runs as a LiteRT
CompiledModel on the CPU (XNNPACK), which reports each operator it runs ("Fully Connected (NC,
QS8, QC8W) GEMM", "Convolution (NHWC, QC8) DWConv", ...) and every op left on LiteRT's own kernels.
`profile` runs it in a child process: a fault in native code costs the table, not the stage.

Why it is in the quantize report: an int8 model is only faster than a float32 one where the CPU
has int8 dot-product instructions (VNNI, AMX, Arm's dot product); on an AVX2-only x86 CPU,
XNNPACK's int8 kernels do about the work of its float ones, and this table shows where.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

_OPERATOR, _DELEGATE_OPERATOR, _DELEGATE_PROFILED_OPERATOR = 2, 4, 8  # LiteRtProfilerEventType
_INVOKE = 1  # DEFAULT events: "Invoke" is one whole run
# The quantize report's profile: per model, ROUNDS interleaved profiles of RUNS single-image runs
# each, after WARMUP unprofiled ones.
RUNS, ROUNDS, WARMUP = 60, 2, 10


class _Event(ctypes.Structure):  # ProfiledEventData, litert/c/litert_profiler_event.h
    _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int), ("start_us", ctypes.c_uint64),
                ("elapsed_us", ctypes.c_uint64), ("begin_mem", ctypes.c_size_t * 3),
                ("end_mem", ctypes.c_size_t * 3), ("metadata1", ctypes.c_uint64),
                ("metadata2", ctypes.c_uint64), ("source", ctypes.c_int)]


def _litert():
    import ai_edge_litert

    lib = ctypes.CDLL(str(Path(ai_edge_litert.__file__).with_name("libLiteRt.so")))
    vp, P, size = ctypes.c_void_p, ctypes.POINTER, ctypes.c_size_t
    for name, args in {
        "LiteRtCreateEnvironment": [ctypes.c_int, vp, P(vp)],
        "LiteRtCreateModelFromFile": [vp, ctypes.c_char_p, P(vp)],
        "LiteRtCreateOptions": [P(vp)],
        "LiteRtSetOptionsHardwareAccelerators": [vp, ctypes.c_int],
        "LiteRtCreateOpaqueOptions": [ctypes.c_char_p, vp, vp, P(vp)],
        "LiteRtAddOpaqueOptions": [vp, vp],
        "LiteRtCreateCompiledModel": [vp, vp, vp, P(vp)],
        "LiteRtGetModelSignature": [vp, size, P(vp)],
        "LiteRtGetNumSignatureInputs": [vp, P(size)],
        "LiteRtGetNumSignatureOutputs": [vp, P(size)],
        "LiteRtGetSignatureInputTensorByIndex": [vp, size, P(vp)],
        "LiteRtGetSignatureOutputTensorByIndex": [vp, size, P(vp)],
        "LiteRtGetRankedTensorType": [vp, vp],
        "LiteRtGetCompiledModelInputBufferRequirements": [vp, size, size, P(vp)],
        "LiteRtGetCompiledModelOutputBufferRequirements": [vp, size, size, P(vp)],
        "LiteRtCreateManagedTensorBufferFromRequirements": [vp, vp, vp, P(vp)],
        "LiteRtRunCompiledModel": [vp, size, size, P(vp), size, P(vp)],
        "LiteRtCompiledModelGetProfiler": [vp, P(vp)],
        "LiteRtStartProfiler": [vp],
        "LiteRtStopProfiler": [vp],
        "LiteRtResetProfiler": [vp],
        "LiteRtGetNumProfilerEvents": [vp, P(ctypes.c_int)],
        "LiteRtGetProfilerEvents": [vp, ctypes.c_int, vp],
    }.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, ctypes.c_int
    for name in ("LiteRtDestroyCompiledModel", "LiteRtDestroyModel", "LiteRtDestroyOptions",
                 "LiteRtDestroyEnvironment", "LiteRtDestroyTensorBuffer"):
        getattr(lib, name).argtypes, getattr(lib, name).restype = [vp], None
    return lib


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"LiteRT C API: {what} returned status {status}")


def _profiled_events(path: str | Path, threads: int, runs: int, warmup: int) -> list[tuple[str, int, int, int]]:
    """(tag, event type, microseconds, op index) of every profiler event of `runs` runs."""
    lib, vp = _litert(), ctypes.c_void_p
    libc = ctypes.CDLL(None)
    libc.strdup.restype, libc.strdup.argtypes = vp, [ctypes.c_char_p]
    free = ctypes.cast(libc.free, vp)
    env, model, opts, cm, sig, prof = vp(), vp(), vp(), vp(), vp(), vp()
    buffers = []
    try:
        _check(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(env)), "CreateEnvironment")
        _check(lib.LiteRtCreateModelFromFile(env, str(path).encode(), ctypes.byref(model)), "CreateModelFromFile")
        _check(lib.LiteRtCreateOptions(ctypes.byref(opts)), "CreateOptions")
        _check(lib.LiteRtSetOptionsHardwareAccelerators(opts, 1), "SetOptionsHardwareAccelerators(CPU)")
        # Option groups are TOML strings under an identifier (litert/c/options/*.cc); the options
        # free them with free().
        for ident, toml in ((b"xnnpack", f"num_threads = {threads}\n"),
                            (b"runtime_options_string", "enable_profiling = true\n")):
            opaque = vp()
            _check(lib.LiteRtCreateOpaqueOptions(ident, libc.strdup(toml.encode()), free, ctypes.byref(opaque)),
                   "CreateOpaqueOptions")
            _check(lib.LiteRtAddOpaqueOptions(opts, opaque), "AddOpaqueOptions")
        _check(lib.LiteRtCreateCompiledModel(env, model, opts, ctypes.byref(cm)), "CreateCompiledModel")
        _check(lib.LiteRtGetModelSignature(model, 0, ctypes.byref(sig)), "GetModelSignature")
        io = []
        for is_input in (True, False):
            n = ctypes.c_size_t()
            count = lib.LiteRtGetNumSignatureInputs if is_input else lib.LiteRtGetNumSignatureOutputs
            _check(count(sig, ctypes.byref(n)), "GetNumSignatureInputs/Outputs")
            array = (vp * n.value)()
            for i in range(n.value):
                tensor, req, buf = vp(), vp(), vp()
                ttype = ctypes.create_string_buffer(512)  # LiteRtRankedTensorType, filled by LiteRT
                get = lib.LiteRtGetSignatureInputTensorByIndex if is_input else lib.LiteRtGetSignatureOutputTensorByIndex
                _check(get(sig, i, ctypes.byref(tensor)), "GetSignatureTensor")
                _check(lib.LiteRtGetRankedTensorType(tensor, ttype), "GetRankedTensorType")
                dims = (ctypes.c_int32 * 8).from_buffer(ttype, 8)  # {element type, rank bits, dims[8]}
                for d in range(8):
                    if dims[d] < 0:  # a dynamic (-1) batch in the signature: profile batch 1
                        dims[d] = 1
                reqs = (lib.LiteRtGetCompiledModelInputBufferRequirements if is_input
                        else lib.LiteRtGetCompiledModelOutputBufferRequirements)
                _check(reqs(cm, 0, i, ctypes.byref(req)), "GetBufferRequirements")
                _check(lib.LiteRtCreateManagedTensorBufferFromRequirements(env, ttype, req, ctypes.byref(buf)),
                       "CreateManagedTensorBuffer")
                array[i] = buf.value
                buffers.append(buf)
            io.append(array)
        inputs, outputs = io

        def run(k):
            for _ in range(k):  # input values are left as allocated: XNNPACK's time does not depend on them
                _check(lib.LiteRtRunCompiledModel(cm, 0, len(inputs), inputs, len(outputs), outputs), "Run")

        _check(lib.LiteRtCompiledModelGetProfiler(cm, ctypes.byref(prof)), "GetProfiler")
        run(warmup)
        _check(lib.LiteRtResetProfiler(prof), "ResetProfiler")
        _check(lib.LiteRtStartProfiler(prof), "StartProfiler")
        run(runs)
        _check(lib.LiteRtStopProfiler(prof), "StopProfiler")
        n = ctypes.c_int()
        _check(lib.LiteRtGetNumProfilerEvents(prof, ctypes.byref(n)), "GetNumProfilerEvents")
        events = (_Event * n.value)()
        _check(lib.LiteRtGetProfilerEvents(prof, n.value, events), "GetProfilerEvents")
        return [((e.tag or b"").decode(), e.event_type, int(e.elapsed_us), int(e.metadata1)) for e in events]
    finally:
        for buf in buffers:
            lib.LiteRtDestroyTensorBuffer(buf)
        if cm:
            lib.LiteRtDestroyCompiledModel(cm)  # also destroys its profiler
        if opts:
            lib.LiteRtDestroyOptions(opts)
        if model:
            lib.LiteRtDestroyModel(model)
        if env:
            lib.LiteRtDestroyEnvironment(env)


def op_type(op: str, delegated: bool) -> str:
    if not delegated:
        return f"{op} (LiteRT kernel)"
    if "DWConv" in op:
        return "depthwise conv"
    if "IGEMM" in op:
        return "stem conv 3x3"
    if op.startswith("Fully Connected"):
        return "1x1 conv / dense"
    return op.split(" (")[0]


MOBILENET_V2_BLOCKS = 17  # inverted-residual blocks, one depthwise convolution each, at every width


def _blocks(rows: list[dict]) -> list[str]:
    """The MobileNetV2 part of each op, from the op sequence alone: preprocess, stem, block_0 ..
    block_16 (expand 1x1, depthwise, project 1x1, residual add), Conv_1, head. Another network (one
    with another number of depthwise convolutions: the MobileNetV3s and EfficientNet add
    squeeze-and-excite convolutions this reading would misplace; InceptionV3 has none) is one part,
    "network"."""
    outside = lambda r: "I/O quantize + softmax" if r["op"] in ("QUANTIZE", "DEQUANTIZE", "SOFTMAX") else "other"
    last = sum(1 for r in rows if r["delegated"] and "DWConv" in r["op"]) - 1
    if last + 1 != MOBILENET_V2_BLOCKS:
        return ["network" if r["delegated"] else outside(r) for r in rows]
    out, dw, projected, conv1 = [], -1, False, False
    for r in rows:
        op = r["op"]
        if not r["delegated"]:
            out.append(outside(r))
        elif "IGEMM" in op and dw < 0:
            out.append("stem conv")
        elif "DWConv" in op:
            dw, projected = dw + 1, False
            out.append(f"block_{dw}")
        elif dw < 0:
            out.append("preprocess")
        elif op.startswith("Fully Connected") and not projected:
            projected = True
            out.append(f"block_{dw}")
        elif op.startswith("Fully Connected") and dw == last and not conv1:
            conv1 = True
            out.append("Conv_1")
        elif dw == last and conv1:
            out.append("head")
        elif op.startswith("Fully Connected"):
            out.append(f"block_{dw + 1}")
        else:
            out.append(f"block_{dw}")
    return out


def op_profile(path: str | Path, threads: int = 2, runs: int = RUNS, warmup: int = WARMUP) -> pd.DataFrame:
    """Median time of every op over `runs` profiled single-image runs, in execution order:
    columns order, op, delegated (False: ran on LiteRT's kernels, outside XNNPACK), type, block,
    median_us; attrs["invoke_median_us"] is the median whole run."""
    events = _profiled_events(path, threads, runs, warmup)
    times: dict = {}
    invokes = []
    for tag, kind, us, index in events:
        if kind in (_OPERATOR, _DELEGATE_OPERATOR, _DELEGATE_PROFILED_OPERATOR):
            times.setdefault((kind != _OPERATOR, index, tag.removeprefix("Delegate/")), []).append(us)
        elif kind == _INVOKE and tag == "Invoke":
            invokes.append(us)
    rows = [{"delegated": d, "index": i, "op": t, "median_us": float(np.median(v))} for (d, i, t), v in times.items()]
    # LiteRT nodes are numbered in the model's op order, XNNPACK ops in the delegate's; the
    # delegate sits where the first delegated op was, so: LiteRT nodes before it, XNNPACK ops, the rest.
    xnn = sorted((r for r in rows if r["delegated"]), key=lambda r: r["index"])
    lite = sorted((r for r in rows if not r["delegated"]), key=lambda r: r["index"])
    first = [r for r in lite if r["index"] == 0]
    rows = first + xnn + [r for r in lite if r["index"] != 0]
    for order, (r, block) in enumerate(zip(rows, _blocks(rows))):
        r.update(order=order, type="preprocess (Rescaling)" if block == "preprocess" else op_type(r["op"], r["delegated"]),
                 block=block)
    table = pd.DataFrame(rows, columns=["order", "op", "delegated", "type", "block", "median_us"])
    table.attrs["invoke_median_us"] = float(np.median(invokes)) if invokes else None
    return table


def op_summary(models: dict[str, str | Path], threads: int = 2, runs: int = RUNS, rounds: int = ROUNDS):
    """Per op type and per block: each model's microseconds (medians per op, summed; `rounds`
    interleaved profiles, the lowest kept per op so a burst of background load in one
    round does not count), the share of its total, and the ratio of the first model's time to
    each other's (> 1: faster than the first). Returns (by_type, by_block, per-op tables)."""
    tables: dict[str, list[pd.DataFrame]] = {name: [] for name in models}
    names = list(models)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            tables[name].append(op_profile(models[name], threads, runs))
    best = {}
    for name, ts in tables.items():
        t = ts[0].copy()
        t["median_us"] = np.min(np.stack([x["median_us"].to_numpy() for x in ts]), axis=0)
        best[name] = t
    out = []
    for key in ("type", "block"):
        frame = pd.concat({name: t.groupby(key, sort=False)["median_us"].sum() for name, t in best.items()},
                          axis=1).fillna(0.0)
        for name in names:
            frame[f"{name} share"] = frame[name] / frame[name].sum()
        for name in names[1:]:
            frame[f"{names[0]}/{name}"] = frame[names[0]] / frame[name].replace(0.0, np.nan)
        frame.loc["total"] = [frame[c].sum() if "/" not in c else np.nan for c in frame.columns]
        for name in names[1:]:
            frame.loc["total", f"{names[0]}/{name}"] = frame.loc["total", names[0]] / frame.loc["total", name]
        out.append(frame)
    return out[0], out[1], best


def cpu_int8_support(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """What this CPU offers XNNPACK's int8 kernels, from /proc/cpuinfo: the model name, and
    "int8_dot" = the widest int8 dot-product instruction set (x86: amx_int8, avx512_vnni,
    avx_vnni, or "none" for AVX2 alone, where int8 multiplies are widened to 16 bits and
    vpmaddwd does 16 multiply-adds per instruction against 8 for a float FMA; Arm: i8mm,
    asimddp). Without one, int8 is about as fast as float32 for MobileNetV2; with VNNI, twice
    as fast or more."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {"model": None, "int8_dot": None, "flags": []}
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and model is None:
            model = value.strip()
        elif key in ("flags", "features"):
            flags |= set(value.split())
    order = ["amx_int8", "avx512_vnni", "avx_vnni", "i8mm", "asimddp"]
    found = [f for f in order if f in flags]
    simd = [f for f in ("avx512f", "avx2", "fma", "asimd") if f in flags]
    return {"model": model, "int8_dot": found[0] if found else "none", "simd": simd,
            "flags": sorted(f for f in flags if f in set(order) | set(simd))}


def profile(models: dict[str, str | Path], threads: int = 2, timeout: int = 120) -> tuple[dict | None, str]:
    """op_summary of `models` in a child process: ({"type": DataFrame, "block": DataFrame}, "") or
    (None, why not)."""
    code = ("import json, sys; from workbook.ml.op_profile import op_summary; "
            "t, b, _ = op_summary(json.loads(sys.argv[1]), threads=int(sys.argv[2])); "
            "print(json.dumps({'type': t.reset_index().to_dict('list'), 'block': b.reset_index().to_dict('list')}))")
    try:
        proc = subprocess.run([sys.executable, "-c", code, json.dumps({k: str(v) for k, v in models.items()}),
                               str(threads)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, f"the profiler did not finish in {timeout} s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        return None, f"the profiler failed ({last})"
    tables = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: pd.DataFrame(v).set_index(v and next(iter(v))) for k, v in tables.items()}, ""
