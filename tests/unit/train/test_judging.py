"""Validation loss, the best checkpoint, early stop, EMA, Min-SNR, offset noise and the alpha loss
weight, on the toy problem of test_trainer (no ComfyUI)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hypernet.network.fileio import load_hypernetwork
from hypernet.train.checkpoints import RunFolder
from hypernet.train.ema import EmaWeights, warmed_decay
from hypernet.train.log import CSV_NAME, LossHistory
from hypernet.train.loss_terms import min_snr_weight, offset_noise, weighted_loss
from hypernet.train.trainer import TrainHooks, copy_network, element_loss, resume_point
from hypernet.train.validation import held_out_count, split_items, validation_timesteps
from tests.unit.train.test_trainer import WIDTH, config, run, toy_network


def sd_sigmas() -> torch.Tensor:
    """SD's scaled-linear beta schedule as k-diffusion sigmas (what the host's model_sampling holds)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5


@pytest.mark.parametrize("gamma", [1.0, 5.0])
def test_min_snr_weight_matches_the_paper_for_eps_and_v(gamma):
    sigma = sd_sigmas()[torch.tensor([0, 50, 200, 500, 999])]
    snr = 1 / sigma ** 2  # alpha_bar / (1 - alpha_bar)
    eps = min_snr_weight(sigma, sigma, gamma)  # eps-prediction: c_out = sigma
    v = min_snr_weight(sigma, sigma / (sigma ** 2 + 1) ** 0.5, gamma)  # v-prediction (sigma_data 1)
    assert torch.allclose(eps.double(), torch.clamp(snr, max=gamma) / snr, rtol=1e-6)
    assert torch.allclose(v.double(), torch.clamp(snr, max=gamma) / (snr + 1), rtol=1e-6)
    assert eps[-1] == pytest.approx(1.0) and eps[0] < 0.01  # noisy end untouched, clean end damped
    with pytest.raises(ValueError, match="min_snr_gamma"):
        min_snr_weight(sigma, sigma, 0.0)


