"""The two records that pass between the training engine and the methods: the :class:`Batch` the
engine hands to a method, and the :class:`Outputs` of one forward pass over it. A leaf module (it
imports only torch), so the engine and the methods both depend on it and not on each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One training batch: labeled source inputs and unlabeled target inputs, on the device.

    ``step`` is the batch's index in training (0 for the first update), for step-driven schedules.
    ``target_index`` holds the target examples' positions in the target dataset, for methods that
    keep a memory of the target (ATDOC); it is None when the data came as a user's DataLoader.
    ``labeled_target_x``/``labeled_target_y`` hold a batch of the few labeled target examples passed
    as ``fit(target_labeled=...)`` (None without them), and ``labeled_target_weight`` the weight of
    their classification loss.
    """

    source_x: torch.Tensor
    source_y: torch.Tensor
    target_x: torch.Tensor
    step: int = 0
    target_index: torch.Tensor | None = None
    labeled_target_x: torch.Tensor | None = None
    labeled_target_y: torch.Tensor | None = None
    labeled_target_weight: float = 1.0


@dataclass
class Outputs:
    """Features and logits of a source batch and a target batch from one forward pass."""

    source_features: torch.Tensor
    target_features: torch.Tensor
    source_logits: torch.Tensor
    target_logits: torch.Tensor
