"""The pack's frontend in the pinned host's real UI, driven in headless Chromium over the DevTools
protocol (the `websocket-client` package only; no selenium, no node.js).

Skipped with the reason when no Chromium is installed (Debian: `apt-get install -y chromium`; or
point HN_CHROMIUM at a Chrome/Chromium binary); under CI (env CI=true) a missing Chromium fails
them instead, so a CI run can never pass without the browser tests. Each example workflow is loaded into the page with
`app.loadGraphData`, with the stock CheckpointLoaderSimple swapped for the test-only tiny model
loader (`workflows.ui_with_tiny_loader`) and sizes/steps cut to tiny values, then queued from the
page as a user's click would. Screenshots go to test-artifacts/browser/; with
HN_UPDATE_SCREENSHOTS=1 the run also rewrites docs/*.png and the workflow thumbnails.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import websocket
from PIL import Image

from tests.support import fake_tagger
from tests.support import workflows as wf
from tests.support.datasets import make_shapes_dataset
from tests.support.server import PACK_LINK_NAME, REPO_ROOT

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
DOCS = REPO_ROOT / "docs"
UPDATE_SCREENSHOTS = os.environ.get("HN_UPDATE_SCREENSHOTS") == "1"
EXTENSIONS = ["hypernetwork.lossChart", "hypernetwork.trainStatus", "hypernetwork.trainPreview",
              "hypernetwork.trainRestore", "hypernetwork.applyInfo", "hypernetwork.seedDefaults",
              "hypernetwork.trainLayout"]
# TrainHypernetwork's widget layouts before the options nodes (web/trainLayout.js migrates both)
LEGACY_TRAIN_LAYOUT_43 = [
    "hypernetwork_name", "template", "learning_rate", "steps", "batch_size", "grad_accumulation_steps", "seed",
    "control_after_generate", "save_every", "resume", "clip_grad_mode", "clip_grad_value", "shuffle_tags",
    "tag_dropout", "latent_sampling", "preview_every", "preview_prompt", "preview_negative", "preview_seed",
    "preview_steps", "preview_cfg", "preview_sampler", "adamw_weight_decay", "adamw_beta1", "adamw_beta2",
    "adamw_eps", "training_dtype", "gradient_checkpointing", "clip_skip", "loss_type", "scheduler",
    "cosine_cycle_steps", "cosine_cycle_mult", "cosine_warmup_steps", "cosine_min_lr", "cosine_gamma",
    "save_at_cycle_end", "timestep_curriculum", "huber_delta", "rollback", "rollback_lr_factor", "max_rollbacks",
    "settings_json"]  # commit 89746ba
LEGACY_TRAIN_LAYOUT_44 = LEGACY_TRAIN_LAYOUT_43 + ["overwrite"]  # commit 25f5ed4
LEGACY_TRAIN_LAYOUTS = {"43 values (89746ba)": LEGACY_TRAIN_LAYOUT_43, "44 values (25f5ed4)": LEGACY_TRAIN_LAYOUT_44}
STEPS = 24 if UPDATE_SCREENSHOTS else 8
SAVE_EVERY = STEPS // 2
SIZE = 64
TAGGER = "fake"


def find_chromium() -> str | None:
    """The Chromium binary: $HN_CHROMIUM, else the first of CHROMIUM_NAMES on PATH."""
    explicit = os.environ.get("HN_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


NO_CHROMIUM = ("Chromium is not installed: `apt-get install -y chromium` (Debian/Ubuntu), or set HN_CHROMIUM "
               "to a Chrome/Chromium binary")


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


pytestmark = pytest.mark.skipif(find_chromium() is None and not running_in_ci(), reason=NO_CHROMIUM)


# ------------------------------------------------------------------ Chromium over the DevTools protocol


class PageError(RuntimeError):
    """A script in the page threw, or the page did not reach the expected state."""


class Chromium:
    """One headless browser with one page; `evaluate` runs JS in the page and returns its value."""

    def __init__(self, binary: str, profile: Path, width: int = 1600, height: int = 1000):
        self.binary, self.profile = binary, profile
        self.width, self.height = width, height
        self.process: subprocess.Popen | None = None
        self.ws: websocket.WebSocket | None = None
        self._next_id = 0
        self.console: list[str] = []
        self.exceptions: list[str] = []

    def start(self, timeout: float = 60.0) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        cmd = [self.binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
               "--hide-scrollbars", f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
               f"--window-size={self.width},{self.height}", "about:blank"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its debugging port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            pages = [t for t in json.loads(resp.read()) if t.get("type") == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self.send("Runtime.enable")
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})

    def stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    # ------------------------------------------------------------------ protocol

    def _record(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self._next_id += 1
        request_id = self._next_id
        self.ws.send(json.dumps({"id": request_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(0.5, deadline - time.monotonic()))
            message = json.loads(self.ws.recv())
            if message.get("id") == request_id:
                if "error" in message:
                    raise PageError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._record(message)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} got no answer in {timeout}s")

    def evaluate(self, expression: str, timeout: float = 60.0):
        """The value of a JS expression (awaited when it is a promise), as JSON-compatible data."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True, "timeout": int(timeout * 1000)},
                           timeout=timeout + 5)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise PageError(details.get("exception", {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.25):
        """Poll a JS expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression, timeout=max(1.0, deadline - time.monotonic()))
            except PageError as exc:
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(interval)
        raise PageError(f"timed out after {timeout}s waiting for {expression!r} (last: {last!r})")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def reload(self) -> None:
        self.send("Page.reload", {"ignoreCache": True})

    def screenshot(self, path: Path, clip: dict | None = None) -> Path:
        params: dict = {"format": "png"}
        if clip:
            params["clip"] = dict(clip, scale=1)
        data = self.send("Page.captureScreenshot", params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


# ------------------------------------------------------------------ page helpers (JS, injected after every load)

PAGE_HELPERS = r"""
window.hnTest = {
  frames: (n = 2) => new Promise((resolve) => {
    const step = (left) => left <= 0 ? resolve() : requestAnimationFrame(() => step(left - 1));
    step(n);
  }),
  graph: () => app.rootGraph ?? app.graph,
  nodes: () => { const g = hnTest.graph(); return g.nodes ?? g._nodes; },
  node: (type) => hnTest.nodes().find((n) => n.type === type),
  // the Vue frontend (1.x) has workflow tabs and commands; the 2024 one has neither
  newFrontend: () => typeof app.extensionManager?.command?.execute === "function",
  // the new frontend greets a first visit with its template browser: close it, and for good
  async dismissDialogs() {
    if (!hnTest.newFrontend()) return true;
    try { await app.extensionManager.setting.set("Comfy.TutorialCompleted", true); } catch (error) {}
    // the minimap (1.2x) lies over the canvas's corner and would cover nodes in screenshots
    try { await app.extensionManager.setting.set("Comfy.Minimap.Visible", false); } catch (error) {}
    for (let i = 0; i < 20 && document.querySelector(".p-dialog"); i++) {
      document.querySelector(".p-dialog .p-dialog-close-button, .p-dialog .p-dialog-header-close")?.click();
      document.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", code: "Escape", bubbles: true }));
      await hnTest.frames(2);
    }
    return !document.querySelector(".p-dialog");
  },
  async show(node, { bottom = true } = {}) {
    // twice: the first draw may grow the node (DOM widgets claim their minimum height)
    for (let pass = 0; pass < 2; pass++) {
      const height = app.canvasEl.clientHeight;
      app.canvas.ds.scale = 1;
      const y = bottom ? -(node.pos[1] + node.size[1]) + height - 30 : -node.pos[1] + 60;
      app.canvas.ds.offset = [-node.pos[0] + 30, y];
      app.canvas.setDirty(true, true);
      app.canvas.draw(true, true);
      await hnTest.frames(3);
    }
  },
  // the part of the canvas not covered by the frontend's menus (the new frontend lays them over
  // it): insets in canvas pixels, the page position for screenshots
  async visibleCanvas() {
    const rect = app.canvasEl.getBoundingClientRect();
    const saved = [...app.canvas.ds.offset];
    app.canvas.ds.offset = [1e6, 1e6]; // nodes and their DOM widgets out of the way
    app.canvas.setDirty(true, true);
    app.canvas.draw(true, true);
    await hnTest.frames(2);
    const canvasAt = (x, y) => document.elementFromPoint(x, y) === app.canvasEl;
    let left = 0, top = 0;
    while (left < rect.width / 3 && !canvasAt(rect.left + left + 1, rect.bottom - 40)) left += 4;
    while (top < rect.height / 3 && !canvasAt(rect.left + rect.width / 2, rect.top + top + 1)) top += 4;
    app.canvas.ds.offset = saved;
    return { left, top, width: rect.width - left, height: rect.height - top, pageX: rect.left + left, pageY: rect.top + top };
  },
  // a close-up of some nodes at (nearly) full scale, clipped to at most `aspect` height/width:
  // what a template card shows readably
  async closeUp(types, aspect = 0.75) {
    const view = await hnTest.visibleCanvas();
    const m = 12, t = LiteGraph.NODE_TITLE_HEIGHT;
    let result;
    for (let pass = 0; pass < 2; pass++) { // twice: the first draw may grow nodes to their widgets
      const nodes = types.map((type) => hnTest.node(type));
      const x0 = Math.min(...nodes.map((n) => n.pos[0])), y0 = Math.min(...nodes.map((n) => n.pos[1] - t));
      const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0])), y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
      const s = Math.min(1, (view.width - 2 * m) / (x1 - x0));
      app.canvas.ds.scale = s;
      app.canvas.ds.offset = [(view.left + m) / s - x0, (view.top + m) / s - y0];
      app.canvas.setDirty(true, true);
      app.canvas.draw(true, true);
      await hnTest.frames(3);
      const width = Math.ceil((x1 - x0) * s + 2 * m);
      const height = Math.ceil(Math.min((y1 - y0) * s + 2 * m, aspect * width, view.height));
      result = { clip: { x: view.pageX, y: view.pageY, width, height }, scale: s };
    }
    return result;
  },
  async fit() {
    const view = await hnTest.visibleCanvas();
    let clip;
    for (let pass = 0; pass < 2; pass++) { // twice: the first draw may grow nodes to their widgets
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const n of hnTest.nodes()) {
        x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - LiteGraph.NODE_TITLE_HEIGHT);
        x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
      }
      const m = 16;
      const s = Math.min((view.width - 2 * m) / (x1 - x0), (view.height - 2 * m) / (y1 - y0), 1);
      app.canvas.ds.scale = s;
      app.canvas.ds.offset = [(view.left + m) / s - x0, (view.top + m) / s - y0];
      app.canvas.setDirty(true, true);
      app.canvas.draw(true, true);
      await hnTest.frames(3);
      clip = { x: view.pageX, y: view.pageY, width: Math.ceil(Math.min(view.width, (x1 - x0) * s + 2 * m)),
               height: Math.ceil(Math.min(view.height, (y1 - y0) * s + 2 * m)) };
    }
    return clip;
  },
  rectOf(elements, pad = 6) {
    const rs = elements.map((e) => e.getBoundingClientRect());
    const x = Math.max(0, Math.min(...rs.map((r) => r.left)) - pad), y = Math.max(0, Math.min(...rs.map((r) => r.top)) - pad);
    return { x, y, width: Math.max(...rs.map((r) => r.right)) + pad - x, height: Math.max(...rs.map((r) => r.bottom)) + pad - y };
  },
  nodeRect(node) {
    const s = app.canvas.ds.scale, o = app.canvas.ds.offset, t = LiteGraph.NODE_TITLE_HEIGHT;
    return { x: Math.max(0, (node.pos[0] + o[0]) * s - 4), y: Math.max(0, (node.pos[1] - t + o[1]) * s - 4),
             width: node.size[0] * s + 8, height: (node.size[1] + t) * s + 8 };
  },
  // pixels of the chart canvas close to a colour
  countColour(canvas, [r, g, b], tolerance = 40) {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - r) < tolerance && Math.abs(data[i + 1] - g) < tolerance && Math.abs(data[i + 2] - b) < tolerance) count++;
    }
    return count;
  },
  chartState(node) {
    const chart = node.hnLossChart;
    return {
      steps: chart.series.steps.slice(), events: chart.series.events.map((e) => e.kind),
      points: chart.pointsDrawn, width: chart.canvas.width, height: chart.canvas.height,
      smoothed: hnTest.countColour(chart.canvas, [255, 160, 40]),
      rollback: hnTest.countColour(chart.canvas, [255, 64, 64], 30),
      nan: hnTest.countColour(chart.canvas, [255, 215, 0], 30),
      status: node.hnTrainStatus.element.textContent,
      preview: node.hnTrainPreview.img.getAttribute("src"), previewWidth: node.hnTrainPreview.img.naturalWidth,
    };
  },
  // the Train node's size and what the host may have added to it (its own image preview)
  trainLayout() {
    const node = hnTest.node("TrainHypernetwork");
    const t = LiteGraph.NODE_TITLE_HEIGHT;
    const below = hnTest.nodes().filter((n) => n !== node && n.pos[1] > node.pos[1]
      && n.pos[0] < node.pos[0] + node.size[0] && n.pos[0] + n.size[0] > node.pos[0]);
    const gaps = below.map((n) => n.pos[1] - t - (node.pos[1] + node.size[1]));
    return { height: Math.round(node.size[1]), width: Math.round(node.size[0]),
             statusHeight: node.hnTrainStatus.element.clientHeight,
             hostImages: node.imgs?.length ?? 0,
             imageWidgets: (node.widgets ?? []).filter((w) => /image|preview/i.test(w.name) && !w.name.startsWith("hn_"))
               .map((w) => w.name),
             gapBelow: gaps.length ? Math.min(...gaps) : null };
  },
  hideMenu(hidden) {
    const menu = document.querySelector(".comfy-menu");
    if (menu) menu.style.display = hidden ? "none" : "";
    app.canvas.show_info = !hidden;
    app.canvas.setDirty(true, true);
    app.canvas.draw(true, true);
  },
  // the grid PNG itself, on top of the page at a readable size (the node shows it in 220 px)
  async overlay(src, width) {
    const img = document.createElement("img");
    img.id = "hn-overlay";
    Object.assign(img.style, { position: "fixed", left: "0", top: "0", zIndex: 10000, width: `${width}px`,
                               background: "#fff" });
    await new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = src; document.body.append(img); });
    const r = img.getBoundingClientRect();
    return { x: 0, y: 0, width: Math.ceil(r.width), height: Math.ceil(r.height) };
  },
  async queueAndWait(timeoutMs) {
    const { api } = await import("/scripts/api.js");
    let cleanup = () => {};
    const done = new Promise((resolve, reject) => {
      let started = false;
      const onStart = () => { started = true; };
      const onExecuting = ({ detail }) => { if (detail === null && started) { cleanup(); resolve("done"); } };
      const onError = ({ detail }) => { cleanup(); reject(new Error(`${detail.node_type}: ${detail.exception_message}`)); };
      const timer = setTimeout(() => { cleanup(); reject(new Error("prompt did not finish")); }, timeoutMs);
      cleanup = () => {
        clearTimeout(timer);
        api.removeEventListener("execution_start", onStart);
        api.removeEventListener("executing", onExecuting);
        api.removeEventListener("execution_error", onError);
      };
      api.addEventListener("execution_start", onStart);
      api.addEventListener("executing", onExecuting);
      api.addEventListener("execution_error", onError);
    });
    await app.queuePrompt(0, 1);
    if (app.lastNodeErrors && Object.keys(app.lastNodeErrors).length) {
      cleanup();
      throw new Error("prompt refused: " + JSON.stringify(app.lastNodeErrors));
    }
    return await done;
  },
  async spyTrainEvents() {
    const { api } = await import("/scripts/api.js");
    window.hnSeen = [];
    window.hnDuring = [];
    for (const type of ["hypernetwork.train.progress", "hypernetwork.train.preview", "hypernetwork.train.checkpoint"]) {
      api.addEventListener(type, ({ detail }) => {
        window.hnSeen.push({ type, node: String(detail.node), step: detail.step });
        // after the frontend's next draw: what the user sees while training
        requestAnimationFrame(() => requestAnimationFrame(() => window.hnDuring.push(hnTest.trainLayout())));
      });
    }
  },
};
true
"""

READY = f"window.app && app.graph && app.canvasEl && {json.dumps(EXTENSIONS)}.every((name) => app.extensions.some((e) => e.name === name))"


def open_ui(browser: Chromium, url: str | None = None, reload: bool = False) -> None:
    # Mark the page we leave: until the new one has replaced it, READY would pass on the old one.
    browser.evaluate("window.hnOldPage = true")
    if reload:
        browser.reload()
    else:
        browser.navigate(url)
    browser.wait_for(f"!window.hnOldPage && {READY}", timeout=60)
    browser.evaluate(PAGE_HELPERS)
    browser.evaluate("hnTest.dismissDialogs()")


def screenshot(browser: Chromium, name: str, clip: dict | None = None, *, hide_menu: bool = True) -> Path:
    if hide_menu:
        browser.evaluate("hnTest.hideMenu(true)")
    try:
        return browser.screenshot(ARTIFACTS / f"{name}.png", clip)
    finally:
        if hide_menu:
            browser.evaluate("hnTest.hideMenu(false)")


def publish(source: Path, target: Path, max_width: int, force: bool = False) -> None:
    """Copy a screenshot into the repository (HN_UPDATE_SCREENSHOTS=1 or `force`), scaled and palette-packed."""
    if not (UPDATE_SCREENSHOTS or force):
        return
    with Image.open(source) as image:
        image = image.convert("RGB")
        if image.width > max_width:
            image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
        if target.parent == wf.EXAMPLE_WORKFLOWS:  # the new frontend's template browser reads .jpg
            image.save(target.with_suffix(".jpg"), quality=85, optimize=True)
    assert target.stat().st_size < 200_000, f"{target} is too big for the repository"


def load_ui_workflow(browser: Chromium, workflow: dict) -> None:
    browser.evaluate(f"app.loadGraphData({json.dumps(workflow)}).then(() => true)")


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def browser(comfy_server, tmp_path_factory):
    binary = find_chromium()
    if binary is None:  # only reached under CI (otherwise the module is skipped)
        pytest.fail(f"CI=true and {NO_CHROMIUM}")
    chromium = Chromium(binary, tmp_path_factory.mktemp("chromium-profile"))
    chromium.start()
    try:
        open_ui(chromium, comfy_server.url)
        yield chromium
    finally:
        chromium.stop()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "console.log").write_text("\n".join(chromium.console + chromium.exceptions) + "\n")


@pytest.fixture(scope="module")
def object_info(comfy_server):
    return comfy_server.object_info()


@pytest.fixture(scope="module")
def trained_in_ui(browser, comfy_server, object_info):
    """train_hypernetwork.json loaded and queued from the page: (network name, chart state after the run)."""
    dataset = make_shapes_dataset(comfy_server.layout.input / f"ui_shapes_{uuid.uuid4().hex[:6]}", count=4, size=SIZE)
    fake_tagger.build_fake_tagger(comfy_server.layout.taggers, name=TAGGER)
    # the README's screenshots show the examples' name, not a test's
    name = "my_style" if UPDATE_SCREENSHOTS else f"ui_{uuid.uuid4().hex[:8]}"
    workflow = wf.ui_with_tiny_loader(wf.load_workflow("train_hypernetwork"))
    wf.set_ui_widgets(workflow, object_info, "HypernetworkLoadDataset", directory=dataset.name)
    wf.set_ui_widgets(workflow, object_info, "HypernetworkPreprocess", width=SIZE, height=SIZE)
    wf.set_ui_widgets(workflow, object_info, "HypernetworkWD14Tag", model=TAGGER)
    wf.set_ui_widgets(workflow, object_info, "CreateHypernetwork", name=name)
    wf.set_ui_widgets(workflow, object_info, "TrainHypernetwork", steps=STEPS, learning_rate=f"2e-3:{SAVE_EVERY}, 1e-3",
                      save_every=SAVE_EVERY)
    wf.set_ui_widgets(workflow, object_info, "HypernetworkPreviewOptions", preview_every=SAVE_EVERY, preview_steps=2)
    load_ui_workflow(browser, workflow)
    before = browser.evaluate("hnTest.show(hnTest.node('TrainHypernetwork')).then(() => hnTest.trainLayout())")
    browser.evaluate("hnTest.spyTrainEvents().then(() => true)")
    browser.evaluate("hnTest.queueAndWait(400000)", timeout=420)
    browser.evaluate("hnTest.show(hnTest.node('TrainHypernetwork')).then(() => true)")
    state = browser.wait_for("(() => { const s = hnTest.chartState(hnTest.node('TrainHypernetwork'));"
                             " return s.smoothed > 0 && s.previewWidth > 0 && s; })()", timeout=20)
    seen = browser.evaluate("window.hnSeen")
    train_id = browser.evaluate("String(hnTest.node('TrainHypernetwork').id)")
    layout = {"before": before, "during": browser.evaluate("window.hnDuring"),
              "after": browser.evaluate("hnTest.show(hnTest.node('TrainHypernetwork')).then(() => hnTest.trainLayout())")}
    screenshot(browser, "train_node_after_run",
               browser.evaluate("hnTest.nodeRect(hnTest.node('TrainHypernetwork'))"))
    return name, state, seen, train_id, layout


# ------------------------------------------------------------------ tests


def test_pack_extensions_load_in_the_host_ui(browser, comfy_server):
    files = comfy_server.get_json("/extensions")
    ours = [f for f in files if f.startswith(f"/extensions/{PACK_LINK_NAME}/")]
    assert {Path(f).name for f in ours} >= {"lossChart.js", "trainStatus.js", "trainPreview.js", "trainRestore.js",
                                            "applyInfo.js"}
    names = browser.evaluate("app.extensions.map((e) => e.name)")
    assert set(EXTENSIONS) <= set(names)
    errors = [line for line in browser.console + browser.exceptions if PACK_LINK_NAME in line]
    assert not errors, errors


def test_live_events_draw_the_chart_and_listeners_leave_with_the_node(browser):
    """Events dispatched as the websocket client would: the node addressed draws them (raw and
    smoothed loss, LR, a NaN-skip mark, a rollback line), other nodes' events are ignored, and
    removing the node removes its listeners and elements."""
    live = browser.evaluate(r"""(async () => {
      const { api } = await import("/scripts/api.js");
      app.graph.clear();
      const node = LiteGraph.createNode("TrainHypernetwork");
      node.pos = [100, 100];
      app.graph.add(node);
      await hnTest.show(node);
      const send = (type, detail) => api.dispatchEvent(new CustomEvent(type, { detail }));
      for (let step = 1; step <= 30; step++) {
        send("hypernetwork.train.progress", { node: String(node.id), name: "t", step, max_steps: 60,
             loss: 0.3 + 0.2 * Math.cos(step / 3) + 0.5 / step, lr: step < 20 ? 1e-3 : 5e-4, epoch: 0, eta: 90 - step, event: "" });
        if (step === 8) send("hypernetwork.train.event", { node: String(node.id), step: 8, kind: "nan_skip", message: "skipped" });
      }
      send("hypernetwork.train.event", { node: String(node.id), step: 24, kind: "rollback", message: "rolled back to 24" });
      for (let step = 25; step <= 40; step++) {
        send("hypernetwork.train.progress", { node: String(node.id), name: "t", step, max_steps: 60,
             loss: 0.25 + 0.01 * step, lr: 5e-5, epoch: 1, eta: 60 - step, event: "" });
      }
      send("hypernetwork.train.progress", { node: String(Number(node.id) + 1000), step: 99, max_steps: 99, loss: 9, lr: 1, eta: 0 });
      await hnTest.frames(3);
      return hnTest.chartState(node);
    })()""")
    rect = browser.evaluate("(() => { const n = hnTest.node('TrainHypernetwork');"
                            " return hnTest.rectOf([n.hnTrainStatus.element, n.hnLossChart.canvas]); })()")
    screenshot(browser, "live_events_chart", rect)
    result = browser.evaluate(r"""(async () => {
      const { api } = await import("/scripts/api.js");
      const events = await import("/extensions/%s/hn_events.js");
      const node = hnTest.node("TrainHypernetwork");
      const listening = events.listenerCount(node);
      const elements = [node.hnLossChart.canvas.parentElement, node.hnTrainStatus.element, node.hnTrainPreview.element];
      app.graph.remove(node);
      api.dispatchEvent(new CustomEvent("hypernetwork.train.progress",
        { detail: { node: String(node.id), step: 41, max_steps: 60, loss: 1, lr: 1, eta: 0 } }));
      // the new frontend detaches a removed node's DOM widgets a few frames later
      const attached = () => elements.map((e) => document.body.contains(e));
      for (let frame = 0; frame < 120 && attached().some(Boolean); frame++) await hnTest.frames(1);
      return { listening, after: events.listenerCount(node), attached: attached(),
               stepsAfterRemoval: node.hnLossChart.series.steps.length };
    })()""" % PACK_LINK_NAME)
    assert live["steps"] == list(range(1, 41)), "a rollback drops the steps after it; later steps continue"
    assert live["events"] == ["nan_skip", "rollback"]
    assert live["points"] == 40 and live["smoothed"] > 50 and live["rollback"] > 10 and live["nan"] > 5
    assert live["status"].startswith("step 40 / 60"), live["status"]
    assert result["listening"] >= 5
    assert result["after"] == 0, "the node's listeners must go with it"
    assert result["attached"] == [False, False, False]
    assert result["stepsAfterRemoval"] == 40


def test_validation_loss_has_its_own_line_live_and_from_the_saved_output(browser):
    """`hypernetwork.train.validation` events draw the held-out loss (raw and EMA) as their own
    lines while training; the node's `loss` output (what a reload restores) draws them again."""
    result = browser.evaluate(r"""(async () => {
      const { api } = await import("/scripts/api.js");
      app.graph.clear();
      const node = LiteGraph.createNode("TrainHypernetwork");
      node.pos = [100, 100];
      app.graph.add(node);
      await hnTest.show(node);
      const send = (type, detail) => api.dispatchEvent(new CustomEvent(type, { detail: { node: String(node.id), ...detail } }));
      for (let step = 1; step <= 20; step++) {
        send("hypernetwork.train.progress", { step, max_steps: 20, loss: 0.4 + 0.1 * Math.sin(step), lr: 1e-3, eta: 1, event: "" });
        if (step % 5 === 0) send("hypernetwork.train.validation", { step, val_loss: 0.5 - 0.01 * step, val_loss_ema: 0.45 - 0.005 * step });
      }
      await hnTest.frames(3);
      const chart = node.hnLossChart;
      const count = () => ({ val: hnTest.countColour(chart.canvas, [235, 90, 235], 30),
                             ema: hnTest.countColour(chart.canvas, [40, 215, 215], 30),
                             steps: chart.series.val_loss.steps.slice(), emaSteps: chart.series.val_loss_ema.steps.slice() });
      const live = count();
      node.onExecuted({ loss: [JSON.stringify({ steps: [1, 2, 3, 4], losses: [0.5, 0.4, 0.45, 0.3],
        learning_rates: [1e-3, 1e-3, 1e-3, 1e-3], events: [], val_loss: { steps: [2, 4], losses: [0.6, 0.2] } })] });
      await hnTest.frames(3);
      const restored = count();
      app.graph.remove(node);
      return { live, restored };
    })()""")
    assert result["live"]["steps"] == [5, 10, 15, 20] and result["live"]["emaSteps"] == [5, 10, 15, 20]
    assert result["live"]["val"] > 20 and result["live"]["ema"] > 20, result
    assert result["restored"]["steps"] == [2, 4] and result["restored"]["emaSteps"] == []
    assert result["restored"]["val"] > 20 and result["restored"]["ema"] == 0, result


