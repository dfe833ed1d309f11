# %% [markdown]
# # 5 · Fine-tune: the top of the base, trained further, and the model that ships
#
# **What it does.** First the choice: the head the train stage trained on the drawn images outside
# the hold-out is fine-tuned on the same images, and both are scored on the hold-out (drawn train
# images, never val): fine-tuning is chosen unless it scores below the head by more than
# `finetune.ship_margin`. Then, as model selection with refit does, fine-tuning on every drawn
# image: the base's layers from `finetune.fine_tune_at` on are unfrozen (BatchNorm stays in
# inference mode: its moving statistics are kept, its scale and offset learn) and trained with
# the head for `finetune.epochs` more epochs, starting at the head's rate × `finetune.lr_factor`
# and decaying to zero along a cosine (at a constant rate the fine-tuned model ended below the
# head it started from). From the cache this only runs the layers above the cut; the curves
# continue the head's epochs. The result is saved as one Keras model taking raw RGB pixels
# (0–255) and giving probabilities; the chosen one of it and the head ships.
#
# Each step below leaves an object to look at; `workbook.stages.finetune.run` takes the same steps
# in the same order.
#
# **Reads** `models/head.keras`, `models/selection_head.keras`, `results/tune.json`,
# `dvclive/train/` (the head's curves), `data/features/`. **Writes** `models/finetuned.keras`,
# `models/model.keras` (the model that ships), `results/finetune.json`, `dvclive/finetune/`.

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
# ## The choice, on the hold-out
# The selection head (trained on the drawn images outside the hold-out) against the same head
# fine-tuned on those images, both scored on the hold-out; the recipe chosen is the one that ships
# once trained on every drawn image.

# %%
selection = finetune.choose(stage.P, stage.paths, given)
selection

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
# The recipe the hold-out chose, trained on every drawn image: this fine-tuned model, or the head
# on the pretrained base. `models/model.keras` is the one that ships, and the quantize stage
# converts it.

# %%
shipped = finetune.ship(stage.P, stage.paths, selection, model)
shipped

# %%
result = finetune.save(stage.P, stage.paths, given, model, fitted, selection, shipped)
result

# %% [markdown]
# ## Learning curves, head training then fine-tuning

# %%
plots.learning_curves(result.curves, "Head training, then fine-tuning");
result.curves
