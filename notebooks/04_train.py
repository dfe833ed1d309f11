# %% [markdown]
# # 4 · Train: the head on the frozen base
#
# **What it does.** Trains the head (GlobalAveragePooling → Dense(`train.dense_units`, relu) →
# Dropout(`train.dropout`) → Dense(N classes)) for `train.epochs` epochs at the learning rate the
# tune stage chose, with the whole base frozen, on the drawn train images (`data.train_per_class`
# of each class). With `train.augment` `none` or `flip` it trains on the cached pooled features
# (seconds); with `full` it runs every image through the whole network every epoch, with random
# flips and rotations (minutes). The learning curves go to DVCLive as they come (`dvc plots show`,
# or live in VS Code's DVC extension). Then the same head on the drawn images outside the
# hold-out, for the finetune stage's choice of the model that ships.
#
# Each step below leaves an object to look at; `workbook.stages.train.run` takes the same steps in
# the same order.
#
# **Reads** `results/tune.json`, `data/features/`, `data/prepared/`. **Writes** `models/head.keras`,
# `models/selection_head.keras`, `results/train.json`, `dvclive/train/`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots
from workbook.pipeline.contract import start
from workbook.stages import train

stage = start("train", params)

# %% [markdown]
# ## The rate and the cached features
# The rate the tune stage chose, and the feature cache: the pooled output of the frozen base for
# every image, all the head ever sees of one (with `train.augment: full`, the base itself).

# %%
given = train.inputs(stage.P, stage.paths)
given

# %% [markdown]
# ## The head, before training
# `initial_head` seeds every random generator from `seed`, then builds the head with its initial
# weights (drawn from `seed` too).

# %%
initial = train.initial_head(stage.P, given.data, given.base)
initial

# %%
initial.head.summary()

# %% [markdown]
# ## One batch
# Each epoch takes every train image once, in an order drawn from (`seed`, epoch); with
# `train.augment: flip` each image is mirrored or not with even odds, both views read from the cache.

# %%
batches = train.batches(stage.P, given.data)
train.one_batch(batches.train)

# %% [markdown]
# ## The fit
# Validated on val after every epoch; DVCLive writes the curves to `dvclive/train/` as they come.

# %%
fitted = train.train(stage.P, initial, batches, given.lr, live_dir=stage.paths.live("train"))
fitted.curves

# %% [markdown]
# ## The head for the choice
# The same head, trained the same way on the drawn images outside the hold-out only
# (`models/selection_head.keras`): the finetune stage fine-tunes it on the same images and scores
# both on the hold-out to choose the model that ships.

# %%
selection = train.selection_head(stage.P, stage.paths, given)
selection.curves

# %% [markdown]
# ## The saved head
# `models/head.keras`, trained on every drawn image, which the finetune stage starts from.

# %%
result = train.save(stage.P, stage.paths, given, fitted, selection)
result

# %% [markdown]
# ## Learning curves

# %%
plots.learning_curves(result.curves, "Head training (base frozen)");
