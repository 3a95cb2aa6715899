"""SAR: sharpness-aware and reliable entropy minimization, with model recovery (Niu et al., ICLR 2023)."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import entropy
from ..train.sam import SAM
from .base import TEST_TIME_METHODS, TestTimeAdapter


@TEST_TIME_METHODS.register("sar")
class SAR(TestTimeAdapter):
    """Entropy minimization on the reliable samples of each batch, with a sharpness-aware step, and a reset
    of the model when its entropy collapses.

    Niu, Wu, Zhang, Wen, Chen, Zhao & Tan, "Towards Stable Test-Time Adaptation in Dynamic Wild World",
    ICLR 2023. On each batch: the samples with entropy below :math:`E_0` (Eq. 2) give the loss
    :math:`\\frac1{|S|}\\sum_{i\\in S} H(p_i)`; SAM (:class:`adapt.train.sam.SAM`, radius :math:`\\rho`)
    moves the parameters to the worst case nearby, where the samples still below :math:`E_0` give the
    gradient the SGD step uses (Eq. 4, as the authors' code comments say); a moving average
    :math:`e \\leftarrow 0.9e + 0.1 L` of that second loss below ``reset_threshold`` (:math:`e_m`) puts the
    model and optimizer back to where they started (model recovery). The batch's predictions are the first
    forward pass's.

    Works on any normalization: the affine parameters of BatchNorm (normalizing by each batch's own
    statistics), LayerNorm and GroupNorm layers adapt, except those the authors skip by name
    (:func:`adapt.testtime.base.skipped_by_the_authors`: a ResNet's ``layer4``, a ViT-B's last three blocks
    and final norm; ``skip_top_layers=False`` adapts them too). The rest of the network runs in eval mode (no dropout).

    Follows the reference benchmark's transcription (mariodoebler/test-time-adaptation at 8b2ed63,
    ``classification/methods/sar.py`` lines 41-140: eval mode, BatchNorm1d adapted, ``e_m`` read from the
    settings) of the authors' code (mr-eggplant/SAR at 20f6e24, ``sar.py``: train mode, ``nn.BatchNorm2d``
    only, ``e_m`` written as 0.2 in ``forward_and_adapt_sar`` whatever it is set to). Their optimizer is
    SGD, momentum 0.9, lr 2.5e-4 with batches of 64 (``main.py`` lines 187-199; the benchmark's CIFAR
    configs use 1e-3, the ``"cifar"`` preset). One difference: on recovery the library also clears the
    SGD momentum (the authors' SAM keeps its base optimizer's buffers out of its saved state).

    Parameters
    ----------
    model : a trained classifier with normalization layers (deep-copied).
    entropy_margin : :math:`E_0` as a fraction of :math:`\\ln C` (0.4, the authors').
    reset_threshold : :math:`e_m` (0.2).
    rho : SAM's radius (0.05).
    lr, momentum : the SGD step.
    steps : adaptation steps per batch.
    batch_norm : which BatchNorm layers adapt: 'all' or '2d' (as :class:`~adapt.testtime.TENT`).
    skip_top_layers : leave the layers the authors skip by name alone.
    """

    name = "sar"
    paper = "Niu et al., ICLR 2023"
    presets: ClassVar[dict[str, dict[str, Any]]] = {"cifar": {"lr": 1e-3}}

    def __init__(
        self,
        model: nn.Module,
        *,
        entropy_margin: float = 0.4,
        reset_threshold: float = 0.2,
        rho: float = 0.05,
        lr: float = 2.5e-4,
        momentum: float = 0.9,
        steps: int = 1,
        batch_norm: str = "all",
        skip_top_layers: bool = True,
    ) -> None:
        super().__init__(model)
        if not 0 < entropy_margin <= 1:
            raise ValueError(f"entropy_margin is a fraction of ln(classes) in (0, 1], got {entropy_margin!r}")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        params = self.adapt_norm_layers(batch_norm, skip_top_layers)
        self.entropy_margin, self.reset_threshold, self.steps = entropy_margin, reset_threshold, int(steps)
        self.optimizer = SAM(params, torch.optim.SGD, rho=rho, lr=lr, momentum=momentum)
        self.ema: float | None = None  # moving average of the second loss (model recovery)
        self.recoveries = 0
        self._snapshot()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "ema": self.ema, "recoveries": self.recoveries}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.ema, self.recoveries = state["ema"], int(state["recoveries"])

    def _recover(self) -> None:
        """Model recovery: the model and the optimizer as they started; the batches seen still count."""
        self.model.load_state_dict(self._initial["model"])
        self.optimizer.load_state_dict(self._initial["optimizer"])
        self.ema, self.recoveries = None, self.recoveries + 1

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.steps):
            logits = self._sharpness_aware_step(x)
            if self.ema is not None and self.ema < self.reset_threshold:
                self._recover()
        return logits

    def _sharpness_aware_step(self, x: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad()
        logits = self.model(x)
        margin = self.entropy_margin * math.log(logits.shape[1])
        reliable = entropy(logits, reduction="none") < margin
        entropy(logits[reliable]).backward()  # an empty selection is NaN, as theirs, with zero gradients
        self.optimizer.first_step(zero_grad=True)
        entropies = entropy(self.model(x)[reliable], reduction="none")
        second = entropies[entropies < margin].mean()
        if not math.isnan(second.item()):
            self.ema = second.item() if self.ema is None else 0.9 * self.ema + 0.1 * second.item()
        second.backward()
        self.optimizer.second_step(zero_grad=True)
        return logits.detach()
