"""Downloads against a local HTTP server on 127.0.0.1 only: atomic, verified, no partial files."""
from __future__ import annotations

import http.server
import socket
import threading

import pytest

from hypernet.tagger import download as tagger_download
from hypernet.tagger.download import KNOWN_TAGGERS, download_tagger, tagger_download_urls
from hypernet.tagger.errors import TaggerDownloadError
from hypernet.tagger.files import list_taggers

MODEL = bytes(range(256)) * 40  # 10 KiB
CSV = b"tag_id,name,category,count\n1,general,9,1\n"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        path = self.path
        if path.endswith("/missing/model.onnx") or "/nothere/" in path:
            self.send_error(404)
            return
        body = CSV if path.endswith(".csv") else MODEL
        if "/empty/" in path:
            body = b""
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if "/trunc/" in path and path.endswith(".onnx"):
            self.wfile.write(body[: len(body) // 3])  # then hang up mid-way
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def urls(base, kind):
    return {"model.onnx": f"{base}/{kind}/model.onnx", "selected_tags.csv": f"{base}/{kind}/selected_tags.csv"}


def test_known_table_and_endpoint(monkeypatch):
    assert "wd-v1-4-moat-tagger-v2" in KNOWN_TAGGERS and "wd-eva02-large-tagger-v3" in KNOWN_TAGGERS
    u = tagger_download_urls("wd-vit-tagger-v3")
    assert u["model.onnx"] == "https://huggingface.co/SmilingWolf/wd-vit-tagger-v3/resolve/main/model.onnx"
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert tagger_download_urls("wd-vit-tagger-v3")["selected_tags.csv"] == (
        "https://mirror.example/SmilingWolf/wd-vit-tagger-v3/resolve/main/selected_tags.csv"
    )
    with pytest.raises(ValueError, match="unknown tagger"):
        tagger_download_urls("not-a-tagger")


def test_download_known_tagger_via_endpoint_with_progress(server, tmp_path, monkeypatch):
    monkeypatch.setattr(tagger_download, "_CHUNK", 4096)
    events = []
    files = download_tagger("wd-vit-tagger-v3", tmp_path, endpoint=server,
                            progress=lambda name, done, total: events.append((name, done, total)))
    assert files.model_path.read_bytes() == MODEL and files.tags_path.read_bytes() == CSV
    assert files.model_path == tmp_path / "wd-vit-tagger-v3.onnx"
    assert list_taggers([tmp_path]) == ["wd-vit-tagger-v3"]
    model_events = [e for e in events if e[0] == "model.onnx"]
    assert model_events[0] == ("model.onnx", 0, len(MODEL)) and model_events[-1] == ("model.onnx", len(MODEL), len(MODEL))
    assert len(model_events) >= 4  # progress reported per chunk
    # already installed: nothing fetched again
    events.clear()
    download_tagger("wd-vit-tagger-v3", tmp_path, endpoint=server, progress=lambda *a: events.append(a))
    assert events == []


@pytest.mark.parametrize("kind", ["trunc", "empty", "missing"])
def test_failure_leaves_nothing_and_says_where_to_put_files(server, tmp_path, kind):
    with pytest.raises(TaggerDownloadError) as err:
        download_tagger("mytagger", tmp_path, urls=urls(server, kind))
    msg = str(err.value)
    assert str(tmp_path) in msg and "mytagger.onnx" in msg and "mytagger.csv" in msg
    assert "model.onnx" in msg and "selected_tags.csv" in msg
    assert list(tmp_path.iterdir()) == []  # not even the CSV that did arrive, no temp files


def test_failed_redownload_keeps_existing_files(server, tmp_path):
    (tmp_path / "t.onnx").write_bytes(b"old model")
    (tmp_path / "t.csv").write_bytes(b"old csv")
    with pytest.raises(TaggerDownloadError):
        download_tagger("t", tmp_path, urls=urls(server, "trunc"), overwrite=True)
    assert (tmp_path / "t.onnx").read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.onnx"]


def test_offline_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TaggerDownloadError) as err:
        download_tagger("wd-vit-tagger-v3", tmp_path / "models", endpoint=f"http://127.0.0.1:{port}", timeout=5)
    assert str(tmp_path / "models") in str(err.value)
    assert "SmilingWolf/wd-vit-tagger-v3" in str(err.value)  # where to get the files by hand
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_scheme_and_name_checks(server, tmp_path):
    with pytest.raises(ValueError, match="http"):
        download_tagger("t", tmp_path, urls={**urls(server, "x"), "model.onnx": "file:///etc/passwd"})
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="name"):
        download_tagger("../escape", tmp_path, urls=urls(server, "x"))
