# %% [markdown]
# # 9 · Report: the whole study on one page
#
# **What it does.** Gathers the numbers of stages 1 to 8 from their results files (read, never
# recomputed), judges them against the study's targets (the fine-tuned model beats the no-training
# baseline beyond chance; the int8 model stays within 0.5 points of the float32 one and agrees with
# it on at least 99% of val images: the same verdicts, in the same words, as the stage reports),
# and writes one self-contained page with an accuracy chart (95% intervals) and links to every
# stage's report. It also writes the study's headline numbers to `metrics/study.json`: the one
# metrics file DVC shows in `dvc exp show` and `python -m workbook compare` reads.
#
# **Reads** `results/*.json` and `results/timings/*.json` (stages 1 to 8), and which
# `reports/NN_stage.html` exist. **Writes** `reports/index.html`, `metrics/study.json`.

# %% tags=["parameters"]
params = None  # this stage's params from dvc.yaml, injected by `python -m workbook run`; None: read params.yaml

# %%
import pandas as pd
from IPython.display import display

from workbook.pipeline.contract import start
from workbook.stages import report

stage = start("report", params)
pd.set_option("display.max_colwidth", 120)
pd.set_option("display.max_rows", 200)

# %% [markdown]
# ## The numbers, read from the stages' results
# Nothing is computed here: every number comes from `results/*.json`, with the reason where one
# is missing.

# %%
page = report.build(stage.paths)
numbers = report.numbers(page)
numbers

# %% [markdown]
# ## Targets

# %%
for verdict in page.verdicts:
    display(verdict)

# %% [markdown]
# ## What `dvc exp show` lists
# `metrics/study.json`: accuracies with the low and high ends of their 95% intervals, the int8
# model's agreement with float32, its size (MB) and latency at 2 threads (ms), and the study's wall
# time (s, the sum of the stage times below).

# %%
headline = report.headline_table(page)
headline

# %% [markdown]
# ## Stages and their time
# The report stage's own time is written after this notebook ends, so it is not in the total.

# %%
report.stage_table(page)

# %% [markdown]
# ## The page
# `reports/index.html` (self-contained: it loads nothing from anywhere) and `metrics/study.json`.

# %%
index = report.write(stage.paths, page)
index
