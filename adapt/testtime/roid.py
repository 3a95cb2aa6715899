"""ROID: weight ensembling, diversity weighting and prior correction (Marsden et al., WACV 2024)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import entropy, soft_likelihood_ratio, symmetric_cross_entropy
from .augment import InputScale, check_batch, resolve_augment
from .base import IMAGENET_SGD, TEST_TIME_METHODS, TestTimeAdapter, make_optimizer


def _min_max(values: torch.Tensor) -> torch.Tensor:
    return (values - values.min()) / (values.max() - values.min())


@TEST_TIME_METHODS.register("roid")
class ROID(TestTimeAdapter):
    """Self-training on diverse, certain samples, with the weights pulled back to the source's after every
    step and the predictions corrected by the batch's label prior.

    Marsden, Döbler & Yang, "Universal Test-time Adaptation through Weight Ensembling, Diversity Weighting,
    and Prior Correction", WACV 2024. On each batch, with :math:`\\bar p` a moving average (0.9) of the
    batch-mean predictions: each sample's diversity :math:`1 - \\cos(\\bar p, p_i)` and certainty
    :math:`-H(p_i)`, each min-max normalized, give the weight :math:`\\exp(d_i c_i / T)`; samples whose
    diversity is below the batch mean get weight 0. The loss is the weighted soft likelihood ratio
    (:func:`adapt.losses.soft_likelihood_ratio`) summed over the kept samples and divided by the batch
    size, plus the weighted symmetric cross-entropy between each kept sample's prediction and that of an
    augmented view (``augment``; by default the authors' augmentation, reflect-padded, without blur and
    noise: :func:`adapt.testtime.augment.authors_augmentation`). After the optimizer step the adapted
    parameters are averaged with the source's, :math:`\\theta \\leftarrow m\\theta + (1-m)\\theta_{src}`
    (weight ensembling). The batch's logits (those of the forward pass before the step) are multiplied by
    the smoothed batch prior :math:`(\\pi + s)/(1 + sC)`, :math:`s = \\max(1/B, 1/C)/\\max_c \\pi_c` (prior correction).

    Follows the authors' code (mariodoebler/test-time-adaptation at 8b2ed63, ``classification/methods/
    roid.py`` lines 20-165, with ``conf.py`` lines 262-269 and ``cfgs/cifar10_c/roid.yaml``: Adam, lr 1e-3),
    which multiplies the *logits* by the prior (line 121), as the library does. Their augmentation takes
    images in [0, 1] (or ``input_scale="imagenet"``); for other inputs pass ``augment=None`` (no
    consistency term) or a callable. Departure: the loss is divided by the batch's own size (theirs: the
    configured one, which differs on a last, smaller batch). Adapts BatchNorm (batch statistics), LayerNorm
    and GroupNorm affine parameters: any normalization.

    Parameters
    ----------
    model : a trained classifier with normalization layers (deep-copied).
    weighting, prior_correction : the two components, on by default.
    augment : the consistency term's view: ``"authors"`` (default), ``"none"``/None (off), or a callable.
    input_scale : what the model takes, for the authors' augmentation: ``"unit"`` or ``"imagenet"``.
    source_momentum : :math:`m` of the weight ensembling (0.99).
    probability_momentum : momentum of :math:`\\bar p` (0.9).
    temperature : :math:`T` (1/3).
    lr, optimizer, momentum, nesterov : the step (:func:`adapt.testtime.base.make_optimizer`): Adam, lr 1e-3,
        betas (0.9, 0.999), the reference benchmark's CIFAR setting; ``"imagenet"`` preset: its ImageNet-C SGD.
    batch_norm : which BatchNorm layers adapt: 'all' or '2d'.
    """

    name = "roid"
    paper = "Marsden et al., WACV 2024"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {**IMAGENET_SGD},  # the reference benchmark's cfgs/imagenet_c/roid.yaml
    }

    def __init__(
        self,
        model: nn.Module,
        *,
        weighting: bool = True,
        prior_correction: bool = True,
        augment: str | Callable[[torch.Tensor], torch.Tensor] | None = "authors",
        input_scale: InputScale = "unit",
        source_momentum: float = 0.99,
        probability_momentum: float = 0.9,
        temperature: float = 1 / 3,
        lr: float = 1e-3,
        optimizer: str = "adam",
        momentum: float = 0.9,
        nesterov: bool = False,
        batch_norm: str = "all",
    ) -> None:
        super().__init__(model)
        if not 0 <= source_momentum <= 1 or not 0 <= probability_momentum <= 1:
            raise ValueError("source_momentum and probability_momentum are in [0, 1]")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.params = self.adapt_norm_layers(batch_norm)
        self.source = [p.detach().clone() for p in self.params]
        self.weighting, self.prior_correction = weighting, prior_correction
        self.augment = resolve_augment(augment, input_scale, padding_mode="reflect", cotta_augs=False)
        self.source_momentum, self.probability_momentum = source_momentum, probability_momentum
        self.temperature = temperature
        self.optimizer = make_optimizer(self.params, optimizer, lr, momentum, nesterov)
        self.class_probabilities: torch.Tensor | None = None  # the moving average of the predictions
        self._snapshot()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "class_probabilities": copy.deepcopy(self.class_probabilities)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.class_probabilities = copy.deepcopy(state["class_probabilities"])

    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        check_batch(self.augment, x)
        logits = self.model(x)
        loss = self._loss(x, logits)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        with torch.no_grad():
            for p, source in zip(self.params, self.source):
                p.data = self.source_momentum * p.data + (1 - self.source_momentum) * source
            logits = logits.detach()
            if self.prior_correction:
                prior = logits.softmax(1).mean(0)
                smooth = max(1 / logits.shape[0], 1 / logits.shape[1]) / prior.max()
                logits = logits * (prior + smooth) / (1 + smooth * logits.shape[1])
        return logits

    def _loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        losses = soft_likelihood_ratio(logits)
        weights, keep = torch.ones_like(losses), torch.ones_like(losses, dtype=torch.bool)
        if self.weighting:
            with torch.no_grad():
                probabilities = logits.softmax(1)
                if self.class_probabilities is None:
                    self.class_probabilities = torch.full_like(probabilities[0], 1 / logits.shape[1])
                similarity = F.cosine_similarity(self.class_probabilities.unsqueeze(0), probabilities, dim=1)
                diversity = _min_max(1 - similarity)
                keep = ~(diversity < diversity.mean())
                weights = torch.exp(diversity * _min_max(-entropy(logits, reduction="none")) / self.temperature)
                weights[~keep] = 0.0
                m = self.probability_momentum
                self.class_probabilities = m * self.class_probabilities + (1 - m) * probabilities.mean(0)
        loss = (losses * weights)[keep].sum() / x.shape[0]
        if self.augment is not None:
            augmented = self.model(self.augment(x[keep]))
            loss = loss + (symmetric_cross_entropy(augmented, logits[keep]) * weights[keep]).sum() / x.shape[0]
        return loss
