"""Heads shared by the methods: bottleneck, classifier and domain discriminator."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..losses import gradient_reversal


class Bottleneck(nn.Sequential):
    """Linear-BatchNorm-ReLU projection between backbone and classifier (TLlib: 256 units)."""

    def __init__(self, in_features: int, out_features: int = 256) -> None:
        super().__init__(nn.Linear(in_features, out_features), nn.BatchNorm1d(out_features), nn.ReLU())
        self.out_features = out_features


class CosineClassifier(nn.Module):
    """Logits ``normalize(x) @ W.T / temperature``, without bias: the rows of ``W`` are class prototypes
    compared by cosine similarity (MME's classifier, Saito et al., ICCV 2019).

    With ``hidden`` a linear layer of that width comes first (SSDA_MME's ``Predictor_deep``, the head they
    use on ResNets), and ``forward(x, reverse=True)`` reverses gradients after it, where theirs does; without
    it (``Predictor``), before the normalization.
    """

    def __init__(self, in_features: int, out_features: int, temperature: float = 0.05, hidden: int | None = None):
        super().__init__()
        self.in_features, self.out_features, self.temperature = in_features, out_features, temperature
        self.hidden = nn.Linear(in_features, hidden) if hidden else None
        self.fc = nn.Linear(hidden or in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        if self.hidden is not None:
            x = self.hidden(x)
        if reverse:
            x = gradient_reversal(x)
        return self.fc(nn.functional.normalize(x, dim=1)) / self.temperature


def discriminator_width(feature_dim: int) -> int:
    """Hidden width of a default domain discriminator: four times the feature width, between 64 and
    1024 (1024 as in the papers for features of 256 or more, narrower and cheaper for small networks)."""
    return min(1024, max(64, 4 * feature_dim))


def default_discriminator(
    in_features: int,
    feature_dim: int,
    hidden: Sequence[int] | None = None,
    batch_norm: bool = True,
    dropout: float = 0.0,
) -> DomainDiscriminator:
    """A :class:`DomainDiscriminator` for inputs of width ``in_features``, whose hidden widths are
    ``hidden`` or, when None, two layers of :func:`discriminator_width` of the feature width."""
    widths = tuple(hidden) if hidden is not None else (discriminator_width(feature_dim),) * 2
    return DomainDiscriminator(in_features, widths, batch_norm, dropout)


class DomainDiscriminator(nn.Module):
    """MLP that outputs one domain logit per example (source = 1, target = 0).

    Ganin et al., JMLR 2016 use 1024-1024 hidden units (100 for MNIST); TLlib adds BatchNorm.
    The output is a raw logit, to be used with :func:`adapt.losses.domain_adversarial_loss`;
    no sigmoid or softmax is applied (a softmax over one logit is constant).

    Parameters
    ----------
    in_features : input width.
    hidden : hidden layer widths.
    batch_norm : insert BatchNorm1d after every hidden Linear.
    dropout : dropout probability after every hidden layer (0 disables it).
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (1024, 1024),
        batch_norm: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
