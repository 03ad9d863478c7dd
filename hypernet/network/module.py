"""The hypernetwork itself: per-width K/V residual MLPs built exactly as A1111 builds them.

A1111 layer order per stage i: Linear, [activation unless `linear` or (last stage and
not activate_output)], [LayerNorm if is_layer_norm, also after the last Linear], [Dropout if
dropout_structure[i+1] > 0]; all inside a Sequential named `linear`, so state-dict keys are
`linear.<sequential index>.weight|bias`. Forward: `x + linear(x) * strength`, computed in float32.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import math
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from .activations import NO_ACTIVATION, make_activation, warn_if_not_stock
from .config import HypernetworkConfig

logger = logging.getLogger(__name__)

#: Top-level metadata keys of an A1111 `.pt` file, in the order this pack writes them.
METADATA_KEYS: tuple[str, ...] = (
    "name", "layer_structure", "activation_func", "is_layer_norm", "weight_initialization",
    "use_dropout", "dropout_structure", "activate_output", "last_layer_dropout", "optional_info",
    "step", "sd_checkpoint", "sd_checkpoint_name",
)

_NORMAL_STD = 0.01


def _autocast_off(device_type: str) -> contextlib.AbstractContextManager:
    """Disable autocast so the hypernetwork really computes in float32 (no-op where unsupported)."""
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except (RuntimeError, ValueError):  # device types old torch builds cannot autocast
        return contextlib.nullcontext()


def _autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for this device type (True when this torch cannot tell)."""
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except (TypeError, RuntimeError):  # torch < 2.4 has no device argument
        return True


class HypernetworkModule(torch.nn.Module):
    """One residual MLP (the K or the V module of one attention width)."""

    def __init__(self, dim: int, config: HypernetworkConfig) -> None:
        super().__init__()
        self.dim = int(dim)
        widths = config.hidden_widths(self.dim)
        stages = len(widths) - 1
        layers: list[torch.nn.Module] = []
        for i in range(stages):
            layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
            is_last = i == stages - 1
            if config.activation_func != NO_ACTIVATION and (not is_last or config.activate_output):
                layers.append(make_activation(config.activation_func))
            if config.is_layer_norm:
                layers.append(torch.nn.LayerNorm(widths[i + 1]))
            p = config.dropout_structure[i + 1]
            if p > 0:
                layers.append(torch.nn.Dropout(p=p))
        self.linear = torch.nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """`x + linear(x) * strength` in float32; the result has x's dtype.

        Hot path (every attention layer): the autocast guard is entered only while autocast is
        on, and strength 1 (always in training) skips the multiply, one full-size tensor less in
        forward and backward; x * 1.0 == x exactly, so the result is the same."""
        if _autocast_enabled(x.device.type):
            with _autocast_off(x.device.type):
                return self._residual(x, strength)
        return self._residual(x, strength)

    def _residual(self, x: torch.Tensor, strength: float) -> torch.Tensor:
        h = x.to(torch.float32)
        delta = self.linear(h)
        out = h + delta if strength == 1.0 else h + delta * strength
        return out.to(x.dtype)