def test_non_finite_losses_are_read_and_display_widgets_are_not_saved(browser, object_info):
    """The node's `loss` output is Python JSON, where a NaN loss is a bare NaN token; and a saved
    node's widgets_values holds exactly its inputs' values (no trailing display-widget nulls)."""
    result = browser.evaluate(r"""(async () => {
      app.graph.clear();
      const node = LiteGraph.createNode("TrainHypernetwork");
      node.pos = [100, 100];
      app.graph.add(node);
      await hnTest.show(node);
      node.onExecuted({ loss: ['{"steps": [1, 2, 3], "losses": [1.0, NaN, 0.5], "learning_rates": [0.001, 0.001, 0.001], ' +
                               '"events": [{"step": 2, "kind": "nan_skip", "message": "loss=NaN; update skipped"}]}'] });
      await hnTest.frames(3);
      const state = hnTest.chartState(node);
      const saved = node.serialize().widgets_values.length;
      const losses = node.hnLossChart.series.losses.slice();
      app.graph.remove(node);
      return { state, saved, losses };
    })()""")
    assert result["losses"] == [1.0, None, 0.5]
    assert result["state"]["events"] == ["nan_skip"] and result["state"]["nan"] > 5
    assert result["state"]["status"].startswith("trained to step 3"), result["state"]["status"]
    info = object_info["TrainHypernetwork"]
    expected = sum(1 + wf.extra_widgets_after(name, spec) for name, spec in wf.widget_inputs(info))
    assert result["saved"] == expected


