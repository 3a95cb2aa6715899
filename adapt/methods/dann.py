"""DANN: domain-adversarial neural network (Ganin et al., JMLR 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch, Outputs
from ..models.label_shift import ClassImportanceWeights
from .adversarial import AdversarialAdapter
from .base import SearchSpace
from .registry import register_method


@register_method("dann")
class DANN(AdversarialAdapter):
    """Domain-adversarial training through a gradient reversal layer.

    Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 2016, Eq. 18:

    .. math:: \\min_{f,g}\\max_{d}\\; L_y(g(f(x^s)), y^s) - \\lambda\\, L_d(d(f(x^s)), d(f(x^t)))

    implemented as one minimization of :math:`L_y + \\text{trade\\_off}\\cdot L_d(d(R_\\lambda(f)))`,
    where :math:`R_\\lambda` reverses gradients with a coefficient :math:`\\lambda` that grows during
    training (``grl_schedule``).

    Parameters
    ----------
    discriminator_hidden, discriminator_batch_norm, discriminator_dropout : the domain discriminator;
        by default 1024-1024 ReLU layers without BatchNorm, each followed by dropout 0.5 (the
        discriminator of the CDAN authors' code). With TLlib's BatchNorm discriminator DANN lost to
        SourceOnly on the MLP features of the quick suite; the evidence for this choice is in
        ``docs/decisions.md``.
    importance_weighting : weight each source example's domain loss by its class's estimated
        :math:`p_T(y)/p_S(y)` (IWDAN, Combes et al., NeurIPS 2020; the estimate is
        :class:`~adapt.models.label_shift.ClassImportanceWeights`), so that the discriminator compares
        the target with the source reweighted to the target's class proportions: aligning the plain
        marginals when the class proportions differ (label shift) moves target examples into the wrong
        classes. On by default since 0.5.0, chosen on the tuning half (``docs/decisions.md``). The authors
        also weight the source classification loss by the same weights; here only the domain loss is.
    importance_update_every, importance_momentum : how often the weights are re-estimated (steps; the
        authors: once an epoch) and the moving average that keeps the old weights (their ``--ma``, 0.5).
    Others : see :class:`~adapt.methods.adversarial.AdversarialAdapter`.

    Presets
    -------
    ``create("dann", preset=...)``; each is checked against a transcription of its source in the tests.

    * ``"paper"`` -- Ganin et al.: :math:`\\lambda_p = 2/(1+e^{-10p})-1` over the run, the domain
      loss summed over the two domains (Eq. 18), a 1024-1024 ReLU discriminator.
    * ``"tllib"`` -- TLlib's ``DomainAdversarialLoss``: warm-start reversal (alpha 1, 1000 steps),
      the mean of the two domain losses, a 1024-1024 discriminator with BatchNorm.
    """

    family = "adversarial"
    paper = "Ganin et al., JMLR 2016"
    adaptation_term = "domain discriminator through gradient reversal"

    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.1, 3.0)}
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {
            "trade_off": 1.0,
            "grl_schedule": "dann",
            "grl_max": 1.0,
            "domain_loss": "sum",
            "discriminator_hidden": (1024, 1024),
            "discriminator_batch_norm": False,
            "discriminator_dropout": 0.0,
            "importance_weighting": False,
        },
        "tllib": {
            "trade_off": 1.0,
            "grl_schedule": "warm_start",
            "grl_max": 1.0,
            "grl_warm_start_steps": 1000,
            "grl_warm_start_alpha": 1.0,
            "domain_loss": "mean",
            "discriminator_hidden": (1024, 1024),
            "discriminator_batch_norm": True,
            "discriminator_dropout": 0.0,
            "importance_weighting": False,
        },
    }

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        discriminator_hidden: Sequence[int] | None = (1024, 1024),
        discriminator_batch_norm: bool = False,
        discriminator_dropout: float = 0.5,
        importance_weighting: bool = True,
        importance_update_every: int = 100,
        importance_momentum: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            backbone,
            num_classes,
            discriminator_hidden=discriminator_hidden,
            discriminator_batch_norm=discriminator_batch_norm,
            discriminator_dropout=discriminator_dropout,
            **kwargs,
        )
        self.importance_weighting = importance_weighting
        self.importance_update_every = importance_update_every
        self.importance_momentum = importance_momentum
        self.importance: ClassImportanceWeights | None = None

    def build_modules(self, feature_dim: int) -> None:
        self.discriminator = self.make_discriminator(feature_dim, feature_dim)
        self.importance = None
        if self.importance_weighting:
            self.importance = ClassImportanceWeights(
                self.num_classes, self.importance_update_every, self.importance_momentum
            )

    def source_importance(self, out: Outputs, batch: Batch) -> torch.Tensor | None:
        """Each source example's class weight :math:`\\hat p_T(y)/p_S(y)` (None without
        ``importance_weighting``); the batch's predictions go into the next estimate."""
        if self.importance is None:
            return None
        weights = self.importance(batch.source_y)
        self.importance.observe(out.source_logits, batch.source_y, out.target_logits)
        self.importance.step(batch.step)
        return weights

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        out = self.forward_domains(batch)
        source_domain, target_domain = self.domain_logits(
            out.source_features, out.target_features, progress, batch.step
        )
        weights = self.source_importance(out, batch)
        target_weights = None if weights is None else torch.ones_like(target_domain.reshape(-1))
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "domain": self.discriminator_loss(source_domain, target_domain, weights, target_weights),
        }
