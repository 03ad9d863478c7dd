"""The run file and the headless runner (scripts/train_run.py) on the real host, tiny models, CPU, gloo.

One rank is the node, bit for bit; two ranks at per-rank batch 1 match one rank at batch 2 within
float tolerance; a 2-rank checkpoint resumes on 1 rank on the same curve; a killed rank stops the
other with a clear message and leaves loadable files.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.support.datasets import make_shapes_dataset
from tests.support.server import TEST_NODES_DIR, python_for_tests

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME = "ddp_net"
LOADER_ID, TRAIN_ID = "4", "9"
# Two ranks sum per-rank gradients of batch-1 UNet passes where one rank runs one batch-2 pass: the
# same numbers in another order, so float32 rounding differs (~1e-7 relative). With AdamW's default
# eps (1e-8) a gradient component that is ~0 steps by about +-lr whatever its last bits, so one
# rounding difference becomes an lr-sized weight difference; these runs use eps 1e-3, which keeps
# AdamW's step smooth in the gradient (Lipschitz lr/eps), so two ranks and one differ only by
# rounding: rtol 1e-4 / atol 1e-6 after several steps (a wrong share, weight or noise row is >1e-3).
ADAMW_EPS = 1e-3
RTOL, ATOL = 1e-4, 1e-6


@pytest.fixture(scope="module")
def pack(comfy_host):
    importlib.import_module(f"{comfy_host.pack.__name__}.nodes.train")
    importlib.import_module(f"{comfy_host.pack.__name__}.hypernet.train.run_file")
    return comfy_host.pack


@pytest.fixture(scope="module")
def setup(comfy_host, pack, tmp_path_factory):
    """(model, clip, vae, dataset, starting network) for every run here."""
    folder = make_shapes_dataset(tmp_path_factory.mktemp("ddp_shapes"), count=4, size=64)
    dataset = pack.hypernet.data.load.load_dataset(str(folder)).dataset
    model, clip, vae = comfy_host.tiny.build_tiny("sd1", 0)
    widths = pack.nodes.host.patches.attention_widths(model)
    config = pack.hypernet.network.hypernetwork_config.HypernetworkConfig(name=NAME, sizes=list(widths["self"] + widths["cross"]),
                                                             seed=3)
    with torch.inference_mode():
        network = pack.hypernet.network.module.Hypernetwork.create(config)
    return model, clip, vae, dataset, network


def graph() -> dict:
    return {LOADER_ID: {"class_type": "HNTestTinyCheckpointLoader", "inputs": {"kind": "sd1", "seed": 0}},
            TRAIN_ID: {"class_type": "TrainHypernetwork",
                       "inputs": {"model": [LOADER_ID, 0], "clip": [LOADER_ID, 1], "vae": [LOADER_ID, 2]}}}


def node_train(pack, setup, *, steps, export=False, resume=False, prompt=None):
    model, clip, vae, dataset, network = setup
    node = pack.nodes.train.TrainHypernetwork()
    with torch.inference_mode():
        return node.train(model, clip, vae, dataset, "none", template="[filewords]", learning_rate="1e-2",
                          steps=steps, batch_size=2, grad_accumulation_steps=1, seed=7, save_every=2, resume=resume,
                          hypernetwork=network, options={"adamw_eps": ADAMW_EPS}, unique_id=TRAIN_ID,
                          prompt=prompt or graph(),
                          export_run_file=export)


def run_file_with(source: Path, target: Path, resume: bool = False, **config) -> Path:
    data = json.loads(source.read_text())
    data["config"].update(config)
    data["resume"] = resume
    target.write_text(json.dumps(data))
    return target


def runner_command(comfy_host, run_file: Path, out: Path, ranks: int) -> list[str]:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"] if ranks > 1 else []
    return [python_for_tests(), *launcher, str(REPO_ROOT / "scripts" / "train_run.py"), str(run_file),
            "--comfyui", str(comfy_host.path), "--custom-nodes", str(TEST_NODES_DIR),
            "--hypernetwork-folder", str(out / "hypernetworks"), "--collective-timeout", "60",
            "--cpu", "--use-pytorch-cross-attention", "--output-directory", str(out / "output"),
            "--temp-directory", str(out / "temp")]


def run_runner(comfy_host, run_file: Path, out: Path, ranks: int = 1) -> subprocess.CompletedProcess:
    (out / "hypernetworks").mkdir(parents=True, exist_ok=True)
    # the node ran with this process's thread count: the same kernels need the same split to be bit-equal
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads() if ranks == 1 else 1))
    done = subprocess.run(runner_command(comfy_host, run_file, out, ranks), capture_output=True, text=True,
                          timeout=900, env=env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done


def weights(pack, path: Path) -> dict:
    network = pack.hypernet.network.fileio.load_hypernetwork(path)
    return {k: v.detach().clone() for k, v in network.named_parameters()}, network.step


@pytest.fixture(scope="module")
def exported(comfy_host, pack, setup, tmp_path_factory):
    out = node_train(pack, setup, steps=4, export=True)
    return Path(out["result"][1]), out


def test_export_writes_a_run_file_that_round_trips_and_trains_nothing(comfy_host, pack, setup, exported):
    path, out = exported
    run_file = pack.hypernet.train.run_file
    assert path.name == f"{NAME}.run.json" and "nothing was trained" in out["ui"]["text"][0]
    loaded = run_file.RunFile.from_json(path.read_bytes())
    assert loaded.to_dict() == json.loads(path.read_text())
    assert loaded.config.steps == 4 and loaded.config.seed == 7 and loaded.config.batch_size == 2
    assert [i.path for i in loaded.dataset.items] == [i.path for i in setup[3].items]
    assert loaded.base_model.class_type == "HNTestTinyCheckpointLoader" and loaded.base_model.inputs["kind"] == "sd1"
    start = path.parent / loaded.network.start_file
    assert weights(pack, start)[0].keys() == dict(setup[4].named_parameters()).keys()
    assert not (comfy_host.models_dir / "hypernetworks" / NAME).exists()  # exporting trains nothing
    second = Path(node_train(pack, setup, steps=4, export=True)["result"][1])
    assert second != path and path.is_file()  # a second export never overwrites the first


def test_export_refuses_a_string_flag_and_a_model_through_another_node(pack, setup):
    with pytest.raises(ValueError, match="export_run_file"):
        node_train(pack, setup, steps=4, export="false")
    prompt = graph()
    prompt["5"] = {"class_type": "LoraLoader", "inputs": {"model": [LOADER_ID, 0], "clip": [LOADER_ID, 1]}}
    prompt[TRAIN_ID]["inputs"]["model"] = ["5", 0]
    with pytest.raises(ValueError, match="one loader node"):
        node_train(pack, setup, steps=4, export=True, prompt=prompt)


def test_runner_refuses_a_changed_start_network(comfy_host, pack, exported, tmp_path):
    path, _ = exported
    data = json.loads(path.read_text())
    data["network"]["sha256"] = "0" * 64
    bad = path.parent / "tampered.run.json"
    bad.write_text(json.dumps(data))
    try:
        done = subprocess.run(runner_command(comfy_host, bad, tmp_path, 1), capture_output=True, text=True,
                              timeout=600, cwd=REPO_ROOT)
    finally:
        bad.unlink()
    assert done.returncode == 1 and "has changed since the export" in done.stderr
    assert not (tmp_path / "hypernetworks" / NAME).exists()


def test_one_rank_is_the_node_and_two_ranks_match_it_and_resume_on_one(comfy_host, pack, setup, exported, tmp_path):
    path, _ = exported
    hn_folder = comfy_host.models_dir / "hypernetworks"
    node_train(pack, setup, steps=4)
    node_final, node_step = weights(pack, hn_folder / f"{NAME}.pt")
    node_csv = (hn_folder / NAME / "hypernetwork_loss.csv").read_text()

    one = tmp_path / "one"
    run_runner(comfy_host, path, one, ranks=1)
    one_final, one_step = weights(pack, one / "hypernetworks" / f"{NAME}.pt")
    assert one_step == node_step == 4
    for key in node_final:  # bit-identical on CPU
        assert torch.equal(one_final[key], node_final[key]), key
    assert (one / "hypernetworks" / NAME / "hypernetwork_loss.csv").read_text() == node_csv

    two = tmp_path / "two"
    run_runner(comfy_host, path, two, ranks=2)
    two_final, two_step = weights(pack, two / "hypernetworks" / f"{NAME}.pt")
    assert two_step == 4
    for key in node_final:
        torch.testing.assert_close(two_final[key], node_final[key], rtol=RTOL, atol=ATOL)
    for name in (f"{NAME}-2.pt", f"{NAME}-2.pt.optim", f"{NAME}-4.pt", "hypernetwork_loss.csv",
                 "training_settings.json"):
        assert (two / "hypernetworks" / NAME / name).is_file(), name

    # Resume the 2-rank run on one rank to step 6: the same curve as the node's 6 steps in one go.
    longer = run_file_with(path, path.parent / "longer.run.json", resume=True, steps=6)
    try:
        run_runner(comfy_host, longer, two, ranks=1)
    finally:
        longer.unlink()
    resumed, resumed_step = weights(pack, two / "hypernetworks" / f"{NAME}.pt")
    reference_folder = hn_folder / NAME
    node_train(pack, setup, steps=6)  # resume off: moves the 4-step run aside, trains 6 steps
    reference, _ = weights(pack, hn_folder / f"{NAME}.pt")
    assert resumed_step == 6
    for key in reference:
        torch.testing.assert_close(resumed[key], reference[key], rtol=RTOL, atol=ATOL)
    losses = [float(r.split(",")[3]) for r in (two / "hypernetworks" / NAME / "hypernetwork_loss.csv").read_text()
              .splitlines()[1:]]
    reference_losses = [float(r.split(",")[3]) for r in (reference_folder / "hypernetwork_loss.csv").read_text()
                        .splitlines()[1:]]
    assert len(losses) == 6
    assert losses == pytest.approx(reference_losses, rel=1e-4)


def _rank_pids(launcher: int) -> dict[int, int]:
    """{rank: pid} of torchrun's workers (children of its agent), read from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid != launcher:
                continue
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        for item in env:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = int(entry.name)
    return found


