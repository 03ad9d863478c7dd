"""Training on the real host in-process: gradients, frozen models, loss, resume, architectures."""
from __future__ import annotations

import importlib

import pytest
import torch

from tests.support.datasets import make_shapes_dataset


@pytest.fixture(scope="module")
def pack(comfy_host):
    for name in ("train.trainer", "data.load", "train.log", "train.checkpoints"):
        importlib.import_module(f"{comfy_host.pack.__name__}.hypernet.{name}")
    importlib.import_module(f"{comfy_host.pack.__name__}.nodes.train")
    return comfy_host.pack


@pytest.fixture(scope="module")
def shapes(tmp_path_factory, pack):
    folder = make_shapes_dataset(tmp_path_factory.mktemp("shapes"), count=4, size=64)
    return pack.hypernet.data.load.load_dataset(str(folder)).dataset


def create(pack, name, sizes, seed=0, **kwargs):
    config = pack.hypernet.network.hypernetwork_config.HypernetworkConfig(name=name, sizes=sizes, seed=seed, **kwargs)
    with torch.inference_mode():
        return pack.hypernet.network.module.Hypernetwork.create(config)


def train(pack, model, clip, vae, dataset, network, *, steps, lr="1e-2", batch_size=2, save_every=0, seed=0,
          resume=False, **options):
    node = pack.nodes.train.TrainHypernetwork()
    with torch.inference_mode():  # the host runs every node in inference mode
        return node.train(model, clip, vae, dataset, "none", template="[filewords]", learning_rate=lr, steps=steps,
                          batch_size=batch_size, grad_accumulation_steps=1, seed=seed, save_every=save_every,
                          resume=resume, hypernetwork=network, **options)


