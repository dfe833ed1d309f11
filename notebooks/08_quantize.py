# %% [markdown]
# # 8 · Quantize: a full-integer int8 TFLite model, checked against float32
#
# **What it does.** Converts the classifier that ships (`models/model.keras`, the finetune stage's
# choice) to two TFLite models: a **float32** one, the reference, and a **full-integer int8** one (weights, activations, input and output all integer),
# whose activation ranges are calibrated on a reproducible sample of train images. Both carry
# TFLite metadata inside (the class names as a label file, the input's normalisation), so an app
# that loads them through MediaPipe Tasks or LiteRT's support library names the classes itself.
# Both run with LiteRT over **every val image**: accuracy with its 95% interval, top-1 agreement
# between the two, per-class changes and the int8 confusion matrix. Then file sizes, latency per
# image at 1 to `quantize.max_threads` threads, and the int8 model's ops, read from the `.tflite`.
#
# Each step below leaves an object to look at; `workbook.stages.quantize.run` takes the same steps
# in the same order.
#
# **Reads** `models/model.keras`, `data/prepared/`.
# **Writes** `models/model_float32.tflite`, `models/model_int8.tflite`, `models/labels.txt`,
# `results/quantize.json`, `results/quantize_per_class.csv`.
#
# Try the result on any image: `python -m workbook classify models/model_int8.tflite PATH...`;
# `python -m workbook inspect models/model_int8.tflite` prints its metadata and the op table below.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots, verdicts
from workbook.analysis.results import details
from workbook.pipeline.contract import start
from workbook.stages import quantize

stage = start("quantize", params)

# %% [markdown]
# ## The converter's settings
# The classifier goes through TFLite's converter twice, from one export: as it is, and
# full-integer, its activation ranges set by a sample of train images drawn from `seed`.

# %%
conversion = quantize.converter(stage.P, stage.paths)
conversion.settings()

# %% [markdown]
# ## Both models, as interpreters
# Written with their metadata (the class names inside); the uint8 input must take raw pixels
# (scale 1, zero point 0), as MediaPipe and most apps feed it.

# %%
models = quantize.convert(stage.P, stage.paths, conversion)
quantize.interpreters(models)

# %% [markdown]
# ## Every val image through both

# %%
result = quantize.save(stage.P, stage.paths, conversion, models)
result

# %% [markdown]
# ## The targets

# %%
verdicts.int8_accuracy(details(result))

# %%
verdicts.agreement(details(result))

# %% [markdown]
# ## Latency per image
# One image at a time (batch 1), `num_threads` set on the interpreter; median and 90th percentile
# of `quantize.latency_runs` timed runs after a warm-up. Only the model's own run is timed.
# `background_cores` is the CPU other processes used meanwhile (0: the machine was otherwise idle;
# timings taken on a busy machine are slower, multi-threaded ones most).

# %%
plots.latency(result.latency_table);
result.latency_table.pivot(index="threads", columns="model", values=["median_ms", "p90_ms", "background_cores"])

# %% [markdown]
# ## What limits int8 here
# Where each model's time goes, op by op (LiteRT's profiler, 2 threads, one image; the lowest of
# two interleaved rounds of 60 runs per op). `float32/int8` above 1 means int8 is faster. An int8
# model beats a float32 one by much only on CPUs with int8 dot-product instructions (x86's VNNI
# or AMX, Arm's dot product): the verdict below names what this CPU has.

# %%
verdicts.int8_speed(details(result))

# %%
result.op_types if result.op_types is not None else result.profile_note

# %%
result.op_blocks if result.op_blocks is not None else result.profile_note

# %% [markdown]
# ## Per class
# `change` is int8 minus float32 accuracy on the class's val images; `disagreements` counts the
# class's images the two models label differently (right or wrong). The classes int8 hurts most
# come first.

# %%
plots.per_class(result.per_class.assign(change=100 * result.per_class.change), "change",
                "Per-class accuracy change, int8 minus float32", xlabel="points");
result.per_class

# %%
plots.confusion(result.confusion, result.names, "int8 model, val (counts)", normalised=False);

# %% [markdown]
# ## The int8 model, op by op
# Read from the `.tflite` itself: every op in execution order with the size of what it writes.
# The largest activation bounds the working memory a device needs beside the weights.

# %%
result.op_table.groupby("name").agg(ops=("index", "size"), largest_output_bytes=("bytes", "max")).sort_values("ops", ascending=False)

# %% [markdown]
# ## The model on a few val images
# One val image per class through the int8 model, with the names read from its metadata.

# %%
result.samples
