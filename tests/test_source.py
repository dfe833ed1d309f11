"""data.source as the data stage's dependency (workbook.pipeline.source): an unreachable URL stops
`dvc repro` before any work with one line saying what to run; a local folder reruns the data
stage only when its files change."""

from __future__ import annotations

import json
import socket

import pytest
from conftest import REPO, make_folder_set, tiny_params

from workbook.pipeline import source


def closed_port_url() -> str:
    """An http URL on this machine that refuses connections at once (nothing listens there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/imagenette2-160.tgz"


def test_dvc_repro_with_an_unreachable_source_stops_with_one_line_and_writes_nothing(repo_copy, tmp_path):
    params = tiny_params(tmp_path / "unused")
    params["data"]["source"] = closed_port_url()
    repo_copy.write_params(params)
    proc = repo_copy.dvc("repro", check=False, timeout=300)
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1, proc.stderr
    assert "data.source" in ours[0] and "cannot be reached" in ours[0]
    assert "dvc exp run -S data.source=" in ours[0]
    for written in ("data/source.json", "data/prepared", "data/raw", "results", "reports/01_data.html"):
        assert not (repo_copy.root / written).exists(), written


def test_a_downloaded_pinned_archive_needs_no_network(tmp_path):
    pin = source.read_pin(REPO / "data.dvc")
    (tmp_path / "data.dvc").write_text((REPO / "data.dvc").read_text())
    (tmp_path / pin.path).parent.mkdir(parents=True)
    (tmp_path / pin.path).write_bytes(b"the archive")
    assert source.fingerprint(pin.url, None, tmp_path) == {"source": pin.url, "checksum": pin.checksum}


def test_a_local_folder_changes_its_fingerprint_when_a_file_is_added(tmp_path):
    images = make_folder_set(tmp_path / "images")
    before = source.fingerprint(str(images), None, tmp_path)
    assert source.fingerprint(str(images), None, tmp_path) == before
    (images / "train" / "ant" / "extra.png").write_bytes((images / "val" / "ant").iterdir().__next__().read_bytes())
    assert source.fingerprint(str(images), None, tmp_path)["files"] != before["files"]


def test_a_missing_local_source_names_the_param(tmp_path):
    with pytest.raises(source.SourceError, match=r"data.source: no such file or folder"):
        source.fingerprint(str(tmp_path / "nothing.tgz"), None, tmp_path)


def test_the_source_command_writes_the_fingerprint(repo_copy, tmp_path):
    images = make_folder_set(tmp_path / "images")
    repo_copy.write_params(tiny_params(images))
    repo_copy.run("python", "-m", "workbook", "source")
    written = json.loads((repo_copy.root / "data" / "source.json").read_text())
    assert written == source.fingerprint(str(images), None, repo_copy.root)