def test_train_workflow_from_the_ui_draws_the_chart_status_and_preview(browser, trained_in_ui):
    name, state, seen, train_id, _ = trained_in_ui
    progress = [e for e in seen if e["type"] == "hypernetwork.train.progress"]
    assert [e["step"] for e in progress] == list(range(1, STEPS + 1))
    assert {e["node"] for e in seen} == {train_id}
    assert state["steps"] == list(range(1, STEPS + 1)) and state["points"] == STEPS
    assert state["smoothed"] > 20, "the smoothed loss line was not drawn"
    assert state["status"].startswith(f"trained to step {STEPS}")
    assert f"{name}-{STEPS}_" in state["preview"] and state["previewWidth"] == SIZE
    dropped = [line for line in browser.console if "Unhandled message" in line]
    assert not dropped, f"the page could not read some websocket messages: {dropped[:3]}"
    rect = browser.evaluate("(() => { const n = hnTest.node('TrainHypernetwork');"
                            " return hnTest.rectOf([n.hnTrainStatus.element, n.hnLossChart.canvas, n.hnTrainPreview.element]); })()")
    chart = screenshot(browser, "train_chart", rect)
    publish(chart, DOCS / "loss_chart.png", 520)
    screenshot(browser, "train_workflow")


STATUS_MIN_PX = 20  # a readable status line: at least one 11 px line with its padding