def snapshot(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("kind", ["sd1", "sd2v", "sdxl"])
def test_gradients_reach_every_patched_layer(comfy_host, pack, kind):
    host, hn = pack.nodes.host, pack.hypernet
    model, clip, _ = comfy_host.tiny.build_tiny(kind)
    widths = host.patches.attention_widths(model)
    network = hn.train.trainer.copy_network(create(pack, f"grad_{kind}", list(widths["self"] + widths["cross"])))
    with torch.inference_mode():
        cond, pooled = host.training.encode_prompt_for_training(clip, "a red circle")
    with torch.inference_mode(False), torch.enable_grad():
        training_model = host.training.TrainingModel(model, hn.network.patch.HypernetworkPatch([(network, 1.0)]))
        try:
            network.train()
            conds = training_model.conditioning(cond, pooled, 64, 64)
            prediction, target = training_model.prediction_and_target(torch.randn(1, 4, 8, 8), conds,
                                                                       torch.Generator().manual_seed(0))
            torch.nn.functional.mse_loss(prediction, target).backward()
        finally:
            training_model.close()
    for width in network.widths:
        for slot in (0, 1):
            grads = [p.grad for p in network.pair(width)[slot].parameters()]
            assert all(g is not None and g.abs().sum() > 0 for g in grads), f"no gradient at width {width}/{slot}"


def test_in_place_residuals_of_the_pinned_host_are_what_the_hook_fixes(comfy_host, pack):
    """Without the training copy's norm-input hook the 2024 host's `x += n` breaks backward."""
    host, hn = pack.nodes.host, pack.hypernet
    model, clip, _ = comfy_host.tiny.build_tiny("sd1")
    network = hn.train.trainer.copy_network(create(pack, "nohook", [32, 64, 768]))
    with torch.inference_mode():
        cond, pooled = host.training.encode_prompt_for_training(clip, "x")
    with torch.inference_mode(False), torch.enable_grad():
        training_model = host.training.TrainingModel(model, hn.network.patch.HypernetworkPatch([(network, 1.0)]))
        try:
            for handle in training_model._handles:
                handle.remove()
            conds = training_model.conditioning(cond, pooled, 64, 64)
            prediction, target = training_model.prediction_and_target(torch.randn(1, 4, 8, 8), conds,
                                                                       torch.Generator().manual_seed(0))
            loss = torch.nn.functional.mse_loss(prediction, target)
            in_place_host = "x += n" in open(comfy_host.path / "comfy/ldm/modules/attention.py").read()
            if in_place_host:
                with pytest.raises(RuntimeError, match="inplace"):
                    loss.backward()
            else:
                loss.backward()
        finally:
            training_model.close()


def test_only_the_hypernetwork_changes(comfy_host, pack, shapes):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    before = [snapshot(model.model), snapshot(clip.cond_stage_model), snapshot(vae.first_stage_model)]
    patches_before = dict(model.model_options.get("transformer_options", {}).get("patches", {}))
    network = create(pack, "frozen_check", [32, 64])
    start = {k: v.clone() for k, v in network.named_parameters()}
    out = train(pack, model, clip, vae, shapes, network, steps=3)
    after = [snapshot(model.model), snapshot(clip.cond_stage_model), snapshot(vae.first_stage_model)]
    for old, new in zip(before, after):
        assert old.keys() == new.keys()
        assert all(torch.equal(old[k], new[k]) for k in old), "a frozen model changed"
    assert model.model_options.get("transformer_options", {}).get("patches", {}) == patches_before
    assert all(torch.equal(v, dict(network.named_parameters())[k]) for k, v in start.items()), \
        "the incoming HYPERNETWORK (cached by the host) must not be trained in place"
    trained = dict(out["result"][0].named_parameters())
    assert any(not torch.equal(start[k], trained[k]) for k in start)



@pytest.mark.parametrize("source", ["socket", "file"])
def test_the_node_trains_one_copy_and_its_start_point_references_the_incoming_weights(
        comfy_host, pack, shapes, monkeypatch, source):
    """One copy of the network per run (the session's, from resume_point), and the rollback point of
    the start references the weights that came in (never changed) instead of holding another copy:
    for an SD1.5 network each copy is 84 MB, 250 MB with AdamW state."""
    trainer_module = pack.hypernet.train.trainer
    points, copied = [], []
    original_start, original_copy = trainer_module.start_point, trainer_module.copy_network

    def start_point(network, optimizer, unchanged=None):
        points.append(original_start(network, optimizer, unchanged))
        return points[-1]

    monkeypatch.setattr(trainer_module, "start_point", start_point)
    monkeypatch.setattr(trainer_module, "copy_network", lambda n: copied.append(n) or original_copy(n))
    handed = []
    session_class = pack.nodes.train.TrainingSession

    class Session(session_class):
        def __init__(self, **kwargs):
            handed.append(kwargs["network"])
            super().__init__(**kwargs)

    monkeypatch.setattr(pack.nodes.train, "TrainingSession", Session)
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    network = create(pack, "one_copy", [32, 64])
    if source == "socket":
        out = train(pack, model, clip, vae, shapes, network, steps=2)
    else:  # continue a file: the node loads it, the session copies that once
        path = comfy_host.models_dir / "hypernetworks" / "one_copy_file.pt"
        pack.hypernet.network.fileio.save_hypernetwork(network, path)
        with torch.inference_mode():
            out = pack.nodes.train.TrainHypernetwork().train(
                model, clip, vae, shapes, path.name, template="[filewords]", learning_rate="1e-2", steps=2,
                batch_size=2, grad_accumulation_steps=1, seed=0, save_every=0, resume=False, overwrite=True)
    [point] = points
    if source == "socket":
        assert handed == [network], "the node hands the incoming network over as it is (no copy of its own)"
    assert copied == handed and copied[0] is not out["result"][0], "the session copies it once"
    assert point.held_bytes == 0, "the start of the run is referenced, not copied"
    assert {n: t.data_ptr() for n, t in point.weights.items()} == {
        n: p.data_ptr() for n, p in copied[0].named_parameters()}

def _eval_loss(pack, comfy_host, model, clip, vae, dataset, network) -> float:
    """Loss on fixed timesteps and noise, so that before/after compare the same thing."""
    host, hn = pack.nodes.host, pack.hypernet
    encode_dataset_latents = importlib.import_module(f"{pack.__name__}.nodes.training_session").encode_dataset_latents

    with torch.inference_mode():
        latents = [m for m, _ in encode_dataset_latents(vae, dataset)]
        encoded = [host.training.encode_prompt_for_training(clip, item.caption) for item in dataset.items]
    net = hn.train.trainer.copy_network(network).eval()
    total = 0.0
    with torch.inference_mode(False), torch.no_grad():
        training_model = host.training.TrainingModel(model, hn.network.patch.HypernetworkPatch([(net, 1.0)]))
        try:
            for seed in range(6):
                for latent, (cond, pooled) in zip(latents, encoded):
                    conds = training_model.conditioning(cond, pooled, 64, 64)
                    prediction, target = training_model.prediction_and_target(
                        training_model.process_latent_in(latent), conds, torch.Generator().manual_seed(seed))
                    total += torch.nn.functional.mse_loss(prediction, target).item()
        finally:
            training_model.close()
    return total / (6 * len(latents))


def test_loss_falls_on_a_tiny_dataset(comfy_host, pack, shapes):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    network = create(pack, "falls", [32, 64], activation_func="relu")
    before = _eval_loss(pack, comfy_host, model, clip, vae, shapes, network)
    out = train(pack, model, clip, vae, shapes, network, steps=60, lr="1e-2", batch_size=4)
    losses = out["result"][2].losses
    window = len(losses) // 4
    assert sum(losses[-window:]) / window < sum(losses[:window]) / window
    after = _eval_loss(pack, comfy_host, model, clip, vae, shapes, out["result"][0])
    assert after < 0.98 * before, (before, after)


def test_resume_gives_identical_weights_and_csv(comfy_host, pack, shapes, tmp_path):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    folders = comfy_host.folder_paths.folder_names_and_paths["hypernetworks"][0]

    def run_in(folder, name, steps, resume):
        folders.insert(0, str(folder))
        try:
            return train(pack, model, clip, vae, shapes, create(pack, name, [32, 64]), steps=steps,
                         save_every=5, resume=resume, lr="5e-3")
        finally:
            folders.remove(str(folder))

    straight = run_in(tmp_path / "a", "resume_me", 20, False)
    run_in(tmp_path / "b", "resume_me", 10, False)
    resumed = run_in(tmp_path / "b", "resume_me", 20, True)
    a, b = straight["result"][0], resumed["result"][0]
    assert b.step == 20
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
    csv = "resume_me/hypernetwork_loss.csv"
    assert (tmp_path / "a" / csv).read_text() == (tmp_path / "b" / csv).read_text()
    assert "resumed from resume_me-10.pt" in resumed["ui"]["text"][0]


@pytest.mark.parametrize("kind", ["sd2v", "sdxl"])
def test_v_prediction_and_sdxl_models_train(comfy_host, pack, shapes, kind):
    model, clip, vae = comfy_host.tiny.build_tiny(kind)
    out = train(pack, model, clip, vae, shapes, create(pack, f"arch_{kind}", [32, 64]), steps=4)
    losses = out["result"][2].losses
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    if kind == "sd2v":
        assert "V_PREDICTION" in str(model.model.model_type)


def test_trained_file_loads_in_the_stock_loader(comfy_host, pack, shapes):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    out = train(pack, model, clip, vae, shapes, create(pack, "stock_reads_it", [32, 64, 768]), steps=2)
    path = out["result"][1]
    loader = comfy_host.nodes.NODE_CLASS_MAPPINGS["HypernetworkLoader"]()
    import os

    patched = loader.load_hypernetwork(model, os.path.basename(path), 1.0)[0]
    assert len(patched.model_options["transformer_options"]["patches"]["attn2_patch"]) >= 1


def test_induced_blow_up_is_rolled_back_and_the_file_loads(comfy_host, pack, shapes):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    out = train(pack, model, clip, vae, shapes, create(pack, "blow_up", [32, 64]), steps=8, lr="1e3",
                save_every=2, rollback=True, rollback_lr_factor=0.001, max_rollbacks=4)
    network, path, history = out["result"][0], out["result"][1], out["result"][2]
    assert all(torch.isfinite(p).all() for p in network.parameters())
    assert any(e["kind"] == "rollback" for e in history.events)
    assert "rollback" in (comfy_host.models_dir / "hypernetworks" / "blow_up" / "hypernetwork_loss.csv").read_text()
    reloaded = pack.hypernet.network.fileio.load_hypernetwork(path)
    assert reloaded.step == 8


def test_bucketed_variable_size_dataset_trains_with_batches(comfy_host, pack, tmp_path):
    from PIL import Image

    folder = tmp_path / "mixed"
    folder.mkdir()
    for index, size in enumerate([(128, 64), (128, 64), (64, 128), (64, 128), (96, 96)]):
        Image.new("RGB", size, (40 * index, 100, 200)).save(folder / f"{index}.png")
        (folder / f"{index}.txt").write_text(f"image {index}")
    dataset = pack.hypernet.data.load.load_dataset(str(folder)).dataset
    config = importlib.import_module(f"{pack.__name__}.hypernet.preprocess.preprocess_config").PreprocessConfig(
        width=96, height=96, mode="buckets", bucket_min=64, bucket_max=128, bucket_step=32)
    bucketed = importlib.import_module(f"{pack.__name__}.hypernet.preprocess.pipeline").preprocess(dataset, config).dataset
    assert len({item.size for item in bucketed.items}) >= 2
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    out = train(pack, model, clip, vae, bucketed, create(pack, "buckets", [32, 64]), steps=4, batch_size=2)
    assert len(out["result"][2].losses) == 4


def _graph(loader_class="CheckpointLoaderSimple", file_input="ckpt_name", name="tiny_base.safetensors"):
    """A prompt graph: loader -> Apply Hypernetwork -> Train Hypernetwork (node "9")."""
    return {
        "4": {"class_type": loader_class, "inputs": {file_input: name}},
        "6": {"class_type": "ApplyHypernetwork", "inputs": {"model": ["4", 0], "strength": 1.0}},
        "9": {"class_type": "TrainHypernetwork", "inputs": {"model": ["6", 0]}},
    }


def test_base_checkpoint_is_traced_hashed_once_and_saved_as_a1111_does(comfy_host, pack, shapes, tmp_path):
    import hashlib

    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "sd15").mkdir(parents=True)
    base_file = checkpoints / "sd15" / "tiny_base.safetensors"
    base_file.write_bytes(b"not really weights, only hashed" * 1000)
    comfy_host.folder_paths.folder_names_and_paths["checkpoints"][0].insert(0, str(checkpoints))
    try:
        model, clip, vae = comfy_host.tiny.build_tiny("sd1")
        out = train(pack, model, clip, vae, shapes, create(pack, "with_base", [32, 64, 768]), steps=2, save_every=1,
                    prompt=_graph(name="sd15/tiny_base.safetensors"), unique_id="9")
        expected = hashlib.sha256(base_file.read_bytes()).hexdigest()[:10]
        saved = pack.hypernet.network.fileio.load_hypernetwork(out["result"][1])
        assert (saved.sd_checkpoint, saved.sd_checkpoint_name) == (expected, "sd15_tiny_base")
        checkpoint = pack.hypernet.network.fileio.load_hypernetwork(
            next((comfy_host.models_dir / "hypernetworks" / "with_base").glob("with_base-1.pt")))
        assert checkpoint.sd_checkpoint == expected  # periodic copies carry it too, as in A1111
        assert f"sd15_tiny_base [{expected}]" in out["ui"]["text"][0]
        cache = pack.nodes.host.paths.default_hypernetwork_folder() / pack.nodes.host.base_model.HASH_CACHE_NAME
        assert str(base_file.resolve()) in cache.read_text()
    finally:
        comfy_host.folder_paths.folder_names_and_paths["checkpoints"][0].remove(str(checkpoints))


