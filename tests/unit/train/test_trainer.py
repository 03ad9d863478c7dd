"""The training loop on a toy objective (no ComfyUI): resume exactness, NaN skips, rollback,
schedules, checkpoints and the loss CSV."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from hypernet.network.hypernetwork_config import HypernetworkConfig
from hypernet.network.fileio import load_hypernetwork, load_optimizer_state
from hypernet.network.module import Hypernetwork
from hypernet.train.batches import BatchPlan
from hypernet.train.checkpoints import RunFolder
from hypernet.train.train_config import TrainConfig
from hypernet.train.log import CSV_NAME, LossHistory
from hypernet.train.templates import derive_seed
from hypernet.train.trainer import LR_SCALE_KEY, Trainer, TrainHooks, copy_network, element_loss, resume_point

WIDTH = 8


def toy_network(seed: int = 0) -> Hypernetwork:
    return Hypernetwork.create(HypernetworkConfig(name="toy", sizes=[WIDTH], activation_func="relu", seed=seed))


class ToyObjective:
    """Items are fixed random inputs; the target doubles them. The K module must learn it."""

    def __init__(self, network: Hypernetwork, items: int = 4, poison_steps: tuple[int, ...] = ()):
        gen = torch.Generator().manual_seed(123)
        self.inputs = [torch.randn(1, 3, WIDTH, generator=gen) for _ in range(items)]
        self.network = network
        self.poison_steps = set(poison_steps)
        self.calls: list[int] = []

    def __call__(self, planned, generator, step):
        self.calls.append(step)
        x = torch.cat([self.inputs[i] for i in planned.items]) + 0.01 * torch.randn(
            (len(planned.items), 3, WIDTH), generator=generator)
        prediction = self.network.pair(WIDTH)[0](x)
        if step in self.poison_steps:
            prediction = prediction * float("nan")
        return prediction, 2 * x


def run(tmp_path, config: TrainConfig, network=None, optimizer_state=None, history=None, hooks=None,
        objective_factory=ToyObjective):
    network = network or copy_network(toy_network())
    objective = objective_factory(network)
    plan = BatchPlan([(WIDTH, WIDTH)] * len(objective.inputs), [1] * len(objective.inputs), config.batch_size,
                     config.seed)
    trainer = Trainer(network, objective, plan, config, RunFolder(tmp_path, "toy"), optimizer_state=optimizer_state,
                      history=history, hooks=hooks, final_path=tmp_path / "toy.pt")
    return trainer.run(), objective


def config(**overrides) -> TrainConfig:
    values = dict(learning_rate="1e-2", steps=20, batch_size=2, save_every=10, seed=7, rollback=False)
    values.update(overrides)
    return TrainConfig(**values)


def test_loss_falls_on_the_toy_problem(tmp_path):
    result, _ = run(tmp_path, config(steps=60))
    losses = result.history.losses
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10


def test_resume_continues_the_same_curve(tmp_path):
    straight_dir, split_dir = tmp_path / "straight", tmp_path / "split"
    straight, _ = run(straight_dir, config(steps=20))
    first, _ = run(split_dir, config(steps=10))
    assert first.network.step == 10
    folder = RunFolder(split_dir, "toy")
    network, optim_state, history, message = resume_point(toy_network(), folder, resume=True, max_step=20,
                                                          source_file=None)
    assert network.step == 10 and optim_state is not None and "resumed" in message
    resumed, _ = run(split_dir, config(steps=20), network=network, optimizer_state=optim_state, history=history)
    for (name, a), (_, b) in zip(straight.network.named_parameters(), resumed.network.named_parameters()):
        assert torch.equal(a, b), name
    assert (straight_dir / "toy" / CSV_NAME).read_text() == (split_dir / "toy" / CSV_NAME).read_text()


def test_resume_without_optimizer_state_differs(tmp_path):
    """The exactness above really comes from the restored optimizer state."""
    straight, _ = run(tmp_path / "a", config(steps=20))
    first, _ = run(tmp_path / "b", config(steps=10))
    fresh, _ = run(tmp_path / "b", config(steps=20), network=first.network)
    diffs = [not torch.equal(a, b) for a, b in zip(straight.network.parameters(), fresh.network.parameters())]
    assert any(diffs)


def test_checkpoints_and_final_file_are_loadable_with_matching_optim(tmp_path):
    result, _ = run(tmp_path, config(steps=20, save_every=5))
    steps = [c.step for c in RunFolder(tmp_path, "toy").checkpoints()]
    assert steps == [5, 10, 15, 20]
    final = load_hypernetwork(tmp_path / "toy.pt")
    assert final.step == 20
    assert load_optimizer_state(tmp_path / "toy.pt").ok
    assert load_optimizer_state(RunFolder(tmp_path, "toy").checkpoint_path(15)).ok
    assert not list(tmp_path.rglob("*.tmp")), "no temp files may be left behind"


def test_schedule_end_stops_training_before_max_steps(tmp_path):
    result, _ = run(tmp_path, config(learning_rate="1e-2:7", steps=50))
    assert result.network.step == 7
    assert result.history.learning_rates == [pytest.approx(1e-2)] * 7


def test_learning_rate_follows_the_schedule(tmp_path):
    result, _ = run(tmp_path, config(learning_rate="1e-2:3, 1e-3:6, 1e-4", steps=8))
    assert result.history.learning_rates == pytest.approx([1e-2] * 3 + [1e-3] * 3 + [1e-4] * 2)


def test_non_finite_step_is_skipped_and_recorded(tmp_path):
    factory = lambda net: ToyObjective(net, poison_steps=(4,))  # noqa: E731
    result, _ = run(tmp_path, config(steps=8), objective_factory=factory)
    assert all(torch.isfinite(p).all() for p in result.network.parameters())
    row = [r for r in result.history.rows if r.step == 5][0]
    assert row.event == "nan_skip" and math.isnan(row.loss)
    assert "nan_skip" in (tmp_path / "toy" / CSV_NAME).read_text()


def test_absurd_learning_rate_is_rolled_back_with_lower_rate(tmp_path):
    cfg = config(learning_rate="1e3", steps=30, save_every=2, rollback=True, max_rollbacks=6, divergence_window=3,
                 max_weight_norm=50.0)
    events = []
    result, _ = run(tmp_path, cfg, hooks=TrainHooks(on_event=events.append))
    kinds = [e["kind"] for e in events]
    assert "rollback" in kinds
    assert all(torch.isfinite(p).all() for p in result.network.parameters())
    if result.stopped == "diverged":
        assert "rollback" in result.message or "diverged" in result.message
    newest = RunFolder(tmp_path, "toy").checkpoints()[-1]
    assert torch.isfinite(torch.cat([p.flatten() for p in load_hypernetwork(newest.path).parameters()])).all()


def test_rollback_lr_scale_survives_in_the_optimizer_state(tmp_path):
    cfg = config(learning_rate="1e-2:4, 1e1", steps=12, save_every=2, rollback=True, max_rollbacks=5,
                 divergence_window=3, max_weight_norm=50.0)
    events = []
    result, _ = run(tmp_path, cfg, hooks=TrainHooks(on_event=events.append))
    rollbacks = [e for e in events if e["kind"] == "rollback"]
    assert rollbacks and result.stopped == "finished"
    newest = RunFolder(tmp_path, "toy").checkpoints()[-1]
    state = load_optimizer_state(newest.path).state_dict
    assert state["param_groups"][0][LR_SCALE_KEY] == pytest.approx(0.1 ** len(rollbacks))
    assert result.history.learning_rates[-1] == pytest.approx(10 * 0.1 ** len(rollbacks))


def test_too_many_rollbacks_stop_with_a_clear_message(tmp_path):
    cfg = config(learning_rate="1e3", steps=12, save_every=2, rollback=True, max_rollbacks=1, divergence_window=3,
                 max_weight_norm=50.0)
    result, _ = run(tmp_path, cfg)
    assert result.stopped == "diverged"
    assert "rollback" in result.message and "learning rate" in result.message


def test_cancel_keeps_the_last_full_step_as_checkpoint(tmp_path):
    stops = iter([False] * 7 + [True])
    result, _ = run(tmp_path, config(steps=50, save_every=100), hooks=TrainHooks(should_stop=lambda: next(stops)))
    assert result.stopped == "cancelled"
    assert [c.step for c in RunFolder(tmp_path, "toy").checkpoints()] == [7]
    assert load_optimizer_state(RunFolder(tmp_path, "toy").checkpoint_path(7)).ok
    assert not (tmp_path / "toy.pt").exists(), "the final file is written only when a run finishes"


class HostCancel(Exception):
    """Stands for the host's interrupt exception, raised from inside a hook (its progress bar)."""


