# %% [markdown]
# # 5 · Fine-tune: the top of the base, trained further
#
# **What it does.** Unfreezes the base's layers from `finetune.fine_tune_at` on (BatchNorm stays in
# inference mode: its moving statistics are kept, its scale and offset learn), and trains them
# with the head for `finetune.epochs` more epochs, starting at the head's rate × `finetune.lr_factor`
# and decaying to zero along a cosine (at a constant rate the fine-tuned model ended below the head
# it started from). From the cache this only runs the layers above the cut; the curves continue the
# head's epochs. The result is saved as one Keras model taking raw RGB pixels (0–255) and giving
# probabilities.
#
# Each step below leaves an object to look at; `workbook.stages.finetune.run` takes the same steps
# in the same order.
#
# **Reads** `models/head.keras`, `results/tune.json`, `dvclive/train/` (the head's curves),
# `data/features/`. **Writes** `models/finetuned.keras`, `models/model.keras` (the model that
# ships), `results/finetune.json`, `dvclive/finetune/`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots
from workbook.pipeline.contract import start
from workbook.stages import finetune

stage = start("finetune", params)

# %% [markdown]
# ## The head and the cached inputs
# The head the train stage saved, the rate the tuner chose for it, the pretrained base, and the
# feature cache: the tensors at the cut are all the unfrozen layers ever see of an image.

# %%
given = finetune.inputs(stage.P, stage.paths)
given

# %% [markdown]
# ## The base, unfrozen from `fine_tune_at` on
# `unfreeze` seeds every random generator from `seed`, then makes the base's layers from
# `finetune.fine_tune_at` on trainable, under the head. Every layer from there on, and what it trains:

# %%
unfrozen = finetune.unfreeze(stage.P, given.base, given.head)
unfrozen

# %%
unfrozen.layers()

# %% [markdown]
# ## The learning-rate schedule and one batch
# Each epoch takes every train image once, in an order drawn from (`seed`, epoch); with
# `train.augment: flip` each image is mirrored or not with even odds, both views read from the cache.

# %%
batches = finetune.batches(stage.P, given.data)
schedule = finetune.schedule(given.lr, stage.P.finetune.epochs, batches.train)
plots.rate_schedule(schedule, stage.P.finetune.epochs * len(batches.train), len(batches.train));

# %%
finetune.one_batch(batches.train)

# %% [markdown]
# ## The fit
# Validated on val after every epoch; DVCLive writes the curves to `dvclive/finetune/` as they come.

# %%
fitted = finetune.train(stage.P, unfrozen, batches, schedule, live_dir=stage.paths.live("finetune"))
fitted.curves

# %% [markdown]
# ## The fine-tuned model
# The trained weights back in one classifier from raw pixels to probabilities, the base frozen
# again: `models/finetuned.keras`.

# %%
model = finetune.deployable(stage.P, unfrozen, given.base, given.head)
model.summary()

# %% [markdown]
# ## The model that ships
# Scored on the train images held out of all training (the tuner's hold-out), never on val: the
# fine-tuned model ships unless it scores below the head it started from by more than
# `finetune.ship_margin`; then the head on the pretrained base ships. `models/model.keras` is the
# one that ships, and the quantize stage converts it.

# %%
shipped = finetune.ship(stage.P, stage.paths, given, model)
shipped

# %%
result = finetune.save(stage.P, stage.paths, given, model, fitted, shipped)
result

# %% [markdown]
# ## Learning curves, head training then fine-tuning

# %%
plots.learning_curves(result.curves, "Head training, then fine-tuning");
result.curves
