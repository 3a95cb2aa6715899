"""How a backbone's inputs arrive, and the exact affine map to the normalization its weights were trained with.

``adapt``'s image datasets standardize with ImageNet's channel mean and std; a pretrained network may expect
another (RobustBench's models: [0, 1]; many timm ViTs: mean 0.5, std 0.5; CLIP: its own). Rather than
build different datasets per backbone, a backbone declares what its inputs are (``inputs=``) and maps them
to its own normalization before its first layer: ``(x * std_in + mean_in - mean_own) / std_own``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

Stats = tuple[tuple[float, ...], tuple[float, ...]]

#: Named input normalizations (per-channel mean, std); "unit" is images in [0, 1].
NORMALIZATIONS: dict[str, Stats] = {
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def resolve_normalization(inputs: str | Sequence[Any], own: Stats) -> Stats:
    """``inputs`` as (mean, std): a name of :data:`NORMALIZATIONS`, ``"model"`` (the backbone's own, ``own``),
    or a (mean, std) pair of 3-channel sequences."""
    if isinstance(inputs, str):
        if inputs == "model":
            return own
        if inputs not in NORMALIZATIONS:
            raise ValueError(f"inputs must be one of {', '.join(['model', *NORMALIZATIONS])} or a (mean, std) pair, "
                             f"got {inputs!r}")  # fmt: skip
        return NORMALIZATIONS[inputs]
    try:
        mean, std = (tuple(float(v) for v in part) for part in inputs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"inputs must be a name or a (mean, std) pair, got {inputs!r}") from exc
    if len(mean) != len(std) or not all(s > 0 for s in std):
        raise ValueError(f"inputs' mean and std need as many channels each and std > 0, got {inputs!r}")
    return mean, std


class Renormalize(nn.Module):
    """``x`` standardized by ``arrive`` -> standardized by ``own`` (an exact affine map; identity when equal; on
    single-channel images, the average of the three channels' map)."""

    def __init__(self, arrive: Stats, own: Stats) -> None:
        super().__init__()
        (mean_in, std_in), (mean_own, std_own) = arrive, own
        self.identity = tuple(map(tuple, arrive)) == tuple(map(tuple, own))
        scale = torch.tensor(std_in) / torch.tensor(std_own)
        shift = (torch.tensor(mean_in) - torch.tensor(mean_own)) / torch.tensor(std_own)
        self.register_buffer("scale", scale.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.identity:
            return x
        if x.shape[1] != self.scale.shape[1] and x.shape[1] == 1:  # grayscale: the channels' average statistics
            return x * self.scale.mean(1, keepdim=True) + self.shift.mean(1, keepdim=True)
        return x * self.scale + self.shift
