"""BatchNorm adaptation: normalize with the test batch's statistics, optionally mixed with the source's."""

from __future__ import annotations

import torch
from torch import nn

from .base import TEST_TIME_METHODS, TestTimeAdapter


class MixedStatisticsNorm(nn.Module):
    """A trained BatchNorm layer that normalizes with a mix of its source statistics and the batch's.

    Schneider et al., "Improving robustness against common corruptions by covariate shift adaptation",
    NeurIPS 2020: with N the prior strength and n the batch size,
    :math:`\\mu = \\frac{N}{N+n}\\mu_s + \\frac{n}{N+n}\\mu_t` and likewise for the variance. N = 0 is
    prediction-time BatchNorm (Nado et al., 2020): the batch's own statistics.
    """

    def __init__(self, norm: nn.modules.batchnorm._BatchNorm, prior: float) -> None:
        super().__init__()
        self.norm, self.prior = norm, prior

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.ndim)]
        batch_mean, batch_var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
        weight = x.shape[0] / (self.prior + x.shape[0])
        norm = self.norm
        if norm.running_mean is None or norm.running_var is None or weight == 1.0:
            mean, var = batch_mean, batch_var
        else:
            mean = (1 - weight) * norm.running_mean + weight * batch_mean
            var = (1 - weight) * norm.running_var + weight * batch_var
        shape = [1, -1, *([1] * (x.ndim - 2))]  # per channel
        normalized = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + norm.eps)
        if norm.weight is not None:
            normalized = normalized * norm.weight.view(shape) + norm.bias.view(shape)
        return normalized


def _replace_batch_norms(module: nn.Module, prior: float) -> int:
    count = 0
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, MixedStatisticsNorm(child, prior))
            count += 1
        else:
            count += _replace_batch_norms(child, prior)
    return count


@TEST_TIME_METHODS.register("bn_adapt", "bn")
class BNAdapt(TestTimeAdapter):
    """Predict each test batch with BatchNorm statistics re-estimated on that batch (no parameter changes).

    Every BatchNorm layer of a copy of the model becomes a :class:`MixedStatisticsNorm` with prior
    strength ``prior`` (0: the batch's statistics alone). The rest of the network runs in eval mode
    (dropout off). Nothing is learned, so the predictions on a batch do not depend on the batches
    before it.

    Parameters
    ----------
    model : a trained classifier with BatchNorm layers (deep-copied).
    prior : N >= 0, the weight of the source statistics counted in examples.
    """

    name = "bn_adapt"
    paper = "Schneider et al., NeurIPS 2020; Nado et al., 2020"

    def __init__(self, model: nn.Module, *, prior: float = 0.0) -> None:
        super().__init__(model)
        if prior < 0:
            raise ValueError(f"prior must be >= 0, got {prior!r}")
        self.require_batch_norm()
        self.prior = prior
        _replace_batch_norms(self.model, prior)
        self.model.eval()
        self._snapshot()

    @torch.no_grad()
    def adapt_and_predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