def test_train_node_keeps_its_size_through_a_run(browser, trained_in_ui):
    """One preview (the pack's own; the host adds no image of its own), no growth, the status line
    readable while training, and the example layout leaves room for the live display."""
    layout = trained_in_ui[4]
    before, during, after = layout["before"], layout["during"], layout["after"]
    assert during, "no layout was recorded while training"
    assert before["gapBelow"] is None or before["gapBelow"] >= 0, f"the Train node covers the node below: {before}"
    assert max(d["height"] for d in during) == before["height"], (before, during)
    assert after["height"] == before["height"] and after["width"] == before["width"], (before, after)
    assert after["hostImages"] == 0 and not after["imageWidgets"], after
    assert all(d["hostImages"] == 0 and not d["imageWidgets"] for d in during), during
    assert min(d["statusHeight"] for d in during) >= STATUS_MIN_PX, during
    assert after["statusHeight"] >= STATUS_MIN_PX and after["gapBelow"] in (None, before["gapBelow"]), after


def test_chart_status_and_preview_survive_a_page_reload(browser, trained_in_ui):
    name, before, *_ = trained_in_ui
    time.sleep(1.5)  # the host saves the open workflow to localStorage every second
    open_ui(browser, reload=True)
    # the new frontend configures the saved workflow after the extensions' setup
    browser.wait_for("!!hnTest.node('TrainHypernetwork')", timeout=30)
    browser.evaluate("hnTest.show(hnTest.node('TrainHypernetwork')).then(() => true)")
    state = browser.wait_for("(() => { const s = hnTest.chartState(hnTest.node('TrainHypernetwork'));"
                             " return s.smoothed > 0 && s.previewWidth > 0 && s; })()", timeout=30)
    assert state["steps"] == before["steps"]
    assert state["status"] == before["status"]
    assert f"{name}-{STEPS}_" in state["preview"]
    reloaded = browser.evaluate("hnTest.trainLayout()")
    assert reloaded["height"] == trained_in_ui[4]["before"]["height"], (reloaded, trained_in_ui[4]["before"])
    assert reloaded["statusHeight"] >= STATUS_MIN_PX and reloaded["hostImages"] == 0, reloaded
    screenshot(browser, "train_after_reload")


