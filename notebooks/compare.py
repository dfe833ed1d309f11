# %% [markdown]
# # Compare: the experiments of a sweep side by side
#
# **What it does.** Reads every DVC experiment of the repository that has headline numbers (what
# `dvc exp show` lists: experiments run from the queue or with `dvc exp run`, the baseline commit,
# and the workspace when it holds a result of its own) and compares them: the params that differ,
# every accuracy with its 95% Wilson score interval, runs that differ only in `seed` grouped
# (mean ± sd, min, max), and accuracy against the int8 model's latency and size with the Pareto
# front. A result that two rows share (the workspace after `dvc exp run`, an experiment that
# repeats the baseline) is shown once.
#
# **Reads** each experiment's `params.yaml` and `metrics/study.json`, through DVC.
# **Writes** nothing itself; `python -m workbook compare` runs it into `reports/compare.ipynb` and
# `reports/compare.html`. A sweep to compare: `dvc exp run --queue -S 'seed=1,2,3'`, then
# `dvc queue start`.

# %% tags=["parameters"]
repo = None  # the repository to read; None: the one around the working directory
commits = 1  # experiments based on the last `commits` commits (dvc exp show -n)

# %%
from IPython.display import display

from workbook.analysis import compare

c = compare.read(repo, commits)

# %% [markdown]
# ## Experiments
# One row per result, with the params whose values differ between them (params equal everywhere
# are left out). Accuracies are on the val images, in %, with their 95% interval:
# *fine-tuned* is the model after fine-tuning, *head only* the head trained on the frozen base,
# *no training* the ImageNet classifier restricted to the classes (n/a where it was skipped),
# *from scratch* the small CNN trained from random initialisation on the same train images (the
# control stage), *int8* the full-integer TFLite model of the model that ships. *int8 = float32* is the share of val images on which the int8 and
# float32 TFLite models pick the same class; *int8 MB* is its file size (10⁶ bytes), *int8 ms* its
# median time per image at 2 threads, *study s* the wall time of all stages. *front* marks the
# experiments that no other one beats on accuracy and on that cost at once.

# %%
display(compare.experiments_table(c))

# %% [markdown]
# Rows `dvc exp show` lists that are not compared, and why (queued, running or failed
# experiments, commits without `metrics/study.json`, repeats of a result shown above):

# %%
display(c.left_out.set_index("name"))

# %% [markdown]
# ## Seeds
# Experiments that differ only in `seed` form a group, one row per setting of the other params that
# differ. Each number reads *mean ± sd [min, max]* over the group's runs (sd with n − 1; a group of
# one run shows its value). The spread over seeds is what a change of setting has to beat; the
# intervals above only say how precisely one run's accuracy is measured on the val images.

# %%
display(compare.groups_table(c))

# %% [markdown]
# ## Backbones
# Where the experiments differ in `model.backbone`: each one's model that ships, by parameters,
# multiply-adds per image, file size as float32 and int8, and median latency per image at 1 to N
# threads (LiteRT, this machine) both ways, beside its accuracy and the share of val images on
# which int8 and float32 agree. An accuracy from `model.weights: none` (random initialisation)
# says nothing of the backbone's pretraining; its sizes and latencies hold all the same.

# %%
compare.backbone_table(c, repo)

# %% [markdown]
# ## Accuracy against the int8 model's cost
# Each dot is an experiment with its 95% interval, a colour per setting of the swept params. The
# dashed steps are the Pareto front, its experiments ringed (and named where there is room): every
# point below and to the right of the steps is beaten by one that is as accurate and as cheap or better.

# %%
compare.tradeoff_figure(c);

# %% [markdown]
# ## Accuracy against each swept param
# Runs are dots with their 95% intervals; where several runs differ only in `seed`, a diamond marks
# their mean and its bar spans their min to max.

# %%
compare.param_figure(c);

# %% [markdown]
# ## Accuracy against training-set size
# Where the experiments differ in `data.train_per_class`: val accuracy against the train images
# per class the models learned from (log axis; `all` is every train image, drawn right of the
# largest count), for the small CNN from scratch, the head on the
# frozen base and the fine-tuned model, each run with its 95% interval and the mean over seeds as
# a line. The dashed line is the no-training ImageNet classifier (its interval shaded), which no
# training set changes. The gap between the control and the others is what pretraining buys at
# each size; where the head is above the fine-tuned model, fine-tuning cost accuracy (the shipped
# model is chosen on a hold-out of those images alone: see each experiment's finetune report).

# %%
compare.size_figure(c);
