"""Helpers shared by the losses: float32 islands inside autocast regions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def float32_region(*tensors: torch.Tensor) -> Iterator[None]:
    """Disable autocast for the tensors' device type.

    Kernels, covariances and log-probabilities lose too much precision in
    bf16/fp16; callers cast their inputs with ``.float()`` inside this block.
    """
    device_type = tensors[0].device.type if tensors else "cpu"
    if device_type not in ("cpu", "cuda", "xpu", "mps"):
        yield
        return
    with torch.autocast(device_type=device_type, enabled=False):
        yield
