"""Run the pack's main job through a real ComfyUI server, as a user's script would.

Loads the example workflows 'Train a hypernetwork' and 'Compare checkpoints', converts them to the
API format with the server's /object_info (tests/support/workflows.py, the same converter the tests
use), queues them and follows their websocket events.

By default everything is tiny and made in code: a random SD1-shaped model (its pictures are
noise; the pipeline is real), a small generated image set and a stand-in WD14 tagger. With
`--checkpoint PATH --dataset DIR` the same workflows run on your model and your images.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.support import workflows as wf  # noqa: E402
from tests.support.datasets import make_shapes_dataset  # noqa: E402
from tests.support.server import ComfyServer, PromptError, ServerLayout  # noqa: E402

TINY_STEPS = 20
REAL_STEPS = 200
TINY_SIZE = 64
STAND_IN_TAGGER = "demo-stand-in-tagger"
EXAMPLE_NAME = "my_style"  # the network name in the example workflows
REAL_TAGGER = "(download) wd-v1-4-moat-tagger-v2"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="a real SD checkpoint (.safetensors/.ckpt) to train on "
                                                        "(linked into the server's checkpoints folder)")
    parser.add_argument("--dataset", type=Path, help="a folder of your training images (+ optional .txt captions); "
                                                     "read only, never written")
    parser.add_argument("--name", default="demo_style", help="hypernetwork name (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"training steps (default: {TINY_STEPS} tiny, {REAL_STEPS} with --checkpoint)")
    parser.add_argument("--size", type=int, default=None,
                        help=f"training and grid image size (default: {TINY_SIZE} tiny, 512 with --checkpoint)")
    parser.add_argument("--no-tagger", action="store_true",
                        help="skip the WD14 tagger and train on the captions next to the images")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for models, inputs and outputs (default: a new temp folder, removed at "
                             "the end unless --keep)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp folder (trained files, previews, grid, server log) after the demo")
    parser.add_argument("--serve", action="store_true", help="leave the UI running at the printed address")
    args = parser.parse_args(argv)
    if (args.checkpoint is None) != (args.dataset is None):
        parser.error("--checkpoint and --dataset go together (a real model needs real images)")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        parser.error(f"--checkpoint: {args.checkpoint} is not a file")
    if args.dataset is not None and not args.dataset.is_dir():
        parser.error(f"--dataset: {args.dataset} is not a folder")
    return args


class Demo:
    def __init__(self, args: argparse.Namespace, server: ComfyServer):
        self.args = args
        self.server = server
        self.layout = server.layout
        self.real = args.checkpoint is not None
        self.steps = args.steps or (REAL_STEPS if self.real else TINY_STEPS)
        self.every = max(1, self.steps // 2)
        self.size = args.size or (512 if self.real else TINY_SIZE)
        self.object_info = server.object_info()

    # ------------------------------------------------------------------ inputs

    def prepare(self) -> tuple[str, str | None]:
        """(dataset directory as LoadDataset takes it, tagger choice or None to skip tagging)."""
        if self.real:
            target = self.layout.checkpoints / self.args.checkpoint.name
            if not target.exists():
                try:
                    target.symlink_to(self.args.checkpoint.resolve())
                except OSError:
                    shutil.copy2(self.args.checkpoint, target)
            say(f"model: {self.args.checkpoint} (through the stock CheckpointLoaderSimple)")
            say(f"images: {self.args.dataset.resolve()}")
            return str(self.args.dataset.resolve()), None if self.args.no_tagger else REAL_TAGGER
        folder = make_shapes_dataset(self.layout.input / "demo_shapes", count=8, size=TINY_SIZE)
        say(f"images: 8 generated shapes with captions in {folder}")
        if self.args.no_tagger:
            return folder.name, None
        try:
            from tests.support import fake_tagger

            fake_tagger.build_fake_tagger(self.layout.taggers, name=STAND_IN_TAGGER)
        except ImportError as exc:  # `onnx` builds the stand-in; without it the demo trains on the captions
            say(f"no stand-in tagger ({exc}); training on the caption files instead")
            return folder.name, None
        say("tagger: a tiny stand-in WD14 model built in code (its tags are arbitrary)")
        return folder.name, STAND_IN_TAGGER

    def _model(self, prompt: dict) -> dict:
        if self.real:
            return wf.with_checkpoint(prompt, self.args.checkpoint.name)
        return wf.with_tiny_loader(prompt, kind="sd1", seed=0)

    # ------------------------------------------------------------------ the two workflows

    def train_prompt(self, dataset: str, tagger: str | None) -> dict:
        prompt = self._model(wf.to_api(wf.load_workflow("train_hypernetwork"), self.object_info))
        wf.set_inputs(prompt, "HypernetworkLoadDataset", directory=dataset)
        wf.set_inputs(prompt, "HypernetworkPreprocess", width=self.size, height=self.size)
        wf.set_inputs(prompt, "CreateHypernetwork", name=self.args.name)
        train = {"steps": self.steps, "save_every": self.every}
        if not self.real:
            train.update(learning_rate=f"2e-3:{self.every}, 1e-3")
        wf.set_inputs(prompt, "TrainHypernetwork", **train)
        # The workflow's Preview Options node decides the previews (a value given to Train directly loses).
        wf.set_inputs(prompt, "HypernetworkPreviewOptions", preview_every=self.every,
                      **({} if self.real else {"preview_steps": 4}))
        if tagger is None:
            tag_id = wf.nodes_of(prompt, "HypernetworkWD14Tag")[0]
            source = prompt.pop(tag_id)["inputs"]["dataset"]
            for node in prompt.values():
                for key, value in node["inputs"].items():
                    if value == [tag_id, 0]:
                        node["inputs"][key] = source
        else:
            wf.set_inputs(prompt, "HypernetworkWD14Tag", model=tagger)
        return prompt

    def grid_prompt(self) -> dict:
        prompt = self._model(wf.to_api(wf.load_workflow("compare_checkpoints"), self.object_info))
        grid_id = wf.nodes_of(prompt, "HypernetworkXYGrid")[0]
        shipped = prompt[grid_id]["inputs"]["x_values"]  # 'none, my_style/*.pt, my_style.pt'
        values = dict(x_values=shipped.replace(EXAMPLE_NAME, self.args.name), y_values="1, 2",
                      width=self.size, height=self.size)
        if not self.real:
            values["steps"] = 4
        return wf.set_inputs(prompt, "HypernetworkXYGrid", **values)

    def run(self, title: str, prompt: dict):
        say(f"queueing {title} ({len(prompt)} nodes)")
        started = time.monotonic()
        names = {node_id: node["class_type"] for node_id, node in prompt.items()}
        result = self.server.run(prompt, timeout=24 * 3600, on_event=lambda event: self._progress(event, names))
        say(f"{title} done in {time.monotonic() - started:.1f}s")
        return result

    @staticmethod
    def _progress(event: dict, names: dict[str, str]) -> None:
        kind, data = event.get("type", ""), event.get("data", {})
        if kind == "hypernetwork.train.progress":
            say(f"  step {data['step']}/{data['max_steps']}  loss {data['loss']:.4f}  lr {data['lr']:.2e}  "
                f"ETA {data['eta']:.0f}s")
        elif kind == "hypernetwork.train.checkpoint":
            say(f"  saved {data['path']}")
        elif kind == "hypernetwork.train.preview":
            say(f"  preview at step {data['step']}: {data['path']}")
        elif kind == "hypernetwork.train.event":
            say(f"  {data['kind']} at step {data['step']}: {data['message']}")
        elif kind == "executing" and data.get("node"):
            say(f"  running {names.get(data['node'], data['node'])}")

    def saved(self, result, prompt: dict, class_type: str) -> Path:
        image = result.outputs[wf.nodes_of(prompt, class_type)[0]]["images"][0]
        return self.layout.output / image.get("subfolder", "") / image["filename"]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = Path(os.environ["COMFYUI_PATH"])
    temporary = args.workdir is None
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="hn-demo-"))).resolve()
    status = 1
    try:
        status = _run(args, host, workdir)
        return status
    finally:
        finish_workdir(workdir, temporary=temporary, keep=args.keep, failed=status != 0)


def finish_workdir(workdir: Path, *, temporary: bool, keep: bool, failed: bool = False) -> bool:
    """Remove the demo's own temp folder unless --keep (or the demo failed: its server log is
    there); a --workdir the user gave is never removed. Returns whether it was removed."""
    if not temporary:
        say(f"files kept in {workdir} (your --workdir)")
        return False
    if keep or failed:
        why = "--keep" if keep else "the demo failed; the server log is there"
        say(f"files kept in {workdir} ({why}); delete the folder when done")
        return False
    shutil.rmtree(workdir, ignore_errors=True)
    say(f"removed the temp folder {workdir} (run with --keep to keep the trained files, previews and grid)")
    return True


def _run(args: argparse.Namespace, host: Path, workdir: Path) -> int:
    if args.checkpoint is None:
        say("the default model is a tiny random one: its pictures are noise, the pipeline is real "
            "(use --checkpoint PATH --dataset DIR for your own model and images)")
    server = ComfyServer(host, sys.executable, ServerLayout(workdir))
    say(f"starting ComfyUI ({host}) with the pack on {server.url}; files under {workdir}"
        + ("" if args.workdir or args.keep else " (a temp folder, removed at the end unless --keep)"))
    server.start()
    try:
        demo = Demo(args, server)
        dataset, tagger = demo.prepare()
        train = demo.train_prompt(dataset, tagger)
        trained = demo.run("Train a hypernetwork", train)
        grid = demo.grid_prompt()
        compared = demo.run("Compare checkpoints", grid)

        folder = server.layout.hypernetworks / args.name
        say(f"checkpoints (.pt + .optim): {folder}")
        say(f"previews:   {len(list(folder.glob(args.name + '-*.png')))} in {folder}")
        say(f"loss CSV:   {folder / 'hypernetwork_loss.csv'}")
        say(f"final file: {server.layout.hypernetworks / (args.name + '.pt')}")
        say(f"loss plot:  {demo.saved(trained, train, 'SaveImage')}")
        say(f"XY grid:    {demo.saved(compared, grid, 'HypernetworkXYGrid')}")
        say(f"server log: {server.log_path}")
        if args.serve:
            say(f"UI running at {server.url} (Ctrl+C to stop); load example_workflows/*.json there")
            if args.checkpoint is None:
                say("the examples load a real checkpoint; for the tiny one replace 'Load Checkpoint' by "
                    "HNTestTinyCheckpointLoader (category hn_test)")
            while server.alive():
                time.sleep(1)
    except PromptError as exc:
        say(f"failed: {exc}")
        say(f"server log: {server.log_path}")
        return 1
    except KeyboardInterrupt:
        say("stopped")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
