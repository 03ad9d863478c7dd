"""Run the pack's main job through a real ComfyUI server, as a user's script would.

By default everything is tiny and made in code: a random SD1-shaped model (its pictures are
noise; the pipeline is real) and a small generated image set. See README for options.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.support.graphs import Graph, tiny_txt2img  # noqa: E402
from tests.support.server import ComfyServer, ServerLayout  # noqa: E402


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for models, inputs and outputs (default: a new temp folder)")
    parser.add_argument("--serve", action="store_true", help="leave the UI running at the printed address")
    args = parser.parse_args()

    host = Path(os.environ["COMFYUI_PATH"])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="hn-demo-"))
    say("the default model is a tiny random one: its pictures are noise, the pipeline is real")
    server = ComfyServer(host, sys.executable, ServerLayout(workdir.resolve()))
    say(f"starting ComfyUI ({host}) with the pack on {server.url}")
    server.start()
    try:
        graph = Graph()
        loader = graph.add("HNTestTinyCheckpointLoader", kind="sd1", seed=0)
        ids = tiny_txt2img(graph, [loader, 0], [loader, 1], [loader, 2], prompt="a demo picture")
        save = graph.add("SaveImage", images=[ids["decode"], 0], filename_prefix="demo_txt2img")
        started = time.monotonic()
        result = server.run(graph.to_api())
        for image in result.outputs[save]["images"]:
            say(f"txt2img image: {server.layout.output / image.get('subfolder', '') / image['filename']}")
        say(f"done in {time.monotonic() - started:.1f}s; server log: {server.log_path}")
        if args.serve:
            say(f"UI running at {server.url} (Ctrl+C to stop)")
            while server.alive():
                time.sleep(1)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
