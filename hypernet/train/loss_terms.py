"""Loss options from modern trainers, as pure functions: Min-SNR-gamma weighting, offset noise,
and the weighted per-element loss they (and A1111's alpha weight map) feed.

Min-SNR-gamma (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting Strategy"):
each sample's loss is weighted by min(SNR(t), gamma) expressed in the space the loss is measured
in: min(SNR, gamma) / SNR for eps-prediction, min(SNR, gamma) / (SNR + 1) for v-prediction.
Both are min(SNR, gamma) * c_out**2, where the loss is ((x0_pred - x0) / c_out)**2 and c_out is
the host's output scaling (sigma for eps, sigma / sqrt(sigma**2 + 1) for v), with SNR = 1 / sigma**2
(VP schedules, sigma_data = 1). Written that way the weight needs no knowledge of the model type.

Offset noise (as in sd-scripts and OneTrainer): the Gaussian noise gets a per-sample, per-channel
constant added, `offset * N(0, 1)` of shape (B, C, 1, 1), so the model learns to change an image's
mean brightness.
"""
from __future__ import annotations

import math

import torch


def min_snr_weight(sigma: torch.Tensor, c_out: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-sample Min-SNR-gamma weights (shape of `sigma`) for a loss in the space `c_out` scales to."""
    if not math.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"min_snr_gamma: {gamma!r} is invalid; use a number > 0 (5 in the paper) or 0 for off")
    sigma = sigma.double()
    snr = 1.0 / sigma.square()
    return (torch.clamp(snr, max=gamma) * c_out.double().reshape(sigma.shape).square()).float()


def offset_noise(shape: tuple[int, ...], generator: torch.Generator, offset: float) -> torch.Tensor:
    """Gaussian noise of `shape` (B, C, ...) plus `offset` x a per-(sample, channel) constant.

    With offset 0 it draws exactly `torch.randn(shape, generator)`, so runs without the option
    keep their random stream."""
    noise = torch.randn(shape, generator=generator)
    if offset:
        noise = noise + offset * torch.randn((shape[0], shape[1]) + (1,) * (len(shape) - 2), generator=generator)
    return noise


def per_element_loss(prediction: torch.Tensor, target: torch.Tensor, loss_type: str,
                     huber_delta: float) -> torch.Tensor:
    """The unreduced loss of every element."""
    prediction, target = prediction.float(), target.float()
    if loss_type == "mse":
        return torch.nn.functional.mse_loss(prediction, target, reduction="none")
    if loss_type == "l1":
        return torch.nn.functional.l1_loss(prediction, target, reduction="none")
    if loss_type == "huber":
        return torch.nn.functional.huber_loss(prediction, target, reduction="none", delta=huber_delta)
    raise ValueError(f"loss_type: {loss_type!r} is invalid; use mse, l1 or huber")


def weighted_loss(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, loss_type: str,
                  huber_delta: float) -> torch.Tensor:
    """Mean of the per-element loss times `weight` (broadcast to it: per sample, or per pixel as
    A1111's alpha weight map), weighted before the mean as A1111 does."""
    return (per_element_loss(prediction, target, loss_type, huber_delta) * weight.to(prediction.device)).mean()