def test_offset_noise_adds_a_per_channel_constant():
    plain = offset_noise((2, 4, 8, 8), torch.Generator().manual_seed(3), 0.0)
    assert torch.equal(plain, torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(3)))
    offset = offset_noise((2000, 4, 8, 8), torch.Generator().manual_seed(3), 0.1)
    base = torch.randn((2000, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    shift = offset - base
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-6)
    assert shift[:, :, 0, 0].std().item() == pytest.approx(0.1, rel=0.05)


def test_weighted_loss_weighs_each_element_before_the_mean():
    prediction, target = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    ones = torch.ones(2, 1, 6, 6)
    assert weighted_loss(prediction, target, ones, "mse", 0.1).item() == pytest.approx(
        element_loss(prediction, target, "mse", 0.1).item(), rel=1e-6)
    half = ones.clone()
    half[..., 3:] = 0
    expected = ((prediction - target) ** 2)[..., :3].sum() / prediction.numel()
    assert weighted_loss(prediction, target, half, "mse", 0.1).item() == pytest.approx(expected.item(), rel=1e-6)


def test_held_out_images_are_a_seeded_pick():
    assert held_out_count("0", 10) == 0 and held_out_count("3", 10) == 3 and held_out_count("25%", 10) == 3
    for bad in ("-1", "x", "2.5", "150%", "10"):
        with pytest.raises(ValueError, match="validation_images"):
            held_out_count(bad, 10)
    train, held = split_items(20, "20%", seed=5)
    assert len(held) == 4 and sorted(train + held) == list(range(20))
    assert split_items(20, "20%", seed=5) == (train, held)
    assert any(split_items(20, "20%", seed=s)[1] != held for s in range(6, 10))
    assert validation_timesteps(4).tolist() == [125, 375, 625, 875]


class ToyValidator:
    """The toy problem's held-out loss: the network on fixed inputs it never trains on."""

    def __init__(self, network, items: int = 3):
        gen = torch.Generator().manual_seed(999)
        self.inputs = torch.randn(items, 3, WIDTH, generator=gen)
        self.network = network
        self.dropout_seen = []

    def __call__(self) -> float:
        self.dropout_seen.append(self.network.training or torch.is_grad_enabled())
        return float(torch.nn.functional.mse_loss(self.network.pair(WIDTH)[0](self.inputs), 2 * self.inputs))


def validated_run(tmp_path, cfg, network=None, history=None, optimizer_state=None, validator=None):
    network = network or copy_network(toy_network())
    validator = validator or ToyValidator(network)
    seen = []
    hooks = TrainHooks(validate=validator, on_validation=lambda *args: seen.append(args))
    result, _ = run(tmp_path, cfg, network=network, hooks=hooks, history=history, optimizer_state=optimizer_state)
    return result, validator, seen


def test_validation_loss_is_logged_deterministic_and_without_dropout(tmp_path):
    cfg = config(steps=12, save_every=6, validation_images="1", validate_every=4)
    first, validator, seen = validated_run(tmp_path / "a", cfg)
    second, _, _ = validated_run(tmp_path / "b", cfg)
    assert [s for s, _, _ in seen] == [4, 6, 8, 12]
    assert validator.dropout_seen == [False] * 4
    csv_a = (tmp_path / "a" / "toy" / CSV_NAME).read_text()
    assert csv_a.splitlines()[0].endswith(",event,val_loss")
    assert csv_a == (tmp_path / "b" / "toy" / CSV_NAME).read_text()  # to the bit
    assert first.history.validations() == second.history.validations()
    read = LossHistory.read(tmp_path / "a" / "toy" / CSV_NAME).validations()
    assert [s for s, _ in read] == [4, 6, 8, 12] and read[-1][1] == pytest.approx(seen[-1][1], rel=1e-6)
    saved = load_hypernetwork(RunFolder(tmp_path / "a", "toy").checkpoint_path(12))
    assert saved.extra["hn_val_loss"] == seen[-1][1]


class RisingValidator(ToyValidator):
    """Held-out loss that bottoms out at the third evaluation and then rises (overfitting)."""

    def __init__(self, network):
        super().__init__(network)
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return abs(self.calls - 3) + 1.0


def test_best_checkpoint_copy_and_early_stop(tmp_path):
    network = copy_network(toy_network())
    cfg = config(steps=40, save_every=2, validation_images="1", stop_after_no_improvement=3)
    result, _, seen = validated_run(tmp_path, cfg, network=network, validator=RisingValidator(network))
    assert result.stopped == "early_stop" and result.network.step == 12
    assert "not improved for 3 evaluations" in result.message
    folder = RunFolder(tmp_path, "toy")
    assert result.judge.best.checkpoint_step == 6
    assert folder.best_path().read_bytes() == folder.checkpoint_path(6).read_bytes()
    assert "toy-6.pt, copied to toy-best.pt" in "\n".join(result.judge.report_lines())
    assert (tmp_path / "toy.pt").is_file()


def test_ema_follows_the_warmed_up_average_and_swaps_back():
    network = copy_network(toy_network())
    ema = EmaWeights(network, 0.999)
    before = [p.detach().clone() for p in network.parameters()]
    with torch.no_grad():
        for p in network.parameters():
            p.add_(1.0)
    network.step = 1
    ema.update(network)
    decay = warmed_decay(0.999, 1)
    assert decay == pytest.approx(2 / 11)
    for shadow, old in zip(ema.shadow.parameters(), before):
        assert torch.allclose(shadow, old + (1 - decay), atol=1e-6)
    raw = [p.detach().clone() for p in network.parameters()]
    average = [s.detach().clone() for s in ema.shadow.parameters()]
    with ema.swapped_into(network):
        assert all(torch.equal(p, s) for p, s in zip(network.parameters(), average))
    assert all(torch.equal(p, r) for p, r in zip(network.parameters(), raw))
    with pytest.raises(ValueError, match="ema_decay"):
        EmaWeights(network, 1.0)


def test_ema_files_are_validated_saved_and_restored_on_resume(tmp_path):
    cfg = dict(save_every=5, validation_images="1", ema_decay=0.9)
    straight, _, seen = validated_run(tmp_path / "straight", config(steps=10, **cfg))
    assert all(ema is not None and ema != raw for _, raw, ema in seen)
    validated_run(tmp_path / "split", config(steps=5, **cfg))
    folder = RunFolder(tmp_path / "split", "toy")
    network, optim, history, _ = resume_point(toy_network(), folder, resume=True, max_step=10, source_file=None)
    resumed, _, _ = validated_run(tmp_path / "split", config(steps=10, **cfg), network=network, history=history,
                                  optimizer_state=optim)
    assert "EMA restored from toy-5-ema.pt" in resumed.judge.ema_note
    a = load_hypernetwork(RunFolder(tmp_path / "straight", "toy").ema_path(10))
    b = load_hypernetwork(folder.ema_path(10))
    assert a.extra["hn_weights"] == "ema" and load_hypernetwork(tmp_path / "split" / "toy.pt").extra["hn_weights"] == "raw"
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(x, y), name
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), straight.network.parameters()))