CHART_BACK = ("(() => { const n = hnTest.node('TrainHypernetwork'); if (!n) return false;"
              " const s = hnTest.chartState(n); return s.smoothed > 0 && s.previewWidth > 0 && s; })()")


def test_chart_status_and_preview_come_back_after_switching_workflows(browser, trained_in_ui, object_info):
    """New frontend: another workflow tab and back. Old frontend (no tabs): another workflow loaded
    and the training workflow loaded again."""
    name, before, *_ = trained_in_ui
    browser.wait_for("!!hnTest.node('TrainHypernetwork')", timeout=30)
    new_frontend = browser.evaluate("hnTest.newFrontend()")
    if new_frontend:
        browser.evaluate("app.extensionManager.command.execute('Comfy.NewBlankWorkflow').then(() => true)")
        browser.wait_for("!hnTest.node('TrainHypernetwork')", timeout=20)
        browser.evaluate("app.extensionManager.command.execute('Workspace.PreviousOpenedWorkflow').then(() => true)")
    else:
        browser.evaluate("window.hnSaved = JSON.stringify(app.graph.serialize()); true")
        load_ui_workflow(browser, wf.ui_with_tiny_loader(wf.load_workflow("apply_hypernetwork")))
        assert browser.evaluate("!hnTest.node('TrainHypernetwork')")
        browser.evaluate("app.loadGraphData(JSON.parse(window.hnSaved)).then(() => true)")
    browser.wait_for("!!hnTest.node('TrainHypernetwork')", timeout=30)
    browser.evaluate("hnTest.show(hnTest.node('TrainHypernetwork')).then(() => true)")
    state = browser.wait_for(CHART_BACK, timeout=30)
    assert state["steps"] == before["steps"]
    assert state["status"] == before["status"]
    assert f"{name}-{STEPS}_" in state["preview"]
    screenshot(browser, "train_after_workflow_switch")


