"""The hypernetwork itself: its config, layers, attention patch and file formats.

- `config`: `HypernetworkConfig` (layer structure, activation, dropout; A1111's keys).
- `activations`: the activation table keyed by A1111's names (`make_activation`).
- `module`: `Hypernetwork` and its per-width `HypernetworkModule`s.
- `patch`: `HypernetworkPatch`, applied to attention K/V as A1111 does.
- `hns` / `composition`: MonkeyPatch `.hns` compositions (parse, resolve members, K/V math).
- `fileio`: A1111 `.pt` + `.optim` and `.safetensors` (`load_hypernetwork`, `save_hypernetwork`).
- `health`: warnings for networks that will make broken images (`network_warnings`).
- `checkpoint_hash`: A1111's identity of the base checkpoint (`base_model_of`, `HashCache`).
"""
