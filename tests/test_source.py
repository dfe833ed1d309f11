"""Where the images come from (workbook.pipeline.source, dvc.yaml's download stage): the archive
data.dvc records is fetched once, only while it is missing, and verified; offline, `dvc repro`
stops before any work with one line saying what to run; online or offline, `dvc status` after a
run says everything is up to date, and a second `dvc repro` runs nothing."""

from __future__ import annotations

import hashlib
import http.server
import socket
import tarfile
import threading
from functools import partial

import pytest
import yaml
from conftest import make_folder_set, tiny_params

from workbook.pipeline import source
from workbook.pipeline.params import Pin


class _Counting(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; the first `failures` downloads fail (503); every request is counted."""

    failures = 0
    requests: list[str] = []

    def do_GET(self):
        _Counting.requests.append(f"GET {self.path}")
        if _Counting.failures > 0:
            _Counting.failures -= 1
            self.send_error(503)
            return
        super().do_GET()

    def do_HEAD(self):
        _Counting.requests.append(f"HEAD {self.path}")
        super().do_HEAD()

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    _Counting.failures, _Counting.requests = 0, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Counting, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def closed_port_url() -> str:
    """An http URL on this machine that refuses connections at once (nothing listens there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/imagenette2-160.tgz"


def pin(url: str, content: bytes, name: str = "a.tgz") -> Pin:
    return Pin(url, f"data/download/{name}", "md5:" + hashlib.md5(content).hexdigest())


def record(repo, url: str, md5: str, path: str = "data/download/imagenette2-160.tgz") -> None:
    """data.dvc pointing at `url`, as a user would record another archive."""
    data_dvc = repo.root / "data.dvc"
    meta = yaml.safe_load(data_dvc.read_text())
    meta["meta"] = {"url": url, "md5": md5, "path": path}
    data_dvc.write_text(yaml.safe_dump(meta, sort_keys=False))


def test_the_download_retries_verifies_and_is_not_repeated(tmp_path, server, monkeypatch):
    monkeypatch.setattr(source.time, "sleep", lambda s: None)
    www, url = server
    (www / "a.tgz").write_bytes(b"archive bytes")
    fetched = source.download(pin(f"{url}/a.tgz", b"archive bytes"), tmp_path)
    assert fetched == tmp_path / "data" / "download" / "a.tgz" and fetched.read_bytes() == b"archive bytes"
    (www / "a.tgz").unlink()
    asked = len(_Counting.requests)
    assert source.download(pin(f"{url}/a.tgz", b"archive bytes"), tmp_path) == fetched
    assert len(_Counting.requests) == asked, "a downloaded archive needs no network"


def test_a_failed_download_is_retried_and_one_that_fails_its_checksum_is_never_kept(tmp_path, server, monkeypatch):
    monkeypatch.setattr(source.time, "sleep", lambda s: None)
    www, url = server
    (www / "a.tgz").write_bytes(b"archive bytes")
    _Counting.failures = 1  # the first download fails
    assert source.download(pin(f"{url}/a.tgz", b"archive bytes"), tmp_path / "one").read_bytes() == b"archive bytes"
    (www / "b.tgz").write_bytes(b"tampered")
    with pytest.raises(source.SourceError, match="could not download"):
        source.download(pin(f"{url}/b.tgz", b"the real one", "b.tgz"), tmp_path / "two")
    assert list((tmp_path / "two" / "data" / "download").iterdir()) == []


def test_offline_the_download_stops_before_any_work_with_one_line(repo_copy, tmp_path):
    params = tiny_params(tmp_path / "unused")
    params["data"]["source"] = "data/download/imagenette2-160.tgz"
    repo_copy.write_params(params)
    record(repo_copy, closed_port_url(), "0" * 32)
    proc = repo_copy.dvc("repro", check=False, timeout=300)
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1, proc.stderr
    assert "data.source" in ours[0] and "cannot be reached" in ours[0]
    assert "dvc exp run -S data.source=" in ours[0]
    assert "Running stage 'data'" not in proc.stdout
    for written in ("data/prepared", "results", "reports/01_data.html"):
        assert not (repo_copy.root / written).exists(), written


def test_a_url_as_data_source_is_refused_with_what_to_do(repo_copy, tmp_path):
    params = tiny_params(tmp_path / "unused")
    params["data"]["source"] = "https://example.org/images.tgz"
    repo_copy.write_params(params)
    proc = repo_copy.run("python", "-m", "workbook", "run", "data", check=False)
    assert proc.returncode == 2
    assert "data.source = 'https://example.org/images.tgz': a URL" in proc.stderr and "data.dvc" in proc.stderr


@pytest.mark.slow
def test_online_the_archive_is_fetched_once_and_dvc_says_up_to_date(repo_copy, tmp_path, server):
    """The default source on a fresh clone, against a local HTTP server: `dvc repro` fetches it,
    `dvc status` is clean, a second `dvc repro` runs no stage and asks the server nothing."""
    www, url = server
    archive = www / "images.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(make_folder_set(tmp_path / "images", corrupt=False), arcname="images")
    params = tiny_params(tmp_path / "unused")
    params["data"]["source"] = "data/download/images.tgz"
    repo_copy.write_params(params)
    record(repo_copy, f"{url}/images.tgz", hashlib.md5(archive.read_bytes()).hexdigest(), "data/download/images.tgz")
    repo_copy.run("git", "commit", "-qam", "an archive on a local server")
    first = repo_copy.dvc("repro", timeout=900).stdout
    assert "Running stage 'download'" in first and "Running stage 'report'" in first
    assert [r for r in _Counting.requests if r.startswith("GET")] == ["GET /images.tgz"]
    asked = len(_Counting.requests)
    assert repo_copy.dvc("status").stdout.strip() == "Data and pipelines are up to date."
    again = repo_copy.dvc("repro").stdout
    assert "Running stage" not in again
    assert len(_Counting.requests) == asked, "neither status nor a second repro reaches the URL"