def start_long_run(comfy_host, path: Path, out: Path, save_every: int) -> tuple[subprocess.Popen, Path]:
    """A 2-rank run of 500 steps, returned once its checkpoint of step 3 (with `.optim`) exists."""
    long_run = run_file_with(path, path.parent / f"long-{out.name}.run.json", steps=500, save_every=save_every)
    (out / "hypernetworks").mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen(runner_command(comfy_host, long_run, out, 2), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (out / "hypernetworks" / NAME / f"{NAME}-3.pt.optim").exists():
            assert process.poll() is None, process.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.5)
    except BaseException:
        process.kill()
        raise
    finally:
        long_run.unlink()
    return process, out / "hypernetworks" / NAME


def finish(process: subprocess.Popen) -> str:
    try:
        return process.communicate(timeout=300)[1]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def newest_checkpoint_loads(pack, folder: Path) -> int:
    checkpoints = pack.hypernet.train.checkpoints.RunFolder(folder.parent, NAME).checkpoints()
    assert checkpoints and checkpoints[-1].step >= 3
    last = checkpoints[-1]
    assert pack.hypernet.network.fileio.load_hypernetwork(last.path).step == last.step
    assert pack.hypernet.network.fileio.load_optimizer_state(last.path).ok
    assert not [p.name for p in folder.iterdir() if ".tmp" in p.name]
    return last.step


def test_ctrl_c_stops_every_rank_at_one_step_and_rank_0_saves_it(comfy_host, pack, exported, tmp_path):
    process, folder = start_long_run(comfy_host, exported[0], tmp_path / "interrupted", save_every=3)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does: the whole process group
    stderr = finish(process)
    assert process.returncode != 0
    step = newest_checkpoint_loads(pack, folder)
    for rank in (0, 1):
        assert f"[rank {rank}] stopped at step {step} by Ctrl-C" in stderr, stderr[-4000:]


def test_a_killed_rank_stops_the_other_with_a_clear_message_and_loadable_files(comfy_host, pack, exported, tmp_path):
    process, folder = start_long_run(comfy_host, exported[0], tmp_path / "killed", save_every=1)
    pids = _rank_pids(process.pid)
    assert set(pids) == {0, 1}, pids
    os.kill(pids[1], signal.SIGKILL)
    stderr = finish(process)
    assert process.returncode != 0
    assert "[rank 0]" in stderr and ("another rank" in stderr or "SIGTERM" in stderr), stderr[-4000:]
    newest_checkpoint_loads(pack, folder)