def cancel_in_on_step(at_step: int):
    """Like ComfyUI: raising the cancel clears the flag, so only is_cancel knows it was one."""
    def on_step(report):
        if report.step == at_step:
            raise HostCancel()

    return TrainHooks(should_stop=lambda: False, on_step=on_step, is_cancel=lambda exc: isinstance(exc, HostCancel))


@pytest.mark.parametrize("save_on_cancel", [True, False])
def test_cancel_raised_inside_a_hook_saves_the_step_unless_turned_off(tmp_path, save_on_cancel):
    hooks = dataclasses.replace(cancel_in_on_step(3), save_on_cancel=save_on_cancel)
    with pytest.raises(HostCancel):
        run(tmp_path, config(steps=50, save_every=100), hooks=hooks)
    folder = RunFolder(tmp_path, "toy")
    if save_on_cancel:
        assert [c.step for c in folder.checkpoints()] == [3]
        assert load_optimizer_state(folder.checkpoint_path(3)).ok
        network, optim_state, _, message = resume_point(toy_network(), folder, resume=True, max_step=50,
                                                        source_file=None)
        assert network.step == 3 and optim_state is not None and "resumed" in message
    else:
        assert folder.checkpoints() == []
    assert not (tmp_path / "toy.pt").exists()


def test_an_error_without_cancel_saves_nothing(tmp_path):
    def on_step(report):
        if report.step == 3:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(tmp_path, config(steps=50, save_every=100), hooks=TrainHooks(on_step=on_step))
    assert RunFolder(tmp_path, "toy").checkpoints() == []


