"""Train Hypernetwork's `export_run_file`: write the run as a run file for the headless runner
(scripts/train_run.py, under torchrun) instead of training. Nothing is trained.

Files go to `<output>/hypernetwork_runs/`: `<name>.run.json` (a new numbered name when one exists;
nothing is ever overwritten) and, when the network did not come from a file, `<name>.start.pt`,
the network to start from.
"""
from __future__ import annotations

from pathlib import Path

from ..hypernet.data.dataset import Dataset
from ..hypernet.network.base_model_hash import HashCache, sha256_file
from ..hypernet.network.fileio import save_hypernetwork
from ..hypernet.network.module import Hypernetwork
from ..hypernet.train.train_config import TrainConfig
from ..hypernet.train.log import LossHistory
from ..hypernet.train.loss_plot import render_loss_plot
from ..hypernet.train.training_preview import PreviewSettings
from ..hypernet.train.run_file import RUN_SUFFIX, START_SUFFIX, LoaderNode, NetworkSource, RunFile
from ..hypernet.util.atomic import TargetExistsError, atomic_path, atomic_write_text
from .host import base_model, feedback, loaders, paths
from .tensors import pil_to_image

EXPORT_FOLDER = "hypernetwork_runs"
_OUTPUTS = {"model": "MODEL", "clip": "CLIP", "vae": "VAE"}


def trace_loader(prompt: object, node_id: object) -> LoaderNode:
    """The one loader node that gives the Train node its model, clip and vae, with literal inputs.

    The runner loads the checkpoint itself with that node; a graph that changes the MODEL on the way
    (a LoRA, a patch) cannot be repeated headless, so it is refused with the reason.
    """
    node = prompt.get(str(node_id)) if isinstance(prompt, dict) and node_id is not None else None
    if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
        raise ValueError("export_run_file: the workflow graph is not available (queue the graph to export)")
    sources: dict[str, tuple[str, int]] = {}
    for name in _OUTPUTS:
        link = node["inputs"].get(name)
        if not (isinstance(link, list) and len(link) == 2 and isinstance(link[1], int)):
            raise ValueError(f"export_run_file: the {name} input is not connected to a node")
        sources[name] = (str(link[0]), link[1])
    loader_ids = {source for source, _ in sources.values()}
    if len(loader_ids) != 1:
        raise ValueError("export_run_file: model, clip and vae must come straight from one loader node (Load "
                         f"Checkpoint); here they come from nodes {sorted(loader_ids)}")
    loader_id = loader_ids.pop()
    loader = prompt.get(loader_id)
    inputs = loader.get("inputs") if isinstance(loader, dict) else None
    if not isinstance(inputs, dict):
        raise ValueError(f"export_run_file: node {loader_id} is not in the workflow graph")
    linked = sorted(k for k, v in inputs.items() if isinstance(v, list))
    if linked:
        raise ValueError(f"export_run_file: node {loader_id} ({loader.get('class_type')}) has linked inputs "
                         f"{linked}; the headless runner loads the model with a loader node whose inputs are "
                         "values, such as Load Checkpoint connected straight to Train Hypernetwork")
    return LoaderNode(loader_id, str(loader.get("class_type")), dict(inputs),
                      {k: index for k, (_, index) in sources.items()})


def _with_file_hash(loader: LoaderNode) -> LoaderNode:
    found = loaders.loader_model_file(loader.inputs)
    if found is None:
        return loader
    file_input, path = found
    cache = HashCache(paths.default_hypernetwork_folder() / base_model.HASH_CACHE_NAME)
    return LoaderNode(loader.node_id, loader.class_type, loader.inputs, loader.outputs, file_input,
                      cache.sha256(path, should_stop=feedback.interrupted))


def _new_stem(folder: Path, name: str) -> str:
    """`name`, or `name-2`, `name-3`, ... : the first stem whose run file and start file are free."""
    number = 1
    while True:
        stem = name if number == 1 else f"{name}-{number}"
        if not (folder / f"{stem}{RUN_SUFFIX}").exists() and not (folder / f"{stem}{START_SUFFIX}").exists():
            return stem
        number += 1


def export_run(*, network: Hypernetwork, source_file: Path | None, hypernetwork_name: str, dataset: Dataset,
               config: TrainConfig, preview: PreviewSettings, resume: bool, overwrite: bool, prompt: object,
               unique_id: object) -> dict:
    """Write the run file (and the start network when it is not a file); return the node's output."""
    loader = _with_file_hash(trace_loader(prompt, unique_id))
    if not dataset.items:
        raise ValueError("dataset: no images to train on; check LoadDataset's report")
    folder = paths.output_directory() / EXPORT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        stem = _new_stem(folder, network.name)
        try:
            if source_file is not None:
                source = NetworkSource(hypernetwork_name, None, sha256_file(source_file))
            else:
                start = folder / f"{stem}{START_SUFFIX}"
                with atomic_path(start, replace=False) as tmp:
                    save_hypernetwork(network, tmp)
                source = NetworkSource(None, start.name, sha256_file(start))
            run = RunFile(network.name, config, preview, resume, overwrite, source, dataset, loader, str(unique_id))
            path = atomic_write_text(folder / f"{stem}{RUN_SUFFIX}", run.to_json(), replace=False)
            break
        except TargetExistsError:  # another export took the name meanwhile: take the next one
            continue
    report = (f"run file written to {path} (nothing was trained). Train it with\n"
              f"  torchrun --nproc_per_node <GPUs> scripts/train_run.py {path}\n"
              "from the pack's folder (docs/distributed.md).")
    history = LossHistory()
    plot = render_loss_plot(history.steps, history.losses, history.learning_rates, history.events)
    return {"ui": {"text": [report]}, "result": (network, str(path), history, pil_to_image(plot))}
