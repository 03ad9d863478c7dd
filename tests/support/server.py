"""Start the real ComfyUI host server on loopback and talk to it as users' scripts do.

Standard library + websocket-client only; nothing here imports ComfyUI.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import websocket

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_NODES_DIR = Path(__file__).resolve().parent / "hn_test_nodes"
PACK_LINK_NAME = "comfyui-hypernetwork"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SHADOW_OWN_FOLDERS = {"models", "input", "output", "temp", "user", "custom_nodes"}


def make_shadow_host(host: Path, shadow: Path) -> Path:
    """A private view of the host: its code linked, its data folders fresh and empty.

    ComfyUI derives `models/`, `output/` etc. from the real path of its own top-level modules, so
    the top-level `.py` files are copied (small) and every code folder is symlinked. Whatever the
    tests or the demo write stays in `shadow`, never in the host the user owns.
    """
    shadow.mkdir(parents=True, exist_ok=True)
    for entry in host.iterdir():
        target = shadow / entry.name
        if entry.name in SHADOW_OWN_FOLDERS or entry.name == "extra_model_paths.yaml" or target.exists():
            continue
        if entry.is_file() and entry.suffix == ".py":
            shutil.copy2(entry, target)
        else:
            target.symlink_to(entry.resolve(), target_is_directory=entry.is_dir())
    for name in SHADOW_OWN_FOLDERS:
        (shadow / name).mkdir(exist_ok=True)
    return shadow


@dataclass
class ServerLayout:
    """The folders one server uses: a shadow of the host (fresh models, input, output) and the
    custom nodes it loads (the pack and the test-only node package)."""

    root: Path

    @property
    def host(self) -> Path:
        return self.root / "host"

    @property
    def models(self) -> Path:
        return self.host / "models"

    @property
    def hypernetworks(self) -> Path:
        return self.models / "hypernetworks"

    @property
    def checkpoints(self) -> Path:
        return self.models / "checkpoints"

    @property
    def taggers(self) -> Path:
        return self.models / "wd14_tagger"

    @property
    def input(self) -> Path:
        return self.host / "input"

    @property
    def output(self) -> Path:
        return self.host / "output"

    @property
    def temp(self) -> Path:
        return self.host / "temp"

    @property
    def custom_nodes(self) -> Path:
        return self.root / "custom_nodes"

    def create(self, host: Path) -> Path:
        make_shadow_host(host, self.host)
        for folder in (self.hypernetworks, self.checkpoints, self.taggers, self.custom_nodes):
            folder.mkdir(parents=True, exist_ok=True)
        # The shadow's own custom_nodes stay empty: only the pack and the test nodes load, even when
        # the pack is installed in the host (whose other custom nodes are left out of the tests).
        link = self.custom_nodes / PACK_LINK_NAME
        if not link.exists():
            link.symlink_to(REPO_ROOT, target_is_directory=True)
        test_link = self.custom_nodes / "hn_test_nodes"
        if not test_link.exists():
            test_link.symlink_to(TEST_NODES_DIR, target_is_directory=True)
        config = self.root / "extra_model_paths.yaml"
        config.write_text("hn_test:\n" f"  base_path: {self.root}\n" "  custom_nodes: custom_nodes\n")
        return config


class PromptError(RuntimeError):
    """The server refused a prompt or its execution failed; `.payload` holds the server's answer."""

    def __init__(self, message: str, payload: dict):
        super().__init__(message)
        self.payload = payload


@dataclass
class PromptResult:
    prompt_id: str
    outputs: dict
    events: list = field(default_factory=list)
    status: dict = field(default_factory=dict)

    def custom_events(self, prefix: str = "hypernetwork.") -> list[dict]:
        return [e for e in self.events if e.get("type", "").startswith(prefix)]


class ComfyServer:
    """One host server process for a test session."""

    def __init__(self, host: Path, python: str, layout: ServerLayout, port: int | None = None):
        self.host = host
        self.python = python
        self.layout = layout
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = layout.root / "server.log"
        self.client_id = uuid.uuid4().hex

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        config = self.layout.create(self.host)
        cmd = [self.python, "main.py", "--cpu", "--use-pytorch-cross-attention", "--listen", "127.0.0.1",
               "--port", str(self.port), "--extra-model-paths-config", str(config),
               "--output-directory", str(self.layout.output), "--input-directory", str(self.layout.input),
               "--disable-auto-launch"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(cmd, cwd=self.layout.host, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                self.get_json("/object_info/KSampler", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self, tail: int = 20000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ HTTP

    def request(self, path: str, data: dict | None = None, timeout: float = 30) -> tuple[int, bytes]:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get_json(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def interrupt(self) -> None:
        self.request("/interrupt", {})

    # ------------------------------------------------------------------ prompts

    def queue(self, graph: dict) -> str:
        status, body = self.request("/prompt", {"prompt": graph, "client_id": self.client_id})
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            payload = {"raw": body.decode(errors="replace")}
        if status != 200:
            raise PromptError(f"POST /prompt answered {status}: {json.dumps(payload)[:3000]}", payload)
        return payload["prompt_id"]

    def run(self, graph: dict, timeout: float = 600, on_event=None) -> PromptResult:
        """Queue `graph`, follow its websocket events until it finishes, return its outputs.

        Raises PromptError when the prompt is refused or its execution fails (the error payload
        names the node and the exception).
        """
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/ws?clientId={self.client_id}",
                                         timeout=timeout)
        events: list[dict] = []
        try:
            prompt_id = self.queue(graph)
            deadline = time.monotonic() + timeout
            error = None
            while time.monotonic() < deadline:
                ws.settimeout(max(1.0, deadline - time.monotonic()))
                message = ws.recv()
                if not isinstance(message, str):
                    continue  # binary preview frames
                event = json.loads(message)
                events.append(event)
                if on_event is not None:
                    on_event(event)
                data = event.get("data", {})
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                kind = event.get("type")
                if kind == "execution_error":
                    error = data
                elif kind == "execution_interrupted":
                    break
                elif kind == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                    break
            else:
                raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")
        finally:
            ws.close()
        history = self.get_json(f"/history/{prompt_id}").get(prompt_id, {})
        result = PromptResult(prompt_id, history.get("outputs", {}), events, history.get("status", {}))
        if error is not None:
            raise PromptError(f"node {error.get('node_type')} ({error.get('node_id')}) failed: "
                              f"{error.get('exception_type')}: {error.get('exception_message')}", error)
        return result


def python_for_tests() -> str:
    return os.environ.get("HN_PYTHON") or sys.executable