def test_apply_node_shows_the_selected_files_metadata_and_samples(browser, trained_in_ui, object_info):
    name = trained_in_ui[0]
    workflow = wf.ui_with_tiny_loader(wf.load_workflow("apply_hypernetwork"))
    wf.set_ui_widgets(workflow, object_info, "KSampler", steps=2)
    wf.set_ui_widgets(workflow, object_info, "EmptyLatentImage", width=SIZE, height=SIZE)
    load_ui_workflow(browser, workflow)
    browser.evaluate("app.refreshComboInNodes().then(() => true)")  # the file list as of now
    shown = browser.evaluate(r"""(async () => {
      const node = hnTest.node("ApplyHypernetwork");
      const widget = node.widgets.find((w) => w.name === "hypernetwork_name");
      widget.value = %s;
      widget.callback(widget.value);
      await hnTest.show(node, { bottom: false });
      return true;
    })()""" % json.dumps(f"{name}.pt"))
    assert shown
    text = browser.wait_for("(() => { const e = hnTest.node('ApplyHypernetwork').hnApplyInfo.element;"
                            " return e.dataset.state === 'ok' && e.textContent; })()", timeout=20)
    assert text.startswith(f"{name} · step {STEPS} · ") and "parameters · pt" in text
    assert "layers 1, 2, 1 · linear" in text and "widths " in text
    assert "optimizer state (.optim) saved" in text, "training saves the .optim beside the final file"
    rect = browser.evaluate("hnTest.nodeRect(hnTest.node('ApplyHypernetwork'))")
    screenshot(browser, "apply_info", rect)
    browser.evaluate("hnTest.queueAndWait(120000)", timeout=130)

    missing = browser.evaluate(r"""(async () => {
      const node = hnTest.node("ApplyHypernetwork");
      const widget = node.widgets.find((w) => w.name === "hypernetwork_name");
      widget.value = "no_such_file.pt";
      widget.callback(widget.value);
      return true;
    })()""")
    assert missing
    error = browser.wait_for("(() => { const e = hnTest.node('ApplyHypernetwork').hnApplyInfo.element;"
                             " return e.dataset.state === 'error' && e.textContent; })()", timeout=20)
    assert "not in the hypernetworks folders" in error


def test_compare_workflow_from_the_ui_shows_the_grid(browser, trained_in_ui, object_info):
    name = trained_in_ui[0]
    workflow = wf.ui_with_tiny_loader(wf.load_workflow("compare_checkpoints"))
    shipped = wf.to_api(wf.load_workflow("compare_checkpoints"), object_info)
    x_values = shipped[wf.nodes_of(shipped, "HypernetworkXYGrid")[0]]["inputs"]["x_values"].replace("my_style", name)
    wf.set_ui_widgets(workflow, object_info, "HypernetworkXYGrid", x_values=x_values, y_values="1, 2",
                      steps=2, width=SIZE, height=SIZE, filename_prefix=f"ui_grid_{name}")
    load_ui_workflow(browser, workflow)
    browser.evaluate("hnTest.queueAndWait(200000)", timeout=210)
    browser.evaluate("hnTest.show(hnTest.node('HypernetworkXYGrid'), { bottom: true }).then(() => true)")
    loaded = browser.wait_for("(() => { const n = hnTest.node('HypernetworkXYGrid');"
                              " return n.imgs?.length && [n.imgs[0].naturalWidth, n.imgs[0].src]; })()", timeout=20)
    assert loaded[0] >= 2 * SIZE, "the node shows the saved grid"
    rect = browser.evaluate("hnTest.nodeRect(hnTest.node('HypernetworkXYGrid'))")
    screenshot(browser, "compare_grid_node", rect)
    clip = browser.evaluate(f"hnTest.overlay({json.dumps(loaded[1])}, {min(3 * loaded[0], 720)})")
    try:
        grid = screenshot(browser, "compare_grid", clip)
    finally:
        browser.evaluate("document.getElementById('hn-overlay').remove() || true")
    publish(grid, DOCS / "xy_grid.png", 520)


