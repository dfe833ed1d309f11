# %% [markdown]
# # 3 · Tune: the head's learning rate, searched by Keras Tuner
#
# **What it does.** Keras Tuner's random search draws `tune.trials` learning rates on a log scale
# between `tune.lr_min` and `tune.lr_max` and trains the head (Dense → Dropout → Dense on the
# pooled features) for `tune.epochs` epochs with each, on the cached pooled features. Trials are
# scored on a stratified hold-out of `tune.holdout` of *train*: val stays unseen until evaluation.
# The hold-out loss is the objective (accuracy on a few thousand images moves in steps of one
# image). The tuner's own seed is derived from `seed` by hashing, so that two seeds draw
# different candidate rates.
#
# **Reads** `data/features/`, `data/prepared/`. **Writes** `results/tune.json` (the chosen rate,
# read by the train stage), `results/tune_trials.csv`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots
from workbook.stages import tune
from workbook.pipeline.contract import start

stage = start("tune", params)

# %%
result = tune.run(stage.P, stage.paths)
result

# %% [markdown]
# ## Every trial

# %%
plots.tuner_trials(result.table, result.best_lr);
result.table