def test_cancel_with_save_on_cancel_off_says_the_step_is_not_saved(tmp_path):
    stops = iter([False] * 4 + [True])
    result, _ = run(tmp_path, config(steps=50, save_every=100),
                    hooks=TrainHooks(should_stop=lambda: next(stops), save_on_cancel=False))
    assert result.stopped == "cancelled" and "save_on_cancel is off" in result.message
    assert RunFolder(tmp_path, "toy").checkpoints() == []


def test_gradient_accumulation_sums_micro_batches(tmp_path):
    result, objective = run(tmp_path, config(steps=3, grad_accumulation_steps=2))
    assert objective.calls == [0, 0, 1, 1, 2, 2]
    assert len(result.history.rows) == 3


def test_value_clipping_limits_the_update(tmp_path):
    clipped, _ = run(tmp_path / "c", config(steps=1, learning_rate="10", clip_grad_mode="value",
                                            clip_grad_value="1e-9", weight_decay=0.0))
    start = toy_network()
    # Adam normalises the step, so compare against the unclipped run instead of zero.
    free, _ = run(tmp_path / "f", config(steps=1, learning_rate="10", weight_decay=0.0))
    delta_clipped = sum((a - b).abs().sum() for a, b in zip(clipped.network.parameters(), start.parameters()))
    delta_free = sum((a - b).abs().sum() for a, b in zip(free.network.parameters(), start.parameters()))
    assert delta_clipped <= delta_free


