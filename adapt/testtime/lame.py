"""LAME: Laplacian-adjusted maximum-likelihood estimation of each batch's labels (Boudiaf et al., CVPR 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from .base import TEST_TIME_METHODS, TestTimeAdapter

AFFINITIES = ("knn", "rbf", "linear")


def affinity(features: torch.Tensor, kind: str = "rbf", knn: int = 5) -> torch.Tensor:
    """The (N, N) affinity of the rows of ``features`` that LAME smooths its assignments over.

    ``"knn"``: 1 for each row's ``knn`` nearest other rows; ``"rbf"``:
    :math:`\\exp(-\\lVert x_i - x_j\\rVert^2 / 2\\sigma^2)` with :math:`\\sigma` the mean distance to the
    ``knn``-th nearest row (the row itself counted, as the authors' code); ``"linear"``: :math:`XX^\\top`.
    As fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 32-73 (their ``sigma`` setting is unused).
    """
    n = features.shape[0]
    if kind == "linear":
        return features @ features.t()
    dist = torch.norm(features.unsqueeze(0) - features.unsqueeze(1), dim=-1, p=2)
    if kind == "knn":
        index = dist.topk(min(knn + 1, n), -1, largest=False).indices[:, 1:]
        return torch.zeros(n, n, device=features.device).scatter_(dim=-1, index=index, value=1.0)
    if kind == "rbf":
        sigma = dist.topk(k=min(knn, n), dim=-1, largest=False).values[:, -1].mean()
        return torch.exp(-(dist**2) / (2 * sigma**2))
    raise ValueError(f"affinity must be one of {', '.join(AFFINITIES)}, got {kind!r}")


def laplacian_assignment(probabilities: torch.Tensor, kernel: torch.Tensor, max_steps: int = 100) -> torch.Tensor:
    """LAME's assignments :math:`Y` (N, K): the bound optimization of Boudiaf et al. (CVPR 2022),
    :math:`y_i \\propto p_i \\odot \\exp(\\sum_j w_{ij} y_j)`, iterated from :math:`Y = P` until the energy
    :math:`\\sum_i y_i^\\top(-\\log p_i - \\sum_j w_{ij} y_j + \\log y_i)` changes by at most 1e-8 relatively.
    As fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 107, 125-148 (``bound_lambda`` = 1)."""
    unary = -torch.log(probabilities + 1e-10)
    assignment = (-unary).softmax(-1)
    previous = float("inf")
    for step in range(max_steps):
        pairwise = kernel.matmul(assignment)
        assignment = (-unary + pairwise).softmax(-1)
        energy = (unary * assignment - pairwise * assignment + assignment * torch.log(assignment.clip(1e-20))).sum()
        if step > 1 and abs(energy.item() - previous) <= 1e-8 * abs(previous):
            break
        previous = energy.item()
    return assignment


def split_classifier(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], nn.Module]:
    """The model as features then a classifier: ``embed`` and ``classifier`` of this library's models, or an
    ``nn.Sequential`` whose last layer is the classifier."""
    if callable(getattr(model, "embed", None)) and callable(getattr(model, "_require_built", None)):
        model._require_built()  # an unfitted model of ours has no classifier yet
    if callable(getattr(model, "embed", None)) and isinstance(getattr(model, "classifier", None), nn.Module):
        return model.embed, model.classifier
    if isinstance(model, nn.Sequential) and len(model) > 1:
        return model[:-1], model[-1]
    raise InputError("LAME needs the model's features: give a model with embed() and classifier (this library's), "
                     f"or an nn.Sequential ending in its classifier; got {type(model).__name__}")  # fmt: skip


@TEST_TIME_METHODS.register("lame")
class LAME(TestTimeAdapter):
    """Adjust each batch's predicted probabilities so that neighbours in feature space agree; nothing learns.

    Boudiaf, Mueller, Ben Ayed & Bertinetto, "Parameter-free Online Test-time Adaptation", CVPR 2022. The
    model runs in eval mode; on each batch its probabilities :math:`P` and L2-normalized features give a
    kernel (:func:`affinity`) and the assignments :func:`laplacian_assignment` returns are the batch's
    predictions. The model's weights never change, so a stream's order and length cannot make it drift;
    it needs batches that hold several examples of a class (a label-correlated stream helps it).

    Follows the authors' code (fiveai/LAME at d2e5f63, ``src/adaptation/lame.py`` lines 92-148) with the
    reference benchmark's defaults (mariodoebler/test-time-adaptation at 8b2ed63, ``conf.py`` lines
    209-215: rbf affinity, 5 neighbours, no forced symmetry). Works on any network that yields features
    (:func:`split_classifier`), whatever its normalization. It returns log-assignments as logits.

    Parameters
    ----------
    model : a trained classifier whose features can be read (deep-copied).
    affinity : 'rbf', 'knn' or 'linear'.
    knn : neighbours of the 'knn' affinity, and the neighbour whose distance sets the 'rbf' width.
    force_symmetry : use :math:`(W + W^\\top)/2`.
    max_steps : iterations of the bound optimization.
    """

    name = "lame"
    paper = "Boudiaf et al., CVPR 2022"
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, model: nn.Module, *, affinity: str = "rbf", knn: int = 5, force_symmetry: bool = False,
                 max_steps: int = 100) -> None:  # fmt: skip
        super().__init__(model)
        if affinity not in AFFINITIES:
            raise ValueError(f"affinity must be one of {', '.join(AFFINITIES)}, got {affinity!r}")
        if isinstance(knn, bool) or int(knn) != knn or knn < 1:
            raise ValueError(f"knn must be a positive integer, got {knn!r}")
        self.features, self.classifier = split_classifier(self.model)
        self.affinity, self.knn, self.force_symmetry, self.max_steps = affinity, int(knn), force_symmetry, max_steps
        self.model.eval()
        self._snapshot()

    @torch.no_grad()
    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        features = self.features(x)
        probabilities = self.classifier(features).softmax(dim=1)
        kernel = affinity(F.normalize(features.flatten(1), p=2, dim=-1), self.affinity, self.knn)
        if self.force_symmetry:
            kernel = (kernel + kernel.t()) / 2
        return laplacian_assignment(probabilities, kernel, self.max_steps).clip(1e-20).log()
