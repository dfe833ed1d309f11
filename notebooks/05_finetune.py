# %% [markdown]
# # 5 · Fine-tune: the top of the base, trained further
#
# **What it does.** Unfreezes the base's layers from `finetune.fine_tune_at` on (BatchNorm stays in
# inference mode: its moving statistics are kept, its scale and offset learn), and trains them
# with the head for `finetune.epochs` more epochs, starting at the head's rate × `finetune.lr_factor`
# and decaying to zero along a cosine (a constant rate overfits: see the docstring of
# `workbook.ml.fine_tuning.fine_tune` for what was measured). From the cache this only runs the layers
# above the cut; the curves continue the head's epochs. The result is saved as one Keras model
# taking raw RGB pixels (0–255) and giving probabilities.
#
# **Reads** `models/head.keras`, `results/tune.json`, `dvclive/train/` (the head's curves),
# `data/features/`. **Writes** `models/model.keras`, `results/finetune.json`, `dvclive/finetune/`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.stages import finetune
from workbook.analysis import plots
from workbook.pipeline.contract import start

stage = start("finetune", params)

# %%
result = finetune.run(stage.P, stage.paths)
result

# %% [markdown]
# ## Learning curves, head training then fine-tuning

# %%
plots.learning_curves(result.curves, "Head training, then fine-tuning");
result.curves
