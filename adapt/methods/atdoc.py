"""ATDOC: pseudo-labels from an auxiliary target-oriented classifier (Liang, Hu & Feng, CVPR 2021)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..batch import Batch
from ..losses.neighbors import confidence_weighted_cross_entropy, neighborhood_predictions, sharpened_predictions
from ..models.memory import TargetMemory, check_memory_size, target_positions
from .base import Adapter, SearchSpace
from .registry import register_method


@register_method("atdoc")
class ATDOC(Adapter):
    """Self-training with pseudo-labels voted by each target example's nearest stored neighbours.

    Liang, Hu & Feng, "Domain Adaptation with Auxiliary Target Domain-Oriented Classifier",
    CVPR 2021, with its neighborhood aggregation classifier (ATDOC-NA). A memory keeps, for every
    target example, its last normalized feature and its sharpened prediction
    (:func:`~adapt.losses.neighbors.sharpened_predictions`). Each target example in a batch is
    pseudo-labeled by the mean stored prediction :math:`\\hat q_i` of its K most similar stored
    examples, itself excluded (:func:`~adapt.losses.neighbors.neighborhood_predictions`):

    .. math:: L_y + \\text{trade\\_off}\\cdot p\\cdot
              \\frac{\\sum_i w_i\\,\\mathrm{CE}(p(\\cdot\\mid x^t_i), \\arg\\max_c \\hat q_{ic})}{\\sum_i w_i},
              \\qquad w_i = \\max_c \\hat q_{ic},

    with :math:`p` the fraction of training done (the weight ramps up linearly); then the batch's
    entries of the memory are replaced by its current features and predictions.

    The memory is keyed by the target examples' positions in their dataset, which the engine passes
    when the target is given as tensors or a Dataset; a DataLoader of your own hides them (an
    :class:`~adapt.errors.InputError` says so at the first step). The memory is refreshed from the
    training forward pass (as pytorch-adapt's ``ATDOCHook`` does), not from a second pass in eval mode.

    Parameters
    ----------
    trade_off : final weight of the pseudo-label term (0.2).
    k : number of neighbours K (5, as in pytorch-adapt's ``NeighborhoodAggregation``).
    temperature : sharpening temperature T of the stored predictions (0.5: squared probabilities).
    """

    family = "self-training"
    paper = "Liang et al., CVPR 2021"
    adaptation_term = "confidence-weighted pseudo-labels voted by K nearest target neighbours in a memory"
    search_space: ClassVar[SearchSpace] = {"trade_off": ("log_uniform", 0.05, 1.0), "k": ("choice", [3, 5, 10])}

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        trade_off: float = 0.2,
        k: int = 5,
        temperature: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.trade_off = trade_off
        self.k = int(k)
        self.temperature = temperature

    def build_modules(self, feature_dim: int) -> None:
        self.memory = TargetMemory(feature_dim, self.num_classes)

    def prepare_target(self, num_examples: int) -> None:
        check_memory_size("ATDOC", num_examples, self.k)
        super().prepare_target(num_examples)
        self.memory.resize(num_examples)

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        index = target_positions("ATDOC", batch.target_index)
        if len(self.memory) == 0:
            raise RuntimeError("ATDOC's memory is empty: call prepare_target(len(target)) before training")
        out = self.forward_domains(batch)
        target_logits = out.target_logits
        neighbours = neighborhood_predictions(
            out.target_features, self.memory.features, self.memory.predictions, self.k, exclude=index
        )
        self.memory.update(index, out.target_features, sharpened_predictions(target_logits, self.temperature))
        return {
            "classification": self.classification_loss(out.source_logits, batch.source_y),
            "pseudo_label": self.trade_off * progress * confidence_weighted_cross_entropy(target_logits, neighbours),
        }