def _normal_tensors(fn: Callable) -> Callable:
    """Run `fn` outside inference mode: ComfyUI executes nodes under `torch.inference_mode()`,
    and parameters created or moved there would be inference tensors that can never be trained."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with torch.inference_mode(False):
            return fn(*args, **kwargs)

    return wrapper


def new_empty_module(dim: int, config: HypernetworkConfig) -> HypernetworkModule:
    """Build on the meta device, then allocate on CPU: torch's default init (which draws from the
    global RNG) never runs, so creating or loading a network leaves the global RNG untouched.
    Linear/LayerNorm weights are uninitialised: call `init_weights` or load a state dict.
    """
    with torch.device("meta"):
        module = HypernetworkModule(dim, config)
    module.to_empty(device="cpu")
    for layer in module.linear:  # e.g. PReLU: constant default init, no RNG involved
        if not isinstance(layer, (torch.nn.Linear, torch.nn.LayerNorm)) and hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    return module


def _derived_seed(seed: int, width: int, index: int) -> int:
    """Independent seed per (width, K/V) so enabling another width never changes the others."""
    digest = hashlib.sha256(f"hypernetwork-init:{seed}:{width}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def init_weights(
    module: HypernetworkModule, weight_initialization: str, activation_func: str, generator: torch.Generator
) -> None:
    """A1111's init, drawn from `generator` only (the global RNG is not touched).

    Normal: weight N(0, 0.01), bias 0; LayerNorm always gets Normal whatever the choice.
    Xavier*/Kaiming*: the torch formulas (fan_in/fan_out of the Linear), bias 0; Kaiming uses
    nonlinearity leaky_relu (with torch's default a=0) when the activation is leakyrelu, else relu.
    Other parametrised layers (PReLU) keep torch's default init, as in A1111.
    """
    nonlinearity = "leaky_relu" if activation_func == "leakyrelu" else "relu"
    with torch.no_grad():
        for layer in module.linear:
            if not isinstance(layer, (torch.nn.Linear, torch.nn.LayerNorm)):
                continue
            weight, bias = layer.weight, layer.bias
            bias.zero_()
            if weight_initialization == "Normal" or isinstance(layer, torch.nn.LayerNorm):
                weight.normal_(0.0, _NORMAL_STD, generator=generator)
                continue
            fan_out, fan_in = weight.shape
            if weight_initialization.startswith("Xavier"):
                std = math.sqrt(2.0 / (fan_in + fan_out))
            elif weight_initialization.startswith("Kaiming"):
                std = torch.nn.init.calculate_gain(nonlinearity, 0) / math.sqrt(fan_in)
            else:
                raise ValueError(f"weight_initialization: {weight_initialization!r} is not supported")
            if weight_initialization.endswith("Uniform"):
                bound = math.sqrt(3.0) * std
                weight.uniform_(-bound, bound, generator=generator)
            else:
                weight.normal_(0.0, std, generator=generator)


def expected_state_shapes(dim: int, config: HypernetworkConfig) -> dict[str, tuple[int, ...]]:
    """State-dict key -> tensor shape of one module, without allocating real weights."""
    with torch.device("meta"):
        module = HypernetworkModule(dim, config)
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def check_extra_metadata(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Validate extra top-level file keys: str names that int() cannot parse (stock ComfyUI
    int()s every key and skips those that fail; A1111 takes only int-typed keys), not a standard
    metadata name, JSON-like values. Returns a copy; raises ValueError."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if not isinstance(key, str):
            raise ValueError(f"extra metadata key {key!r} must be a string")
        try:
            int(key)
        except ValueError:
            pass
        else:  # stock ComfyUI would take it for an attention width and crash on it
            raise ValueError(f"extra metadata key {key!r} reads as a number; pick a name like 'base_model'")
        if key in METADATA_KEYS:
            raise ValueError(f"extra metadata key {key!r} is a standard field; set it on the config instead")
        _check_plain(value, f"extra[{key!r}]")
        out[key] = value
    return out


def _check_plain(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: dict key {k!r} must be a string")
            _check_plain(item, f"{where}[{k!r}]")
        return
    raise ValueError(
        f"{where}: {type(value).__name__} values cannot be saved; use text, numbers, bools, lists or dicts"
    )


def _plain_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A plain dict of detached, contiguous CPU tensors (no OrderedDict `_metadata` attribute)."""
    return {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}


class Hypernetwork:
    """A config plus one (K, V) module pair per attention width, and the file metadata.

    Built in eval mode; call `train()` for training (enables dropout) and `eval()` after.
    Weights always stay float32; `to()` moves devices only. `load_notes`: what the loader read
    differently from the file (e.g. ignored dropout entries), for the info box; never saved.
    """

    load_notes: tuple[str, ...] = ()

    @_normal_tensors
    def __init__(
        self,
        config: HypernetworkConfig,
        layers: Mapping[int, Sequence[HypernetworkModule]],
        *,
        step: int = 0,
        sd_checkpoint: str | None = None,
        sd_checkpoint_name: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if sorted(layers) != sorted(config.sizes):
            raise ValueError(f"layers have widths {sorted(layers)} but config.sizes is {list(config.sizes)}")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step: {step!r} is invalid; must be a whole number >= 0")
        self.config = config
        self.step = step
        self.sd_checkpoint = sd_checkpoint
        self.sd_checkpoint_name = sd_checkpoint_name
        self.extra = check_extra_metadata(extra or {})
        self._net = torch.nn.ModuleDict()
        for width in config.sizes:
            pair = layers[width]
            if len(pair) != 2:
                raise ValueError(f"width {width}: expected a (K, V) pair of modules, got {len(pair)}")
            self._net[str(width)] = torch.nn.ModuleList(pair)
        self._net.to(torch.float32)
        self.eval()

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    @_normal_tensors
    def create(cls, config: HypernetworkConfig) -> "Hypernetwork":
        """New network with A1111 init, reproducible from `config.seed` (global RNG untouched).

        Logs a warning when the activation makes the file unreadable for stock ComfyUI.
        """
        warn_if_not_stock(config.activation_func, f"hypernetwork {config.name!r}")
        layers = {}
        for width in config.sizes:
            pair = []
            for index in (0, 1):
                module = new_empty_module(width, config)
                gen = torch.Generator(device="cpu").manual_seed(_derived_seed(config.seed, width, index))
                init_weights(module, config.weight_initialization, config.activation_func, gen)
                pair.append(module)
            layers[width] = pair
        return cls(config, layers)

    @classmethod
    @_normal_tensors
    def from_layer_states(
        cls,
        config: HypernetworkConfig,
        states: Mapping[int, Sequence[Mapping[str, torch.Tensor]]],
        **meta: Any,
    ) -> "Hypernetwork":
        """Rebuild from per-width (K, V) state dicts; keys and shapes must match the config exactly.

        Raises ValueError naming the width, K/V and the offending keys/shapes. `meta` goes to
        the constructor (step, sd_checkpoint, sd_checkpoint_name, extra).
        """
        layers = {}
        for width in config.sizes:
            expected = expected_state_shapes(width, config)
            pair = []
            for index, state in enumerate(states[width]):
                check_state_dict(state, expected, f"width {width} {'KV'[index]} module")
                module = new_empty_module(width, config)
                module.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
                pair.append(module)
            layers[width] = pair
        return cls(config, layers, **meta)

    # ---- torch-module-like interface ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self.config.name

    def rename(self, name: str) -> None:
        """Change the stored name (A1111 stores the training base name in every saved copy)."""
        self.config = dataclasses.replace(self.config, name=name)

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(self.config.sizes)

    def pair(self, width: int) -> tuple[HypernetworkModule, HypernetworkModule] | None:
        """The (K, V) modules for an attention width, or None if the network has none."""
        modules = self._net[str(width)] if str(width) in self._net else None
        return None if modules is None else (modules[0], modules[1])

    @property
    def layers(self) -> dict[int, tuple[HypernetworkModule, HypernetworkModule]]:
        return {w: self.pair(w) for w in self.widths}

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        return self._net.parameters()

    def named_parameters(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """Names look like `768.0.linear.0.weight` (width, K=0/V=1, module key)."""
        return self._net.named_parameters()

    def train(self, mode: bool = True) -> "Hypernetwork":
        self._net.train(mode)
        return self

    def eval(self) -> "Hypernetwork":
        return self.train(False)

    @property
    def training(self) -> bool:
        return self._net.training

    @_normal_tensors
    def to(self, device: torch.device | str) -> "Hypernetwork":
        """Move to `device`; weights stay float32 (a dtype here is a mistake, so refused)."""
        if isinstance(device, torch.dtype):
            raise ValueError(f"Hypernetwork.to: got dtype {device}; weights stay float32, pass a device")
        self._net.to(torch.device(device))
        return self

    @property
    def device(self) -> torch.device:
        return next(self._net.parameters()).device

    # ---- A1111 dict form ----------------------------------------------------------------------
    def to_a1111_dict(self, stock_safe_dropout: bool = True) -> dict[Any, Any]:
        """The dict A1111 `torch.save`s: `{width: (K state, V state), metadata...}`, plain types only.

        `activation_func` is always a string (`linear`, never None) and `activate_output` is always
        present, because stock ComfyUI defaults both differently from A1111 when absent.
        With `stock_safe_dropout` (default), `use_dropout` is written False: A1111 ignores it
        whenever `dropout_structure` is present (always, here), while stock ComfyUI would use it
        to insert Dropout(0.3) layers that stay active at inference (it never calls `.eval()`).
        """
        cfg = self.config
        out: dict[Any, Any] = {}
        for width in cfg.sizes:
            k_mod, v_mod = self.pair(width)
            out[width] = (_plain_state(k_mod), _plain_state(v_mod))
        out.update({
            "name": cfg.name,
            "layer_structure": [float(m) for m in cfg.layer_structure],
            "activation_func": cfg.activation_func,
            "is_layer_norm": bool(cfg.is_layer_norm),
            "weight_initialization": cfg.weight_initialization,
            "use_dropout": False if stock_safe_dropout else bool(cfg.use_dropout),
            "dropout_structure": [float(p) for p in cfg.dropout_structure],
            "activate_output": bool(cfg.activate_output),
            "last_layer_dropout": bool(cfg.last_layer_dropout),
            "optional_info": cfg.optional_info or None,
            "step": int(self.step),
            "sd_checkpoint": _text_or_none(self.sd_checkpoint),  # A1111 writes str (or None before training)
            "sd_checkpoint_name": _text_or_none(self.sd_checkpoint_name),
        })
        out.update(check_extra_metadata(self.extra))
        return out


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def check_state_dict(
    state: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], where: str
) -> None:
    """Raise ValueError when `state` does not have exactly the expected keys and shapes."""
    if not isinstance(state, Mapping):
        raise ValueError(f"{where}: expected a state dict (name -> tensor), got {type(state).__name__}")
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"{where}: keys do not match the metadata (layer_structure / activation_func / "
            f"is_layer_norm / dropout_structure); missing {missing or 'none'}, unexpected "
            f"{unexpected or 'none'}. The metadata does not describe these weights: the file is damaged "
            f"or was written by a tool with a different layer layout"
        )
    for key, shape in expected.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{where}: {key} is a {type(tensor).__name__}, expected a tensor")
        if tuple(tensor.shape) != shape:
            raise ValueError(
                f"{where}: {key} has shape {list(tensor.shape)}, expected {list(shape)} "
                f"(attention width x layer_structure)"
            )
        if not tensor.is_floating_point():
            raise ValueError(f"{where}: {key} has dtype {tensor.dtype}, expected a floating-point tensor")
        if not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{where}: {key} contains NaN or infinite values; the network is broken")
