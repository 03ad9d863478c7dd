"""Rollback points: the start of a run (referenced or copied) and saved checkpoints read back from
disk, bit-exact, refusing files that changed since they were written."""
from __future__ import annotations

import pytest
import torch

from hypernet.network.fileio import load_optimizer_state, short_hash
from hypernet.train.batches import BatchPlan
from hypernet.train.checkpoints import RunFolder
from hypernet.train.rollback_point import (RollbackUnavailable, checkpoint_point, cpu_copy, restore, start_point,
                                           unchanged_reference)
from hypernet.train.trainer import Trainer, TrainHooks, copy_network

from tests.unit.train.test_trainer import WIDTH, ToyObjective, config, toy_network


def _stepped(network, optimizer, steps: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        x = torch.randn(2, 3, WIDTH, generator=gen)
        loss = (network.pair(WIDTH)[0](x) - 2 * x).pow(2).mean()
        loss.backward()
        optimizer.step()
        network.step += 1


def _state(network, optimizer):
    return ({n: p.detach().clone() for n, p in network.named_parameters()}, cpu_copy(optimizer.state_dict()))


def _same_state(a, b) -> bool:
    weights_a, optim_a = a
    weights_b, optim_b = b
    if weights_a.keys() != weights_b.keys() or not all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a):
        return False
    if optim_a["param_groups"] != optim_b["param_groups"] or optim_a["state"].keys() != optim_b["state"].keys():
        return False
    return all(torch.equal(optim_a["state"][i][k], optim_b["state"][i][k])
               for i in optim_a["state"] for k in optim_a["state"][i])


def _trained(tmp_path):
    network = copy_network(toy_network())
    optimizer = torch.optim.AdamW(list(network.parameters()), lr=1e-2)
    _stepped(network, optimizer, 3, seed=1)
    saved = RunFolder(tmp_path, "toy").save_checkpoint(network, "AdamW", optimizer.state_dict())
    # hashed once at the save: the `.optim` records that hash, and it is the file's
    assert saved.file_hash == short_hash(saved.path) and load_optimizer_state(saved.path).ok
    return network, optimizer, saved


def test_a_checkpoint_point_holds_nothing_and_restores_the_saved_state_to_the_bit(tmp_path):
    network, optimizer, saved = _trained(tmp_path)
    at_save = _state(network, optimizer)
    point = checkpoint_point(saved)
    assert point.weights is None and point.optimizer_state is None and point.held_bytes == 0
    _stepped(network, optimizer, 2, seed=2)
    assert not _same_state(_state(network, optimizer), at_save)
    restore(point, network, optimizer)
    assert _same_state(_state(network, optimizer), at_save) and network.step == 3
    # and training goes on exactly as from the in-memory state
    twin = copy_network(network)
    twin_optimizer = torch.optim.AdamW(list(twin.parameters()), lr=1e-2)
    twin_optimizer.load_state_dict(cpu_copy(at_save[1]))
    _stepped(network, optimizer, 2, seed=3)
    _stepped(twin, twin_optimizer, 2, seed=3)
    assert _same_state(_state(network, optimizer), _state(twin, twin_optimizer))


@pytest.mark.parametrize("change", ["edited", "deleted", "optim_deleted"])
def test_a_checkpoint_that_changed_since_it_was_saved_is_refused(tmp_path, change):
    network, optimizer, saved = _trained(tmp_path)
    path = saved.path
    point = checkpoint_point(saved)
    if change == "edited":
        path.write_bytes(path.read_bytes()[:-1] + b"x")
    elif change == "deleted":
        path.unlink()
    else:
        path.with_name(path.name + ".optim").unlink()
    before = _state(network, optimizer)
    with pytest.raises(RollbackUnavailable, match=path.name):
        restore(point, network, optimizer)
    assert _same_state(_state(network, optimizer), before), "nothing is half-restored"


def test_the_start_point_references_unchanged_weights_instead_of_copying():
    incoming = toy_network()
    network = copy_network(incoming)
    optimizer = torch.optim.AdamW(list(network.parameters()), lr=1e-2)
    reference = unchanged_reference(network, incoming)
    assert reference is not None
    assert all(reference[n].data_ptr() == p.data_ptr() for n, p in incoming.named_parameters())
    referenced = start_point(network, optimizer, reference)
    copied = start_point(network, optimizer)
    size = sum(p.numel() * p.element_size() for p in network.parameters())
    assert referenced.held_bytes == 0 and copied.held_bytes == size
    start = _state(network, optimizer)
    _stepped(network, optimizer, 2, seed=4)
    restore(referenced, network, optimizer)
    assert _same_state(_state(network, optimizer), start)
    assert torch.equal(next(iter(incoming.parameters())), next(iter(toy_network().parameters()))), "never written"


def test_weights_that_differ_are_not_referenced():
    incoming = toy_network()
    assert unchanged_reference(copy_network(toy_network(seed=1)), incoming) is None
    network = copy_network(incoming)
    assert unchanged_reference(network, network) is None
    with torch.no_grad():
        next(iter(network.parameters())).view(-1)[0] += 1e-6
    assert unchanged_reference(network, incoming) is None


def _diverging_run(tmp_path, on_checkpoint):
    cfg = config(learning_rate="1e-2:4, 1e1", steps=12, save_every=2, rollback=True, max_rollbacks=5,
                 divergence_window=3, max_weight_norm=50.0)
    network = copy_network(toy_network())
    objective = ToyObjective(network)
    plan = BatchPlan([(WIDTH, WIDTH)] * 4, [1] * 4, cfg.batch_size, cfg.seed)
    events = []
    trainer = Trainer(network, objective, plan, cfg, RunFolder(tmp_path, "toy"), final_path=tmp_path / "toy.pt",
                      hooks=TrainHooks(on_event=events.append, on_checkpoint=on_checkpoint))
    return trainer.run(), events


def test_a_rollback_to_a_checkpoint_changed_on_disk_stops_and_names_it(tmp_path):
    tampered = []

    def tamper(step, path):
        if step == 4:
            path.write_bytes(path.read_bytes()[:-1] + b"x")
            tampered.append(path)

    clean, clean_events = _diverging_run(tmp_path / "clean", lambda step, path: None)
    assert any(e["kind"] == "rollback" for e in clean_events), "the run must need a rollback"
    result, events = _diverging_run(tmp_path / "tampered", tamper)
    assert tampered and result.stopped == "diverged"
    assert f"could not roll back to step 4: {tampered[0]} changed since this run saved it" in result.message
    assert not any(e["kind"] == "rollback" for e in events)