def test_global_rng_is_left_as_it_was(tmp_path):
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    run(tmp_path, config(steps=3))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("loss_type", ["mse", "l1", "huber"])
def test_loss_types(loss_type):
    prediction, target = torch.zeros(4), torch.tensor([0.0, 0.5, 1.0, 2.0])
    value = element_loss(prediction, target, loss_type, 0.1).item()
    expected = {"mse": (0 + 0.25 + 1 + 4) / 4, "l1": 3.5 / 4,
                "huber": (0 + 0.1 * (0.5 - 0.05) + 0.1 * (1 - 0.05) + 0.1 * (2 - 0.05)) / 4}[loss_type]
    assert value == pytest.approx(expected)


def test_batches_only_mix_one_size_and_are_resume_exact():
    sizes = [(64, 64)] * 3 + [(96, 64)] * 5 + [(64, 96)] * 2
    plan = BatchPlan(sizes, [1] * len(sizes), batch_size=2, seed=3)
    for index in range(30):
        items = plan.batch(index).items
        assert len({sizes[i] for i in items}) == 1
    again = BatchPlan(sizes, [1] * len(sizes), batch_size=2, seed=3)
    assert [again.batch(i) for i in range(25, 30)] == [plan.batch(i) for i in range(25, 30)]
    seen = sorted(i for b in range(plan.batches_per_epoch) for i in plan.batch(b).items)
    assert seen == list(range(len(sizes))), "one epoch draws every item once"


def test_repeats_draw_items_more_often():
    plan = BatchPlan([(8, 8)] * 2, [3, 1], batch_size=1, seed=0)
    drawn = [plan.batch(i).items[0] for i in range(plan.batches_per_epoch)]
    assert drawn.count(0) == 3 and drawn.count(1) == 1


def test_csv_round_trip_and_truncation(tmp_path):
    result, _ = run(tmp_path, config(steps=6, save_every=3))
    history = LossHistory.read(tmp_path / "toy" / CSV_NAME)
    assert history.steps == [1, 2, 3, 4, 5, 6]
    history.truncate_after(3)
    assert history.steps == [1, 2, 3]


def test_seeded_noise_depends_on_step_not_on_call_order():
    assert derive_seed(1, "noise", 5, 0) == derive_seed(1, "noise", 5, 0)
    assert derive_seed(1, "noise", 5, 0) != derive_seed(1, "noise", 6, 0)


# ---------------------------------------------------------------- MonkeyPatch features


def test_cosine_restarts_drive_the_learning_rate(tmp_path):
    from hypernet.train.schedule import CosineRestarts

    cfg = config(scheduler="cosine_restarts", learning_rate="1e-2", steps=12, cosine_cycle_steps=4,
                 cosine_warmup_steps=1, cosine_min_lr=1e-4, cosine_gamma=0.5)
    result, _ = run(tmp_path, cfg)
    cosine = CosineRestarts(base_lr=1e-2, cycle_steps=4, warmup_steps=1, min_lr=1e-4, gamma=0.5)
    assert result.history.learning_rates == pytest.approx([cosine.rate_at(s) for s in range(12)])
    rates = result.history.learning_rates
    assert max(rates[4:8]) < max(rates[0:4]), "gamma lowers later peaks"


def test_save_at_cycle_end(tmp_path):
    cfg = config(scheduler="cosine_restarts", steps=9, save_every=0, cosine_cycle_steps=3, cosine_warmup_steps=0,
                 save_at_cycle_end=True)
    previews = []
    run(tmp_path, cfg, hooks=TrainHooks(preview=lambda step, net: previews.append(step)))
    assert [c.step for c in RunFolder(tmp_path, "toy").checkpoints()] == [3, 6, 9]
    assert previews == [3, 6, 9]


