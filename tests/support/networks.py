"""Test networks with weights far above A1111's N(0, 0.01) init, so any math difference shows."""
from __future__ import annotations

import torch


def loud_weights(network, seed: int, std: float = 0.3):
    """Overwrite every parameter of `network` with N(0, std) from a seeded generator; return it."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in network.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * std)
    return network