def test_a_resumed_run_keeps_the_best_checkpoint_and_the_early_stop_count(tmp_path):
    network = copy_network(toy_network())
    cfg = dict(save_every=2, validation_images="1", stop_after_no_improvement=3)
    validator = RisingValidator(network)
    first, _, _ = validated_run(tmp_path, config(steps=8, **cfg), network=network, validator=validator)
    assert first.stopped == "finished" and first.judge.best.since_best == 1  # best at step 6
    folder = RunFolder(tmp_path, "toy")
    network, optim, history, _ = resume_point(toy_network(), folder, resume=True, max_step=40, source_file=None)
    validator.network = network
    resumed, _, _ = validated_run(tmp_path, config(steps=40, **cfg), network=network, history=history,
                                  optimizer_state=optim, validator=validator)
    assert resumed.stopped == "early_stop" and resumed.network.step == 12
    assert resumed.judge.best.checkpoint_step == 6
    assert folder.best_path().read_bytes() == folder.checkpoint_path(6).read_bytes()


def test_grid_axis_marks_the_checkpoint_with_the_lowest_validation_loss():
    from hypernet.grid.values import BEST_MARK, AxisContext, mark_best_checkpoint, parse_axis

    files = ["run/run-2.pt", "run/run-4.pt", "run/run-6.pt"]
    axis = parse_axis("hypernetwork", ", ".join(files), AxisContext(hypernetwork_files=files))
    losses = {"run/run-2.pt": 0.31, "run/run-4.pt": 0.22, "run/run-6.pt": 0.27}
    marked = mark_best_checkpoint(axis, losses.get)
    assert marked.labels == ("step 2", "step 4" + BEST_MARK, "step 6")
    assert mark_best_checkpoint(axis, {"run/run-2.pt": 0.3}.get).labels == axis.labels  # one known: no mark
    seeds = parse_axis("seed", "1, 2", AxisContext())
    assert mark_best_checkpoint(seeds, losses.get) is seeds


def test_alpha_weight_map_is_normalised_as_a1111_and_ones_without_alpha():
    from PIL import Image

    from hypernet.train.alpha_weight import weight_map

    alpha = Image.new("L", (64, 32), 0)
    alpha.paste(255, (0, 0, 32, 32))  # left half opaque
    weight = weight_map(alpha, (4, 8))  # latent (h, w): the map is not transposed
    assert weight.shape == (1, 4, 8)
    assert weight.min().item() == 0 and weight.mean().item() == pytest.approx(1.0)
    assert torch.all(weight[..., :3] > 1.5) and torch.all(weight[..., 5:] == 0)
    assert torch.equal(weight_map(None, (4, 8)), torch.ones(1, 4, 8))
    assert torch.equal(weight_map(Image.new("L", (64, 32), 255), (4, 8)), torch.ones(1, 4, 8))


