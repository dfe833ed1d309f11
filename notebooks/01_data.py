# %% [markdown]
# # 1 · Data: fetch, check, convert, resize
#
# **What it does.** Takes the raw image set named by `data.source` (an archive URL, a local
# `.tgz`/`.tar`/`.zip`, or a folder with `train/<class>/` and `val/<class>/`), verifies its
# checksum when one is known, extracts it to a temporary folder, and turns every readable image
# into an upright RGB square of `data.image_size` pixels (shorter side resized, centre crop).
# Grayscale, CMYK, palette and alpha images are converted; files that cannot be read are set
# aside with a reason, never dropped silently.
#
# **Reads** the `data` params, `data.dvc` (the pinned checksum of the default archive).
# **Writes** `data/prepared/` (each split's images packed in one array, `manifest.csv`,
# `skipped.csv`, `classes.txt`),
# `results/data.json`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
from IPython.display import display

from workbook.analysis import plots
from workbook.pipeline.contract import start
from workbook.stages import data

stage = start("data", params)

# %% [markdown]
# ## The folders found
# `data.source` checked against its checksum (archives), extracted to a temporary folder when it
# is an archive, and its class folders listed: the files in them, per class and split, and the
# files set aside before any is read (hidden files, files outside a class folder).

# %%
found = data.folders(stage.P, stage.paths)
found

# %%
display(found.classes())
found.set_aside()

# %% [markdown]
# ## The images, prepared
# Every file read, turned upright from its EXIF orientation, converted to RGB and resized to
# `data.image_size` (shorter side, centre crop) into `data/prepared/`, on every core; a file that
# cannot be read is set aside with the reason, never dropped silently.

# %%
prepared = data.images(stage.P, stage.paths, found)
prepared

# %% [markdown]
# ## Sample images (after conversion and resizing)
# Train images of every class, drawn at random (the same ones on every run).

# %%
plots.sample_grid(prepared.manifest, prepared.names, per_class=8);

# %% [markdown]
# ## The audit
# What was read, converted and turned, what was set aside and why, and where the val images
# come from (`results/data.json`).

# %%
result = data.save(stage.P, stage.paths, prepared)
result

# %% [markdown]
# ## Classes and counts

# %%
display(result.counts())
plots.class_counts(result.manifest, result.names);

# %% [markdown]
# ## Conversions
# Images that were not plain RGB, by original mode, and a few of them after conversion.

# %%
display(result.conversions())
plots.converted_samples(result.manifest, result.names, 8);

# %% [markdown]
# ## Original image sizes
# Width and height before resizing (after EXIF rotation).

# %%
display(result.sizes())
plots.size_histograms(result.manifest);

# %% [markdown]
# ## Files set aside
# Every file that is not a usable image, with the reason (also in `data/prepared/skipped.csv`).
# An empty table means every file in the class folders is a readable image.

# %%
result.skipped_files

# %% [markdown]
# ## Where the images come from
# Imagenette keeps ImageNet's file names: `n01440764_123.JPEG` is an image of ImageNet's
# *train* split, `ILSVRC2012_val_00000293.JPEG` one of its *val* split. ImageNet-pretrained
# weights were trained on the first kind, so on those images the pretrained network is not
# meeting new data; the evaluate stage reports accuracy on the ImageNet-val images separately
# for this reason. The counts are in the summary above.

# %%
result.provenance()
