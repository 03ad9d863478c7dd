"""Which dtype the model forward runs in while training (the hypernetwork itself stays fp32)."""
from __future__ import annotations

import torch

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_training_dtype(choice: str, device_type: str, bf16_supported: bool) -> str:
    """`choice` itself, or for "auto": bf16 autocast on a CUDA GPU that supports it, else fp16
    autocast (with the loss scaler) on CUDA, and fp32 elsewhere (CPU autocast is slow, and A1111
    trained with fp16 autocast on GPUs)."""
    if choice != "auto":
        return choice
    if device_type != "cuda":
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def device_supports_bf16(device_type: str) -> bool:
    return device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
