"""Warnings for networks that will make broken images: non-finite weights, or finite weights so
large (e.g. 1e38) that the layers overflow to inf/NaN on ordinary inputs."""
from __future__ import annotations

import torch

from .module import Hypernetwork

# Text-encoder and attention activations of SD models reach magnitudes of a few tens.
PROBE_SCALE = 30.0


def network_warnings(network: Hypernetwork) -> list[str]:
    """One line per problem that would turn images into NaN (empty when the network is sound)."""
    with torch.no_grad():
        params = list(network.named_parameters())
        broken = [name for name, p in params if not bool(torch.isfinite(p).all())]
        if broken:
            return [f"{len(broken)} weight tensor(s) hold NaN or infinite values (e.g. {broken[0]}); images made "
                    "with this network will be NaN (black). Use an earlier checkpoint"]
        largest = max((float(p.detach().abs().max()) for _, p in params if p.numel()), default=0.0)
        generator = torch.Generator().manual_seed(0)
        for width in network.widths:
            probe = torch.randn(1, 4, width, generator=generator) * PROBE_SCALE
            for slot, module in zip("KV", network.pair(width)):
                module_was_training = module.training
                module.eval()
                try:
                    out = module(probe)
                finally:
                    module.train(module_was_training)
                if not bool(torch.isfinite(out).all()):
                    return [f"the {slot} module of width {width} overflows to inf/NaN on ordinary inputs (largest "
                            f"weight {largest:.3g}); images made with this network will be NaN (black). Use an "
                            "earlier checkpoint or retrain with a lower learning rate"]
    return []
