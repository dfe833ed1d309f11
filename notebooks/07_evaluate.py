# %% [markdown]
# # 7 · Evaluate: the fine-tuned model against the head, the baseline and the control
#
# **What it does.** Scores every val image with four models side by side: the **fine-tuned**
# model, the **head** trained on the frozen base (before fine-tuning), the **no-training
# baseline** (the pretrained ImageNet classifier with its 1000 outputs restricted to the N classes,
# where the classes are ImageNet wnids and `evaluate.baseline_weights` can be had), and the
# **control**, a small CNN trained **from scratch** on the same images: the gap to it is what
# pretraining buys. Every accuracy comes with its 95% Wilson score interval, and the fine-tuned
# model is compared with the others image by image (exact McNemar test). It says which model
# ships (the finetune stage chose it on train images held out of all training, never on val). Then: per-class precision / recall / F1, confusion
# matrices, the most confident mistakes, and accuracy on the val images that come from ImageNet's
# own val split (the others were seen in pretraining).
#
# Each step below leaves an object to look at; `workbook.stages.evaluate.run` takes the same steps
# in the same order.
#
# **Reads** `models/finetuned.keras`, `models/head.keras`, `data/features/`, `data/prepared/`,
# `results/control_val.npy`, `results/{train,finetune,control}.json`.
# **Writes** `results/evaluate.json`, `results/eval_per_class.csv`, `dvclive/evaluate/` (the
# confusion matrix for `dvc plots`).

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots, verdicts
from workbook.analysis.results import details
from workbook.pipeline.contract import start
from workbook.stages import evaluate

stage = start("evaluate", params)

# %% [markdown]
# ## The val images and the models

# %%
given = evaluate.inputs(stage.P, stage.paths)
given

# %% [markdown]
# ## Each model's predictions
# Class probabilities for every val image: the fine-tuned model and the head from the cached
# tensors, the baseline from the cached pooled features where its trunk is the cached base, the
# control as its stage saved them.

# %%
predictions = evaluate.predict(stage.P, given)
predictions.baseline_note

# %%
predictions.table()

# %% [markdown]
# ## The scores

# %%
result = evaluate.save(stage.P, stage.paths, given, predictions)
result

# %% [markdown]
# ## Against the baseline
# The target, and the image-by-image comparison behind it.

# %%
verdicts.baseline(details(result))

# %% [markdown]
# ## Against the control, and what each costs
# The fine-tuned model against the CNN from scratch, image by image, and each model's training
# time per epoch.

# %%
result.vs_control, result.seconds_per_epoch

# %% [markdown]
# ## Accuracy side by side
# "ImageNet-val images" are the val images named `ILSVRC2012_val_*`: ImageNet's own val split,
# never seen in pretraining. The rest of val are ImageNet *train* images.

# %%
plots.accuracies(result.comparison, "Val accuracy with 95% intervals");
result.comparison

# %% [markdown]
# ## Per class (fine-tuned model)
# The worst classes (lowest F1) first.

# %%
plots.per_class_f1(result.per_class);
result.per_class

# %% [markdown]
# ## Confusion matrices (fine-tuned model)
# Rows are the true classes. `dvc plots show` draws the same matrix from `dvclive/evaluate/`.
# With many classes the cells carry no numbers: the table below lists the largest confusions.

# %%
plots.confusion(result.confusion, result.names, "Confusion matrix (counts)", normalised=False);
plots.confusion(result.confusion_normalised, result.names, "Confusion matrix (each row sums to 1)", normalised=True);

# %% [markdown]
# The most frequent mistakes: which class was taken for which, and how often.

# %%
result.confused

# %% [markdown]
# ## The most confident mistakes
# The wrong predictions the fine-tuned model made with the highest confidence (none: no mistakes).

# %%
plots.mistakes(result.mistakes);
result.mistakes
