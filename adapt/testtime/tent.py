"""TENT: test-time entropy minimization on BatchNorm's affine parameters (Wang et al., ICLR 2021)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..losses import entropy
from ..models.batchnorm import batch_norm_layers
from .base import IMAGENET_SGD, TEST_TIME_METHODS, TestTimeAdapter, _params, make_optimizer, use_batch_statistics


@TEST_TIME_METHODS.register("tent")
class TENT(TestTimeAdapter):
    """Minimize the entropy of the predictions on each test batch, through BatchNorm's scales and shifts.

    Wang, Shelhamer, Liu, Olshausen & Darrell, "Tent: Fully Test-Time Adaptation by Entropy
    Minimization", ICLR 2021: on every incoming batch, one forward pass in training mode with BatchNorm
    normalizing by the batch's own statistics (running statistics dropped), the mean entropy
    :math:`H(\\hat y) = -\\sum_c p_c \\log p_c` (:func:`adapt.losses.entropy`), one optimizer step on the
    BatchNorm affine parameters only; the batch's predictions are those of that forward pass, before
    the step (as the authors' ``forward_and_adapt``).

    The authors' code (DequanWang/tent at commit e9e926a, ``tent.py`` lines 48-110 and ``cifar10c.py``'s
    ``setup_optimizer`` with ``cfgs/tent.yaml``) adapts ``nn.BatchNorm2d`` layers only; here every BatchNorm
    layer adapts by default (1-D ones too: a BatchNorm bottleneck or an MLP), and ``batch_norm="2d"``, the
    ``"official"`` preset, does as they do. Their optimizer on CIFAR-10-C is the default here: Adam, lr 1e-3,
    betas (0.9, 0.999), no weight decay, one step per batch.

    A network without BatchNorm (a ViT, a GroupNorm ResNet) has no batch statistics to re-estimate: there
    TENT adapts the affine parameters of its LayerNorm and GroupNorm layers, in eval mode (dropout and
    stochastic depth off), as the reference TTA benchmark's Tent does (mariodoebler/test-time-adaptation at
    8b2ed63, ``classification/methods/tent.py`` lines 49-83, which also adapts them beside BatchNorm; here a
    network with BatchNorm adapts BatchNorm only, as the authors).

    Parameters
    ----------
    model : a trained classifier with BatchNorm, LayerNorm or GroupNorm layers (deep-copied).
    lr : learning rate (1e-3 with Adam, the authors' CIFAR-10-C setting; they use SGD, lr 2.5e-4,
        momentum 0.9 on ImageNet-C).
    optimizer : 'adam' or 'sgd'.
    momentum : SGD momentum (Adam's beta1 is 0.9).
    nesterov : Nesterov momentum for SGD (the reference benchmark's, ``"imagenet"`` preset).
    steps : optimizer steps per batch (1).
    batch_norm : which BatchNorm layers adapt: 'all' (1-D, 2-D and 3-D) or '2d' (``nn.BatchNorm2d`` only,
        as the authors' ``configure_model`` and ``collect_params``); the others keep their source
        statistics and parameters.
    """

    name = "tent"
    paper = "Wang et al., ICLR 2021"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "official": {"batch_norm": "2d"},
        "imagenet": {"batch_norm": "2d", **IMAGENET_SGD},  # the reference benchmark's cfgs/imagenet_c/tent.yaml
    }

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        nesterov: bool = False,
        steps: int = 1,
        batch_norm: str = "all",
    ) -> None:
        super().__init__(model)
        if int(steps) != steps or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        with_batch_norm = bool(batch_norm_layers(self.model))
        # no BatchNorm (a ViT): the LayerNorms and GroupNorms, in eval mode (dropout and stochastic depth off)
        layers = self.require_batch_norm(batch_norm) if with_batch_norm else self.norm_layers()
        self.batch_norm = batch_norm
        self.model.train(with_batch_norm)
        self.model.requires_grad_(False)
        for layer in layers:
            layer.requires_grad_(True)
        use_batch_statistics(layers)
        params = _params(layers)
        if not params:
            raise ValueError("the model's normalization layers have no affine parameters: nothing to adapt")
        self.lr, self.optimizer_name, self.momentum, self.steps = lr, optimizer, momentum, int(steps)
        self.optimizer: torch.optim.Optimizer = make_optimizer(params, optimizer, lr, momentum, nesterov)
        self._snapshot()

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.steps):
            logits = self.model(x)
            loss = entropy(logits)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return logits