# the nodes a template's thumbnail shows close up (the card is small: the whole graph is unreadable)
THUMBNAIL_NODES = {"train_hypernetwork": ["HypernetworkPreviewOptions", "TrainHypernetwork"],
                   "apply_hypernetwork": ["ApplyHypernetwork", "KSampler"],
                   "compare_checkpoints": ["Note", "HypernetworkXYGrid"]}
THUMBNAIL_WIDTH = 560


@pytest.mark.parametrize("name", sorted(THUMBNAIL_NODES))
def test_example_workflows_load_as_shipped(browser, name):
    """The shipped (stock-loader) workflows load without missing nodes; this also draws their
    thumbnails: a close-up of the key nodes at (nearly) full scale."""
    load_ui_workflow(browser, wf.load_workflow(name))
    types = browser.evaluate("hnTest.nodes().map((n) => n.type)")
    assert sorted(types) == sorted(node["type"] for node in wf.load_workflow(name)["nodes"])
    dialog = browser.evaluate("app.ui.dialog.element.style.display === 'flex' && app.ui.dialog.textElement.textContent")
    assert not dialog, dialog
    close = browser.evaluate(f"hnTest.closeUp({json.dumps(THUMBNAIL_NODES[name])})")
    assert close["scale"] >= 0.9, close
    shot = screenshot(browser, f"workflow_{name}", close["clip"])
    if browser.evaluate("hnTest.newFrontend()"):  # the template cards are the new frontend's
        publish(shot, wf.example_path(name, ".png"), THUMBNAIL_WIDTH)


def test_training_workflow_at_fit_to_screen_shows_readable_titles(browser):
    """The shipped training workflow fitted to a 1600 x 1000 window stays above the zoom where the
    frontend stops drawing text (its low-quality threshold), so node titles and widgets read."""
    load_ui_workflow(browser, wf.load_workflow("train_hypernetwork"))
    assert browser.evaluate("hnTest.dismissDialogs()"), "a dialog covers the canvas"
    clip = browser.evaluate("hnTest.fit()")
    view = browser.evaluate("""(() => ({
      scale: app.canvas.ds.scale,
      threshold: app.canvas.low_quality_zoom_threshold ?? 0.6,
      titlePx: LiteGraph.NODE_TEXT_SIZE * app.canvas.ds.scale,
      newFrontend: hnTest.newFrontend(),
      version: window.__COMFYUI_FRONTEND_VERSION__ ?? null,
    }))()""")
    assert view["scale"] >= view["threshold"], view
    assert view["titlePx"] >= 8, view
    shot = screenshot(browser, "train_workflow_fit", clip)
    target = DOCS / "train_workflow_fit.png"
    if view["newFrontend"] and (UPDATE_SCREENSHOTS or not target.exists()):
        publish(shot, target, 1200, force=True)


def test_seed_controls_start_fixed_and_loaded_values_stay(browser):
    """A new Create/Train node must not randomize its seed after each queue (Create would then
    refuse the second queue: the file exists); a loaded workflow keeps its saved control value."""
    fresh = browser.evaluate(r"""(async () => {
      app.graph.clear();
      const values = {};
      for (const type of ["CreateHypernetwork", "TrainHypernetwork"]) {
        const node = LiteGraph.createNode(type);
        app.graph.add(node);
        const seed = node.widgets.find((w) => w.name === "seed");
        values[type] = (seed.linkedWidgets ?? []).map((w) => w.value);
      }
      return values;
    })()""")
    assert fresh == {"CreateHypernetwork": ["fixed"], "TrainHypernetwork": ["fixed"]}, fresh
    workflow = wf.load_workflow("train_hypernetwork")
    create = next(n for n in workflow["nodes"] if n["type"] == "CreateHypernetwork")
    index = create["widgets_values"].index("fixed")
    create["widgets_values"][index] = "increment"
    load_ui_workflow(browser, workflow)
    loaded = browser.evaluate("hnTest.node('CreateHypernetwork').widgets.find((w) => w.name === 'seed')"
                              ".linkedWidgets.map((w) => w.value)")
    assert loaded == ["increment"]


def legacy_train_workflow(layout: list[str], values: dict) -> dict:
    """The shipped training workflow as an earlier pack version saved it: no options nodes, every
    setting on the Train node in `layout` order."""
    workflow = wf.load_workflow("train_hypernetwork")
    options_ids = {n["id"] for n in workflow["nodes"] if n["type"].endswith("Options")}
    workflow["nodes"] = [n for n in workflow["nodes"] if n["id"] not in options_ids]
    workflow["links"] = [link for link in workflow["links"] if link[1] not in options_ids and link[3] not in options_ids]
    train = next(n for n in workflow["nodes"] if n["type"] == "TrainHypernetwork")
    train["inputs"] = [i for i in train["inputs"] if i["name"] != "options"]
    train["size"] = {"0": 400, "1": 1146}
    defaults = {"hypernetwork_name": "none", "template": "[filewords], [name]", "learning_rate": "5e-5", "steps": 3000,
                "batch_size": 1, "grad_accumulation_steps": 1, "seed": 0, "control_after_generate": "fixed",
                "save_every": 500, "resume": True, "clip_grad_mode": "none", "clip_grad_value": "0.1",
                "shuffle_tags": False, "tag_dropout": 0, "latent_sampling": "once", "preview_every": 0,
                "preview_prompt": "", "preview_negative": "", "preview_seed": 0, "preview_steps": 20,
                "preview_cfg": 7, "preview_sampler": "euler", "adamw_weight_decay": 0.01, "adamw_beta1": 0.9,
                "adamw_beta2": 0.999, "adamw_eps": 1e-8, "training_dtype": "fp32", "gradient_checkpointing": False,
                "clip_skip": 1, "loss_type": "mse", "scheduler": "a1111", "cosine_cycle_steps": 64,
                "cosine_cycle_mult": 1, "cosine_warmup_steps": 5, "cosine_min_lr": 6e-7, "cosine_gamma": 1,
                "save_at_cycle_end": False, "timestep_curriculum": False, "huber_delta": 0.1, "rollback": True,
                "rollback_lr_factor": 0.1, "max_rollbacks": 3, "settings_json": "", "overwrite": False}
    defaults.update(values)
    train["widgets_values"] = [defaults[name] for name in layout]
    return workflow


