"""A stage notebook in JupyterLab, as a researcher opens it: double-clicked in the file browser it
opens as a notebook on this environment's Python kernel, with no kernel dialog, unmodified once the
kernel is up; saved as it is, not a byte of it changes. JupyterLab reads the set-up that every
`python -m workbook run` writes into the environment (workbook.pipeline.kernel.configure_jupyter),
here into a folder of the test's, named by JUPYTER_CONFIG_PATH."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from test_report import browser  # noqa: F401  (a fixture)

from workbook.pipeline import kernel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(repo_module, tmp_path_factory):
    """JupyterLab on the repository copy, with the workbook's set-up and nothing of the user's."""
    prefix = tmp_path_factory.mktemp("prefix")
    assert kernel.configure_jupyter(prefix)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**repo_module.env(), "JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter"),
           "JUPYTER_CONFIG_DIR": str(tmp_path_factory.mktemp("user-config"))}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
                             f"--port={port}", "--IdentityProvider.token=", "--ServerApp.password=",
                             f"--ServerApp.root_dir={repo_module.root}",
                             f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('workspaces')}",
                             f"--LabApp.user_settings_dir={tmp_path_factory.mktemp('settings')}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=5)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "JupyterLab did not start"
            time.sleep(1)
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="module")
def repo_module(tmp_path_factory):
    from conftest import copy_repo

    return copy_repo(tmp_path_factory.mktemp("lab") / "repo")


def test_a_stage_notebook_opens_on_its_kernel_unmodified_and_saves_unchanged(lab, repo_module, browser):  # noqa: F811
    notebook = repo_module.root / "notebooks" / "05_finetune.py"
    before = notebook.read_bytes()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    try:
        page.goto(f"{lab}/lab/tree/notebooks")
        page.locator(".jp-DirListing-item").filter(has_text="05_finetune.py").first.dblclick(timeout=60_000)
        page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
        deadline = time.monotonic() + 120
        sessions = []
        while not any(s["kernel"]["execution_state"] == "idle" for s in sessions):
            assert time.monotonic() < deadline, f"no idle kernel: {sessions}"
            assert page.locator(".jp-Dialog").count() == 0, page.locator(".jp-Dialog").all_inner_texts()
            time.sleep(1)
            sessions = json.loads(urllib.request.urlopen(f"{lab}/api/sessions").read())
        assert [(s["path"], s["kernel"]["name"]) for s in sessions] == [("notebooks/05_finetune.py", "python3")]
        page.wait_for_timeout(3000)  # the kernel's language reaches the notebook
        assert page.locator(".jp-Dialog").count() == 0, "no kernel to choose"
        assert page.locator(".lm-TabBar-tab.jp-mod-dirty").count() == 0, "not modified by opening"
        page.keyboard.press("Control+s")
        page.wait_for_timeout(3000)
    finally:
        page.close()
    assert notebook.read_bytes() == before
    assert repo_module.run("git", "status", "--porcelain").stdout == ""
