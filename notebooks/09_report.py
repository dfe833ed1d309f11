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

# %%
page = report.run(stage.paths)

# %% [markdown]
# ## Targets

# %%
for verdict in page.verdicts:
    display(verdict)

# %% [markdown]
# ## Headline numbers
# As on the page: one row per number; `key` names the results file and key it comes from.

# %%
with pd.option_context("display.max_colwidth", 120, "display.max_rows", 200):
    display(pd.DataFrame(page.rows()).set_index(["stage", "number"]))

# %% [markdown]
# ## What `dvc exp show` lists
# `metrics/study.json`: accuracies with the low and high ends of their 95% intervals, the int8
# model's agreement with float32, its size (MB) and latency at 2 threads (ms), and the study's wall
# time (s, the sum of the stage times below).

# %%
pd.Series(page.headline, name="metrics/study.json").to_frame()

# %% [markdown]
# ## Stages and their time
# The report stage's own time is written after this notebook ends, so it is not in the total.

# %%
pd.DataFrame([{"stage": f"{r.number} {r.stage}", "report": r.href or "missing", "wall time": r.wall.text,
               "notebook time": r.notebook.text} for r in page.stages]
             + [{"stage": "total", "report": "", "wall time": page.total_wall.text,
                 "notebook time": page.total_notebook.text}]).set_index("stage")
