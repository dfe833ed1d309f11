# %% [markdown]
# # 4 · Train: the head on the frozen base
#
# **What it does.** Trains the head (GlobalAveragePooling → Dense(`train.dense_units`, relu) →
# Dropout(`train.dropout`) → Dense(N classes)) for `train.epochs` epochs at the learning rate the
# tune stage chose, with the whole base frozen. With `train.augment` `none` or `flip` it trains on
# the cached pooled features (seconds); with `full` it runs every image through the whole network
# every epoch, with random flips and rotations (minutes). The learning curves go to DVCLive as
# they come (`dvc plots show`, or live in VS Code's DVC extension).
#
# **Reads** `results/tune.json`, `data/features/`, `data/prepared/`. **Writes** `models/head.keras`,
# `results/train.json`, `dvclive/train/`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots
from workbook.stages import train
from workbook.pipeline.contract import start

stage = start("train", params)

# %%
result = train.run(stage.P, stage.paths)
result

# %% [markdown]
# ## Learning curves

# %%
plots.learning_curves(result.curves, "Head training (base frozen)");
result.curves
