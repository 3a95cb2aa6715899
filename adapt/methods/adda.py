"""ADDA: adversarial discriminative domain adaptation (Tzeng et al., CVPR 2017)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..batch import Batch
from ..losses import domain_adversarial_loss
from ..models.heads import default_discriminator
from ..train.engine import Stepper
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("adda")
class ADDA(Adapter):
    """Pre-train on the source, then train a copy of the encoder to fool a domain discriminator.

    Tzeng et al., "Adversarial Discriminative Domain Adaptation", CVPR 2017. One run does both
    stages of the paper:

    * the first ``pretrain_fraction`` of the run trains the encoder (backbone and bottleneck) and the
      classifier on the source alone;
    * then the encoder is copied into a frozen ``source_encoder``, and each batch takes two optimizer
      stages: the discriminator learns to tell ``source_encoder(x_s)`` from ``encoder(x_t)``; the
      encoder (the target encoder from now on) minimizes the discriminator's loss with the labels
      inverted (the GAN loss). The classifier stays as pre-trained.

    Predictions use the adapted encoder. ADDA does not take ``regularizers``.

    Parameters
    ----------
    pretrain_fraction : share of the run spent on source pre-training, in (0, 1).
    discriminator_hidden : hidden widths of the discriminator, without BatchNorm (None: two layers of
        :func:`~adapt.models.heads.discriminator_width` units; the paper uses 500-500 on digits).
    """

    family = "adversarial"
    paper = "Tzeng et al., CVPR 2017"
    adaptation_term = "target encoder trained against a discriminator (GAN loss), after source pre-training"
    accepts_regularizers = False
    min_batch_size = 2  # pre-training and the encoder stage send one domain alone through BatchNorm
    #: not updated once adaptation starts (the contract checks look at a batch mid-run)
    fixed_modules: ClassVar[tuple[str, ...]] = ("classifier", "source_encoder")
    search_space: ClassVar[SearchSpace] = {"pretrain_fraction": ("uniform", 0.2, 0.6)}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        pretrain_fraction: float = 0.5,
        discriminator_hidden: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if not 0 < pretrain_fraction < 1:
            raise ValueError(f"pretrain_fraction must be in (0, 1), got {pretrain_fraction!r}")
        self.pretrain_fraction = pretrain_fraction
        self.discriminator_hidden = tuple(discriminator_hidden) if discriminator_hidden is not None else None

    def build_modules(self, feature_dim: int) -> None:
        # no BatchNorm: the encoder's stage shows the discriminator target batches alone, which
        # BatchNorm would normalize differently from the mixed batches it was trained on
        self.discriminator = default_discriminator(
            feature_dim, feature_dim, self.discriminator_hidden, batch_norm=False
        )
        self.source_encoder = nn.Sequential(copy.deepcopy(self.backbone), copy.deepcopy(self.bottleneck))
        self.source_encoder.requires_grad_(False)
        # a buffer, so that checkpoints and resumed runs know whether the copy was taken
        self.register_buffer("adapting", torch.tensor(False))
        self._adapting = False  # the buffer's value on the host: no device sync per step

    def _start_adapting(self) -> None:
        encoder = nn.Sequential(self.backbone, self.bottleneck)
        self.source_encoder.load_state_dict(encoder.state_dict())
        self.adapting.fill_(True)
        self._adapting = True

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self._adapting = bool(self.adapting)
        return result

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        """Pre-training: the source loss. Adaptation: the encoder's inverted-label loss on the target,
        with the (fixed) classifier's source loss on the frozen source encoder for monitoring."""
        if progress < self.pretrain_fraction:
            return {"classification": self.classification_loss(self(batch.source_x), batch.source_y)}
        return self._adaptation_terms(self._source_features(batch.source_x), batch)

    def _adaptation_terms(self, source_features: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        target_logits = self.discriminator(self.embed(batch.target_x)).float()
        return {
            "classification": self.classification_loss(self.classifier(source_features), batch.source_y),
            # the discriminator calls source 1 and target 0: the encoder wants its target called source
            "confusion": F.binary_cross_entropy_with_logits(target_logits, torch.ones_like(target_logits)),
        }

    @torch.no_grad()
    def _source_features(self, source_x: torch.Tensor) -> torch.Tensor:
        if not self._adapting:
            self._start_adapting()
        self.source_encoder.eval()  # frozen: its BatchNorm statistics stay the source's
        return self.source_encoder(source_x)

    def update(self, batch: Batch, progress: float, stepper: Stepper) -> dict[str, torch.Tensor]:
        if progress < self.pretrain_fraction:
            return super().update(batch, progress, stepper)
        with stepper.autocast():
            source_features = self._source_features(batch.source_x)
            with torch.no_grad():
                target_features = self.embed(batch.target_x)
            source_logits, target_logits = self.discriminator(torch.cat([source_features, target_features])).split(
                [len(source_features), len(target_features)]
            )
            domain = domain_adversarial_loss(source_logits, target_logits)
        stepper.step(domain, only=[self.discriminator])
        with stepper.autocast():  # the frozen encoder's features serve both stages
            terms = {**self._adaptation_terms(source_features, batch), **self.labeled_target_terms(batch)}
        # the encoder learns the labeled target examples (if any) through the fixed classifier
        encoder_terms = {k: v for k, v in terms.items() if k != "classification"}
        stepper.step(encoder_terms, only=[self.backbone, self.bottleneck])
        return {**terms, "domain": domain.detach()}
