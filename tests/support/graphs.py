"""Small builders for API-format graphs (the JSON that POST /prompt takes)."""
from __future__ import annotations

import itertools


class Graph:
    """Build an API-format prompt node by node; `add` returns the new node's id."""

    def __init__(self):
        self.nodes: dict[str, dict] = {}
        self._ids = itertools.count(1)

    def add(self, class_type: str, **inputs) -> str:
        node_id = str(next(self._ids))
        self.nodes[node_id] = {"class_type": class_type, "inputs": inputs}
        return node_id

    @staticmethod
    def out(node_id: str, index: int = 0) -> list:
        return [node_id, index]

    def to_api(self) -> dict:
        return self.nodes


def options_node(graph: Graph, object_info: dict, class_type: str, **values) -> str:
    """Add an options node (e.g. HypernetworkTrainingOptions) with every required input at the
    default the server declares, and `values` set; return its id."""
    required = object_info[class_type]["input"]["required"]
    unknown = sorted(set(values) - set(required))
    if unknown:
        raise KeyError(f"{class_type} has no inputs {unknown}")
    inputs = {name: spec[1]["default"] for name, spec in required.items()}
    return graph.add(class_type, **{**inputs, **values})


def tiny_txt2img(graph: Graph, model_ref: list, clip_ref: list, vae_ref: list, *, prompt: str = "a cat",
                 seed: int = 1, steps: int = 4, cfg: float = 7.0, size: int = 64,
                 sampler: str = "euler", scheduler: str = "normal") -> dict[str, str]:
    """Add CLIPTextEncode x2 -> EmptyLatentImage -> KSampler -> VAEDecode; return the node ids."""
    pos = graph.add("CLIPTextEncode", text=prompt, clip=clip_ref)
    neg = graph.add("CLIPTextEncode", text="", clip=clip_ref)
    latent = graph.add("EmptyLatentImage", width=size, height=size, batch_size=1)
    sampler_id = graph.add("KSampler", model=model_ref, seed=seed, steps=steps, cfg=cfg, sampler_name=sampler,
                           scheduler=scheduler, positive=[pos, 0], negative=[neg, 0],
                           latent_image=[latent, 0], denoise=1.0)
    decode = graph.add("VAEDecode", samples=[sampler_id, 0], vae=vae_ref)
    return {"sampler": sampler_id, "decode": decode, "positive": pos, "negative": neg}
