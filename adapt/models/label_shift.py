"""A running estimate of the target's class proportions relative to the source's (IWDAN's weights)."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..losses import label_shift_weights


class ClassImportanceWeights(nn.Module):
    """Class weights :math:`w_y \\approx p_T(y)/p_S(y)`, re-estimated every ``update_every`` steps.

    Combes et al., NeurIPS 2020 (IWDAN, IWCDAN), as their code does it (``train_digits.py``,
    ``train``): between two updates it sums the source's joint distribution of predicted and true
    labels and the target's predictions; at an update it solves the QP of
    :func:`adapt.losses.label_shift.label_shift_weights` and moves the weights there with a moving average,
    ``w = (1 - momentum) * new + momentum * w`` (their ``--ma``, default 0.5). The weights start at 1,
    and the authors update once per epoch; here every ``update_every`` steps, since ``fit`` counts steps.

    The weights are buffers: they are saved with the model and follow it between devices. Under
    data-parallel training each process sees its share of the global batch; the batch's sums are added
    up over the processes, so that every process holds the single-process estimate.
    """

    def __init__(self, num_classes: int, update_every: int = 100, momentum: float = 0.5) -> None:
        super().__init__()
        if update_every < 1:
            raise ValueError(f"update_every must be >= 1, got {update_every}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.num_classes, self.update_every, self.momentum = num_classes, update_every, momentum
        self.register_buffer("weights", torch.ones(num_classes))
        self.register_buffer("confusion", torch.zeros(num_classes, num_classes))
        self.register_buffer("target_prediction", torch.zeros(num_classes))
        self.register_buffer("source_counts", torch.zeros(num_classes))

    @torch.no_grad()
    def observe(self, source_logits: torch.Tensor, source_y: torch.Tensor, target_logits: torch.Tensor) -> None:
        """Add one batch's predictions to the sums of the current period."""
        one_hot = F.one_hot(source_y, self.num_classes).float()
        k = self.num_classes
        sums = torch.cat([
            (source_logits.detach().float().softmax(1).t() @ one_hot).reshape(-1),
            target_logits.detach().float().softmax(1).sum(0),
            one_hot.sum(0),
        ])  # fmt: skip
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums)
        self.confusion += sums[: k * k].reshape(k, k)
        self.target_prediction += sums[k * k : k * k + k]
        self.source_counts += sums[k * k + k :]

    @torch.no_grad()
    def step(self, step: int) -> None:
        """After training step ``step`` (0-based): at the end of a period, re-estimate and start a new one."""
        if (step + 1) % self.update_every or self.source_counts.sum() == 0:
            return
        counted = self.source_counts.sum()
        target = self.target_prediction / self.target_prediction.sum()
        estimate = label_shift_weights(self.confusion / counted, target, self.source_counts / counted)
        self.weights.mul_(self.momentum).add_((1.0 - self.momentum) * estimate.to(self.weights))
        self.confusion.zero_()
        self.target_prediction.zero_()
        self.source_counts.zero_()

    def forward(self, source_y: torch.Tensor) -> torch.Tensor:
        """The weight of each source example, by its label (B,)."""
        return self.weights[source_y]
