"""A per-example memory of the target domain, indexed by dataset position (ATDOC; NRC and AaD too)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError


def check_memory_size(method: str, num_examples: int, k: int) -> None:
    """A memory method looking up ``k`` neighbours (itself excluded) needs more than ``k`` examples."""
    if num_examples <= k:
        raise InputError(f"{method} with k={k} needs more than {k} target examples, got {num_examples}")


def target_positions(method: str, index: torch.Tensor | None, instead: str = "") -> torch.Tensor:
    """The batch's target positions, or an InputError saying why a method keyed by them cannot run."""
    if index is None:
        raise InputError(
            f"{method} keys its memory by the target examples' positions, which a DataLoader of your own does not "
            f"give; pass the target as tensors or as a Dataset{instead}"
        )
    return index


class TargetMemory(nn.Module):
    """L2-normalized features and predictions of every target example, as last seen in training.

    The memory starts empty; :meth:`resize` sizes it for the target dataset before training, with
    random unit features and uniform predictions (as pytorch-adapt's ``NeighborhoodAggregation``
    starts). Both are buffers, so they move with the model and travel in training checkpoints (a
    resumed run continues from the same memory).
    """

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.feature_dim, self.num_classes = feature_dim, num_classes
        self.register_buffer("features", torch.empty(0, feature_dim))
        self.register_buffer("predictions", torch.empty(0, num_classes))

    def __len__(self) -> int:
        return self.features.shape[0]

    def resize(self, num_examples: int) -> None:
        """Room for ``num_examples`` examples, reset to random unit features and uniform predictions."""
        device = self.features.device
        self.features = F.normalize(torch.rand(num_examples, self.feature_dim), dim=1).to(device)
        self.predictions = torch.full((num_examples, self.num_classes), 1.0 / self.num_classes, device=device)

    def update(self, index: torch.Tensor, features: torch.Tensor, predictions: torch.Tensor) -> None:
        """Store the batch's (normalized) features and predictions at the examples' positions."""
        with torch.no_grad():
            self.features[index] = F.normalize(features.detach().float(), dim=1)
            self.predictions[index] = predictions.detach().float()
