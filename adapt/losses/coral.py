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


def scale_free_coral_loss(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """CORAL made independent of the features' scale and width:
    :math:`\\frac{\\sqrt d}{4d^2\\,\\bar\\sigma^4}\\lVert C_S - C_T \\rVert_F^2`, with
    :math:`\\bar\\sigma^2 = \\frac{\\operatorname{tr} C_S + \\operatorname{tr} C_T}{2d}` the pooled mean variance.

    Sun & Saenko's Eq. 1 (:func:`coral_loss`) grows as the fourth power of the features' scale, and its
    pull on the features (gradient norm next to the cross-entropy's) falls about as :math:`d^{-0.85}`
    from 16 to 2048 features (``benchmarks/study_term_scale.py``), so no one weight works across
    backbones. Dividing by :math:`\\bar\\sigma^4` (not detached) makes the loss invariant to rescaling the
    features; the :math:`\\sqrt d` makes its pull flat across widths (within 1.3x from 16 to 2048 in
    the same study). Not in the paper: the library's own normalization, chosen in issue 31.

    Examples
    --------
    >>> x, y = torch.randn(64, 8), torch.randn(64, 8) * 1.5
    >>> bool(torch.isclose(scale_free_coral_loss(x, y), scale_free_coral_loss(10 * x, 10 * y)))
    True
    >>> float(scale_free_coral_loss(x, x))
    0.0
    """
    if source.shape[1] != target.shape[1]:
        raise ValueError(
            f"source and target features must have the same width, got {source.shape[1]} and {target.shape[1]}"
        )
    dim = source.shape[1]
    with float32_region(source):
        cs, ct = covariance(source.float()), covariance(target.float())
        mean_variance = (cs.diagonal().sum() + ct.diagonal().sum()) / (2 * dim)
        return (cs - ct).pow(2).sum() / (4 * dim**1.5 * mean_variance.pow(2).clamp_min(eps))
