# %% [markdown]
# # 3 · Tune: the head's learning rate, searched by Keras Tuner
#
# **What it does.** Keras Tuner's random search draws `tune.trials` learning rates on a log scale
# between `tune.lr_min` and `tune.lr_max` and trains the head (Dense → Dropout → Dense on the
# pooled features) for `tune.epochs` epochs with each, on the cached pooled features of the drawn
# train images (`data.train_per_class`). Trials are scored on a stratified hold-out of
# `tune.holdout` of them: val, and the images outside the draw, stay unseen.
# The hold-out loss is the objective (accuracy on a few thousand images moves in steps of one
# image). The tuner's own seed is derived from `seed` by hashing, so that two seeds draw
# different candidate rates.
#
# Each step below leaves an object to look at; `workbook.stages.tune.run` takes the same steps in
# the same order.
#
# **Reads** `data/features/`, `data/prepared/`. **Writes** `results/tune.json` (the chosen rate,
# read by the train stage), `results/tune_trials.csv`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots
from workbook.pipeline.contract import start
from workbook.stages import tune

stage = start("tune", params)

# %% [markdown]
# ## The cached features and the hold-out
# The pooled features of every train image, split into the rows each trial trains on and the rows
# that score it, class by class (`tune.holdout` of each class held out, drawn from `seed`).

# %%
given = tune.inputs(stage.P, stage.paths)
batches = tune.holdout_batches(stage.P, given)
batches.train.n, batches.held.n

# %% [markdown]
# ## The search space
# Every trial starts from the same head, optimizer state and batch order; only the rate differs.

# %%
tuner = tune.tuner(stage.P, given, batches)
space = tune.space(tuner)
space

# %% [markdown]
# ## The trials
# Each rate trained for `tune.epochs` epochs and scored on the hold-out, by rate, before any choice.

# %%
trials = tune.run_trials(tuner, batches, stage.P.tune.epochs)
trials

# %% [markdown]
# ## The choice
# The trial with the lowest hold-out loss; its rate goes to `results/tune.json` for the train stage.

# %%
result = tune.save(stage.P, stage.paths, tune.choose(tuner, trials), batches)
result

# %%
plots.tuner_trials(result.table, result.best_lr);
result.table
