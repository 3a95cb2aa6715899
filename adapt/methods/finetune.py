"""The transfer baselines that use target labels: TargetOnly and FineTune (and so UDA-then-FineTune)."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
import torch
from torch import nn

from ..batch import Batch
from ..errors import InputError
from .base import Adapter
from .registry import TRANSFER_BASELINES
from .source_free import SourceFreeAdapter

#: FineTune's ``train_layers``: which parts of the source model learn from the target labels.
TRAIN_LAYERS = ("all", "head", "bottleneck+head")


def _require_labels(name: str, batch: Batch) -> None:
    if batch.labeled_target_x is None:
        raise InputError(f"{name} trains on labeled target examples: pass them as fit(target_labeled=(x, y))")


@TRANSFER_BASELINES.register("target_only")
class TargetOnly(Adapter):
    """Supervised training on the labeled target examples alone: the baseline every transfer method
    must beat, and with all the target labels, the accuracy transfer tries to reach.

    ``TargetOnly(backbone, C).fit(target_labeled=(x, y))``. The backbone starts from its own
    weights: random, or pretrained (for example ``ResNetFeatures("resnet50", weights="IMAGENET1K_V1")``
    when the weights are in the local torch cache). Source data and unlabeled target inputs are not
    used; the loss is the ``target_classification`` term alone.
    """

    name = "target_only"
    family = "baseline"
    paper = "supervised on the labeled target"
    adaptation_term = "none (target labels only)"
    uses_source = False
    uses_target = False
    accepts_regularizers = False

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        _require_labels("TargetOnly", batch)
        return {}  # loss_terms adds the labeled target examples' cross-entropy

    def fit(  # type: ignore[override]
        self,
        source: Any = None,
        target: Any = None,
        *,
        target_labeled: Any = None,
        **options: Any,
    ) -> pd.DataFrame:
        """Train on ``target_labeled`` (required); ``source`` must be None (it would be ignored) and
        ``target`` defaults to the labeled inputs (the unlabeled target is not used either). The options
        are :meth:`Adapter.fit`'s."""
        if source is not None:
            raise InputError("TargetOnly does not use source data: call fit(target_labeled=(x, y))")
        if target_labeled is None:
            raise InputError("TargetOnly trains on labeled target examples: pass them as fit(target_labeled=(x, y))")
        return super().fit(None, target, target_labeled=target_labeled, **options)


@TRANSFER_BASELINES.register("finetune")
class FineTune(SourceFreeAdapter):
    """A trained model (source-only, or adapted by any UDA method) fine-tuned on labeled target examples.

    ``FineTune.from_source(model, train_layers="all").fit(target_labeled=(x, y))``; the model is copied,
    not changed. ``FineTune.from_source(DANN_model)`` is UDA-then-FineTune.

    Parameters
    ----------
    train_layers : 'all' (the default: every layer learns), 'head' (only the classifier: a linear
        probe on the source features) or 'bottleneck+head'.
    """

    name = "finetune"
    family = "baseline"
    paper = "fine-tuning on the labeled target"
    adaptation_term = "none (target labels only)"
    uses_target = False
    frozen_by_choice: ClassVar[dict[str, tuple[str, ...]]] = {
        "all": (), "head": ("backbone", "bottleneck"), "bottleneck+head": ("backbone",),
    }  # fmt: skip

    def __init__(self, backbone: nn.Module, num_classes: int, *, train_layers: str = "all", **kwargs: Any) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if train_layers not in TRAIN_LAYERS:
            raise ValueError(f"train_layers must be one of {', '.join(TRAIN_LAYERS)}; got {train_layers!r}")
        self.train_layers = train_layers

    def build_modules(self, feature_dim: int) -> None:
        for name in self.frozen_by_choice[self.train_layers]:
            getattr(self, name).requires_grad_(False)

    def train(self, mode: bool = True) -> FineTune:
        super().train(mode)
        for name in self.frozen_by_choice[self.train_layers]:
            getattr(self, name).eval()  # frozen layers keep their BatchNorm statistics too
        return self

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        _require_labels("FineTune", batch)
        return {}  # loss_terms adds the labeled target examples' cross-entropy

    def fit(self, target: Any = None, *, target_labeled: Any = None, **options: Any) -> pd.DataFrame:  # type: ignore[override]
        """Fine-tune on ``target_labeled`` (required); ``target`` (unlabeled inputs) is not used for
        training and defaults to the labeled inputs. Options as :meth:`Adapter.fit`."""
        if target_labeled is None:
            raise InputError("FineTune trains on labeled target examples: pass them as fit(target_labeled=(x, y))")
        return super().fit(target, target_labeled=target_labeled, **options)