def test_alpha_moves_with_crops_flips_and_pads(tmp_path):
    from PIL import Image

    from hypernet.data.dataset import DatasetItem, Transform
    from hypernet.data.dataset import item_alpha

    rgba = Image.new("RGBA", (40, 20), (200, 10, 10, 0))
    rgba.paste((10, 200, 10, 255), (0, 0, 10, 20))  # opaque leftmost quarter
    rgba.save(tmp_path / "a.png")
    Image.new("RGB", (40, 20), (1, 2, 3)).save(tmp_path / "opaque.png")
    crop_flip = Transform((0, 0, 20, 20), (20, 20), flip=True)
    item = DatasetItem(str(tmp_path / "a.png"), 40, 20, transforms=(crop_flip,))
    alpha = np.asarray(item_alpha(item))
    assert alpha.shape == (20, 20) and (alpha[:, 10:] == 255).all() and (alpha[:, :10] == 0).all()
    padded = Transform((0, 0, 40, 20), (40, 20), canvas=(40, 40), offset=(0, 10))
    alpha = np.asarray(item_alpha(DatasetItem(str(tmp_path / "a.png"), 40, 20, transforms=(padded,))))
    assert (alpha[:10] == 0).all() and (alpha[30:] == 0).all() and (alpha[10:30, :10] == 255).all()
    assert item_alpha(DatasetItem(str(tmp_path / "opaque.png"), 40, 20)) is None


def test_latent_store_round_trip_keys_tampering_and_bound(tmp_path):
    from PIL import Image

    from hypernet.data.dataset import DatasetItem, Transform
    from hypernet.train.latent_store import LatentStore, item_key

    Image.new("RGB", (16, 16), (1, 2, 3)).save(tmp_path / "a.png")
    item = DatasetItem(str(tmp_path / "a.png"), 16, 16)
    key = item_key(item, (16, 16), "vae1")
    assert key != item_key(item, (16, 16), "vae2")
    assert key != item_key(DatasetItem(item.path, 16, 16, transforms=(Transform((0, 0, 16, 16), (16, 16), flip=True),)),
                           (16, 16), "vae1")
    store = LatentStore(tmp_path / "cache", limit_bytes=10_000)
    assert store.get(key) is None
    mean, std = torch.randn(1, 4, 2, 2), torch.rand(1, 4, 2, 2)
    store.put(key, (mean, std))
    got = store.get(key)
    assert torch.equal(got[0], mean) and torch.equal(got[1], std)
    Image.new("RGB", (16, 16), (9, 9, 9)).save(tmp_path / "a.png")  # the image changed: a new key
    assert item_key(item, (16, 16), "vae1") != key
    path = store.entries()[0]
    path.write_bytes(b"not safetensors")
    assert store.get(key) is None and store.stats.unreadable == 1
    for index in range(40):  # ~300 bytes each: the bound keeps the newest
        store.put(f"{index:064x}", (torch.randn(1, 4, 4, 4), None))
    store.prune(keep=[f"{39:064x}"])
    assert sum(p.stat().st_size for p in store.entries()) <= 10_000 and store.stats.pruned > 0
    assert store.get(f"{39:064x}") is not None
    with pytest.raises(ValueError, match="sha256"):
        store.get("../escape")


def test_judging_settings_are_checked():
    from hypernet.train.train_config import TrainConfig

    for bad, field in ((dict(validation_images="ten"), "validation_images"),
                       (dict(stop_after_no_improvement=3), "stop_after_no_improvement"),
                       (dict(ema_decay=1.0), "ema_decay"), (dict(min_snr_gamma=-1.0), "min_snr_gamma"),
                       (dict(noise_offset=2.0), "noise_offset"), (dict(alpha_loss_weight="false"), "alpha_loss_weight")):
        with pytest.raises(ValueError, match=field):
            TrainConfig(**bad)
    assert TrainConfig(validation_images="10%", stop_after_no_improvement=3).stop_after_no_improvement == 3
