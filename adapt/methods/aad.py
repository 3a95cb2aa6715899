"""AaD: attracting and dispersing (Yang et al., NeurIPS 2022)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..batch import Batch
from ..losses.neighbors import neighbor_indices
from ..models.memory import target_positions
from .registry import SOURCE_FREE_METHODS
from .source_free import NeighbourMemoryAdapter


@SOURCE_FREE_METHODS.register("aad")
class AaD(NeighbourMemoryAdapter):
    """Pull each target prediction towards its feature-space neighbours', push it from the rest of the batch.

    Yang, van de Weijer, Herranz, Jui & Chen, "Attracting and Dispersing: A Simple Approach for
    Source-free Domain Adaptation", NeurIPS 2022:

    .. math:: \\frac1B\\sum_i \\Big(-\\sum_{j \\in \\mathcal C_i} p_i^\\top s_j
              + \\lambda \\sum_{m \\in \\mathcal B_i} p_i^\\top p_m\\Big),
              \\qquad \\lambda = \\alpha\\,(1 + 10\\,p)^{-\\beta},

    where :math:`\\mathcal C_i` are the K nearest neighbours of example i in a memory of normalized
    target features (itself excluded) with their stored predictions :math:`s_j`, :math:`\\mathcal B_i`
    the other examples of the batch, and :math:`p` the fraction of training done. The memory
    (:class:`~adapt.models.memory.TargetMemory`) is filled by one pass over the target before the
    first step, then refreshed with each batch's features and predictions. The whole network trains
    except the classifier, which stays the source's.

    Parameters
    ----------
    k : number of neighbours K.
    alpha : :math:`\\alpha`, the dispersion weight at the start.
    beta : :math:`\\beta`, how fast the dispersion weight decays.
    """

    name = "aad"
    paper = "Yang et al., NeurIPS 2022"
    adaptation_term = "agreement with K memory neighbours' predictions minus agreement with the rest of the batch"
    frozen_modules = ("classifier",)

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        k: int = 5,
        alpha: float = 1.0,
        beta: float = 0.75,
        **kwargs: Any,
    ) -> None:
        super().__init__(backbone, num_classes, **kwargs)
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k, self.alpha, self.beta = int(k), alpha, beta

    def memory_neighbours(self) -> int:
        return self.k

    def loss(self, batch: Batch, progress: float) -> dict[str, torch.Tensor]:
        index = target_positions("AaD", batch.target_index)
        features = self.embed(batch.target_x)
        probabilities = self.classifier(features).float().softmax(dim=1)
        self.memory.update(index, features, probabilities)
        neighbours = neighbor_indices(features, self.memory.features, self.k, exclude=index)
        attraction = -(probabilities.unsqueeze(1) * self.memory.predictions[neighbours]).sum(dim=(1, 2)).mean()
        agreement = probabilities @ probabilities.t()
        dispersion = (agreement.sum(dim=1) - agreement.diagonal()).mean()
        weight = self.alpha * (1 + 10 * progress) ** (-self.beta)
        return {"attraction": attraction, "dispersion": weight * dispersion}