def test_timestep_curriculum_rises_through_the_run(tmp_path):
    seen = []

    class Recording(ToyObjective):
        def __call__(self, planned, generator, step, max_timestep=1000):
            seen.append(max_timestep)
            return super().__call__(planned, generator, step)

    run(tmp_path, config(steps=5, timestep_curriculum=True, curriculum_start=0.2), objective_factory=Recording)
    assert seen[0] == 200 and seen[-1] == 1000 and seen == sorted(seen)


def test_dropout_is_on_while_training_and_off_after(tmp_path):
    network = copy_network(Hypernetwork.create(HypernetworkConfig(
        name="toy", sizes=[WIDTH], use_dropout=True, dropout_structure=[0, 0.3, 0])))
    modes = []

    class Recording(ToyObjective):
        def __call__(self, planned, generator, step):
            modes.append(self.network.training)
            return super().__call__(planned, generator, step)

    result, _ = run(tmp_path, config(steps=3), network=network, objective_factory=Recording)
    assert modes == [True, True, True]
    assert not result.network.training
    x = torch.randn(2, 3, WIDTH)
    k = result.network.pair(WIDTH)[0]
    assert torch.equal(k(x), k(x)), "inference is deterministic (no dropout)"


def test_settings_json_round_trips_as_a_preset(tmp_path):
    cfg = config(steps=4, shuffle_tags=True, tag_dropout=0.2, scheduler="cosine_restarts", loss_type="huber")
    run(tmp_path, cfg)
    folder = RunFolder(tmp_path, "toy")
    folder.write_settings({"config": cfg.to_dict(), "network": {}})
    again = TrainConfig.from_json((folder.root / "training_settings.json").read_text())
    assert again == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"steps": 3, "stepz": 4})


def test_rollback_and_lr_change_are_marked_in_the_csv(tmp_path):
    cfg = config(learning_rate="1e-2:4, 1e1", steps=12, save_every=2, rollback=True, max_rollbacks=5,
                 divergence_window=3, max_weight_norm=50.0)
    run(tmp_path, cfg)
    text = (tmp_path / "toy" / CSV_NAME).read_text()
    assert "rollback" in text and "lr_change" in text


@pytest.mark.parametrize("field,value", [("learning_rate", "fast"), ("clip_grad_mode", "sometimes"),
                                         ("adamw_beta1", 1.5), ("weight_decay", -1), ("steps", 0),
                                         ("latent_sampling", "twice"), ("template", "")])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_rollback_snapshot_is_a_cpu_copy_that_shares_no_memory():
    """The last-good state lives in CPU memory (not VRAM) and is a real copy: later steps do not
    change it, and restoring from it brings back the optimizer's tensors as they were."""
    from hypernet.train.rollback_point import cpu_copy

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    param.grad = torch.full((3,), 0.5)
    optimizer.step()
    state = optimizer.state_dict()
    snap = cpu_copy(state)
    live = state["state"][0]["exp_avg"]
    saved = snap["state"][0]["exp_avg"]
    assert saved.device.type == "cpu" and torch.equal(saved, live)
    assert saved.untyped_storage().data_ptr() != live.untyped_storage().data_ptr()
    assert snap["param_groups"] == state["param_groups"] and snap["param_groups"] is not state["param_groups"]
    optimizer.step()
    assert not torch.equal(saved, optimizer.state[param]["exp_avg"])
    optimizer.load_state_dict(snap)
    assert torch.equal(optimizer.state[param]["exp_avg"], saved)


def test_auto_precision_trains_in_fp32_on_the_cpu_and_says_so(tmp_path):
    result, _ = run(tmp_path, config(steps=2, training_dtype="auto"))
    assert result.training_dtype == "fp32"
    explicit, _ = run(tmp_path / "b", config(steps=2, training_dtype="bf16"))
    assert explicit.training_dtype == "bf16"
