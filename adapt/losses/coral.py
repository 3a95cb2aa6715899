"""CORAL: correlation alignment (Sun & Saenko, ECCV-W 2016)."""

from __future__ import annotations

import torch

from ._utils import float32_region


def covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased sample covariance of the rows of ``x``.

    :math:`C = \\frac{1}{n-1}\\left(X^\\top X - \\frac1n (\\mathbf 1^\\top X)^\\top(\\mathbf 1^\\top X)\\right)`,
    Sun & Saenko 2016, Eq. 2.

    Parameters
    ----------
    x : Tensor (n, d) with n >= 2.

    Returns
    -------
    Tensor (d, d)
    """
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"covariance needs at least 2 rows, got {n}")
    centered = x - x.mean(dim=0, keepdim=True)
    return centered.t() @ centered / (n - 1)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL loss :math:`\\frac{1}{4d^2}\\lVert C_S - C_T \\rVert_F^2`.

    Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", ECCV Workshops
    2016, Eq. 1. Covariances are computed in float32 even under autocast.

    Parameters
    ----------
    source : Tensor (n_s, d)
    target : Tensor (n_t, d)

    Examples
    --------
    >>> x = torch.randn(16, 4)
    >>> float(coral_loss(x, x))
    0.0

    Only second-order statistics count: a shifted copy is aligned already, a rescaled one is not.

    >>> bool(coral_loss(x, x + 5.0) < 1e-10)
    True
    >>> bool(coral_loss(x, 2.0 * x) > 0)
    True
    """
    if source.shape[1] != target.shape[1]:
        raise ValueError(
            f"source and target features must have the same width, got {source.shape[1]} and {target.shape[1]}"
        )
    dim = source.shape[1]
    with float32_region(source):
        diff = covariance(source.float()) - covariance(target.float())
        return diff.pow(2).sum() / (4 * dim * dim)