@pytest.mark.parametrize("prompt, unique_id, why", [
    (None, None, "workflow graph is not available"),
    ({"9": {"class_type": "TrainHypernetwork", "inputs": {"model": ["5", 0]}},
      "5": {"class_type": "ModelFromNowhere", "inputs": {}}}, "9", "not a checkpoint loader"),
    (_graph(name="absent.safetensors"), "9", "absent.safetensors"),
])
def test_unknown_base_checkpoint_is_reported_and_left_empty(comfy_host, pack, shapes, prompt, unique_id, why):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    out = train(pack, model, clip, vae, shapes, create(pack, "no_base", [32, 64, 768]), steps=1, prompt=prompt,
                unique_id=unique_id)
    saved = pack.hypernet.network.fileio.load_hypernetwork(out["result"][1])
    assert saved.sd_checkpoint is None and saved.sd_checkpoint_name is None
    report = out["ui"]["text"][0]
    assert "base model unknown" in report and why in report


def test_unknown_base_checkpoint_keeps_the_record_the_network_has(comfy_host, pack, shapes):
    """Continuing an A1111 file: its sd_checkpoint / sd_checkpoint_name are not erased (issue 26)."""
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    network = create(pack, "kept_base", [32, 64, 768])
    network.sd_checkpoint, network.sd_checkpoint_name = "0123456789", "earlier_base"
    out = train(pack, model, clip, vae, shapes, network, steps=1, prompt=None, unique_id=None)
    saved = torch.load(out["result"][1], weights_only=True)
    assert (saved["sd_checkpoint"], saved["sd_checkpoint_name"]) == ("0123456789", "earlier_base")
    report = out["ui"]["text"][0]
    assert "base model of this run unknown (the workflow graph is not available" in report
    assert "earlier_base [0123456789]" in report


@pytest.mark.parametrize("mode", ["fixed", "random"])
def test_previews_use_the_templated_prompt_and_the_chosen_seed_mode(comfy_host, pack, shapes, mode):
    model, clip, vae = comfy_host.tiny.build_tiny("sd1")
    node = pack.nodes.train.TrainHypernetwork()
    with torch.inference_mode():
        out = node.train(model, clip, vae, shapes, "none", template="art of [name], [filewords]", learning_rate="1e-3",
                         steps=2, batch_size=2, grad_accumulation_steps=1, seed=0, save_every=0, resume=False,
                         hypernetwork=create(pack, f"preview_{mode}", [32, 64, 768]), preview_every=1,
                         preview_seed=4242, preview_steps=1, preview_seed_mode=mode)
    report = out["ui"]["text"][0]
    assert f"prompt: art of preview_{mode}, {shapes.items[0].caption}" in report
    if mode == "fixed":
        assert "previews: seed 4242 (fixed)" in report
    else:
        seeds = [int(part.split(": ")[1]) for part in report.split("random seeds: ")[1].split(";")[0].split(", ")]
        assert len(seeds) == 2 and seeds[0] != seeds[1] and 4242 not in seeds
    assert len(out["ui"]["hn_preview"]) == 2
