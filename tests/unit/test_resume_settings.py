"""Resuming with a `.optim`: the saved moments come back, the user's AdamW settings stay."""
from __future__ import annotations

import torch

from hypernet.network.fileio import load_optimizer_state
from hypernet.train.checkpoints import RunFolder
from hypernet.train.trainer import resume_point
from tests.unit.test_trainer import config, run, toy_network


def _groups(path):
    return torch.load(path, weights_only=True)["optimizer_state_dict"]["param_groups"]


def test_resume_keeps_the_users_weight_decay_betas_and_eps(tmp_path):
    saved_settings = dict(weight_decay=0.2, adamw_beta1=0.8, adamw_beta2=0.95, adamw_eps=1e-6)
    run(tmp_path, config(steps=10, **saved_settings))
    network, optim_state, history, _ = resume_point(toy_network(), RunFolder(tmp_path, "toy"), resume=True,
                                                    max_step=20, source_file=None)
    assert optim_state["param_groups"][0]["weight_decay"] == 0.2  # what torch would bring back
    result, _ = run(tmp_path, config(steps=20, weight_decay=0.01, adamw_beta1=0.9, adamw_beta2=0.999, adamw_eps=1e-8),
                    network=network, optimizer_state=optim_state, history=history)
    group = _groups(tmp_path / "toy.pt.optim")[0]
    assert (group["weight_decay"], tuple(group["betas"]), group["eps"]) == (0.01, (0.9, 0.999), 1e-8)
    assert load_optimizer_state(tmp_path / "toy.pt").ok
    (event,) = [e for e in result.history.events if e["kind"] == "optimizer_settings"]
    assert event["step"] == 10
    for text in ("weight_decay 0.01 (the .optim had 0.2)", "betas (0.9, 0.999) (the .optim had (0.8, 0.95))",
                 "eps 1e-08 (the .optim had 1e-06)"):
        assert text in event["message"], event["message"]


def test_resume_with_the_same_settings_says_nothing_and_keeps_the_moments(tmp_path):
    run(tmp_path, config(steps=10))
    network, optim_state, history, _ = resume_point(toy_network(), RunFolder(tmp_path, "toy"), resume=True,
                                                    max_step=20, source_file=None)
    result, _ = run(tmp_path, config(steps=20), network=network, optimizer_state=optim_state, history=history)
    assert not [e for e in result.history.events if e["kind"] == "optimizer_settings"]
    state = torch.load(tmp_path / "toy.pt.optim", weights_only=True)["optimizer_state_dict"]["state"]
    assert int(state[0]["step"]) == 20  # the moments continued from step 10
