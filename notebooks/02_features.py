# %% [markdown]
# # 2 · Features: the frozen trunk, computed once per image
#
# **What it does.** With the base frozen below `finetune.fine_tune_at` and BatchNorm in inference
# mode, everything below that index is a fixed function of the image. This stage runs that part
# of the backbone once over every prepared image and stores its outputs: the tensors where frozen
# layers feed trainable ones (the *cut*), and the pooled output of the pretrained base. Every
# later stage (each tuner trial, head training, fine-tuning, evaluation) starts from these files
# instead of the pixels. With `train.augment: flip` the mirrored train images are cached too.
# The frozen network runs through LiteRT (XNNPACK kernels, every core), with outputs within 1e-5
# of TensorFlow's; `tests/test_model.py` holds the cache to the logits computed from pixels.
#
# **Reads** `data/prepared/`, the weights named by `model.weights`. **Writes** `data/features/`,
# `results/features.json`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from workbook.pipeline.contract import start
from workbook.stages import features

stage = start("features", params)

# %% [markdown]
# ## The base and the cut
# The pretrained base, cut at `finetune.fine_tune_at`: the layers below it whose outputs feed
# layers at or above it. These tensors are all the fine-tuned part of the network ever needs to
# see of an image.

# %%
cut = features.cut(stage.P, stage.paths)
cut

# %%
cut.tensors()

# %% [markdown]
# ## The trunk, once over every image
# Below the cut, through LiteRT, in batches of `features.batch_size`; written to `data/features/`
# whole or not at all.

# %%
computed = features.compute(stage.P, stage.paths, cut)
computed.cache.meta["sets"]

# %% [markdown]
# ## The cache's arrays
# One memory-mapped `.npy` per set and tensor: later stages read the rows a batch needs.

# %%
features.arrays(computed.cache)

# %%
result = features.save(stage.P, stage.paths, cut, computed)
result