@pytest.mark.parametrize("layout_name", sorted(LEGACY_TRAIN_LAYOUTS))
def test_workflows_saved_with_the_old_train_layout_load_and_queue_as_saved(browser, layout_name):
    layout = LEGACY_TRAIN_LAYOUTS[layout_name]
    changed = {"steps": 42, "learning_rate": "1e-4", "preview_every": 7, "preview_seed": 123, "preview_sampler": "euler",
               "loss_type": "huber", "max_rollbacks": 5, "shuffle_tags": True, "settings_json": ""}
    if "overwrite" in layout:
        changed["overwrite"] = True
    load_ui_workflow(browser, legacy_train_workflow(layout, changed))
    result = browser.evaluate(r"""(async () => {
      const { output } = await app.graphToPrompt();
      const byType = (type) => Object.entries(output).filter(([, n]) => n.class_type === type);
      const [[trainId, train]] = byType("TrainHypernetwork");
      const [[trainingId, training]] = byType("HypernetworkTrainingOptions");
      const [[previewId, preview]] = byType("HypernetworkPreviewOptions");
      return { train: train.inputs, training: training.inputs, preview: preview.inputs, trainingId, previewId,
               height: hnTest.node("TrainHypernetwork").size[1] };
    })()""")
    train, training, preview = result["train"], result["training"], result["preview"]
    assert train["steps"] == 42 and train["learning_rate"] == "1e-4" and train["shuffle_tags"] is True
    assert train["seed"] == 0 and train["overwrite"] is changed.get("overwrite", False)
    assert train["options"] == [result["trainingId"], 0] and training["options"] == [result["previewId"], 0]
    assert training["loss_type"] == "huber" and training["max_rollbacks"] == 5 and training["rollback"] is True
    assert preview["preview_every"] == 7 and preview["preview_seed"] == 123 and preview["preview_seed_mode"] == "fixed"
    assert not set(train) & (set(training) | set(preview)) - {"options"}
    assert result["height"] < 1000, "the migrated Train node is sized for its new inputs"


def test_long_status_lines_wrap_and_the_apply_info_box_grows_with_its_text(browser):
    result = browser.evaluate(r"""(async () => {
      app.graph.clear();
      const train = LiteGraph.createNode("TrainHypernetwork");
      train.pos = [100, 100];
      app.graph.add(train);
      const apply = LiteGraph.createNode("ApplyHypernetwork");
      apply.pos = [700, 100];
      app.graph.add(apply);
      await hnTest.show(train);
      train.hnTrainStatus.show("step 12 / 3000  ·  loss 0.1234  ·  lr 1.00e-5  ·  ETA 1h 02m  ·  saved step 10 " +
                               "to models/hypernetworks/a_rather_long_network_name/a_rather_long_network_name-10.pt");
      apply.widgets.find((w) => w.name === "hypernetwork_name").value = "none";
      await apply.hnApplyInfo.refresh(); // settles any lookup started when the node was created
      const before = apply.size[1];
      apply.hnApplyInfo.show(Array.from({ length: 14 }, (_, i) => `line ${i}: ` + "metadata ".repeat(i % 3 + 1)).join("\n"), "ok");
      await hnTest.show(apply, { bottom: false });
      await hnTest.frames(4);
      const status = train.hnTrainStatus.element, info = apply.hnApplyInfo.element;
      return { statusCut: status.scrollWidth > status.clientWidth + 1, lines: status.clientHeight,
               grew: apply.size[1] > before, infoCut: info.scrollHeight > info.clientHeight + 2,
               infoHeights: [info.scrollHeight, info.clientHeight] };
    })()""")
    assert not result["statusCut"], result
    assert result["grew"] and not result["infoCut"], result


def test_a_workflow_saved_with_the_previous_train_layout_runs_with_its_values(browser, comfy_server, object_info):
    """The 44-value layout (all settings on the Train node) queued from the page after migration:
    it trains, and the moved values (loss_type, max_rollbacks) reach the run's settings."""
    dataset = make_shapes_dataset(comfy_server.layout.input / f"ui_legacy_{uuid.uuid4().hex[:6]}", count=4, size=SIZE)
    fake_tagger.build_fake_tagger(comfy_server.layout.taggers, name=TAGGER)
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    workflow = wf.ui_with_tiny_loader(legacy_train_workflow(LEGACY_TRAIN_LAYOUT_44, {
        "steps": 2, "learning_rate": "1e-3", "save_every": 0, "loss_type": "huber", "max_rollbacks": 5}))
    wf.set_ui_widgets(workflow, object_info, "HypernetworkLoadDataset", directory=dataset.name)
    wf.set_ui_widgets(workflow, object_info, "HypernetworkPreprocess", width=SIZE, height=SIZE)
    wf.set_ui_widgets(workflow, object_info, "HypernetworkWD14Tag", model=TAGGER)
    wf.set_ui_widgets(workflow, object_info, "CreateHypernetwork", name=name)
    load_ui_workflow(browser, workflow)
    browser.evaluate("hnTest.queueAndWait(200000)", timeout=210)
    assert (comfy_server.layout.hypernetworks / f"{name}.pt").is_file()
    settings = json.loads((comfy_server.layout.hypernetworks / name / "training_settings.json").read_text())
    flat = json.dumps(settings)
    assert '"loss_type": "huber"' in flat and '"max_rollbacks": 5' in flat, flat[:400]


def test_apply_info_box_shows_a_composition_and_its_members(browser, comfy_server):
    from hypernet.network.hypernetwork_config import HypernetworkConfig
    from hypernet.network.fileio import save_hypernetwork
    from hypernet.network.module import Hypernetwork

    folder = comfy_server.layout.hypernetworks / "browser_hns"
    folder.mkdir(parents=True, exist_ok=True)
    for name, seed in (("bh_a", 1), ("bh_b", 2)):
        config = HypernetworkConfig(name=name, layer_structure=[1, 2, 1], sizes=[768, 32, 64], seed=seed)
        save_hypernetwork(Hypernetwork.create(config), folder / f"{name}.pt")
    (folder / "bh_mix.hns").write_text('{"bh_a": 0.8, "bh_b": 0.2}')
    browser.evaluate(r"""(async () => {
      app.graph.clear();
      const apply = LiteGraph.createNode("ApplyHypernetwork");
      app.graph.add(apply);
      apply.widgets.find((w) => w.name === "hypernetwork_name").value = "browser_hns/bh_mix.hns";
      await apply.hnApplyInfo.refresh();
      return true;
    })()""")
    # a refresh the widget itself started may still be in flight: wait for the last answer
    text = browser.wait_for("(() => { const e = hnTest.node('ApplyHypernetwork').hnApplyInfo.element;"
                            " return e.dataset.state !== 'loading' && e.textContent; })()", timeout=30)
    lines = text.split("\n")
    assert lines[0] == "composition: {bh_a 80%, bh_b 20%}", text
    assert any(line.startswith("· bh_a = browser_hns/bh_a.pt · step 0") for line in lines), text
