# %% [markdown]
# # 6 · Control: a small CNN from scratch
#
# **What it does.** Trains a small convolutional network from random initialisation, with no
# ImageNet weights at all, on the same train images the study's models learn from
# (`data.train_per_class` of each class), shrunk to
# `control.image_size`, and scores it on the same val images. The gap between it and the
# pretrained models is what pretraining buys at this number of images; its val predictions go to
# the evaluate stage, which compares it with the fine-tuned model image by image (exact McNemar).
# The network: four conv 3x3 → BatchNorm → ReLU blocks (the first at stride 2, `control.width`
# channels doubling each block, max-pooling between them), global average pooling, a dense layer.
#
# **Reads** `data/prepared/`. **Writes** `models/control.keras`, `results/control.json`,
# `results/control_val.npy`, `dvclive/control/`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.analysis import plots
from workbook.pipeline.contract import start
from workbook.stages import control

stage = start("control", params)

# %% [markdown]
# ## The images
# The drawn train images and every val image, read from `data/prepared` and shrunk by area
# averaging to `control.image_size` pixels a side.

# %%
images = control.images(stage.P, stage.paths)
images.counts()

# %% [markdown]
# ## The network
# Random initialisation from `seed`; every weight is trained.

# %%
model = control.network(stage.P, len(images.classes))
model.summary()

# %% [markdown]
# ## Batches
# An epoch is as long at every `data.train_per_class`: each drawn image is taken `images.repeats`
# times (once with all of them), each time as it is or mirrored with probability 1/2, in an order
# drawn from (`seed`, epoch); val in order.

# %%
train, val = control.batches(stage.P, images)
images.repeats, len(train), len(val)

# %% [markdown]
# ## Training
# Adam from `control.lr`, decaying to 0 along a cosine over `control.epochs` epochs.

# %%
fitted = control.fit(stage.P, model, train, val, live_dir=stage.paths.live("control"))
plots.learning_curves(fitted.curves, "The control, from random initialisation");
fitted.curves.assign(seconds=fitted.epoch_seconds)

# %% [markdown]
# ## Score
# Every val image; the accuracy with its 95% Wilson interval.

# %%
result = control.score(stage.P, stage.paths, images, fitted, val)
result
